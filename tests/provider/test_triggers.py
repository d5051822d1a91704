"""PrivacyJobsTrigger: serialisation round-trip and each event, driven against the emulator."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from adobe_privacy.hooks import PrivacyServiceAsyncHook
from adobe_privacy.triggers import PrivacyJobsTrigger
from airflow.triggers.base import TriggerEvent

from tests.provider.helpers import JOBS_ROUTE, REGULATION, calls, make_payload

TODAY = datetime.now(UTC).date().isoformat()


def make_trigger(jobs_by_regulation, **kwargs) -> PrivacyJobsTrigger:
    return PrivacyJobsTrigger(
        jobs_by_regulation=jobs_by_regulation,
        from_date=TODAY,
        to_date=TODAY,
        poll_interval=kwargs.pop("poll_interval", 0.05),
        max_poll_interval=kwargs.pop("max_poll_interval", 0.1),
        **kwargs,
    )


async def first_event(trigger: PrivacyJobsTrigger, timeout: float = 20) -> TriggerEvent:
    generator = trigger.run()
    try:
        return await asyncio.wait_for(generator.asend(None), timeout)
    finally:
        await generator.aclose()


def test_serialize_round_trips_through_airflows_trigger_store(airflow_db):
    """What the scheduler stores and the triggerer reads back: kwargs through Airflow's own serializer."""
    from airflow.models.trigger import Trigger

    trigger = PrivacyJobsTrigger(jobs_by_regulation=None, from_date="2026-11-01", to_date="2026-11-22",
                                 end_at="2026-11-29T00:00:00+00:00",
                                 ledger_ref={"archive_uri": "s3://b/p", "aws_conn_id": None,
                                             "batch_ids": [f"b-{i:020d}" for i in range(20)]})
    row = Trigger.from_object(trigger)
    rebuilt = PrivacyJobsTrigger(**row.kwargs)

    assert row.classpath == "adobe_privacy.triggers.PrivacyJobsTrigger"
    assert rebuilt.serialize() == trigger.serialize()
    # 20 batches of a day at Adobe's cap (20,000 jobs): the stored kwargs stay a few KiB.
    assert len(row.encrypted_kwargs) < 8 * 1024


def test_too_many_inline_ids_are_refused_and_events_carry_a_capped_sample():
    from adobe_privacy.triggers import MAX_EVENT_JOB_IDS, MAX_INLINE_JOB_IDS, bounded_summary

    with pytest.raises(ValueError, match="ledger_ref"):
        PrivacyJobsTrigger(jobs_by_regulation={"gdpr": [f"j{i}" for i in range(MAX_INLINE_JOB_IDS + 1)]},
                           from_date=None, to_date=None)
    errored = [f"j{i}" for i in range(20_000)]
    event = bounded_summary({"counts": {"error": 20_000}, "open": 0, "error_job_ids": errored})
    assert event["error_count"] == 20_000 and event["error_job_ids"] == errored[:MAX_EVENT_JOB_IDS]


async def test_a_ledger_reference_is_read_once_at_start(emu, hook, monkeypatch):
    import adobe_privacy.triggers as triggers

    emu.configure(error_rate=0.0)
    ids = [job.job_id for job in hook.create_jobs(make_payload(emu.org_id, ["a", "b"]))]
    emu.advance_clock(3600)
    reads = []
    monkeypatch.setattr(triggers, "load_ledger_jobs", lambda ref: reads.append(ref) or {REGULATION: ids})

    event = await first_event(make_trigger(None, ledger_ref={"archive_uri": "s3://b/p", "batch_ids": ["b-1"]}))
    assert event.payload["counts"] == {"complete": 2} and len(reads) == 1


def test_serialize_round_trips():
    trigger = PrivacyJobsTrigger(
        jobs_by_regulation={"gdpr": ["j1", "j2"], "ccpa": ["j3"]},
        from_date="2026-11-01",
        to_date="2026-11-22",
        adobe_privacy_conn_id="my_conn",
        poll_interval=60,
        max_poll_interval=600,
        end_at="2026-11-29T00:00:00+00:00",
    )

    classpath, kwargs = trigger.serialize()
    rebuilt = PrivacyJobsTrigger(**kwargs)

    assert classpath == "adobe_privacy.triggers.PrivacyJobsTrigger"
    assert rebuilt.serialize() == (classpath, kwargs)
    assert kwargs["jobs_by_regulation"] == {"gdpr": ["j1", "j2"], "ccpa": ["j3"]}


