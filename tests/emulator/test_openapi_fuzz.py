"""The OpenAPI document describes the real surface, and malformed input never produces a 5xx."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.emulator.conftest import CONSENT, HYGIENE_JOBS, JOBS, job_request

WORKORDER = "/data/core/hygiene/workorder"

# derandomize: the examples follow a fixed seed, so a run can never pass or fail by chance.
FUZZ_SETTINGS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20)
json_values = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
FIELD_NAMES = [
    "companyContexts",
    "users",
    "include",
    "regulation",
    "expandIds",
    "priority",
    "mergePolicyId",
    "analyticsDeleteMethod",
    "region",
    "requestId",
    "optOutOfSale",
    "entities",
    "key",
    "action",
    "userIDs",
    "namespace",
    "value",
    "type",
    "isDeletedClientSide",
    "nameSpace",
    "values",
]


@st.composite
def mutated_job_requests(draw) -> object:
    """The reference example with one random field (at any depth) replaced or removed, or pure noise."""
    if draw(st.booleans()):
        return draw(json_values)
    body = job_request("EMULATED0RG00000000000000@AdobeOrg")
    target = body
    path = draw(st.sampled_from([(), ("users", 0), ("users", 1, "userIDs", 0), ("companyContexts", 0)]))
    for part in path:
        target = target[part]
    key = draw(st.sampled_from(FIELD_NAMES))
    if draw(st.booleans()):
        target.pop(key, None)
    else:
        target[key] = draw(json_values)
    return body


@pytest.fixture(scope="module")
def fuzz_client(emulator):
    emulator.reset()
    with httpx.Client(
        base_url=emulator.base_url, headers={**emulator.headers(), "x-sandbox-name": "prod"}
    ) as client:
        yield client
    emulator.reset()


@FUZZ_SETTINGS
@given(body=mutated_job_requests(), path=st.sampled_from([JOBS, HYGIENE_JOBS, CONSENT]))
def test_malformed_bodies_never_cause_a_server_error(fuzz_client, body, path):
    response = fuzz_client.post(path, content=json.dumps(body))
    assert response.status_code in (202, 400), response.text


@FUZZ_SETTINGS
@given(raw=st.binary(max_size=64))
def test_non_json_bytes_are_a_400(fuzz_client, raw):
    response = fuzz_client.post(JOBS, content=raw)
    assert response.status_code in (202, 400)


query_values = st.text(max_size=12) | st.integers(-5, 5000).map(str) | st.dates().map(str)


@FUZZ_SETTINGS
@given(
    params=st.dictionaries(
        st.sampled_from(
            ["regulation", "page", "size", "status", "fromDate", "toDate", "filterDate", "quotaType"]
        ),
        query_values,
        max_size=5,
    ),
    path=st.sampled_from(
        [JOBS, HYGIENE_JOBS, "/data/core/hygiene/quota", f"{JOBS}/not-a-job", f"{JOBS}/x/content"]
    ),
)
def test_malformed_queries_never_cause_a_server_error(fuzz_client, params, path):
    response = fuzz_client.get(path, params=params)
    assert response.status_code in (200, 400, 404), response.text


def test_openapi_document_describes_the_real_routes(emulator):
    document = httpx.get(f"{emulator.base_url}/openapi.json").json()
    paths = document["paths"]
    assert set(paths) >= {
        "/ims/token/v3",
        "/data/core/privacy/jobs",
        "/data/core/privacy/jobs/{jobId}",
        "/data/core/privacy/jobs/{jobId}/content",
        "/data/core/privacy/consent",
        "/data/core/hygiene/jobs",
        "/data/core/hygiene/jobs/{jobId}",
        "/data/core/hygiene/quota",
        "/data/core/hygiene/workorder",
        "/data/core/hygiene/workorder/{workorderId}",
        "/_emulator/stats",
        "/_emulator/faults",
    }
    create = paths["/data/core/privacy/jobs"]["post"]
    assert set(create["responses"]) >= {"202", "400", "401", "403", "429"}
    assert create["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/PrivacyJobRequest"
    )
    assert (
        "application/zip"
        in paths["/data/core/privacy/jobs/{jobId}/content"]["get"]["responses"]["200"]["content"]
    )
    assert set(paths["/data/core/privacy/consent"]["post"]["responses"]) >= {"202", "400"}
    schemas = document["components"]["schemas"]
    assert {
        "PrivacyJobRequest",
        "ConsentRequest",
        "HygieneJobRequest",
        "PrivacyJobDetail",
        "AepError",
        "WorkOrderRequest",
    } <= set(schemas)
    for path_item in paths.values():
        for operation in path_item.values():
            assert "422" not in operation["responses"]


WORKORDER_FIELDS = ["displayName", "description", "action", "datasetId", "namespacesIdentities", "identities"]
WORKORDER_VALUES = (
    json_values
    | st.sampled_from(["ALL", "0123456789abcdef01234567", "delete_identity", "delete-identity", "", "  "])
    | st.lists(
        st.fixed_dictionaries(
            {
                "namespace": st.fixed_dictionaries({"code": st.text(max_size=5)}),
                "IDs": st.lists(st.text(max_size=6), max_size=3),
            }
        ),
        max_size=3,
    )
)


@st.composite
def mutated_workorders(draw) -> object:
    """The workorder guide's body with fields replaced or removed (several at once), or pure noise."""
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)
    body: dict = {
        "displayName": "fuzz",
        "description": "fuzz order",
        "action": "delete_identity",
        "datasetId": "ALL",
        "namespacesIdentities": [{"namespace": {"code": "email"}, "IDs": ["fuzz@example.test"]}],
    }
    for _ in range(draw(st.integers(1, 3))):
        key = draw(st.sampled_from(WORKORDER_FIELDS))
        if draw(st.booleans()):
            body.pop(key, None)
        else:
            body[key] = draw(WORKORDER_VALUES)
    return body


