"""IMS token endpoint and the gateway checks of reference 1.3, over HTTP."""

from __future__ import annotations

import httpx
import pytest

from tests.emulator.conftest import JOBS, job_request

LIST_PARAMS = {"regulation": "gdpr"}


def token_form(server, **overrides) -> dict:
    form = {
        "grant_type": "client_credentials",
        "client_id": server.client_id,
        "client_secret": server.client_secret,
        "scope": "openid,AdobeID,read_organizations",
    }
    form.update(overrides)
    return {key: value for key, value in form.items() if value is not None}


def test_token_issued_from_form(clean_emulator):
    response = httpx.post(f"{clean_emulator.base_url}/ims/token/v3", data=token_form(clean_emulator))
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 86399
    assert len(body["access_token"]) > 40


def test_token_issued_from_query_parameters(clean_emulator):
    response = httpx.post(f"{clean_emulator.base_url}/ims/token/v3", params=token_form(clean_emulator))
    assert response.status_code == 200
    token = response.json()["access_token"]
    listed = httpx.get(
        f"{clean_emulator.base_url}{JOBS}", params=LIST_PARAMS, headers=clean_emulator.headers(token)
    )
    assert listed.status_code == 200


def test_tokens_are_unique(clean_emulator):
    assert clean_emulator.token() != clean_emulator.token()


@pytest.mark.parametrize(
    ("overrides", "status", "error"),
    [
        ({"client_secret": "wrong"}, 401, "invalid_client"),
        ({"client_id": "someone-else"}, 401, "invalid_client"),
        ({"grant_type": "password"}, 400, "unsupported_grant_type"),
        ({"grant_type": None}, 400, "unsupported_grant_type"),
        ({"client_secret": None}, 400, "invalid_request"),
        ({"scope": None}, 400, "invalid_scope"),
    ],
)
def test_token_errors(clean_emulator, overrides, status, error):
    response = httpx.post(
        f"{clean_emulator.base_url}/ims/token/v3", data=token_form(clean_emulator, **overrides)
    )
    assert response.status_code == status
    assert response.json()["error"] == error
    assert "access_token" not in response.json()


def test_token_expires_on_the_emulator_clock(clean_emulator):
    clean_emulator.configure(token_ttl_seconds=60)
    headers = clean_emulator.headers()
    url = f"{clean_emulator.base_url}{JOBS}"
    assert httpx.get(url, params=LIST_PARAMS, headers=headers).status_code == 200
    clean_emulator.advance_clock(61)
    expired = httpx.get(url, params=LIST_PARAMS, headers=headers)
    assert expired.status_code == 401
    assert expired.json() == {"error_code": "401013", "message": "Oauth token is not valid"}
    assert httpx.get(url, params=LIST_PARAMS, headers=clean_emulator.headers()).status_code == 200


def _without(headers: dict, name: str) -> dict:
    return {key: value for key, value in headers.items() if key != name}


@pytest.mark.parametrize(
    ("mutate", "status", "body"),
    [
        (
            lambda h: _without(h, "Authorization"),
            401,
            {"error_code": "403010", "message": "Oauth token is missing."},
        ),
        (
            lambda h: {**h, "Authorization": "Bearer forged"},
            401,
            {"error_code": "401013", "message": "Oauth token is not valid"},
        ),
        (
            lambda h: {**h, "Authorization": "Basic abc"},
            401,
            {"error_code": "401013", "message": "Oauth token is not valid"},
        ),
        (lambda h: _without(h, "x-api-key"), 403, {"error_code": "403000", "message": "Api Key is required"}),
        (
            lambda h: {**h, "x-api-key": "other"},
            403,
            {"error_code": "403003", "message": "Api Key is invalid"},
        ),
        (
            lambda h: _without(h, "x-gw-ims-org-id"),
            400,
            {"error_code": "400003", "message": "Missing header"},
        ),
        (
            lambda h: {**h, "x-gw-ims-org-id": "not-an-org"},
            403,
            {"error_code": "403027", "message": "User region is missing"},
        ),
        (
            lambda h: {**h, "x-gw-ims-org-id": "0THER0RG000000000000000@AdobeOrg"},
            403,
            {"error_code": "403025", "message": "Profile is not valid"},
        ),
    ],
)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_gateway_errors(clean_emulator, mutate, status, body, method):
    headers = mutate(clean_emulator.headers())
    url = f"{clean_emulator.base_url}{JOBS}"
    if method == "GET":
        response = httpx.get(url, params=LIST_PARAMS, headers=headers)
    else:
        response = httpx.post(url, json=job_request(clean_emulator.org_id), headers=headers)
    assert response.status_code == status
    assert response.json() == body
    assert clean_emulator.stats()["jobs_total"] == 0


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_post_needs_json_content_type(clean_emulator, content_type):
    headers = _without(clean_emulator.headers(), "Content-Type")
    if content_type:
        headers["Content-Type"] = content_type
    response = httpx.post(f"{clean_emulator.base_url}{JOBS}", content=b"{}", headers=headers)
    assert response.status_code == 400
    assert response.json() == {
        "type": "/placeholder/type/uri",
        "status": 400,
        "title": "BadRequestError",
        "detail": "A valid content-type must be specified",
    }


def test_content_type_with_charset_is_accepted(api, clean_emulator):
    response = api.post(
        JOBS,
        content=httpx.Request("POST", "/", json=job_request(clean_emulator.org_id)).content,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 202


def test_every_api_surface_is_behind_the_gateway(clean_emulator):
    base = clean_emulator.base_url
    for method, path in [
        ("GET", "/data/core/privacy/jobs/any"),
        ("GET", "/data/core/privacy/jobs/any/content"),
        ("POST", "/data/core/privacy/consent"),
        ("GET", "/data/core/hygiene/quota"),
        ("POST", "/data/core/hygiene/jobs"),
    ]:
        response = httpx.request(method, base + path, json={})
        assert response.status_code == 401, path
        assert response.json()["error_code"] == "403010"