async def test_success_event_once_no_job_is_open(emu, hook):
    emu.configure(error_rate=0.0)
    ids = [job.job_id for job in hook.create_jobs(make_payload(emu.org_id, ["a", "b", "c"]))]
    emu.advance_clock(3600)

    event = await first_event(make_trigger({REGULATION: ids}))

    assert event.payload == {"status": "success", "counts": {"complete": 3}, "open": 0, "error_count": 0,
                             "error_job_ids": []}
    assert calls(emu, f"GET {JOBS_ROUTE}") == {"200": 1}  # one list call, not one GET per job


async def test_success_event_reports_errored_jobs(emu, hook):
    emu.configure(error_rate=1.0)
    ids = [job.job_id for job in hook.create_jobs(make_payload(emu.org_id, ["a", "b"]))]
    emu.advance_clock(3600)

    event = await first_event(make_trigger({REGULATION: ids}))

    assert event.payload["status"] == "success"
    assert event.payload["error_job_ids"] == sorted(ids) and event.payload["error_count"] == len(ids)


async def test_trigger_sleeps_between_polls_until_jobs_finish(emu, hook):
    ids = [job.job_id for job in hook.create_jobs(make_payload(emu.org_id, ["a"]))]
    trigger = make_trigger({REGULATION: ids}, poll_interval=0.2, max_poll_interval=0.2)
    task = asyncio.ensure_future(first_event(trigger))
    await asyncio.sleep(0.5)  # two or three polls see the job open
    assert not task.done()
    polls_while_open = calls(emu, f"GET {JOBS_ROUTE}")["200"]

    await asyncio.to_thread(emu.advance_clock, 3600)
    event = await task

    assert event.payload["status"] == "success" and event.payload["open"] == 0
    assert 2 <= polls_while_open <= 4  # it slept between polls instead of spinning


async def test_timeout_event_at_the_deadline_reports_open_jobs(emu, hook):
    ids = [job.job_id for job in hook.create_jobs(make_payload(emu.org_id, ["a", "b"]))]
    end_at = (datetime.now(UTC) + timedelta(seconds=0.4)).isoformat()

    event = await first_event(make_trigger({REGULATION: ids}, end_at=end_at))

    assert event.payload["status"] == "timeout"
    assert event.payload["open"] == 2
    assert sum(event.payload["counts"].values()) == 2


async def test_jobs_missing_from_the_window_count_as_open(emu):
    end_at = datetime.now(UTC).isoformat()  # already due: one poll, then the timeout event

    event = await first_event(make_trigger({REGULATION: ["not-a-job"]}, end_at=end_at))

    assert event.payload == {"status": "timeout", "counts": {"missing": 1}, "open": 1, "error_count": 0,
                             "error_job_ids": []}


async def test_error_event_on_a_terminal_api_error(emu):
    event = await first_event(make_trigger({"not_a_regulation": ["j1"]}))

    assert event.payload["status"] == "error"
    assert "400" in event.payload["message"]


async def test_transient_errors_are_retried_inside_the_trigger(emu, hook):
    ids = [job.job_id for job in hook.create_jobs(make_payload(emu.org_id, ["a"]))]
    emu.advance_clock(3600)
    emu.add_fault(route=f"GET {JOBS_ROUTE}", kind="5xx", times=1, status=503)

    event = await first_event(make_trigger({REGULATION: ids}))

    assert event.payload["status"] == "success"
    assert calls(emu, f"GET {JOBS_ROUTE}") == {"503": 1, "200": 1}


async def test_async_hook_renews_a_token_the_gateway_refuses(emu, hook):
    emu.configure(token_ttl_seconds=600, error_rate=0.0)
    ids = [job.job_id for job in hook.create_jobs(make_payload(emu.org_id, ["a"]))]  # caches a token
    await asyncio.to_thread(emu.advance_clock, 3600)  # the cached token is now expired at the gateway

    event = await first_event(make_trigger({REGULATION: ids}))

    assert event.payload["status"] == "success"
    assert calls(emu, f"GET {JOBS_ROUTE}") == {"401": 1, "200": 1}


async def test_async_iter_jobs_matches_the_sync_walk(emu, hook):
    hook.create_jobs(make_payload(emu.org_id, [f"k{n}" for n in range(7)]))
    async_hook = PrivacyServiceAsyncHook()

    walked = [job async for job in async_hook.iter_jobs(REGULATION, page_size=3)]

    assert walked == list(hook.iter_jobs(REGULATION, page_size=3))
    assert len(walked) == 7
