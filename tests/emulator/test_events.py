"""The emulator's I/O Events journal over HTTP: Adobe's headers, paging, seek/latest, retention and faults."""

from __future__ import annotations

import re
from collections import Counter
from datetime import datetime

import httpx
import pytest

from tests.emulator.conftest import FINISHED, JOBS, job_request, users

EVENTS = "com.adobe.platform.gdpr."
ROUTE = "GET /events/organizations/{org_id}/integrations/{credential_id}/{registration_id}"
DAY = 86400.0


@pytest.fixture
def journal(clean_emulator):
    clean_emulator._admin("POST", "/events/reset")
    yield clean_emulator
    clean_emulator._admin("POST", "/events/reset")


def journal_url(emu, registration: str = "privacy-events", client_id: str | None = None) -> str:
    return f"{emu.base_url}/events/organizations/{emu.org_id}/integrations/{client_id or emu.client_id}/{registration}"


def journal_headers(emu, token: str | None = None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token or emu.token()}", "x-api-key": emu.api_key, "x-ims-org-id": emu.org_id}


def configure_journal(emu, **changes) -> dict:
    return emu._admin("PATCH", "/events/config", json=changes)


def create_jobs(api: httpx.Client, emu, count: int, prefix: str = "subject") -> list[str]:
    body = job_request(emu.org_id, users=users(count, prefix=prefix), include=["Analytics", "profileService"])
    response = api.post(JOBS, json=body, headers=emu.headers())  # a fresh token: tests move the clock
    assert response.status_code == 202, response.text
    return [job["jobId"] for job in response.json()["jobs"]]


def read_all(emu, headers, url: str | None = None, limit: int | None = None) -> tuple[list[dict], httpx.Response]:
    """Follow next links to the end; returns every entry and the final 204."""
    entries: list[dict] = []
    with httpx.Client(headers=headers, timeout=30) as client:
        response = client.get(url or journal_url(emu), params={"limit": limit} if limit else None)
        for _ in range(500):
            if response.status_code == 204:
                return entries, response
            assert response.status_code == 200, response.text
            body = response.json()
            assert body["_page"]["count"] == len(body["events"])
            assert body["_page"]["last"] == body["events"][-1]["position"]
            entries.extend(body["events"])
            response = client.get(emu.base_url + links(response)["next"])
    raise AssertionError("journal never reached its end")


def links(response: httpx.Response) -> dict[str, str]:
    found = {}
    for value in response.headers.get_list("link"):
        match = re.match(r'<([^>]+)>; rel="(\w+)"', value)
        found[match.group(2)] = match.group(1)
    return found


def test_gateway_headers_are_checked_like_adobes_journal(journal, api):
    token = journal.token()
    url = journal_url(journal)
    gw_only = {"Authorization": f"Bearer {token}", "x-api-key": journal.api_key, "x-gw-ims-org-id": journal.org_id}
    assert httpx.get(url, headers=gw_only).json() == {"error_code": "400003", "message": "Missing header x-ims-org-id"}
    assert httpx.get(url, headers={**journal_headers(journal, token), "x-api-key": "other"}).status_code == 403
    assert httpx.get(url, headers={**journal_headers(journal, token), "Authorization": ""}).status_code == 401
    assert httpx.get(url, headers={**journal_headers(journal, token), "x-ims-org-id": "OTHER@AdobeOrg"}).status_code == 403
    assert httpx.get(journal_url(journal, "nope"), headers=journal_headers(journal, token)).status_code == 404
    assert httpx.get(url, headers=journal_headers(journal, token)).status_code == 204


def test_empty_journal_answers_204_with_retry_after_and_links(journal):
    response = httpx.get(journal_url(journal), headers=journal_headers(journal))
    assert response.status_code == 204
    assert response.headers["retry-after"] == "10"
    found = links(response)
    assert found["next"].endswith("/privacy-events") and found["validate"].endswith("/privacy-events/validate")


