"""The final-transition hook (``state.final_transitions``): every final state reported once, in end order.

In-process on purpose: listeners are Python callables of the emulator's own process (the I/O Events
journal subscribes one). The app is the real ASGI app, driven through Starlette's test client.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from privacy_emulator.app import build_state, create_app_for_state
from privacy_emulator.settings import EmulatorSettings
from privacy_emulator.transitions import FinalTransition

from tests.emulator.conftest import FINISHED, JOBS, job_request

WORKORDER = "/data/core/hygiene/workorder"
SETTINGS = {
    "processing_after_seconds": 60,
    "complete_after_seconds": 120,
    "jitter_ratio": 0.5,
    "error_rate": 0.5,
    "workorder_complete_after_seconds": 400,
    "seed": 11,
}


class Emulator:
    def __init__(self, db: Path) -> None:
        self.state = build_state(EmulatorSettings(**SETTINGS), db)
        self.client = TestClient(create_app_for_state(self.state), base_url="http://127.0.0.1")
        token = self.client.post(
            "/ims/token/v3",
            data={
                "grant_type": "client_credentials",
                "client_id": self.state.settings.client_id,
                "client_secret": self.state.settings.client_secret,
                "scope": "openid",
            },
        ).json()["access_token"]
        self.client.headers.update(
            {
                "Authorization": f"Bearer {token}",
                "x-api-key": self.state.settings.client_id,
                "x-gw-ims-org-id": self.state.settings.org_id,
                "x-sandbox-name": "prod",
                "Accept": "application/json",
            }
        )
        self.seen: list[FinalTransition] = []

    def advance(self, seconds: float) -> None:
        assert self.client.post("/_emulator/clock/advance", json={"seconds": seconds}).status_code == 200


@pytest.fixture
def emu(tmp_path):
    emulator = Emulator(tmp_path / "state.sqlite")
    emulator.state.final_transitions.subscribe(emulator.seen.append)
    yield emulator
    emulator.client.close()
    emulator.state.store.close()


def _order(name: str) -> dict:
    return {
        "displayName": name,
        "action": "delete_identity",
        "datasetId": "ALL",
        "namespacesIdentities": [{"namespace": {"code": "email"}, "IDs": ["x@example.test"]}],
    }


def test_jobs_products_and_work_orders_are_reported_once_in_end_order(emu):
    org = emu.state.settings.org_id
    jobs = emu.client.post(JOBS, json=job_request(org)).json()["jobs"]
    order = emu.client.post(WORKORDER, json=_order("o1")).json()
    emu.advance(30)
    assert emu.seen == []
    emu.advance(FINISHED)
    assert {t.job.job_id for t in emu.seen} == {job["jobId"] for job in jobs}
    assert [t.at for t in emu.seen] == sorted(t.at for t in emu.seen)
    for job in jobs:
        mine = [t for t in emu.seen if t.job.job_id == job["jobId"]]
        detail = emu.client.get(f"{JOBS}/{job['jobId']}").json()
        products = [t.product for t in mine[:-1]]
        assert [p["product"] for p in products] == [p["product"] for p in detail["productResponses"]]
        assert [t.status for t in mine[:-1]] == [
            p["productStatusResponse"]["status"] for p in detail["productResponses"]
        ]
        assert mine[-1].product is None and mine[-1].status == detail["status"] in ("complete", "error")
    assert len(emu.seen) == 3 * 4
    emu.advance(400)
    (last,) = emu.seen[12:]
    assert last.job.kind == "workorder" and last.job.workorder_id == order["workorderId"]
    detail = emu.client.get(f"{WORKORDER}/{order['workorderId']}").json()
    assert last.status == detail["status"] in ("completed", "failed") and last.product is None
    emu.advance(10_000)
    assert len(emu.seen) == 13  # nothing twice


def test_every_api_call_sweeps_while_a_listener_listens(emu):
    emu.client.post(JOBS, json=job_request(emu.state.settings.org_id))
    emu.state.clock.advance(FINISHED)  # the clock moves without the admin call
    assert emu.seen == []
    emu.client.get(JOBS, params={"regulation": "ccpa"})
    assert len(emu.seen) == 12


def test_the_watermark_survives_a_restart(tmp_path):
    first = Emulator(tmp_path / "state.sqlite")
    first.state.final_transitions.subscribe(first.seen.append)
    first.client.post(JOBS, json=job_request(first.state.settings.org_id))
    first.advance(FINISHED)
    assert len(first.seen) == 12
    first.state.store.close()
    second = Emulator(tmp_path / "state.sqlite")
    second.state.final_transitions.subscribe(second.seen.append)
    assert second.state.final_transitions.sweep() == 0
    second.client.post(JOBS, json=job_request(second.state.settings.org_id))
    second.advance(FINISHED)
    assert len(second.seen) == 12 and not {t.job.job_id for t in second.seen} & {
        t.job.job_id for t in first.seen
    }


def test_a_failing_listener_breaks_no_call_and_gets_the_transitions_again(emu):
    calls = {"n": 0}

    def flaky(transition: FinalTransition) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("journal unavailable")

    emu.state.final_transitions.subscribe(flaky)
    emu.client.post(JOBS, json=job_request(emu.state.settings.org_id))
    emu.advance(FINISHED)  # the first delivery fails: the admin call still answers 200
    assert emu.client.get(JOBS, params={"regulation": "ccpa"}).status_code == 200
    delivered = [t for t in emu.seen if t.product is None]
    assert len({t.job.job_id for t in delivered}) == 3  # at least once: nothing lost


def test_without_listeners_nothing_is_swept(tmp_path):
    emulator = Emulator(tmp_path / "state.sqlite")
    emulator.client.post(JOBS, json=job_request(emulator.state.settings.org_id))
    emulator.advance(FINISHED)
    assert emulator.state.final_transitions.sweep() == 0
    emulator.state.final_transitions.subscribe(emulator.seen.append)
    assert emulator.state.final_transitions.sweep() == 12  # a late subscriber still gets the history
    emulator.state.store.close()
