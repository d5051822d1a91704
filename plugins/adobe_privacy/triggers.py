"""Trigger that waits for Privacy Service jobs by polling the LIST endpoint (not GET per job)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from adobe_privacy.exceptions import PrivacyBackPressureError, PrivacyServiceError, PrivacyTransientError
from adobe_privacy.protocol import DEFAULT_CONN_ID

INTERVAL_GROWTH = 1.5
#: Job ids a trigger may carry in its kwargs (stored in Airflow's database); more go by ledger reference.
MAX_INLINE_JOB_IDS = 1000
#: Errored job ids an event carries at most (with the full count): events stay small.
MAX_EVENT_JOB_IDS = 100


def bounded_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """A jobs summary with its id list capped at MAX_EVENT_JOB_IDS and the full count beside it."""
    error_ids = list(summary.get("error_job_ids") or [])
    return {**summary, "error_count": int(summary.get("error_count", len(error_ids))),
            "error_job_ids": error_ids[:MAX_EVENT_JOB_IDS]}


def load_ledger_jobs(ledger_ref: dict[str, Any]) -> dict[str, list[str]]:
    """Job ids by regulation of the referenced batches, from their ledger entries (blocking: run it in a thread)."""
    from privacy_pipeline.layout import ArchiveLayout

    from adobe_privacy.ledger import PrivacyLedger
    from adobe_privacy.storage import PrivacyArchiveStore

    store = PrivacyArchiveStore(ledger_ref["archive_uri"], aws_conn_id=ledger_ref.get("aws_conn_id"))
    ledger = PrivacyLedger(store, ArchiveLayout(store.prefix))
    jobs: dict[str, list[str]] = {}
    for batch_id in ledger_ref["batch_ids"]:
        entry = ledger.require_entry(batch_id)
        jobs.setdefault(entry.regulation, []).extend(job.job_id for job in entry.jobs)
    return jobs


def _deadline_timestamp(end_at: str | None) -> float | None:
    if end_at is None:
        return None
    moment = datetime.fromisoformat(end_at)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


class PrivacyJobsTrigger(BaseTrigger):
    """
    Poll job statuses until none of the given jobs is open, then yield exactly one small event.

    Each poll costs about one list call per 1000 jobs per regulation in the date window. The trigger
    always sleeps between polls; the interval grows by half each time up to ``max_poll_interval``.
    Transient failures (5xx, 429, connection errors) are retried by the hook and then simply wait
    for the next poll; a terminal API error ends the wait. It has no side effects, so the triggerer
    may run it twice.

    Events: ``{"status": "success", "counts", "open": 0, "error_count", "error_job_ids"}`` when no job is
    open; ``{"status": "timeout", "counts", "open", "error_count", "error_job_ids"}`` at ``end_at``;
    ``{"status": "error", "message"}`` on a terminal error. ``error_job_ids`` is capped at
    ``MAX_EVENT_JOB_IDS`` (a sample; ``error_count`` is the total).

    :param jobs_by_regulation: job ids to wait for, grouped by regulation (at most ``MAX_INLINE_JOB_IDS``).
    :param ledger_ref: instead of ids, ``{"archive_uri", "aws_conn_id", "batch_ids"}``: the submitted
        batches whose ledger entries hold the job ids (read once when the trigger starts).
    :param from_date: first day (``YYYY-MM-DD``, GMT) of the submission window, or None for Adobe's default.
    :param to_date: last day of the submission window.
    :param adobe_privacy_conn_id: the ``adobe_privacy_service`` connection.
    :param poll_interval: seconds before the second poll.
    :param max_poll_interval: cap on the growing interval.
    :param end_at: ISO-8601 deadline (absolute, so a restarted trigger keeps it); None waits forever.
    """

    def __init__(
        self,
        jobs_by_regulation: dict[str, list[str]] | None,
        from_date: str | None,
        to_date: str | None,
        adobe_privacy_conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 900.0,
        max_poll_interval: float = 3600.0,
        end_at: str | None = None,
        ledger_ref: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.jobs_by_regulation = {reg: list(ids) for reg, ids in (jobs_by_regulation or {}).items()}
        inline = sum(len(ids) for ids in self.jobs_by_regulation.values())
        if inline > MAX_INLINE_JOB_IDS:
            raise ValueError(f"{inline} job ids are too many for a trigger's kwargs (at most "
                             f"{MAX_INLINE_JOB_IDS}); pass ledger_ref instead")
        self.ledger_ref = dict(ledger_ref) if ledger_ref else None
        self.from_date = from_date
        self.to_date = to_date
        self.adobe_privacy_conn_id = adobe_privacy_conn_id
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = max(float(max_poll_interval), self.poll_interval)
        self.end_at = end_at

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "jobs_by_regulation": self.jobs_by_regulation,
                "from_date": self.from_date,
                "to_date": self.to_date,
                "adobe_privacy_conn_id": self.adobe_privacy_conn_id,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "end_at": self.end_at,
                "ledger_ref": self.ledger_ref,
            },
        )

    def _hook(self):
        from adobe_privacy.hooks import PrivacyServiceAsyncHook

        return PrivacyServiceAsyncHook(self.adobe_privacy_conn_id)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
        deadline = _deadline_timestamp(self.end_at)
        interval = self.poll_interval
        jobs_by_regulation = self.jobs_by_regulation
        if self.ledger_ref:
            try:
                jobs_by_regulation = await asyncio.to_thread(load_ledger_jobs, self.ledger_ref)
            except Exception as err:
                yield TriggerEvent({"status": "error", "message": f"cannot read the jobs to wait for: {err}"})
                return
        total = sum(len(ids) for ids in jobs_by_regulation.values())
        summary: dict[str, Any] = {"counts": {}, "open": total, "error_job_ids": []}
        poll = 0
        while True:
            poll += 1
            try:
                summary = await hook.summarize_jobs(
                    jobs_by_regulation, from_date=self.from_date, to_date=self.to_date
                )
            except (PrivacyTransientError, PrivacyBackPressureError) as err:
                self.log.warning("Poll %d failed after retries (%s); waiting for the next poll", poll, err)
            except PrivacyServiceError as err:
                yield TriggerEvent({"status": "error", "message": str(err)})
                return
            else:
                self.log.info(
                    "Poll %d: %d of %d jobs open, counts %s", poll, summary["open"], total, summary["counts"]
                )
                if summary["open"] == 0:
                    yield TriggerEvent({"status": "success", **bounded_summary(summary)})
                    return
            remaining = None if deadline is None else deadline - time.time()
            if remaining is not None and remaining <= 0:
                yield TriggerEvent({"status": "timeout", **bounded_summary(summary)})
                return
            await asyncio.sleep(interval if remaining is None else min(interval, remaining))
            interval = min(interval * INTERVAL_GROWTH, self.max_poll_interval)
