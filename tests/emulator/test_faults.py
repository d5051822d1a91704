"""Fault injection (latency, 429, 5xx, 1030, drop after commit), the daily cap, and stats bookkeeping."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.emulator.conftest import JOBS, job_request, users

CREATE_ROUTE = "POST /data/core/privacy/jobs"
LIST_ROUTE = "GET /data/core/privacy/jobs"


def test_429_with_retry_after_for_the_next_call_only(api, clean_emulator):
    clean_emulator.add_fault(route=CREATE_ROUTE, kind="429", times=1, retry_after=7)
    throttled = api.post(JOBS, json=job_request(clean_emulator.org_id))
    assert throttled.status_code == 429
    assert throttled.headers["retry-after"] == "7"
    assert api.get(JOBS, params={"regulation": "ccpa"}).status_code == 200  # other routes unaffected
    assert api.post(JOBS, json=job_request(clean_emulator.org_id)).status_code == 202
    stats = clean_emulator.stats()
    assert stats["calls"][CREATE_ROUTE] == {"429": 1, "202": 1}
    assert stats["jobs_total"] == 3


def test_5xx_status_is_configurable_and_faults_can_be_cleared(api, clean_emulator):
    clean_emulator.add_fault(route="*", kind="5xx", status=502)
    assert api.get(JOBS, params={"regulation": "ccpa"}).status_code == 502
    assert api.post(JOBS, json=job_request(clean_emulator.org_id)).status_code == 502
    faults = httpx.get(f"{clean_emulator.base_url}/_emulator/faults").json()
    assert faults[0]["fired"] == 2
    clean_emulator.clear_faults()
    assert api.get(JOBS, params={"regulation": "ccpa"}).status_code == 200
    assert clean_emulator.stats()["jobs_total"] == 0


def test_1030_document_rate_limit(api, clean_emulator):
    clean_emulator.add_fault(route=CREATE_ROUTE, kind="1030", times=2)
    for _ in range(2):
        response = api.post(JOBS, json=job_request(clean_emulator.org_id))
        assert response.status_code == 400
        assert response.json()["error_code"] == "PRVCY-1030-400"
        assert response.json()["title"] == "Document rate limit exceeded"
    assert api.post(JOBS, json=job_request(clean_emulator.org_id)).status_code == 202


def test_latency(api, clean_emulator):
    clean_emulator.add_fault(route=LIST_ROUTE, kind="latency", latency_ms=300, times=1)
    started = time.perf_counter()
    assert api.get(JOBS, params={"regulation": "ccpa"}).status_code == 200
    assert time.perf_counter() - started >= 0.3


def test_rate_faults_are_deterministic_for_a_seed(api, clean_emulator):
    def pattern() -> list[int]:
        clean_emulator.reset()
        api.headers.update(clean_emulator.headers())
        clean_emulator.add_fault(route=LIST_ROUTE, kind="5xx", rate=0.5)
        return [api.get(JOBS, params={"regulation": "ccpa"}).status_code for _ in range(20)]

    first, second = pattern(), pattern()
    assert first == second
    assert set(first) == {200, 503}


def test_drop_after_commit_commits_then_drops_the_connection(api, clean_emulator):
    clean_emulator.add_fault(route=CREATE_ROUTE, kind="drop_after_commit", times=1)
    with pytest.raises(httpx.TransportError):
        api.post(JOBS, json=job_request(clean_emulator.org_id))
    stats = clean_emulator.stats()
    assert stats["jobs_total"] == 3  # committed although the client saw no response
    assert stats["calls"][CREATE_ROUTE] == {"dropped": 1}
    listed = api.get(JOBS, params={"regulation": "ccpa"}).json()
    assert {job["userKey"] for job in listed["jobDetails"]} == {"DavidSmith", "user12345"}


def test_daily_cap_answers_400_and_resets_next_utc_day(api, clean_emulator):
    clean_emulator.configure(daily_job_cap=5)
    assert api.post(JOBS, json=job_request(clean_emulator.org_id, users=users(4))).status_code == 202
    refused = api.post(JOBS, json=job_request(clean_emulator.org_id, users=users(2)))
    assert refused.status_code == 400
    assert refused.json() == {
        "type": "http://ns.adobe.com/aep/errors/PRVCY-DAILY-LIMIT-400",
        "title": "Daily limit exceeded",
        "status": 400,
        "error_code": "PRVCY-DAILY-LIMIT-400",
        "detail": "The daily job limit for this organization has been reached; retry tomorrow.",
    }
    assert api.post(JOBS, json=job_request(clean_emulator.org_id, users=users(1))).status_code == 202
    clean_emulator.advance_clock(86400)
    api.headers.update(clean_emulator.headers())
    assert api.post(JOBS, json=job_request(clean_emulator.org_id, users=users(5))).status_code == 202
    assert clean_emulator.stats()["jobs_total"] == 10


@pytest.mark.parametrize(
    "fault",
    [
        {"kind": "teleport"},
        {"kind": "5xx", "status": 404},
        {"kind": "429", "rate": 2},
        {"kind": "latency", "times": 0},
    ],
)
def test_bad_fault_specs_are_refused(clean_emulator, fault):
    response = httpx.post(f"{clean_emulator.base_url}/_emulator/faults", json=fault)
    assert response.status_code == 400
    assert httpx.get(f"{clean_emulator.base_url}/_emulator/faults").json() == []


def test_bad_config_is_refused_and_nothing_changes(clean_emulator):
    response = httpx.patch(f"{clean_emulator.base_url}/_emulator/config", json={"page_base": 2})
    assert response.status_code == 400
    assert httpx.get(f"{clean_emulator.base_url}/_emulator/config").json()["page_base"] == 0
    assert clean_emulator.configure(error_rate=0.25)["error_rate"] == 0.25
    assert clean_emulator.configure()["client_secret"] == "***"
