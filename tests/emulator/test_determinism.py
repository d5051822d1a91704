"""Every pseudo-random choice follows the seed: ids, outcomes and ZIP bytes replay on a fresh database."""

from __future__ import annotations

import hashlib

import httpx
from privacy_emulator.testing import EmulatorServer

from tests.emulator.conftest import FINISHED, JOBS, job_request

WORKORDER = "/data/core/hygiene/workorder"
WORKORDER_BODY = {
    "displayName": "batch-1",
    "description": "replay",
    "action": "delete_identity",
    "datasetId": "ALL",
    "namespacesIdentities": [{"namespace": {"code": "email"}, "IDs": ["a@example.com"]}],
}


def _session(server: EmulatorServer) -> dict:
    """One fixed sequence of calls; everything the seed decides, in order."""
    with httpx.Client(base_url=server.base_url, headers=server.hygiene_headers(), timeout=30) as api:
        created = api.post(JOBS, json=job_request(server.org_id)).json()
        order = api.post(WORKORDER, json=WORKORDER_BODY).json()
        server.advance_clock(FINISHED)
        job_ids = [job["jobId"] for job in created["jobs"]]
        details = [api.get(f"{JOBS}/{job_id}").json() for job_id in job_ids]
        zip_digest = hashlib.sha256(api.get(f"{JOBS}/{job_ids[0]}/content").content).hexdigest()
    return {
        "job_ids": job_ids,
        "request_suffix": created["requestId"][13:],
        "workorder": (order["workorderId"], order["bundleId"]),
        "outcomes": [
            [
                product["productStatusResponse"].get("responseMsgCode")
                for product in detail["productResponses"]
            ]
            for detail in details
        ],
        "zip": zip_digest,
    }


def test_same_seed_same_history_gives_the_same_ids_outcomes_and_bytes(tmp_path):
    settings = {"seed": 7, "error_rate": 0.3, "processing_after_seconds": 60, "complete_after_seconds": 120}
    runs = []
    for name in ("first", "second"):
        with EmulatorServer(tmp_path / f"{name}.sqlite", settings=settings) as server:
            runs.append(_session(server))
    assert runs[0] == runs[1]
    with EmulatorServer(tmp_path / "other-seed.sqlite", settings={**settings, "seed": 8}) as server:
        other = _session(server)
    assert set(other["job_ids"]).isdisjoint(runs[0]["job_ids"])
    assert other["workorder"] != runs[0]["workorder"]


def test_ids_are_never_handed_out_twice_across_reset_and_restart(tmp_path):
    with EmulatorServer(tmp_path / "state.sqlite", settings={"seed": 3}) as server:
        seen: list[str] = []
        for step in range(3):
            with httpx.Client(base_url=server.base_url, headers=server.headers(), timeout=30) as api:
                seen += [
                    job["jobId"] for job in api.post(JOBS, json=job_request(server.org_id)).json()["jobs"]
                ]
            if step == 0:
                server.reset()
            elif step == 1:
                server.restart()
        assert len(seen) == len(set(seen)) == 9
