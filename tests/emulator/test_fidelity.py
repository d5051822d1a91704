"""Fidelity round 2: each difference found against Adobe's documents, Postman collection and aepp, over HTTP.

The source each expectation follows is in the test's docstring; where Adobe's documents disagree, the
seeds and the newest docs win over the OAS file.
"""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.emulator.conftest import (
    COMPLETE_AFTER,
    FINISHED,
    JOBS,
    PROCESSING_AFTER,
    at_minute_start,
    job_request,
)
from tests.emulator.test_jobs_list import create, emulator_today

GATEWAY_MISSING_TOKEN = {"error_code": "403010", "message": "Oauth token is missing."}


def _detail(api, job_id: str) -> dict:
    response = api.get(f"{JOBS}/{job_id}")
    assert response.status_code == 200
    return response.json()


def _example_ids(api, org_id: str) -> dict[str, str]:
    jobs = api.post(JOBS, json=job_request(org_id)).json()["jobs"]
    return {f"{j['customer']['user']['key']}|{j['customer']['user']['action'][0]}": j["jobId"] for j in jobs}


# -- the download link ------------------------------------------------------------------------------
@pytest.mark.parametrize("key", ["downloadUrl", "downloadURL"])
def test_one_spelling_of_the_download_link_per_setting(api, clean_emulator, key):
    """Content page and captured responses: downloadUrl (default); jobs guide example: downloadURL."""
    if key == "downloadURL":
        clean_emulator.configure(download_url_key="downloadURL")
    job_id = _example_ids(api, clean_emulator.org_id)["DavidSmith|access"]
    clean_emulator.advance_clock(FINISHED)
    detail = _detail(api, job_id)
    other = {"downloadUrl", "downloadURL"} - {key}
    assert detail[key] == f"{clean_emulator.base_url}{JOBS}/{job_id}/content"
    assert not other & set(detail)
    assert api.get(detail[key]).status_code == 200


def test_processed_date_on_products_in_progress(api, clean_emulator):
    """Content page and the draft's captured response: processedDate while a product is submitted."""
    clean_emulator.configure(jitter_ratio=0.0)
    job_id = _example_ids(api, clean_emulator.org_id)["DavidSmith|access"]
    submitted = _detail(api, job_id)
    assert submitted["status"] == "submitted"
    for product in submitted["productResponses"]:
        assert product["productStatusResponse"]["status"] == "submitted"
        assert product["processedDate"] == submitted["createdDate"]
    clean_emulator.advance_clock((PROCESSING_AFTER + COMPLETE_AFTER) / 2)
    processing = _detail(api, job_id)
    assert processing["status"] == "processing"
    assert {p["processedDate"] for p in processing["productResponses"]} == {processing["lastModifiedDate"]}


# -- Adobe's known bugs (flagged orgs) ------------------------------------------------------------------
@pytest.mark.parametrize("key", ["downloadUrl", "downloadURL"])
def test_known_bugs_mode_puts_links_on_unfinished_and_delete_jobs(api, clean_emulator, key):
    """Content-endpoint draft: flagged orgs see downloadUrl before completion and even on delete jobs."""
    clean_emulator.configure(adobe_known_bugs=True, download_url_key=key)
    ids = _example_ids(api, clean_emulator.org_id)
    early = _detail(api, ids["DavidSmith|access"])
    delete = _detail(api, ids["user12345|delete"])
    assert early["status"] == "submitted" and early[key].endswith(f"/{early['jobId']}/content")
    assert delete["action"] == "delete" and delete[key].endswith(f"/{delete['jobId']}/content")
    # The links lie: nothing is served until the access job is complete, and never for a delete job.
    assert api.get(early[key]).status_code == 404
    assert api.get(delete[key]).status_code == 400
    clean_emulator.advance_clock(FINISHED)
    assert api.get(_detail(api, ids["DavidSmith|access"])[key]).status_code == 200
    assert api.get(delete[key]).status_code == 400
    clean_emulator.configure(adobe_known_bugs=False)
    assert key not in _detail(api, ids["user12345|delete"])


# -- content needs Accept: application/json -------------------------------------------------------------
def test_content_needs_accept_application_json(api, clean_emulator):
    """Adobe's OAS marks Accept: application/json required on /jobs/{id}/content (the answer is a ZIP)."""
    job_id = _example_ids(api, clean_emulator.org_id)["DavidSmith|access"]
    clean_emulator.advance_clock(FINISHED)
    url = f"{JOBS}/{job_id}/content"
    request = api.build_request("GET", url)
    del request.headers["accept"]
    missing = api.send(request)
    assert missing.status_code == 400 and missing.json() == {
        "error_code": "400003",
        "message": "Missing header",
    }
    wrong = api.get(url, headers={"Accept": "application/zip"})
    assert wrong.status_code == 406 and wrong.json()["error_code"] == "PRVCY-4060-406"
    assert api.get(url, headers={"Accept": "application/json, */*"}).status_code == 200
    assert api.get(url).status_code == 200  # the fixture sends Accept: application/json


