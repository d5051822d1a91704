"""The events trigger at Adobe's cap: 20,000 jobs go by the wait's ledger key, and its event stays small.

The wait's state and the recorded journal live in moto's S3 over HTTP; the trigger runs for real.
"""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime

import pytest
from adobe_privacy.event_triggers import PrivacyJournalEventsTrigger
from adobe_privacy.events import S3JournalStore
from adobe_privacy.storage import PrivacyArchiveStore
from adobe_privacy.triggers import MAX_EVENT_JOB_IDS, MAX_INLINE_JOB_IDS
from privacy_pipeline.events import EventKeys, JobEvent, JournalRecord, WaitState

BUCKET = "privacy-events-bounds"
JOBS = 20_000


@pytest.fixture
def store(s3_server, airflow_connections, monkeypatch, request):
    import boto3

    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    if BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=BUCKET)
    archive = PrivacyArchiveStore(f"s3://{BUCKET}/{request.node.name}")
    return S3JournalStore(archive, EventKeys(archive.prefix))


def final(job: str, n: int) -> JobEvent:
    return JobEvent(event_id=f"e-{n}", type="com.adobe.platform.gdpr.jobcomplete", job_id=job, scope="job",
                    outcome="complete", message=None, time=None, position=f"p{n}")


async def first_event(trigger: PrivacyJournalEventsTrigger) -> dict:
    generator = trigger.run()
    try:
        return (await asyncio.wait_for(generator.asend(None), 120)).payload
    finally:
        await generator.aclose()


def test_twenty_thousand_jobs_wait_by_reference_and_the_event_stays_small(store):
    jobs = [f"{i:08d}-0000-4000-8000-000000000000" for i in range(JOBS)]
    now = time.time()
    state = WaitState(open=dict.fromkeys(jobs, "gdpr"), fallback_at=dict.fromkeys(jobs, now + 3600), settled={},
                      since_seq=0, end_at=now + 7200)
    key = store.keys.wait("privacy_requests_nightly/run/wait_for_jobs/0001")
    store.archive.put_json(key, state.to_json())
    recorded = datetime.now(UTC).isoformat()
    for seq, start in enumerate(range(0, JOBS, 1000), start=1):  # every job's final event, in 20 records
        store.put_record(JournalRecord(seq=seq, since=None, last=f"p{start}", recorded_at=recorded,
                                       events=tuple(final(job, start + i) for i, job in enumerate(jobs[start:start + 1000]))))

    trigger = PrivacyJournalEventsTrigger(job_ids=None, wait_key=key, archive_uri=store.archive.archive_uri,
                                          poll_interval=0.05)
    _, kwargs = trigger.serialize()
    assert len(json.dumps(kwargs)) < 1000

    event = asyncio.run(first_event(trigger))

    assert event["status"] == "events" and event["complete_job_count"] == JOBS and event["last_seq"] == 20
    assert len(event["complete_job_ids"]) == MAX_EVENT_JOB_IDS and event["wait_key"] == key
    assert len(json.dumps(event)) < 10_000  # vs ~760 KB with every id


def test_inline_ids_are_capped_and_a_missing_state_is_an_error_event(store):
    with pytest.raises(ValueError, match="wait_key"):
        PrivacyJournalEventsTrigger(job_ids=[str(i) for i in range(MAX_INLINE_JOB_IDS + 1)], archive_uri="s3://b/p",
                                    fallback_at=datetime.now(UTC).isoformat())
    with pytest.raises(ValueError, match="either"):
        PrivacyJournalEventsTrigger(job_ids=["a"], archive_uri="s3://b/p")
    gone = PrivacyJournalEventsTrigger(job_ids=None, wait_key=store.keys.wait("nothing"),
                                       archive_uri=store.archive.archive_uri, poll_interval=0.05)
    event = asyncio.run(first_event(gone))
    assert event["status"] == "error" and "state" in event["message"]


def test_a_triggerer_restart_mid_wait_resumes_from_the_ledger(store):
    """The trigger keeps nothing of its own: a new instance from its serialized kwargs decides the same."""
    jobs = ["job-a", "job-b"]
    now = time.time()
    state = WaitState(open=dict.fromkeys(jobs, "gdpr"), fallback_at=dict.fromkeys(jobs, now + 3600), settled={},
                      since_seq=0, end_at=now + 7200)
    key = store.keys.wait("restart/0001")
    store.archive.put_json(key, state.to_json())
    recorded = datetime.now(UTC).isoformat()
    store.put_record(JournalRecord(seq=1, since=None, last="p1", recorded_at=recorded, events=(final("job-a", 1),)))
    trigger = PrivacyJournalEventsTrigger(job_ids=None, wait_key=key, archive_uri=store.archive.archive_uri,
                                          poll_interval=0.05)

    async def run_then_stop() -> None:  # the triggerer dies while job-b has no event yet
        generator = trigger.run()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(generator.asend(None), 0.5)
        await generator.aclose()

    asyncio.run(run_then_stop())
    store.put_record(JournalRecord(seq=2, since="p1", last="p2", recorded_at=recorded,
                                   events=(final("job-a", 1), final("job-b", 2))))  # job-a's event again
    classpath, kwargs = trigger.serialize()
    event = asyncio.run(first_event(PrivacyJournalEventsTrigger(**kwargs)))

    assert event["status"] == "events" and event["complete_job_ids"] == jobs and event["last_seq"] == 2
