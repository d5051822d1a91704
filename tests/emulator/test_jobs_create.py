"""POST /data/core/privacy/jobs: the reference's example, fan-out, and every validation rule (2.1, 13)."""

from __future__ import annotations

import copy
import json
import re

import pytest

from tests.emulator.conftest import JOBS, job_request, users

IDENTITY_VALUES = ("dsmith@acme.com", "443636576799758681021090721276", "12AD45FE30R29")


def test_reference_example_creates_one_job_per_user_and_action(api, clean_emulator):
    response = api.post(JOBS, json=job_request(clean_emulator.org_id))
    assert response.status_code == 202
    body = response.json()
    assert body["totalRecords"] == 3
    assert body["requestStatus"] == 1
    assert re.fullmatch(r"\d{17}RX-\d{3}", body["requestId"])
    pairs = [(job["customer"]["user"]["key"], job["customer"]["user"]["action"]) for job in body["jobs"]]
    assert pairs == [("DavidSmith", ["access"]), ("user12345", ["access"]), ("user12345", ["delete"])]
    assert len({job["jobId"] for job in body["jobs"]}) == 3
    for job in body["jobs"]:
        assert re.fullmatch(r"[0-9a-f-]{36}", job["jobId"])
    email, ecid = body["jobs"][0]["customer"]["user"]["userIDs"]
    assert email == {
        "namespace": "email",
        "value": "dsmith@acme.com",
        "type": "standard",
        "namespaceId": 6,
        "isDeletedClientSide": False,
    }
    assert ecid["namespaceId"] == 4
    loyalty = body["jobs"][1]["customer"]["user"]["userIDs"][0]
    assert loyalty["type"] == "integrationCode" and "namespaceId" not in loyalty  # none invented
    stats = clean_emulator.stats()
    assert stats["jobs_total"] == 3
    assert stats["jobs_per_user_action"] == {
        "DavidSmith|access": 1,
        "user12345|access": 1,
        "user12345|delete": 1,
    }
    assert stats["calls"]["POST /data/core/privacy/jobs"] == {"202": 1}


def test_optional_fields_and_client_request_id_are_accepted(api, clean_emulator):
    body = job_request(
        clean_emulator.org_id,
        expandIds="true",
        priority="low",
        analyticsDeleteMethod="purge",
        region="nld2",
        requestId="my-request-1",
        mergePolicyId="policy-a",
    )
    response = api.post(JOBS, json=body)
    assert response.status_code == 202
    assert response.json()["requestId"] == "my-request-1"


def test_thousand_users_are_accepted(api, clean_emulator):
    body = job_request(clean_emulator.org_id, users=users(1000))
    response = api.post(JOBS, json=body)
    assert response.status_code == 202
    assert response.json()["totalRecords"] == 1000


def test_resubmitting_creates_new_jobs_and_stats_count_duplicates(api, clean_emulator):
    body = job_request(clean_emulator.org_id)
    first = api.post(JOBS, json=body).json()
    second = api.post(JOBS, json=body).json()
    assert {job["jobId"] for job in first["jobs"]}.isdisjoint(job["jobId"] for job in second["jobs"])
    stats = clean_emulator.stats()
    assert stats["duplicate_user_actions"] == 3
    assert stats["jobs_per_user_action"]["user12345|delete"] == 2


def test_unknown_and_legacy_regulation_are_rejected_unless_mapping_is_enabled(api, clean_emulator):
    legacy = api.post(JOBS, json=job_request(clean_emulator.org_id, regulation="ucpa_usa"))
    assert legacy.status_code == 400
    assert "'ucpa_ut_usa'" in legacy.json()["detail"]
    unknown = api.post(JOBS, json=job_request(clean_emulator.org_id, regulation="nope"))
    assert unknown.status_code == 400
    assert "gdpr" in unknown.json()["detail"] and "vcdpa_va_usa" in unknown.json()["detail"]
    clean_emulator.configure(accept_legacy_regulations=True)
    mapped = api.post(JOBS, json=job_request(clean_emulator.org_id, regulation="ucpa_usa"))
    assert mapped.status_code == 202
    job_id = mapped.json()["jobs"][0]["jobId"]
    assert api.get(f"{JOBS}/{job_id}").json()["regulation"] == "ucpa_ut_usa"