def test_events_in_adobes_payload_once_jobs_finish(journal, api):
    job_ids = create_jobs(api, journal, 3)
    headers = journal_headers(journal)
    assert read_all(journal, headers)[0] == []  # nothing is final yet
    journal.configure(error_rate=1.0)
    journal.advance_clock(FINISHED)

    entries, end = read_all(journal, headers, limit=2)

    assert end.status_code == 204 and since_of(links(end)["next"]) == entries[-1]["position"]
    events = [entry["event"] for entry in entries]
    assert len(events) == 3 * 3  # two products and the job, per job
    assert {event["data"]["value"]["jobId"] for event in events} == set(job_ids)
    for event in events:
        assert event["specversion"] == "0.2" and event["source"] == "https://ns.adobe.com/platform/gdpr"
        assert event["data"]["imsOrg"] == journal.org_id and event["id"] != event["event_id"]
        datetime.strptime(event["time"], "%a %b %d %H:%M:%S GMT %Y")
    fresh = journal.headers()
    statuses = {job_id: api.get(f"{JOBS}/{job_id}", headers=fresh).json()["status"] for job_id in job_ids}
    job_events = {e["data"]["value"]["jobId"]: e["type"] for e in events if e["type"].startswith(EVENTS + "job")}
    assert job_events == {job: EVENTS + ("jobcomplete" if s == "complete" else "joberror") for job, s in statuses.items()}
    assert set(statuses.values()) == {"error"}
    product_errors = Counter(e["data"]["value"]["jobId"] for e in events if e["type"] == EVENTS + "producterror")
    assert product_errors == dict.fromkeys(job_ids, 1)  # one failing product per errored job
    messages = {e["data"]["value"]["message"] for e in events if e["type"] == EVENTS + "productcomplete"}
    assert messages <= {"analytics.access.complete", "profile.access.complete"} and messages
    assert len({entry["position"] for entry in entries}) == len(entries)


def since_of(link: str) -> str:
    return httpx.URL(link).params["since"]


def test_limit_returns_exactly_that_many_and_since_is_exclusive(journal, api):
    create_jobs(api, journal, 4)
    journal.advance_clock(FINISHED)
    headers = journal_headers(journal)
    everything, _ = read_all(journal, headers)
    first = httpx.get(journal_url(journal), headers=headers, params={"limit": 5})
    assert first.json()["_page"]["count"] == 5
    assert "limit=5" in links(first)["next"]
    second = httpx.get(journal.base_url + links(first)["next"], headers=headers).json()
    assert [e["position"] for e in first.json()["events"] + second["events"]] == [e["position"] for e in everything[:10]]


def test_latest_jumps_to_the_end_and_the_next_link_gets_later_events(journal, api):
    create_jobs(api, journal, 2, prefix="early")
    journal.advance_clock(FINISHED)
    headers = journal_headers(journal)
    latest = httpx.get(journal_url(journal), headers=headers, params={"latest": "true"})
    assert latest.status_code == 204
    later = create_jobs(api, journal, 1, prefix="late")
    journal.advance_clock(FINISHED)
    entries, _ = read_all(journal, headers, url=journal.base_url + links(latest)["next"])
    assert {e["event"]["data"]["value"]["jobId"] for e in entries} == set(later)


def test_seek_goes_back_in_time_and_cannot_combine_with_since(journal, api):
    old = create_jobs(api, journal, 1, prefix="old")
    journal.advance_clock(2 * DAY)
    recent = create_jobs(api, journal, 1, prefix="recent")
    journal.advance_clock(FINISHED)
    headers = journal_headers(journal)
    entries, _ = read_all(journal, headers, url=journal_url(journal) + "?seek=-PT2H")
    assert {e["event"]["data"]["value"]["jobId"] for e in entries} == set(recent)
    entries, _ = read_all(journal, headers, url=journal_url(journal) + "?seek=-P3DT1H")
    assert {e["event"]["data"]["value"]["jobId"] for e in entries} == set(old + recent)
    position = entries[0]["position"]
    both = httpx.get(journal_url(journal), headers=headers, params={"seek": "-PT2H", "since": position})
    assert both.status_code == 400
    assert httpx.get(journal_url(journal), headers=headers, params={"seek": "PT2H"}).status_code == 400
    assert httpx.get(journal_url(journal), headers=headers, params={"since": "not-a-position"}).status_code == 400
    assert httpx.get(journal_url(journal), headers=headers, params={"limit": 0}).status_code == 400


