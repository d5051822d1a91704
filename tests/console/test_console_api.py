"""The console on Airflow's own api-server app: Airflow's auth in front (401, 403), the API's answers
against an index built from the fixture archive in moto S3, and the page and navigation entry."""

from __future__ import annotations

import json

import pytest
from adobe_privacy.index_rebuild import rebuild

from tests.console.archive_fixture import SECRET_VALUES

USERS = {"admin": "admin", "viewer": "viewer", "nobody": ""}  # nobody: a login with no role, so no DAG access


@pytest.fixture(scope="module")
def airflow_app(tmp_path_factory, airflow_db):
    home = tmp_path_factory.mktemp("console-auth")
    passwords = {name: f"{name}-password" for name in USERS}
    (home / "passwords.json").write_text(json.dumps(passwords))
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", ",".join(f"{n}:{r}" for n, r in USERS.items()))
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(home / "passwords.json"))
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    client = TestClient(create_app("all"))
    tokens = {}
    for name, password in passwords.items():
        response = client.post("/auth/token", json={"username": name, "password": password})
        assert response.status_code == 201, response.text
        tokens[name] = response.json()["access_token"]
    yield client, tokens
    mp.undo()


@pytest.fixture
def console(airflow_app, archive, tmp_path, monkeypatch):
    from adobe_privacy.console import app as console_app

    store, ids = archive
    rebuild(store, cache_dir=tmp_path / "build")
    monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_ARCHIVE_URI", store.archive_uri)
    monkeypatch.setenv("PRIVACY_INDEX_CACHE_DIR", str(tmp_path / "console-cache"))
    console_app.request_index.cache_clear()
    client, tokens = airflow_app
    yield client, tokens, ids, store
    console_app.request_index.cache_clear()


def _get(client, path, token=None, **params):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.get(path, headers=headers, params=params)


@pytest.mark.parametrize("path", ["/privacy/", "/privacy/api/v1/requests/req-a1", "/privacy/api/v1/requests",
                                  "/privacy/api/v1/board", "/privacy/api/v1/requests/unknown"])
def test_unauthenticated_401_and_no_dag_access_403(console, path):
    client, tokens, _, _ = console
    assert _get(client, path).status_code == 401
    assert _get(client, path, "not-a-jwt").status_code in (401, 403)
    assert _get(client, path, tokens["nobody"]).status_code == 403
    assert _get(client, path, tokens["viewer"]).status_code in (200, 404)


def test_the_session_cookie_of_the_ui_is_accepted(console):
    client, tokens, _, _ = console
    client.cookies.set("_token", tokens["viewer"])
    try:
        assert client.get("/privacy/api/v1/requests/req-a1").status_code == 200
    finally:
        client.cookies.clear()


def test_request_status_in_the_drp_shape_with_jobs_products_and_evidence(console):
    client, tokens, ids, store = console
    body = _get(client, "/privacy/api/v1/requests/req-a1", tokens["viewer"]).json()
    assert {"request_id", "received_at", "expected_by", "status", "reason", "processing_details"} <= set(body)
    assert body["request_id"] == "req-a1" and body["status"] == "fulfilled" and body["expected_by"] == "2026-11-24"
    details = body["processing_details"]
    assert details["status"] == "complete" and details["products"] == ["aepDataLake", "profileService"]
    assert {j["job_id"] for j in details["jobs"]} == {"job-a1-acc", "job-a1-del"}
    content = next(e for e in body["evidence"] if e["kind"] == "access content")
    assert content["uri"] == store.uri(ids["content_key"]) and content["sha256"] == "a" * 64
    assert any(e["kind"] == "run report.json" for e in body["evidence"])
    assert body["runs"][0]["grid_url"].startswith("/dags/privacy_requests_nightly/runs/")
    assert not any(secret in json.dumps(body) for secret in SECRET_VALUES)

    postponed = _get(client, "/privacy/api/v1/requests/req-c1", tokens["viewer"]).json()
    assert postponed["status"] == "open" and postponed["processing_details"]["status"] == "postponed"
    assert _get(client, "/privacy/api/v1/requests/req-zz", tokens["viewer"]).status_code == 404


def test_evidence_pack_downloads_from_the_console(console):
    client, tokens, ids, store = console
    body = _get(client, "/privacy/api/v1/requests/req-a1", tokens["viewer"]).json()
    links = {e["kind"]: e["uri"] for e in body["evidence"]}
    pack = _get(client, links["evidence pack (JSON)"], tokens["viewer"])
    assert pack.status_code == 200 and "attachment" in pack.headers["content-disposition"]
    document = pack.json()
    assert document["request"]["request_id"] == "req-a1" and document["request"]["status"] == "complete"
    assert {j["job_id"] for j in document["jobs"]} == {"job-a1-acc", "job-a1-del"}
    assert any(j["content"] and j["content"]["sha256"] == "a" * 64 for j in document["jobs"])
    page = _get(client, links["evidence pack (page)"], tokens["viewer"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert not any(secret in pack.text + page.text for secret in SECRET_VALUES)
    assert _get(client, links["evidence pack (JSON)"]).status_code == 401
    assert _get(client, "/privacy/api/v1/requests/req-a1/evidence.exe", tokens["viewer"]).status_code == 404
    assert _get(client, "/privacy/api/v1/requests/req-zz/evidence.json", tokens["viewer"]).status_code == 404


def test_search_filters_and_board(console):
    client, tokens, _, _ = console
    token = tokens["viewer"]
    found = _get(client, "/privacy/api/v1/requests", token, prefix="req-a").json()
    assert [i["request_id"] for i in found["items"]] == ["req-a2", "req-a1"]
    assert [i["request_id"] for i in _get(client, "/privacy/api/v1/requests", token, regulation="ccpa").json()["items"]] \
        == ["req-c1"]
    assert [i["request_id"] for i in _get(client, "/privacy/api/v1/requests", token, action="delete",
                                          status="complete").json()["items"]] == ["req-a1"]
    board = _get(client, "/privacy/api/v1/board", token, as_of="2026-11-30").json()
    assert board["open"] == 2 and [i["request_id"] for i in board["items"]] == ["req-a2", "req-c1"]
    assert board["items"][0]["days_left"] == -11
    assert _get(client, "/privacy/api/v1/board", token, as_of="2026-11-30", regulation="lgpd_bra").json()["open"] == 0
    assert _get(client, "/privacy/api/v1/requests", token, limit=0).status_code == 422


def test_page_and_navigation_entry(console):
    client, tokens, _, _ = console
    page = _get(client, "/privacy/", tokens["viewer"])
    assert page.status_code == 200 and "Privacy requests" in page.text and 'id="search"' in page.text
    plugins = _get(client, "/api/v2/plugins", tokens["admin"]).json()["plugins"]
    ours = next(p for p in plugins if p["name"] == "adobe_privacy_console")
    assert ours["external_views"][0]["name"] == "Privacy requests"
    assert ours["fastapi_apps"][0]["url_prefix"] == "/privacy"
