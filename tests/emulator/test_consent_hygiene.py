"""POST /consent (reference 6) and the Data Hygiene record-delete jobs and quota (reference 11)."""

from __future__ import annotations

import json

import pytest

from tests.emulator.conftest import CONSENT, FINISHED, HYGIENE_JOBS, JOBS

EXAMPLE_CONSENT = {
    "optOutOfSale": True,
    "entities": [
        {"nameSpace": "email", "values": ["dsmith@acme.com", "ajones@acme.com"]},
        {"nameSpace": "ECID", "values": ["443636576799758681021090721276"]},
    ],
}


def test_consent_example_is_accepted_with_an_empty_202(api, clean_emulator):
    response = api.post(CONSENT, json=EXAMPLE_CONSENT)
    assert response.status_code == 202
    assert response.content == b""
    assert clean_emulator.stats()["consent_records"] == 1
    records = api.get(f"{clean_emulator.base_url}/_emulator/consent").json()
    assert records[0]["namespaces"] == ["email", "ECID"] and records[0]["value_count"] == 3
    assert "dsmith" not in json.dumps(records)
    assert clean_emulator.stats()["jobs_total"] == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"entities": EXAMPLE_CONSENT["entities"]}, "optOutOfSale"),
        ({"optOutOfSale": "true", "entities": EXAMPLE_CONSENT["entities"]}, "optOutOfSale"),
        ({"optOutOfSale": True}, "entities"),
        ({"optOutOfSale": True, "entities": []}, "entities"),
        ({"optOutOfSale": True, "entities": ["email"]}, "entities[0]"),
        (
            {"optOutOfSale": True, "entities": [{"nameSpace": "loyalty", "values": ["a"]}]},
            "entities[0].nameSpace",
        ),
        (
            {"optOutOfSale": True, "entities": [{"namespace": "email", "values": ["a"]}]},
            "entities[0].nameSpace",
        ),
        ({"optOutOfSale": True, "entities": [{"nameSpace": "email", "values": []}]}, "entities[0].values"),
        ({"optOutOfSale": True, "entities": [{"nameSpace": "email", "values": [1]}]}, "entities[0].values"),
        (
            {"optOutOfSale": True, "entities": [{"nameSpace": "email", "values": ["a@b.c", "a@b.c"]}]},
            "entities[0].values",
        ),
        ({**EXAMPLE_CONSENT, "requestId": 5}, "requestId"),
    ],
)
def test_consent_validation(api, clean_emulator, body, field):
    response = api.post(CONSENT, json=body)
    assert response.status_code == 400
    assert field in [error["field"] for error in response.json()["errors"]]
    assert "a@b.c" not in response.text
    assert clean_emulator.stats()["consent_records"] == 0


HYGIENE_BODY = {
    "companyContexts": [{"namespace": "imsOrgID", "value": "{ORG_ID}"}],
    "users": [
        {
            "key": "DavidSmith",
            "action": ["delete"],
            "userIDs": [{"namespace": "email", "value": "dsmith@acme.com", "type": "standard"}],
        },
        {
            "key": "user12345",
            "action": ["delete"],
            "userIDs": [{"namespace": "crmId", "value": "12AD45FE30R29", "type": "custom"}],
        },
    ],
}


@pytest.fixture
def hygiene(api, clean_emulator):
    api.headers["x-sandbox-name"] = "prod"
    body = json.loads(json.dumps(HYGIENE_BODY).replace("{ORG_ID}", clean_emulator.org_id))
    return api, body


