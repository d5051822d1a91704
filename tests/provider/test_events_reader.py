"""The journal reader, the recorded journal (moto S3 over HTTP) and the wait trigger, against the emulator.

Every test reads the emulator's journal over real HTTP and records into moto's S3 over real HTTP; the
emulator's own log of dropped events and Adobe's list endpoint are the oracles.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest
from adobe_privacy.event_triggers import PrivacyJournalEventsTrigger, PrivacyJournalWatchTrigger
from adobe_privacy.events import JournalRecorder, PrivacyJournalReader, S3JournalStore, record_journal
from adobe_privacy.exceptions import PrivacyServiceError, UrlRefusedError
from adobe_privacy.storage import PrivacyArchiveStore
from privacy_pipeline.errors import ConfigurationError
from privacy_pipeline.events import (
    EventKeys,
    JobEvent,
    MalformedEvent,
    format_seek,
    parse_journal_entry,
    parse_link_header,
    route_events,
)

from tests.provider.helpers import REGULATION, SleepRecorder, calls, make_payload

BUCKET = "privacy-events-tests"
DAY = 86400.0
FINISHED = 200.0
JOURNAL_ROUTE = "GET /events/organizations/{org_id}/integrations/{credential_id}/{registration_id}"
PAST = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
FUTURE = (datetime.now(UTC) + timedelta(days=30)).isoformat()


class Journal:
    """One test's journal: the emulator, a connection with ``journal_url``, and a fresh S3 prefix."""

    def __init__(self, emu, conn_id: str, prefix: str) -> None:
        self.emu = emu
        self.conn_id = conn_id
        self.archive_uri = f"s3://{BUCKET}/{prefix}"
        self.sleeps = SleepRecorder()

    def configure(self, **changes) -> None:
        self.emu._admin("PATCH", "/events/config", json=changes)

    def store(self) -> S3JournalStore:
        archive = PrivacyArchiveStore(self.archive_uri)
        return S3JournalStore(archive, EventKeys(archive.prefix))

    def recorder(self, page_limit: int = 1000, store: S3JournalStore | None = None) -> JournalRecorder:
        async def no_wait(seconds: float) -> None:
            self.sleeps(seconds)

        reader = PrivacyJournalReader(self.conn_id, page_limit=page_limit, sleep=no_wait)
        return JournalRecorder(reader, store or self.store())

    def record(self, **kwargs) -> dict:
        max_pages = kwargs.pop("max_pages", 1000)
        return asyncio.run(self.recorder(**kwargs).record(max_pages=max_pages)).as_dict()

    def recorded_events(self) -> list[JobEvent]:
        store = self.store()
        return [event for seq in store.record_seqs() for event in store.get_record(seq).events]

    def records(self) -> list:
        store = self.store()
        return [store.get_record(seq) for seq in store.record_seqs()]

    def dropped(self) -> list[dict]:
        return self.emu._admin("GET", "/events/log")["dropped"]

    def submit(self, hook, keys: list[str]) -> list[str]:
        return [job.job_id for job in hook.create_jobs(make_payload(self.emu.org_id, keys))]


@pytest.fixture(scope="module")
def bucket(s3_server):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    if BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def journal(request, emu, bucket, connection_with, monkeypatch):
    emu._admin("POST", "/events/reset")
    emu.configure(processing_after_seconds=60, complete_after_seconds=120)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    url = f"{emu.base_url}/events/organizations/{emu.org_id}/integrations/{emu.client_id}/privacy-events"
    prefix = "events-" + re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")
    yield Journal(emu, connection_with(journal_url=url), prefix)
    emu._admin("POST", "/events/reset")


def statuses(hook, job_ids: list[str]) -> dict[str, str]:
    """Adobe's answer (the list endpoint), the truth events are checked against."""
    wanted = set(job_ids)
    now = datetime.fromtimestamp(hook_emulator_now(hook), tz=UTC)
    jobs = hook.iter_jobs(REGULATION, from_date=(now - timedelta(days=29)).date(), to_date=now.date())
    return {job["jobId"]: job["status"] for job in jobs if job["jobId"] in wanted}


def hook_emulator_now(hook) -> float:
    import httpx

    return httpx.get(f"{hook.settings.api_base_url}/_emulator/clock").json()["now"]


async def first_event(trigger: PrivacyJournalEventsTrigger, timeout: float = 30) -> dict:
    generator = trigger.run()
    try:
        return (await asyncio.wait_for(generator.asend(None), timeout)).payload
    finally:
        await generator.aclose()


