"""Trigger that waits on recorded journal events for a set of jobs, with a per-job fallback time.

It only waits: it reads the records the :class:`~adobe_privacy.events.JournalRecorder` wrote to the
ledger (S3), never the journal itself and never Adobe's status endpoints, and writes nothing. When
it yields, the caller reads Adobe (the list endpoint) for the jobs it names: events are hints.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent
from privacy_pipeline.events import DEFAULT_REGISTRATION_ID

from adobe_privacy.triggers import MAX_EVENT_JOB_IDS, MAX_INLINE_JOB_IDS

DEFAULT_POLL_INTERVAL = 60.0
ID_LISTS = ("complete_job_ids", "error_job_ids", "timed_out_job_ids", "pending_job_ids")


def _epoch(moment: str) -> float:
    parsed = datetime.fromisoformat(moment)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def bounded_decision(decision: dict[str, Any]) -> dict[str, Any]:
    """A wait's decision with each id list capped at MAX_EVENT_JOB_IDS and its full count beside it.

    The waiting task replays the same records from the ledger for the complete lists.
    """
    bounded = dict(decision)
    for name in ID_LISTS:
        ids = list(decision.get(name) or [])
        bounded[name] = ids[:MAX_EVENT_JOB_IDS]
        bounded[name.removesuffix("_ids") + "_count"] = len(ids)
    return bounded


def recorded_journal(archive_uri: str, aws_conn_id: str | None, registration_id: str, *,
                     sse: str = "AES256", kms_key_id: str | None = None):
    """The registration's recorded journal under the archive root (an ``S3JournalStore``).

    Triggers only read it; the encryption arguments matter to the tasks that write (the wait's state).
    """
    from privacy_pipeline.events import EventKeys

    from adobe_privacy.events import S3JournalStore
    from adobe_privacy.storage import PrivacyArchiveStore

    archive = PrivacyArchiveStore(archive_uri, aws_conn_id=aws_conn_id, sse=sse, kms_key_id=kms_key_id)
    return S3JournalStore(archive, EventKeys(archive.prefix, registration_id))


class PrivacyJournalEventsTrigger(BaseTrigger):
    """
    Wait until every job had a final event (jobcomplete / joberror) or is due for the list endpoint.

    Events (one, small; every job of ``job_ids`` is in exactly one list):
    ``{"status": "events" | "fallback" | "gap", "complete_job_ids", "error_job_ids",
    "timed_out_job_ids", "pending_job_ids", "last_seq", "gap"}``:

    - ``events``: every job had a final event; confirm them with one list read, then archive;
    - ``fallback``: the jobs in ``timed_out_job_ids`` passed their fallback time with no event (a
      dropped event, or a slow job): ask the list endpoint about them; ``pending_job_ids`` are not due
      yet (re-defer with ``since_seq=last_seq`` for them);
    - ``gap``: the recorder lost its journal position (410) while we waited, so events may be missing
      for every open job: they are all in ``timed_out_job_ids``;
    - ``error``: the recorded journal could not be read (``message``).

    Each id list holds at most ``MAX_EVENT_JOB_IDS`` ids, with its full count in ``<list>_count``
    (``complete_job_count`` ...): a waiting task with more jobs replays the records up to ``last_seq``.
    ``wait_key`` comes back in the event, so the task finds its wait's state again.

    :param job_ids: the jobs to wait for (at most ``MAX_INLINE_JOB_IDS``; more go by ``wait_key``).
    :param archive_uri: ``s3://bucket/prefix`` archive root holding ``ledger/events/``.
    :param fallback_at: ISO-8601 time after which a job with no final event is due for the list endpoint.
    :param wait_key: instead of ``job_ids`` and fallback times, the key of a
        :class:`~privacy_pipeline.events.WaitState` in the archive (written by the waiting task).
    :param fallback_at_by_job: per-job fallback times overriding ``fallback_at``.
    :param since_seq: records up to this seq are not read (take it before the jobs were submitted,
        or ``last_seq`` of the previous event when re-deferring).
    :param registration_id: the event registration whose recorded journal is read.
    :param aws_conn_id: the Amazon connection of the archive.
    :param poll_interval: seconds between two listings of new records.
    """

    def __init__(
        self,
        job_ids: list[str] | None,
        archive_uri: str,
        fallback_at: str | None = None,
        fallback_at_by_job: dict[str, str] | None = None,
        since_seq: int = 0,
        registration_id: str = DEFAULT_REGISTRATION_ID,
        aws_conn_id: str | None = "aws_default",
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        wait_key: str | None = None,
    ) -> None:
        super().__init__()
        self.job_ids = list(job_ids or [])
        if len(self.job_ids) > MAX_INLINE_JOB_IDS:
            raise ValueError(f"{len(self.job_ids)} job ids are too many for a trigger's kwargs (at most "
                             f"{MAX_INLINE_JOB_IDS}); pass wait_key instead")
        if (wait_key is None) == (fallback_at is None):
            raise ValueError("give either job_ids with fallback_at, or wait_key")
        self.wait_key = wait_key
        self.archive_uri = archive_uri
        self.fallback_at = fallback_at
        self.fallback_at_by_job = dict(fallback_at_by_job or {})
        self.since_seq = int(since_seq)
        self.registration_id = registration_id
        self.aws_conn_id = aws_conn_id
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "job_ids": self.job_ids,
                "archive_uri": self.archive_uri,
                "fallback_at": self.fallback_at,
                "fallback_at_by_job": self.fallback_at_by_job,
                "since_seq": self.since_seq,
                "registration_id": self.registration_id,
                "aws_conn_id": self.aws_conn_id,
                "poll_interval": self.poll_interval,
                "wait_key": self.wait_key,
            },
        )

    def _store(self):
        return recorded_journal(self.archive_uri, self.aws_conn_id, self.registration_id)

    def _progress(self, store=None):
        from privacy_pipeline.events import WaitProgress, WaitState

        if self.wait_key is not None:
            document = store.archive.get_json(self.wait_key) if store is not None else None
            if document is None:
                raise LookupError("the wait's state is not in the ledger")
            progress = WaitState.from_json(document).progress()
            progress.last_seq = max(progress.last_seq, self.since_seq)
            return progress
        return WaitProgress(
            job_ids=frozenset(self.job_ids),
            default_fallback_at=_epoch(self.fallback_at or ""),
            fallback_at={job: _epoch(moment) for job, moment in self.fallback_at_by_job.items()},
            last_seq=self.since_seq,
        )

    def _read_new(self, store, progress) -> int:
        read = 0
        for seq in store.record_seqs(progress.last_seq):
            record = store.get_record(seq)
            if record is not None:
                progress.observe(record)
                read += 1
        return read

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            store = await asyncio.to_thread(self._store)
            progress = await asyncio.to_thread(self._progress, store)
        except Exception as err:  # noqa: BLE001 - reported as the trigger's error event
            yield TriggerEvent({"status": "error", "message": f"cannot open the recorded journal: {err}"})
            return
        while True:
            try:
                read = await asyncio.to_thread(self._read_new, store, progress)
            except Exception as err:  # noqa: BLE001 - S3 hiccups wait for the next listing
                self.log.warning("Reading recorded journal events failed (%s); trying again later", type(err).__name__)
                read = 0
            now = time.time()
            decision = progress.decide(now)
            if decision is not None:
                self.log.info(
                    "Journal wait over (%s): %d complete, %d error, %d due for the list endpoint",
                    decision["status"], len(decision["complete_job_ids"]), len(decision["error_job_ids"]),
                    len(decision["timed_out_job_ids"]),
                )
                yield TriggerEvent({**bounded_decision(decision), "wait_key": self.wait_key})
                return
            self.log.info(
                "%d new records; %d of %d jobs without a final event", read, len(progress.pending()), len(self.job_ids)
            )
            next_fallback = progress.next_fallback()
            delay = self.poll_interval if next_fallback is None else min(self.poll_interval, max(0.0, next_fallback - now))
            await asyncio.sleep(max(delay, 0.01))


class PrivacyJournalWatchTrigger(BaseEventTrigger):
    """
    Event trigger for an ``AssetWatcher``: fires when the journal holds events past the recorded position.

    It only looks: one ``since=<recorded position>&limit=1`` read of the journal per ``interval``
    (never sooner than the journal's ``retry-after``) and one read of ``position.json``; it records
    nothing and keeps no cursor of its own (the recorded position in the ledger is the cursor, so a
    triggerer restart changes nothing). After firing it stays quiet until the recorder has moved the
    position (or ``rearm_after`` seconds passed, in case that run failed).

    Events: ``{"status": "new_events" | "position_expired", "recorded_seq"}``; the asset's consumer
    (the recorder DAG) reads and records them.
    """

    def __init__(
        self,
        archive_uri: str,
        adobe_privacy_conn_id: str = "adobe_privacy_default",
        registration_id: str = DEFAULT_REGISTRATION_ID,
        aws_conn_id: str | None = "aws_default",
        interval: float = 300.0,
        rearm_after: float = 3600.0,
    ) -> None:
        super().__init__()
        self.archive_uri = archive_uri
        self.adobe_privacy_conn_id = adobe_privacy_conn_id
        self.registration_id = registration_id
        self.aws_conn_id = aws_conn_id
        self.interval = float(interval)
        self.rearm_after = float(rearm_after)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "archive_uri": self.archive_uri,
                "adobe_privacy_conn_id": self.adobe_privacy_conn_id,
                "registration_id": self.registration_id,
                "aws_conn_id": self.aws_conn_id,
                "interval": self.interval,
                "rearm_after": self.rearm_after,
            },
        )

    def _store(self):
        return recorded_journal(self.archive_uri, self.aws_conn_id, self.registration_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        from adobe_privacy.events import JournalPositionGone, PrivacyJournalReader

        reader = PrivacyJournalReader(self.adobe_privacy_conn_id, page_limit=1)
        store = await asyncio.to_thread(self._store)
        fired_at_seq: int | None = None
        fired_time = 0.0
        await reader.connection()
        async with reader.session() as http:
            while True:
                delay = self.interval
                try:
                    position, _ = await asyncio.to_thread(store.read_position)
                    quiet = fired_at_seq == position.seq and time.time() - fired_time < self.rearm_after
                    if not quiet:
                        page = await reader.fetch(http, reader.first_url(position.position))
                        if page.status == 200:
                            fired_at_seq, fired_time = position.seq, time.time()
                            yield TriggerEvent({"status": "new_events", "recorded_seq": position.seq})
                        else:
                            delay = max(delay, page.retry_after or 0.0)
                except JournalPositionGone:
                    fired_at_seq, fired_time = position.seq, time.time()
                    yield TriggerEvent({"status": "position_expired", "recorded_seq": position.seq})
                except Exception as err:  # noqa: BLE001 - an event trigger keeps watching through hiccups
                    self.log.warning("Watching the journal failed (%s); trying again later", type(err).__name__)
                await asyncio.sleep(delay)