def _text_ok(value: object, required: bool) -> bool:
    if value is None:
        return not required
    return isinstance(value, str) and len(value) <= 1024 and (bool(value.strip()) or not required)


def workorder_oracle(body: object) -> int | None:
    """The identities a valid order holds, or None when Adobe's rules (as documented) refuse it."""
    if not isinstance(body, dict) or "displayName" not in body:
        return None
    dataset = body.get("datasetId")
    if not (
        _text_ok(body["displayName"], True)
        and _text_ok(body.get("description"), False)
        and body.get("action") in ("delete_identity", "delete-identity")
        and isinstance(dataset, str)
        and (dataset == "ALL" or (len(dataset) == 24 and all(c in "0123456789abcdef" for c in dataset)))
    ):
        return None
    items = body.get("namespacesIdentities")
    if not isinstance(items, list) or not items:
        return None
    total = 0
    for item in items:
        namespace = item.get("namespace") if isinstance(item, dict) else None
        code = namespace.get("code") if isinstance(namespace, dict) else None
        ids = item.get("IDs") if isinstance(item, dict) else None
        if not (isinstance(code, str) and code.strip() and len(code) <= 256):
            return None
        if not (isinstance(ids, list) and ids and all(isinstance(v, str) and v.strip() for v in ids)):
            return None
        total += len(ids)
    return total


@FUZZ_SETTINGS
@given(body=mutated_workorders())
def test_workorder_bodies_follow_the_oracle(fuzz_client, emulator, body):
    before = emulator.stats()["workorder_identities_total"]
    response = fuzz_client.post(WORKORDER, content=json.dumps(body))
    expected = workorder_oracle(body)
    if expected is None:
        assert response.status_code == 400, response.text
        assert response.json()["error_code"] == "400 BAD REQUEST"
    else:
        assert response.status_code == 200, response.text
        assert response.json()["operationCount"] == len(body["namespacesIdentities"])
        assert emulator.stats()["workorder_identities_total"] == before + expected