# -- unknown paths and methods go through the gateway first ---------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/data/core/privacy/nothing-here"),
        ("GET", "/data/core/privacy/jobs/x/content/extra"),
        ("DELETE", JOBS),
        ("GET", "/data/core/privacy/consent"),
        ("POST", "/data/privacy/gdpr/"),  # the Postman collection's pre-2020 path
        ("GET", "/no/such/service"),
    ],
)
def test_unknown_paths_answer_the_gateway_before_anything(clean_emulator, method, path):
    response = httpx.request(method, f"{clean_emulator.base_url}{path}")
    assert response.status_code == 401
    assert response.json() == GATEWAY_MISSING_TOKEN


def test_unknown_paths_with_credentials_answer_adobe_shaped_404_and_405(api, clean_emulator):
    missing = api.get("/data/core/privacy/nothing-here")
    assert missing.status_code == 404
    assert missing.json()["error_code"] == "PRVCY-4040-404" and "detail" in missing.json()
    assert missing.json()["detail"] != "Not Found"
    hygiene = api.get("/data/core/hygiene/nothing-here")
    assert hygiene.status_code == 404 and hygiene.json()["error_code"] == "HYGN-4040-404"
    wrong_method = api.delete(JOBS)
    assert wrong_method.status_code == 405 and wrong_method.json()["error_code"] == "PRVCY-4050-405"
    assert set(wrong_method.headers["allow"].split(", ")) >= {"GET", "POST"}
    calls = clean_emulator.stats()["calls"]
    assert calls["GET /{unknown_path:path}"] == {"404": 2}


def test_unknown_admin_paths_are_404_without_a_gateway(clean_emulator):
    response = httpx.get(f"{clean_emulator.base_url}/_emulator/nothing")
    assert response.status_code == 404 and response.json()["error_code"] == "EMULATOR-404"


# -- gateway throttling -----------------------------------------------------------------------------------
def test_gateway_throttle_answers_429050_until_the_next_minute(api, clean_emulator):
    """Adobe's gateway 429 body (developer FAQs; ServiceNow KB3006995), next to 1030-400 and the daily cap."""
    at_minute_start(clean_emulator)
    clean_emulator.configure(gateway_requests_per_minute=2)
    codes = [api.get(JOBS, params={"regulation": "gdpr"}).status_code for _ in range(3)]
    throttled = api.get(JOBS, params={"regulation": "gdpr"})
    assert codes[:2] == [200, 200] and codes[2] == 429 and throttled.status_code == 429
    assert throttled.json() == {"error_code": "429050", "message": "Too many requests"}
    assert 1 <= int(throttled.headers["retry-after"]) <= 60
    clean_emulator.advance_clock(int(throttled.headers["retry-after"]))
    assert api.get(JOBS, params={"regulation": "gdpr"}).status_code == 200


def test_injected_429_has_the_same_body(api, clean_emulator):
    clean_emulator.add_fault(route=f"GET {JOBS}", kind="429", times=1, retry_after=3)
    response = api.get(JOBS, params={"regulation": "gdpr"})
    assert response.status_code == 429 and response.headers["retry-after"] == "3"
    assert response.json() == {"error_code": "429050", "message": "Too many requests"}


# -- list queries: filterDate with a range, blank values, page base, size maximum -------------------------
def test_filter_date_with_a_range_means_both_filters(api, clean_emulator):
    """OAS lists filterDate and fromDate/toDate; Postman sends all three: accepted, and they add up."""
    create(api, clean_emulator.org_id, 2)
    today = emulator_today(clean_emulator).date()
    day = today.toordinal()
    iso = lambda ordinal: type(today).fromordinal(ordinal).isoformat()  # noqa: E731
    base = {"regulation": "gdpr", "fromDate": iso(day - 5), "toDate": iso(day)}
    assert api.get(JOBS, params={**base, "filterDate": iso(day)}).json()["totalRecords"] == 2
    assert api.get(JOBS, params={**base, "filterDate": iso(day - 1)}).json()["totalRecords"] == 0
    outside = {"regulation": "gdpr", "fromDate": iso(day - 9), "toDate": iso(day - 3), "filterDate": iso(day)}
    response = api.get(JOBS, params=outside)
    assert response.status_code == 200 and response.json() == {"totalRecords": 0, "jobDetails": []}


def test_postman_list_request_as_adobe_documents_it(api, clean_emulator):
    """Postman: page=1&size=25 with fromDate, toDate and filterDate; unset variables arrive blank."""
    create(api, clean_emulator.org_id, 3)
    today = str(emulator_today(clean_emulator).date())
    params = {
        "regulation": "gdpr",
        "page": 1,
        "size": 25,
        "fromDate": today,
        "toDate": today,
        "filterDate": today,
    }
    body = api.get(JOBS, params=params).json()
    # Documented page base 0: page 1 is jobs 26-50, so an org with 3 jobs sees none, and the total says why.
    assert body == {"totalRecords": 3, "jobDetails": []}
    assert len(api.get(JOBS, params={**params, "page": 0}).json()["jobDetails"]) == 3
    blanks = {
        "regulation": "gdpr",
        "size": 100,
        "page": 0,
        "status": "",
        "fromDate": "",
        "toDate": "",
        "filterDate": "",
    }
    assert api.get(JOBS, params=blanks).json()["totalRecords"] == 3
    clean_emulator.configure(page_base=1)
    assert len(api.get(JOBS, params=params).json()["jobDetails"]) == 3