def _set(path: str, value):
    """A mutation of the example body: set (or with value=DELETE, remove) the item at a dotted path."""

    def mutate(body: dict) -> dict:
        parts = re.findall(r"[^.\[\]]+", path)
        target = body
        for part in parts[:-1]:
            target = target[int(part)] if part.isdigit() else target[part]
        last = int(parts[-1]) if parts[-1].isdigit() else parts[-1]
        if value is DELETE:
            del target[last]
        else:
            target[last] = value
        return body

    return mutate


DELETE = object()
TEN_IDS = [{"namespace": "email", "value": f"x{i}@example.com", "type": "standard"} for i in range(10)]

INVALID_CASES = [
    ("body not an object", lambda body: [body], ""),
    ("companyContexts missing", _set("companyContexts", DELETE), "companyContexts"),
    ("companyContexts empty", _set("companyContexts", []), "companyContexts"),
    (
        "companyContexts without imsOrgID",
        _set("companyContexts", [{"namespace": "Campaign", "value": "acct"}]),
        "companyContexts",
    ),
    ("imsOrgID of another org", _set("companyContexts[0].value", "0THER@AdobeOrg"), "companyContexts"),
    ("companyContexts item malformed", _set("companyContexts[0]", "imsOrgID"), "companyContexts[0]"),
    ("users missing", _set("users", DELETE), "users"),
    ("users empty", _set("users", []), "users"),
    ("users over 1000", _set("users", users(1001)), "users"),
    ("user not an object", _set("users[1]", "user12345"), "users[1]"),
    ("key missing", _set("users[1].key", DELETE), "users[1].key"),
    ("key empty", _set("users[1].key", "  "), "users[1].key"),
    ("action missing", _set("users[0].action", DELETE), "users[0].action"),
    ("action empty", _set("users[0].action", []), "users[0].action"),
    ("action unknown", _set("users[1].action[1]", "erase"), "users[1].action[1]"),
    ("action duplicated", _set("users[1].action", ["access", "access"]), "users[1].action[1]"),
    ("opt-out-of-sale as action", _set("users[0].action", ["opt-out-of-sale"]), "users[0].action[0]"),
    ("userIDs missing", _set("users[0].userIDs", DELETE), "users[0].userIDs"),
    ("userIDs empty", _set("users[0].userIDs", []), "users[0].userIDs"),
    ("userIDs over 9", _set("users[0].userIDs", TEN_IDS), "users[0].userIDs"),
    ("namespace missing", _set("users[0].userIDs[1].namespace", DELETE), "users[0].userIDs[1].namespace"),
    ("value missing", _set("users[0].userIDs[0].value", DELETE), "users[0].userIDs[0].value"),
    ("value not a string", _set("users[0].userIDs[0].value", 42), "users[0].userIDs[0].value"),
    ("type missing", _set("users[0].userIDs[0].type", DELETE), "users[0].userIDs[0].type"),
    ("type unknown", _set("users[1].userIDs[0].type", "foo"), "users[1].userIDs[0].type"),
    (
        "namespaceId type with text",
        _set("users[0].userIDs[0].type", "namespaceId"),
        "users[0].userIDs[0].namespace",
    ),
    (
        "isDeletedClientSide not bool",
        _set("users[0].userIDs[1].isDeletedClientSide", "no"),
        "users[0].userIDs[1].isDeletedClientSide",
    ),
    ("include missing", _set("include", DELETE), "include"),
    ("include empty", _set("include", []), "include"),
    ("include unknown product", _set("include[1]", "Photoshop"), "include[1]"),
    ("include duplicate", _set("include", ["Analytics", "analytics"]), "include[1]"),
    ("regulation missing", _set("regulation", DELETE), "regulation"),
    ("regulation unknown", _set("regulation", "gdpr2"), "regulation"),
    ("regulation legacy", _set("regulation", "cpra_usa"), "regulation"),
    ("regulation wrong case", _set("regulation", "GDPR"), "regulation"),
    ("expandIds not boolean", _set("expandIds", "yes"), "expandIds"),
    ("priority unknown", _set("priority", "urgent"), "priority"),
    ("analyticsDeleteMethod unknown", _set("analyticsDeleteMethod", "shred"), "analyticsDeleteMethod"),
    ("mergePolicyId boolean", _set("mergePolicyId", True), "mergePolicyId"),
    ("requestId empty", _set("requestId", ""), "requestId"),
]


