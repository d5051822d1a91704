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


class ListPollingTrigger(BaseTrigger):
    """
    The one wait loop: poll a list endpoint until none of the given jobs is open, then yield one small event.

    It always sleeps between polls; the interval grows by half each time up to ``max_poll_interval``.
    Transient failures (5xx, 429, connection errors) are retried by the hook and then simply wait for
    the next poll; a terminal API error ends the wait. It has no side effects, so the triggerer may run
    it twice. Subclasses say what to wait for (:meth:`prepare`) and how one poll reads it (:meth:`summarize`).

    Events: ``{"status": "success", "counts", "open": 0, "error_count", "error_job_ids"}`` when no job is
    open; ``{"status": "timeout", ...}`` the same at ``end_at``; ``{"status": "error", "message"}`` on a
    terminal error. ``error_job_ids`` is capped at ``MAX_EVENT_JOB_IDS`` (``error_count`` is the total).

    :param from_date: first day (``YYYY-MM-DD``, GMT) of the submission window, or None for Adobe's default.
    :param to_date: last day of the submission window.
    :param adobe_privacy_conn_id: the ``adobe_privacy_service`` connection.
    :param poll_interval: seconds before the second poll.
    :param max_poll_interval: cap on the growing interval.
    :param end_at: ISO-8601 deadline (absolute, so a restarted trigger keeps it); None waits forever.
    """

    #: What the log lines call the items.
    noun = "jobs"

    def __init__(self, from_date: str | None, to_date: str | None, adobe_privacy_conn_id: str = DEFAULT_CONN_ID,
                 poll_interval: float = 900.0, max_poll_interval: float = 3600.0, end_at: str | None = None) -> None:
        super().__init__()
        self.from_date = from_date
        self.to_date = to_date
        self.adobe_privacy_conn_id = adobe_privacy_conn_id
        self.poll_interval = float(poll_interval)
        self.max_poll_interval = max(float(max_poll_interval), self.poll_interval)
        self.end_at = end_at

    def own_kwargs(self) -> dict[str, Any]:
        """What the subclass adds to the serialized kwargs."""
        raise NotImplementedError

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                **self.own_kwargs(),
                "from_date": self.from_date,
                "to_date": self.to_date,
                "adobe_privacy_conn_id": self.adobe_privacy_conn_id,
                "poll_interval": self.poll_interval,
                "max_poll_interval": self.max_poll_interval,
                "end_at": self.end_at,
            },
        )

    def _hook(self):
        from adobe_privacy.hooks import PrivacyServiceAsyncHook

        return PrivacyServiceAsyncHook(self.adobe_privacy_conn_id)

    async def prepare(self) -> int:
        """Load what to wait for; returns how many jobs that is."""
        raise NotImplementedError

    async def summarize(self, hook: Any) -> dict[str, Any]:
        raise NotImplementedError

    async def run(self) -> AsyncIterator[TriggerEvent]:
        hook = self._hook()
        deadline = _deadline_timestamp(self.end_at)
        interval = self.poll_interval
        try:
            total = await self.prepare()
        except Exception as err:
            yield TriggerEvent({"status": "error", "message": f"cannot read the jobs to wait for: {err}"})
            return
        summary: dict[str, Any] = {"counts": {}, "open": total, "error_job_ids": []}
        poll = 0
        while True:
            poll += 1
            try:
                summary = await self.summarize(hook)
            except (PrivacyTransientError, PrivacyBackPressureError) as err:
                self.log.warning("Poll %d failed after retries (%s); waiting for the next poll", poll, err)
            except PrivacyServiceError as err:
                yield TriggerEvent({"status": "error", "message": str(err)})
                return
            else:
                self.log.info("Poll %d: %d of %d %s open, counts %s", poll, summary["open"], total, self.noun,
                              summary["counts"])
                if summary["open"] == 0:
                    yield TriggerEvent({"status": "success", **bounded_summary(summary)})
                    return
            remaining = None if deadline is None else deadline - time.time()
            if remaining is not None and remaining <= 0:
                yield TriggerEvent({"status": "timeout", **bounded_summary(summary)})
                return
            await asyncio.sleep(interval if remaining is None else min(interval, remaining))
            interval = min(interval * INTERVAL_GROWTH, self.max_poll_interval)


class PrivacyJobsTrigger(ListPollingTrigger):
    """
    Wait for Privacy Service jobs on the list endpoint (about one list call per 1000 jobs per regulation
    in the date window per poll), not one GET per job. The loop and events: :class:`ListPollingTrigger`.

    :param jobs_by_regulation: job ids to wait for, grouped by regulation (at most ``MAX_INLINE_JOB_IDS``).
    :param ledger_ref: instead of ids, ``{"archive_uri", "aws_conn_id", "batch_ids"}``: the submitted
        batches whose ledger entries hold the job ids (read once when the trigger starts).
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
        super().__init__(from_date, to_date, adobe_privacy_conn_id, poll_interval, max_poll_interval, end_at)
        self.jobs_by_regulation = {reg: list(ids) for reg, ids in (jobs_by_regulation or {}).items()}
        inline = sum(len(ids) for ids in self.jobs_by_regulation.values())
        if inline > MAX_INLINE_JOB_IDS:
            raise ValueError(f"{inline} job ids are too many for a trigger's kwargs (at most "
                             f"{MAX_INLINE_JOB_IDS}); pass ledger_ref instead")
        self.ledger_ref = dict(ledger_ref) if ledger_ref else None
        self._waiting_for = self.jobs_by_regulation

    def own_kwargs(self) -> dict[str, Any]:
        return {"jobs_by_regulation": self.jobs_by_regulation, "ledger_ref": self.ledger_ref}

    async def prepare(self) -> int:
        if self.ledger_ref:
            self._waiting_for = await asyncio.to_thread(load_ledger_jobs, self.ledger_ref)
        return sum(len(ids) for ids in self._waiting_for.values())

    async def summarize(self, hook: Any) -> dict[str, Any]:
        return await hook.summarize_jobs(self._waiting_for, from_date=self.from_date, to_date=self.to_date)


class HygieneWaitTrigger(ListPollingTrigger):
    """
    Wait for work orders (or alpha hygiene jobs) on one Data Hygiene list; subclasses name the list.

    :param job_ids: the work-order (or hygiene job) ids to wait for.
    """

    noun = "items"

    def __init__(self, job_ids: list[str], from_date: str | None, to_date: str | None, **options: Any) -> None:
        """:param options: the wait's settings, as :class:`ListPollingTrigger` takes them."""
        super().__init__(from_date, to_date, **options)
        self.job_ids = list(job_ids)

    def own_kwargs(self) -> dict[str, Any]:
        return {"job_ids": self.job_ids}

    async def prepare(self) -> int:
        return len(self.job_ids)


class WorkOrdersTrigger(HygieneWaitTrigger):
    """Wait for record-delete work orders (terminal: completed, failed) on ``GET /workorder``."""

    noun = "work orders"

    async def summarize(self, hook: Any) -> dict[str, Any]:
        return await hook.summarize_workorders(self.job_ids, from_date=self.from_date, to_date=self.to_date)


class HygieneJobsTrigger(HygieneWaitTrigger):
    """Wait for the alpha ``/hygiene/jobs`` jobs on the hygiene list endpoint."""

    noun = "hygiene jobs"

    async def summarize(self, hook: Any) -> dict[str, Any]:
        return await hook.summarize_hygiene_jobs(self.job_ids, from_date=self.from_date, to_date=self.to_date)
