"""Fixtures for the emulator's own tests: a clean session emulator per test and an authenticated client."""

from __future__ import annotations

import copy
from collections.abc import Iterator

import httpx
import pytest

JOBS = "/data/core/privacy/jobs"
CONSENT = "/data/core/privacy/consent"
HYGIENE_JOBS = "/data/core/hygiene/jobs"

# Lifecycle used by these tests: slow enough on the real clock that a loaded machine never moves a job
# on by itself between two calls; tests move it with advance_clock. FINISHED is past every jittered end.
PROCESSING_AFTER = 60.0
COMPLETE_AFTER = 120.0
FINISHED = 200.0

# Reference 2.1's example request (regulation ccpa, two users, three actions).
EXAMPLE_JOB_REQUEST = {
    "companyContexts": [{"namespace": "imsOrgID", "value": "{ORG_ID}"}],
    "users": [
        {
            "key": "DavidSmith",
            "action": ["access"],
            "userIDs": [
                {"namespace": "email", "value": "dsmith@acme.com", "type": "standard"},
                {
                    "namespace": "ECID",
                    "type": "standard",
                    "value": "443636576799758681021090721276",
                    "isDeletedClientSide": False,
                },
            ],
        },
        {
            "key": "user12345",
            "action": ["access", "delete"],
            "userIDs": [{"namespace": "loyaltyAccount", "value": "12AD45FE30R29", "type": "integrationCode"}],
        },
    ],
    "include": ["Analytics", "AudienceManager", "profileService"],
    "expandIds": False,
    "priority": "normal",
    "mergePolicyId": 124,
    "regulation": "ccpa",
}


def job_request(org_id: str, **overrides) -> dict:
    body = copy.deepcopy(EXAMPLE_JOB_REQUEST)
    body["companyContexts"][0]["value"] = org_id
    body.update(overrides)
    return body


def users(count: int, *, actions: tuple[str, ...] = ("access",), prefix: str = "subject") -> list[dict]:
    return [
        {
            "key": f"{prefix}-{index}",
            "action": list(actions),
            "userIDs": [{"namespace": "email", "value": f"{prefix}{index}@example.com", "type": "standard"}],
        }
        for index in range(count)
    ]


@pytest.fixture
def clean_emulator(emulator):
    """The session emulator, reset before and after the test (jobs, faults, clock, settings), its clock
    moved away from midnight UTC so that no test's "today" changes while it runs."""
    emulator.reset()
    away_from_midnight(emulator)
    emulator.configure(processing_after_seconds=PROCESSING_AFTER, complete_after_seconds=COMPLETE_AFTER)
    yield emulator
    emulator.reset()


@pytest.fixture
def api(clean_emulator) -> Iterator[httpx.Client]:
    """An httpx client on the emulator carrying valid gateway headers."""
    with httpx.Client(
        base_url=clean_emulator.base_url, headers=clean_emulator.headers(), timeout=30
    ) as client:
        yield client


def clock_now(server) -> float:
    return httpx.get(f"{server.base_url}/_emulator/clock").json()["now"]


def away_from_midnight(server) -> None:
    """Move the emulator clock (at most 12 h) so that the UTC day cannot change during the test."""
    seconds = clock_now(server) % 86400
    if not 6 * 3600 <= seconds < 18 * 3600:
        server.advance_clock((6 * 3600 - seconds) % 86400)


def at_minute_start(server) -> None:
    """Move the emulator clock to one second past the next minute, for per-minute counters."""
    server.advance_clock(61 - clock_now(server) % 60)