def test_a_position_older_than_the_retention_is_gone(journal, api):
    create_jobs(api, journal, 1)
    journal.advance_clock(FINISHED)
    entries, _ = read_all(journal, journal_headers(journal))
    position = entries[0]["position"]
    journal.advance_clock(7 * DAY)
    headers = journal_headers(journal)  # the old token expired with the clock
    gone = httpx.get(journal_url(journal), headers=headers, params={"since": position})
    assert gone.status_code == 410 and gone.text == f"Events at position {position} have expired."
    assert httpx.get(journal_url(journal) + "/validate", headers=headers, params={"since": position}).status_code == 410
    oldest = httpx.get(journal_url(journal), headers=headers)
    assert oldest.status_code == 204 and "since" not in links(oldest)["next"]


def test_faults_duplicate_reorder_drop_and_expired_position(journal, api):
    configure_journal(journal, duplicate_rate=0.3, reorder=True, drop_rate=0.2)
    job_ids = create_jobs(api, journal, 12)
    journal.advance_clock(FINISHED)
    entries, _ = read_all(journal, journal_headers(journal))
    log = journal._admin("GET", "/events/log")

    ids = Counter(entry["event"]["event_id"] for entry in entries)
    dropped = {item["event_id"] for item in log["dropped"]}
    assert dropped and not dropped & set(ids)  # dropped events are never journaled
    assert any(count == 2 for count in ids.values())  # duplicate delivery: same event id, two positions
    assert len(ids) + len(dropped) == len(job_ids) * 3
    first_seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(entries):
        scope = "job" if entry["event"]["type"].startswith(EVENTS + "job") else "product"
        first_seen.setdefault((entry["event"]["data"]["value"]["jobId"], scope), index)
    # emitted in order, a job's products come before the job; delivered out of order, not always
    assert any(first_seen[(job, "job")] < first_seen.get((job, "product"), -1) for job in job_ids if (job, "job") in first_seen)

    configure_journal(journal, gone_next=1)
    headers = journal_headers(journal)
    assert httpx.get(journal_url(journal), headers=headers, params={"since": entries[0]["position"]}).status_code == 410
    assert httpx.get(journal_url(journal), headers=headers, params={"since": entries[0]["position"]}).status_code == 200


def test_registrations_are_configurable_and_filter_event_types(journal, api):
    configure_journal(journal, registrations=[
        {"id": "privacy-events"},
        {"id": "jobs-only", "event_types": [EVENTS + "jobcomplete", EVENTS + "joberror"]},
        {"id": "other-credential", "client_id": "someone-else"},
    ])
    job_ids = create_jobs(api, journal, 2)
    journal.advance_clock(FINISHED)
    headers = journal_headers(journal)
    jobs_only, _ = read_all(journal, headers, url=journal_url(journal, "jobs-only"))
    assert sorted(e["event"]["data"]["value"]["jobId"] for e in jobs_only) == sorted(job_ids)
    assert len(read_all(journal, headers)[0]) == 6
    other = httpx.get(journal_url(journal, "other-credential", client_id="someone-else"), headers=headers)
    assert other.status_code == 403  # our key is not that credential's
    assert ROUTE in journal.stats()["calls"]


def test_reset_empties_the_journal(journal, api):
    create_jobs(api, journal, 1)
    journal.advance_clock(FINISHED)
    assert read_all(journal, journal_headers(journal))[0]
    journal.reset()
    journal.configure(processing_after_seconds=60, complete_after_seconds=120)
    assert read_all(journal, journal_headers(journal))[0] == []


def test_the_journal_survives_an_emulator_restart(tmp_path):
    from privacy_emulator.testing import EmulatorServer

    with EmulatorServer(db_path=tmp_path / "state.sqlite", settings={"complete_after_seconds": 120}) as emu:
        with httpx.Client(base_url=emu.base_url, timeout=30) as api:
            create_jobs(api, emu, 2)
            emu.advance_clock(FINISHED)
            before, _ = read_all(emu, journal_headers(emu))
            create_jobs(api, emu, 1, prefix="after")
            emu.restart()
            emu.advance_clock(FINISHED)
            response = httpx.get(journal_url(emu), headers=journal_headers(emu), params={"since": before[3]["position"]})
            again, _ = read_all(emu, journal_headers(emu))
    resumed = [e["position"] for e in response.json()["events"]]
    assert resumed[:2] == [e["position"] for e in before[4:]] and len(resumed) == 2 + 3  # + the new job's
    assert [e["position"] for e in again] == [e["position"] for e in before] + resumed[2:]
