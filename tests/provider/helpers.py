"""Small helpers shared by the provider tests (payloads, emulator stats, a sleep recorder)."""

from __future__ import annotations

REGULATION = "gdpr"
JOBS_ROUTE = "/data/core/privacy/jobs"


class SleepRecorder:
    """Stands in for ``time.sleep``: records each wait instead of waiting."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def make_payload(org_id: str, keys: list[str], actions=("access",), regulation: str = REGULATION) -> dict:
    """A valid create payload; identity values are synthetic."""
    return {
        "companyContexts": [{"namespace": "imsOrgID", "value": org_id}],
        "users": [
            {
                "key": key,
                "action": list(actions),
                "userIDs": [{"namespace": "email", "value": f"{key}@example.test", "type": "standard"}],
            }
            for key in keys
        ],
        "include": ["Analytics", "profileService"],
        "regulation": regulation,
    }


def calls(emulator, route: str) -> dict[str, int]:
    """Calls per status on one route template, e.g. ``calls(emu, "GET /data/core/privacy/jobs")``."""
    return emulator.stats()["calls"].get(route, {})
