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
    """The session emulator, reset before and after the test (jobs, faults, clock, settings)."""
    emulator.reset()
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
