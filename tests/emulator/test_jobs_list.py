"""GET /data/core/privacy/jobs: regulation, pagination, page size limits, status and date windows (reference 3)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from tests.emulator.conftest import FINISHED, JOBS, job_request, users

ADOBE_DATE = re.compile(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2} (AM|PM) GMT")
BASIC_FIELDS = {
    "jobId",
    "requestId",
    "userKey",
    "action",
    "status",
    "submittedBy",
    "createdDate",
    "lastModifiedDate",
}


def emulator_today(server) -> datetime:
    import httpx

    now = httpx.get(f"{server.base_url}/_emulator/clock").json()["now"]
    return datetime.fromtimestamp(now, tz=UTC)


def create(api, org_id: str, count: int, regulation: str = "gdpr", prefix: str = "subject") -> list[str]:
    response = api.post(
        JOBS, json=job_request(org_id, users=users(count, prefix=prefix), regulation=regulation)
    )
    assert response.status_code == 202
    return [job["jobId"] for job in response.json()["jobs"]]


def test_list_shape_and_basic_fields(api, clean_emulator):
    job_ids = create(api, clean_emulator.org_id, 3)
    response = api.get(JOBS, params={"regulation": "gdpr"})
    assert response.status_code == 200
    body = response.json()
    assert body["totalRecords"] == 3
    assert [job["jobId"] for job in body["jobDetails"]] == sorted(job_ids)
    for job in body["jobDetails"]:
        assert set(job) == BASIC_FIELDS
        assert ADOBE_DATE.fullmatch(job["createdDate"]) and ADOBE_DATE.fullmatch(job["lastModifiedDate"])
        assert job["status"] == "submitted"
        assert job["submittedBy"].endswith("@techacct.adobe.com")


def test_list_is_per_regulation(api, clean_emulator):
    create(api, clean_emulator.org_id, 2, "gdpr")
    create(api, clean_emulator.org_id, 1, "ccpa")
    assert api.get(JOBS, params={"regulation": "gdpr"}).json()["totalRecords"] == 2
    assert api.get(JOBS, params={"regulation": "ccpa"}).json()["totalRecords"] == 1
    assert api.get(JOBS, params={"regulation": "lgpd_bra"}).json() == {"totalRecords": 0, "jobDetails": []}


def test_pages_are_zero_based_stable_and_complete(api, clean_emulator):
    job_ids = create(api, clean_emulator.org_id, 25)
    seen = []
    for page in range(3):
        body = api.get(JOBS, params={"regulation": "gdpr", "page": page, "size": 10}).json()
        assert body["totalRecords"] == 25
        seen += [job["jobId"] for job in body["jobDetails"]]
    assert seen == sorted(job_ids)
    assert api.get(JOBS, params={"regulation": "gdpr", "page": 3, "size": 10}).json()["jobDetails"] == []


def test_one_based_pages_when_configured(api, clean_emulator):
    job_ids = create(api, clean_emulator.org_id, 3)
    clean_emulator.configure(page_base=1)
    first = api.get(JOBS, params={"regulation": "gdpr", "page": 1, "size": 2}).json()["jobDetails"]
    assert [job["jobId"] for job in first] == sorted(job_ids)[:2]
    assert api.get(JOBS, params={"regulation": "gdpr", "page": 0}).status_code == 400


def test_default_page_size_is_100_and_max_is_1000(api, clean_emulator):
    create(api, clean_emulator.org_id, 150)
    assert len(api.get(JOBS, params={"regulation": "gdpr"}).json()["jobDetails"]) == 100
    assert len(api.get(JOBS, params={"regulation": "gdpr", "size": 1000}).json()["jobDetails"]) == 150
    clean_emulator.configure(max_page_size=100)
    assert api.get(JOBS, params={"regulation": "gdpr", "size": 101}).status_code == 400


def test_status_filter_and_total(api, clean_emulator):
    create(api, clean_emulator.org_id, 4)
    clean_emulator.advance_clock(FINISHED)
    create(api, clean_emulator.org_id, 2, prefix="late")
    complete = api.get(JOBS, params={"regulation": "gdpr", "status": "complete"}).json()
    submitted = api.get(JOBS, params={"regulation": "gdpr", "status": "submitted", "size": 1}).json()
    assert complete["totalRecords"] == 4
    assert {job["status"] for job in complete["jobDetails"]} == {"complete"}
    assert submitted["totalRecords"] == 2 and len(submitted["jobDetails"]) == 1
    assert api.get(JOBS, params={"regulation": "gdpr", "status": "processing"}).json()["totalRecords"] == 0


def test_date_window_filters(api, clean_emulator):
    create(api, clean_emulator.org_id, 2)
    today = emulator_today(clean_emulator).date()
    day = timedelta(days=1)
    window = {"regulation": "gdpr", "fromDate": str(today - day), "toDate": str(today)}
    assert api.get(JOBS, params=window).json()["totalRecords"] == 2
    before = {"regulation": "gdpr", "fromDate": str(today - 5 * day), "toDate": str(today - day)}
    assert api.get(JOBS, params=before).json()["totalRecords"] == 0
    assert api.get(JOBS, params={"regulation": "gdpr", "filterDate": str(today)}).json()["totalRecords"] == 2
    assert (
        api.get(JOBS, params={"regulation": "gdpr", "filterDate": str(today - day)}).json()["totalRecords"]
        == 0
    )


def test_default_window_is_the_last_seven_days(api, clean_emulator):
    create(api, clean_emulator.org_id, 2)
    clean_emulator.advance_clock(8 * 86400)
    api.headers.update(clean_emulator.headers())
    assert api.get(JOBS, params={"regulation": "gdpr"}).json()["totalRecords"] == 0
    today = emulator_today(clean_emulator).date()
    window = {"regulation": "gdpr", "fromDate": str(today - timedelta(days=9)), "toDate": str(today)}
    assert api.get(JOBS, params=window).json()["totalRecords"] == 2


def _bad_queries(today):
    day = timedelta(days=1)
    return [
        ({}, "regulation"),
        ({"regulation": "nope"}, "regulation"),
        ({"regulation": "ucpa_usa"}, "regulation"),
        ({"regulation": "gdpr", "size": 1001}, "size"),
        ({"regulation": "gdpr", "size": 0}, "size"),
        ({"regulation": "gdpr", "size": "ten"}, "size"),
        ({"regulation": "gdpr", "page": -1}, "page"),
        ({"regulation": "gdpr", "page": "x"}, "page"),
        ({"regulation": "gdpr", "status": "done"}, "status"),
        ({"regulation": "gdpr", "fromDate": str(today)}, "toDate"),
        ({"regulation": "gdpr", "toDate": str(today)}, "fromDate"),
        ({"regulation": "gdpr", "fromDate": str(today - 31 * day), "toDate": str(today)}, "toDate"),
        (
            {"regulation": "gdpr", "fromDate": str(today - 46 * day), "toDate": str(today - 40 * day)},
            "fromDate",
        ),
        ({"regulation": "gdpr", "fromDate": str(today), "toDate": str(today - day)}, "toDate"),
        ({"regulation": "gdpr", "fromDate": "2024/01/01", "toDate": str(today)}, "fromDate"),
        ({"regulation": "gdpr", "fromDate": "2024-02-30", "toDate": "2024-03-01"}, "fromDate"),
        ({"regulation": "gdpr", "filterDate": str(today - 46 * day)}, "filterDate"),
        (
            {"regulation": "gdpr", "filterDate": "2024-13-01", "fromDate": str(today), "toDate": str(today)},
            "filterDate",
        ),
    ]


@pytest.mark.parametrize("case", range(18))
def test_bad_list_queries_are_400(api, clean_emulator, case):
    params, field = _bad_queries(emulator_today(clean_emulator).date())[case]
    response = api.get(JOBS, params=params)
    assert response.status_code == 400
    body = response.json()
    assert body["error_code"] == "PRVCY-1000-400"
    assert field in [error["field"] for error in body["errors"]]


def test_thirty_day_span_is_allowed(api, clean_emulator):
    today = emulator_today(clean_emulator).date()
    params = {"regulation": "gdpr", "fromDate": str(today - timedelta(days=30)), "toDate": str(today)}
    assert api.get(JOBS, params=params).status_code == 200