def test_hygiene_record_delete_round_trip(hygiene, clean_emulator):
    api, body = hygiene
    created = api.post(HYGIENE_JOBS, json=body)
    assert created.status_code == 202
    payload = created.json()
    assert set(payload) == {"requestId", "totalRecords", "jobs"}
    assert payload["totalRecords"] == 2
    echoed = payload["jobs"][0]["customer"]["user"]
    assert echoed["action"] == ["delete"] and echoed["userIDs"][0]["namespaceId"] == 6
    custom = payload["jobs"][1]["customer"]["user"]["userIDs"][0]
    assert custom["type"] == "custom" and "namespaceId" not in custom  # Adobe's "Loyalty ID" shows none
    job_id = payload["jobs"][1]["jobId"]
    detail = api.get(f"{HYGIENE_JOBS}/{job_id}").json()
    assert (
        detail["status"] == "submitted" and detail["sandboxName"] == "prod" and detail["action"] == "delete"
    )
    clean_emulator.advance_clock(FINISHED)
    assert api.get(f"{HYGIENE_JOBS}/{job_id}").json()["status"] == "complete"
    listed = api.get(HYGIENE_JOBS, params={"size": 1, "page": 1}).json()
    assert listed["totalRecords"] == 2 and len(listed["jobDetails"]) == 1
    assert api.get(f"{JOBS}/{job_id}").status_code == 404  # hygiene jobs are not privacy jobs
    stats = clean_emulator.stats()
    assert stats["hygiene_jobs_total"] == 2 and stats["jobs_total"] == 0
    quota = api.get(
        "/data/core/hygiene/quota", params={"quotaType": "dailyConsumerDeleteIdentitiesQuota"}
    ).json()
    assert quota["quotas"] == [
        {
            "name": "dailyConsumerDeleteIdentitiesQuota",
            "description": quota["quotas"][0]["description"],
            "consumed": 2,
            "quota": 1_000_000,
        }
    ]
    assert len(api.get("/data/core/hygiene/quota").json()["quotas"]) == 4


@pytest.mark.parametrize(
    ("path", "value", "field"),
    [
        (("users", 0, "action"), ["access"], "users[0].action[0]"),
        (("users", 1, "userIDs", 0, "type"), "integrationCode", "users[1].userIDs[0].type"),
        (("users",), [], "users"),
        (("companyContexts",), [{"namespace": "imsOrgID", "value": "other@AdobeOrg"}], "companyContexts"),
    ],
)
def test_hygiene_validation(hygiene, path, value, field):
    api, body = hygiene
    target = body
    for part in path[:-1]:
        target = target[part]
    target[path[-1]] = value
    response = api.post(HYGIENE_JOBS, json=body)
    assert response.status_code == 400
    assert response.json()["error_code"] == "HYGN-1000-400"
    assert field in [error["field"] for error in response.json()["errors"]]


WORKORDER = "/data/core/hygiene/workorder"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", WORKORDER),
        ("GET", WORKORDER),
        ("GET", f"{WORKORDER}/DI-x"),
        ("PUT", f"{WORKORDER}/DI-x"),
    ],
)
def test_workorders_need_the_sandbox_header(api, clean_emulator, method, path):
    body = {"name": "x"} if method == "PUT" else {"displayName": "x", "action": "delete_identity"}
    response = api.request(method, path, json=body if method in ("POST", "PUT") else None)
    assert response.status_code == 400
    assert response.json() == {"error_code": "400003", "message": "Missing header"}


def test_alpha_jobs_and_quota_need_only_the_gateway_headers(api, clean_emulator):
    """The seed's alpha page lists three gateway headers; the quota page's curl sends no sandbox."""
    assert "x-sandbox-name" not in api.headers
    body = json.loads(json.dumps(HYGIENE_BODY).replace("{ORG_ID}", clean_emulator.org_id))
    created = api.post(HYGIENE_JOBS, json=body)
    assert created.status_code == 202
    job_id = created.json()["jobs"][0]["jobId"]
    detail = api.get(f"{HYGIENE_JOBS}/{job_id}")
    assert detail.status_code == 200 and "sandboxName" not in detail.json()
    assert api.get(HYGIENE_JOBS).json()["totalRecords"] == len(body["users"])
    quota = api.get("/data/core/hygiene/quota", params={"quotaType": "dailyConsumerDeleteIdentitiesQuota"})
    assert quota.status_code == 200
    assert quota.json()["quotas"][0]["consumed"] == sum(len(user["userIDs"]) for user in body["users"])


def test_hygiene_quota_type_is_validated(hygiene):
    api, _ = hygiene
    response = api.get("/data/core/hygiene/quota", params={"quotaType": "everything"})
    assert response.status_code == 400 and response.json()["error_code"] == "HYGN-1000-400"