def wait_trigger(journal: Journal, job_ids: list[str], **kwargs) -> PrivacyJournalEventsTrigger:
    return PrivacyJournalEventsTrigger(
        job_ids=job_ids, archive_uri=journal.archive_uri, fallback_at=kwargs.pop("fallback_at", FUTURE),
        poll_interval=kwargs.pop("poll_interval", 0.05), **kwargs,
    )


# -- pure pieces ----------------------------------------------------------------------------------------
def test_link_headers_seek_values_and_malformed_entries():
    assert parse_link_header(['</a?since=x:1>; rel="next"', '</a/validate?since=x:1>; rel="validate"']) == {
        "next": "/a?since=x:1", "validate": "/a/validate?since=x:1"}
    assert parse_link_header(['</a>; rel="next", </b>; rel="validate"']) == {"next": "/a", "validate": "/b"}
    assert format_seek(7200) == "-PT2H" and format_seek(6 * DAY + 23 * 3600) == "-P6DT23H"
    assert parse_journal_entry({"position": "p", "event": {"type": "com.other.thing"}}) is None
    for bad in ({}, {"position": "p"}, {"position": "p", "event": {"type": "com.adobe.platform.gdpr.jobcomplete"}},
                {"position": "p", "event": {"type": "com.adobe.platform.gdpr.jobcomplete", "id": "e", "data": {}}}):
        with pytest.raises(MalformedEvent):
            parse_journal_entry(bad)