def test_docs_example_list_request(api, clean_emulator):
    """Privacy-jobs guide: GET /jobs?regulation=gdpr&page=2&size=50 (the third page)."""
    ids = create(api, clean_emulator.org_id, 120)
    body = api.get(JOBS, params={"regulation": "gdpr", "page": 2, "size": 50}).json()
    # One POST: one createdDate, so the stable order is by jobId within it.
    assert body["totalRecords"] == 120 and [job["jobId"] for job in body["jobDetails"]] == sorted(ids)[100:]


@pytest.mark.parametrize(
    ("maximum", "size", "status"), [(1000, 1000, 200), (1000, 1001, 400), (100, 1000, 400), (100, 100, 200)]
)
def test_size_maximum_is_a_setting_and_names_size(api, clean_emulator, maximum, size, status):
    """Docs: size up to 1000 (default); Adobe's OAS: 100. Exceeding it is a 400 naming size."""
    clean_emulator.configure(max_page_size=maximum)
    response = api.get(JOBS, params={"regulation": "gdpr", "size": size})
    assert response.status_code == status
    if status == 400:
        body = response.json()
        assert body["error_code"] == "PRVCY-1000-400"
        assert [error["field"] for error in body["errors"]] == ["size"]
        assert str(maximum) in body["errors"][0]["message"]


# -- Adobe's OAS examples (privacy-service.yaml) -----------------------------------------------------------
OAS_CREATE_EXAMPLE = {
    "companyContexts": [{"namespace": "imsOrgID", "value": "{IMS_ORG}"}],
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
            "userIDs": [
                {"namespace": "email", "value": "ajones@acme.com", "type": "standard"},
                {"namespace": "loyaltyAccount", "value": "12AD45FE30R29", "type": "integrationCode"},
            ],
        },
    ],
    "include": ["Analytics", "AudienceManager"],
    "expandIds": False,
    "priority": "normal",
    "regulation": "ccpa",
}
# The OAS's example answer (PrivacyJobCreateList), ids left out: the users' identities as Adobe echoes them.
OAS_CREATED_USERS = {
    ("user12345", "access"): [
        {
            "namespace": "email",
            "value": "ajones@acme.com",
            "type": "standard",
            "namespaceId": 6,
            "isDeletedClientSide": False,
        },
        {
            "namespace": "loyaltyAccount",
            "value": "12AD45FE30R29",
            "type": "integrationCode",
            "isDeletedClientSide": False,
        },
    ],
    ("DavidSmith", "access"): [
        {
            "namespace": "email",
            "value": "dsmith@acme.com",
            "type": "standard",
            "namespaceId": 6,
            "isDeletedClientSide": False,
        },
        {
            "namespace": "ECID",
            "value": "443636576799758681021090721276",
            "type": "standard",
            "namespaceId": 4,
            "isDeletedClientSide": False,
        },
    ],
}
OAS_CREATED_USERS[("user12345", "delete")] = OAS_CREATED_USERS[("user12345", "access")]


def test_oas_create_example_answers_as_the_oas_example(api, clean_emulator):
    body = json.loads(json.dumps(OAS_CREATE_EXAMPLE).replace("{IMS_ORG}", clean_emulator.org_id))
    response = api.post(JOBS, json=body)
    assert response.status_code == 202
    created = response.json()
    assert created["totalRecords"] == 3 and "jobs" in created
    echoed = {
        (job["customer"]["user"]["key"], job["customer"]["user"]["action"][0]): job["customer"]["user"][
            "userIDs"
        ]
        for job in created["jobs"]
    }
    assert echoed == OAS_CREATED_USERS


def test_oas_list_example_shape(api, clean_emulator):
    """PrivacyJobListResponse example: totalRecords and jobDetails of basic fields in Adobe's date format."""
    body = json.loads(json.dumps(OAS_CREATE_EXAMPLE).replace("{IMS_ORG}", clean_emulator.org_id))
    api.post(JOBS, json={**body, "expandIds": "false"})  # the OAS schema's string spelling
    clean_emulator.advance_clock(FINISHED)
    listed = api.get(JOBS, params={"regulation": "ccpa"}).json()
    assert set(listed) == {"totalRecords", "jobDetails"} and listed["totalRecords"] == 3
    for job in listed["jobDetails"]:
        assert set(job) == {
            "jobId",
            "requestId",
            "userKey",
            "action",
            "status",
            "submittedBy",
            "createdDate",
            "lastModifiedDate",
        }
        assert re.fullmatch(r"\d{2}/\d{2}/\d{4} \d{2}:\d{2} (AM|PM) GMT", job["createdDate"])