@pytest.mark.parametrize(
    ("mutate", "field"), [case[1:] for case in INVALID_CASES], ids=[case[0] for case in INVALID_CASES]
)
def test_invalid_requests_are_rejected_with_the_field_named(api, clean_emulator, mutate, field):
    body = mutate(job_request(clean_emulator.org_id))
    response = api.post(JOBS, json=body)
    assert response.status_code == 400
    error = response.json()
    assert error["type"] == "http://ns.adobe.com/aep/errors/PRVCY-1000-400"
    assert error["error_code"] == "PRVCY-1000-400"
    assert error["title"] == "Formatting error"
    assert error["status"] == 400
    assert field in [item["field"] for item in error["errors"]]
    assert error["detail"].startswith(f"{error['errors'][0]['field']}: ") or not error["errors"][0]["field"]
    text = json.dumps(error)
    for value in IDENTITY_VALUES:
        assert value not in text
    assert "DavidSmith" not in text and "user12345" not in text
    assert clean_emulator.stats()["jobs_total"] == 0


def test_type_error_message_names_the_bad_code_and_the_choices(api, clean_emulator):
    body = job_request(clean_emulator.org_id)
    body["users"][1]["userIDs"][0]["type"] = "foo"
    error = api.post(JOBS, json=body).json()
    assert error["detail"] == (
        "users[1].userIDs[0].type: 'foo' is not one of standard, custom, integrationCode, namespaceId, "
        "unregistered, analytics, target"
    )


def test_identity_typed_into_an_enum_field_is_not_echoed(api, clean_emulator):
    body = job_request(clean_emulator.org_id)
    body["users"][0]["userIDs"][0]["type"] = "dsmith@acme.com"
    error = api.post(JOBS, json=body).json()
    assert "dsmith@acme.com" not in json.dumps(error)
    assert "the given value" in error["detail"]


def test_every_problem_is_reported(api, clean_emulator):
    body = job_request(clean_emulator.org_id)
    body["users"][0]["userIDs"][0]["type"] = "foo"
    body["users"][1]["action"] = ["erase"]
    del body["include"]
    fields = [item["field"] for item in api.post(JOBS, json=body).json()["errors"]]
    assert fields == ["users[0].userIDs[0].type", "users[1].action[0]", "include"]


def test_invalid_json_is_a_formatting_error(api):
    response = api.post(JOBS, content=b"{not json")
    assert response.status_code == 400
    assert response.json()["error_code"] == "PRVCY-1000-400"


@pytest.mark.parametrize(
    "id_type", ["standard", "custom", "integrationCode", "unregistered", "analytics", "target"]
)
def test_all_type_qualifiers_are_accepted(api, clean_emulator, id_type):
    body = job_request(clean_emulator.org_id)
    body["users"][1]["userIDs"][0]["type"] = id_type
    created = api.post(JOBS, json=body)
    assert created.status_code == 202
    echoed = created.json()["jobs"][1]["customer"]["user"]["userIDs"][0]
    # Adobe's examples show a namespaceId only for standard namespaces (and the numeric namespaceId type).
    assert ("namespaceId" in echoed) == (id_type == "standard" and echoed["namespace"] in ("email", "ECID"))


def test_numeric_namespace_id_type(api, clean_emulator):
    body = job_request(clean_emulator.org_id)
    body["users"][1]["userIDs"] = [{"namespace": "411", "value": "abc", "type": "namespaceId"}]
    created = api.post(JOBS, json=body)
    assert created.status_code == 202
    assert created.json()["jobs"][1]["customer"]["user"]["userIDs"][0]["namespaceId"] == 411


def test_legacy_example_body_without_optional_fields(api, clean_emulator):
    body = copy.deepcopy(job_request(clean_emulator.org_id))
    for optional in ("expandIds", "priority", "mergePolicyId"):
        del body[optional]
    assert api.post(JOBS, json=body).status_code == 202