def test_trigger_serialization_round_trips():
    trigger = PrivacyJournalEventsTrigger(
        job_ids=["a", "b"], archive_uri="s3://bucket/root", fallback_at=FUTURE,
        fallback_at_by_job={"a": PAST}, since_seq=7, registration_id="reg", aws_conn_id="aws", poll_interval=30,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "adobe_privacy.event_triggers.PrivacyJournalEventsTrigger"
    assert PrivacyJournalEventsTrigger(**kwargs).serialize() == (classpath, kwargs)


def test_a_connection_without_journal_url_is_a_configuration_error(emu, connection_with):
    reader = PrivacyJournalReader(connection_with())
    with pytest.raises(ConfigurationError, match="journal_url"):
        asyncio.run(reader.connection())
    insecure = PrivacyJournalReader(connection_with(journal_url="http://events.example.com/events/x"))
    with pytest.raises(PrivacyServiceError, match="https"):
        asyncio.run(insecure.connection())


# -- recording ------------------------------------------------------------------------------------------
def test_records_every_event_once_despite_duplicates_and_reordering(journal, hook):
    journal.configure(duplicate_rate=0.4, reorder=True)
    job_ids = journal.submit(hook, [f"dup-{i}" for i in range(10)])
    journal.emu.advance_clock(FINISHED)

    summary = journal.record(page_limit=7)

    events = journal.recorded_events()
    assert summary["duplicates"] > 0 and summary["at_end"]
    assert len(events) == len({event.event_id for event in events}) == 10 * 3
    finals = {event.job_id: event.outcome for event in events if event.is_final}
    assert finals == statuses(hook, job_ids)  # the hint agrees with Adobe's answer
    assert journal.record()["events"] == 0  # nothing new: one 204, no record
    assert calls(journal.emu, JOURNAL_ROUTE)["204"] == 2


def test_a_dropped_event_is_found_by_the_fallback_and_settled_by_the_list(journal, hook):
    journal.configure(drop_rate=0.25)
    job_ids = journal.submit(hook, [f"drop-{i}" for i in range(12)])
    journal.emu.advance_clock(FINISHED)
    journal.record()
    dropped_jobs = {item["job_id"] for item in journal.dropped() if item["type"].endswith("jobcomplete")}
    assert dropped_jobs  # the seeded fault dropped at least one job-level event

    with pytest.raises(TimeoutError):  # before the fallback time the wait does not give up on them
        asyncio.run(first_event(wait_trigger(journal, job_ids, fallback_at=FUTURE), timeout=1.0))
    event = asyncio.run(first_event(wait_trigger(journal, job_ids, fallback_at=PAST)))

    assert event["status"] == "fallback"
    assert set(event["timed_out_job_ids"]) == dropped_jobs
    assert set(event["complete_job_ids"]) == set(job_ids) - dropped_jobs
    assert set(statuses(hook, event["timed_out_job_ids"]).values()) == {"complete"}  # the list settles them


def test_the_trigger_keeps_waiting_until_events_are_recorded(journal, hook):
    job_ids = journal.submit(hook, ["late-0", "late-1"])

    async def scenario() -> dict:
        task = asyncio.ensure_future(first_event(wait_trigger(journal, job_ids)))
        await asyncio.sleep(0.5)
        assert not task.done()  # no event recorded yet, fallback far away: it waits
        journal.emu.advance_clock(FINISHED)
        await journal.recorder().record()
        return await task

    event = asyncio.run(scenario())
    assert event["status"] == "events" and sorted(event["complete_job_ids"]) == sorted(job_ids)
    assert event["timed_out_job_ids"] == [] and event["last_seq"] >= 1


def test_per_job_fallback_names_only_the_due_jobs(journal, hook):
    job_ids = journal.submit(hook, ["slow-0", "slow-1", "slow-2"])  # never finish during this test
    event = asyncio.run(first_event(wait_trigger(journal, job_ids, fallback_at_by_job={job_ids[0]: PAST})))
    assert event["status"] == "fallback"
    assert event["timed_out_job_ids"] == [job_ids[0]]
    assert sorted(event["pending_job_ids"]) == sorted(job_ids[1:])


def test_an_expired_position_is_recovered_with_seek_and_the_gap_sends_open_jobs_to_the_list(journal, hook):
    first = journal.submit(hook, ["gap-a0", "gap-a1"])
    journal.emu.advance_clock(FINISHED)
    journal.record()
    lost = journal.submit(hook, ["gap-lost"])  # finishes, then expires before anyone reads it
    journal.emu.advance_clock(7 * DAY + 3600)
    later = journal.submit(hook, ["gap-b0"])
    journal.emu.advance_clock(FINISHED)
    seq_before = journal.store().read_position()[0].seq

    summary = journal.record()

    assert summary["gaps"] == 1
    gap_record = journal.records()[seq_before]
    assert gap_record.gap.reason == "expired" and gap_record.gap.resumed_with == "seek=-P6DT23H"
    assert {event.job_id for event in gap_record.events if event.is_final} == set(later)
    event = asyncio.run(first_event(wait_trigger(journal, first + lost + later)))
    assert event["status"] == "gap"
    assert event["timed_out_job_ids"] == lost  # its events expired unread: the list must settle it
    assert sorted(event["complete_job_ids"]) == sorted(first + later)
    assert set(statuses(hook, lost).values()) == {"complete"}  # the list endpoint settles the lost window
    assert 410 in [int(code) for code in calls(journal.emu, JOURNAL_ROUTE)]


def test_a_new_recorder_resumes_from_the_stored_position(journal, hook):
    job_ids = journal.submit(hook, [f"restart-{i}" for i in range(8)])
    journal.emu.advance_clock(FINISHED)
    assert journal.record(page_limit=5, max_pages=2)["events"] == 10  # "killed" after two pages

    journal.record(page_limit=5)  # a new reader and recorder, as after a triggerer restart

    events = journal.recorded_events()
    assert len(events) == len({event.event_id for event in events}) == 8 * 3
    assert [record.seq for record in journal.records()] == list(range(1, 6))
    assert {event.job_id for event in events if event.is_final} == set(job_ids)


def test_a_crash_between_record_and_position_is_rolled_forward(journal, hook):
    journal.submit(hook, [f"crash-{i}" for i in range(4)])
    journal.emu.advance_clock(FINISHED)

    class CrashAfterRecord(S3JournalStore):
        def write_position(self, position, etag):
            raise RuntimeError("killed before the position was written")

    with pytest.raises(RuntimeError):
        journal.record(page_limit=5, store=CrashAfterRecord(journal.store().archive, journal.store().keys))
    assert journal.store().read_position()[0].seq == 0 and len(journal.records()) == 1

    journal.record(page_limit=5)

    events = journal.recorded_events()
    assert len(events) == len({event.event_id for event in events}) == 4 * 3
    assert journal.store().read_position()[0].seq == len(journal.records())


def test_two_recorders_racing_never_lose_or_double_a_record(journal, hook):
    journal.submit(hook, [f"race-{i}" for i in range(10)])
    journal.emu.advance_clock(FINISHED)

    async def race() -> None:
        await asyncio.gather(journal.recorder(page_limit=3).record(), journal.recorder(page_limit=3).record())

    asyncio.run(race())
    events = journal.recorded_events()
    assert len({event.event_id for event in events}) == 10 * 3
    assert [record.seq for record in journal.records()] == list(range(1, len(journal.records()) + 1))
    for earlier, later in zip(journal.records(), journal.records()[1:], strict=False):
        assert later.since == earlier.last  # one chain: no record skips or repeats a page


def test_events_of_jobs_we_do_not_know_are_recorded_and_ignored_by_the_wait(journal, hook):
    ours = journal.submit(hook, ["ours-0"])
    theirs = journal.submit(hook, ["theirs-0", "theirs-1"])  # another run, another DAG
    journal.emu.advance_clock(FINISHED)
    journal.record()

    event = asyncio.run(first_event(wait_trigger(journal, ours)))

    assert event["status"] == "events" and event["complete_job_ids"] == ours
    routed, unknown = route_events(journal.recorded_events(), {ours[0]: "subject-ours"})
    assert {e.job_id for e in routed["subject-ours"]} == set(ours)
    assert {e.job_id for e in unknown} == set(theirs)  # kept, not lost


def test_transient_failures_are_retried_and_the_token_stays_on_the_journal_host(journal, hook):
    journal.submit(hook, ["retry-0"])
    journal.emu.advance_clock(FINISHED)
    journal.emu.add_fault(route=JOURNAL_ROUTE, kind="5xx", times=2)
    summary = journal.record()
    assert summary["events"] == 3
    assert calls(journal.emu, JOURNAL_ROUTE)["503"] == 2 and len(journal.sleeps.waits) >= 2

    async def follow_foreign_link() -> None:
        reader = PrivacyJournalReader(journal.conn_id)
        await reader.connection()
        async with reader.session() as http:
            await reader.fetch(http, "http://127.0.0.2:1/events/elsewhere")

    with pytest.raises(UrlRefusedError, match="not the configured journal host"):
        asyncio.run(follow_foreign_link())


def test_429_retry_after_is_honoured(journal, hook):
    journal.emu.add_fault(route=JOURNAL_ROUTE, kind="429", times=1, retry_after=7)
    journal.record()
    assert 7 in journal.sleeps.waits


def test_the_watch_trigger_fires_on_events_past_the_recorded_position_and_rearms_after_recording(journal, hook):
    watch = PrivacyJournalWatchTrigger(
        archive_uri=journal.archive_uri, adobe_privacy_conn_id=journal.conn_id, interval=0.05, rearm_after=3600,
    )
    assert PrivacyJournalWatchTrigger(**watch.serialize()[1]).serialize() == watch.serialize()
    journal.configure(retry_after_seconds=0)  # the watch never peeks sooner than the journal's retry-after
    journal.submit(hook, ["watch-0"])

    async def scenario() -> list[dict]:
        fired = []
        generator = watch.run()
        first = asyncio.ensure_future(generator.asend(None))
        await asyncio.sleep(0.5)
        assert not first.done()  # nothing finished: the journal answers 204 and the watch stays quiet
        journal.emu.advance_clock(FINISHED)
        fired.append((await asyncio.wait_for(first, 20)).payload)
        second = asyncio.ensure_future(generator.asend(None))
        await asyncio.sleep(0.5)
        assert not second.done()  # fired once; quiet until the recorder moves the position
        await journal.recorder().record()
        journal.submit(hook, ["watch-1"])
        journal.emu.advance_clock(FINISHED)
        fired.append((await asyncio.wait_for(second, 20)).payload)
        await generator.aclose()
        return fired

    fired = asyncio.run(scenario())
    assert fired[0] == {"status": "new_events", "recorded_seq": 0}
    assert fired[1]["status"] == "new_events" and fired[1]["recorded_seq"] >= 1


def test_record_journal_writes_encrypted_objects_and_no_identity_values(journal, hook, bucket):
    journal.submit(hook, ["sse-0"])
    journal.emu.advance_clock(FINISHED)

    summary = record_journal(journal.archive_uri, adobe_privacy_conn_id=journal.conn_id)

    assert summary["events"] == 3 and summary["at_end"]
    keys = [journal.store().keys.position] + [journal.store().keys.record(seq) for seq in journal.store().record_seqs()]
    for key in keys:
        head = bucket.head_object(Bucket=BUCKET, Key=key)
        assert head["ServerSideEncryption"] == "AES256"
        body = bucket.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()
        assert "sse-0" not in body and "@example.test" not in body  # job ids only, never subjects
