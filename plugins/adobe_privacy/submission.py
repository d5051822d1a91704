"""Exactly-once submission of staged batches: one class for every step that creates jobs.

`BatchSubmitter(ledger, budget, api)` runs the ledger protocol of `privacy_pipeline.ledger` for the
nightly submit, reconcile's resubmit and Data Hygiene alike; only the `JobsApi` differs (which POST,
which list endpoint, which body). Per batch: a `submitted` entry means done (no call at all); an
`intent` means an earlier attempt may have posted, so its jobs are recovered from the list endpoint
before anything is sent, and only the pairs still missing are posted. Otherwise the budget is reserved,
the intent written, then the POST, then the job ids. A POST whose outcome is unknown is never resent
blindly: after a short bounded backoff the list endpoint decides, inside the task, before a task retry
is spent. Back-pressure (Adobe's 1030-400 or daily cap, our own budget) postpones this batch and the
rest of the chunk to a later run, without failing this one.

Every pair of writes is ordered so that a crash between them leaves the batch findable: the open marker
(reconcile's index) is written before the pending marker (the next run's carry list) is deleted.
"""

from __future__ import annotations

import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from adobe_privacy.budget import DailyBudgetExhaustedError
from adobe_privacy.exceptions import PrivacyBackPressureError, PrivacyOutcomeUnknownError

if TYPE_CHECKING:
    from privacy_pipeline.batching import Batch
    from privacy_pipeline.clock import Clock
    from privacy_pipeline.ledger import LedgerEntry

    from adobe_privacy.budget import DailyJobBudget
    from adobe_privacy.hooks import PrivacyServiceHook
    from adobe_privacy.ledger import PrivacyLedger

log = logging.getLogger(__name__)

#: A 429 on POST /jobs means Adobe refused the request unprocessed, so resending it is safe: short waits
#: are sat out in the task. A longer wait, the daily cap or 1030-400 postpones the batch to a later run.
RATE_LIMIT_ATTEMPTS = 5
MAX_RATE_LIMIT_WAIT_SECONDS = 60.0
#: After a POST whose outcome is unknown: list re-checks (and resends of what the list says is not
#: there) inside the task, with these waits, before the task fails and Airflow's retry takes over.
OUTCOME_RECHECK_WAITS = (1.0, 2.0, 4.0)
#: A POST that timed out may still be running at Adobe: the list cannot tell "not created" from "not yet
#: committed". Before such a re-check the wait covers the longest a request can run (Adobe's gateway
#: drops requests after 60 s), so a resend never races the original.
IN_FLIGHT_SECONDS = 65.0

UserAction = tuple[str, str]


def may_be_in_flight(error: BaseException) -> bool:
    """Whether a failed POST may still be running server-side: it timed out (no answer yet), as opposed
    to an answer (5xx, unreadable body) or a connection the server closed."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, TimeoutError) or "Timeout" in type(seen).__name__:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class JobsApi(Protocol):
    """The three calls the protocol needs from a job API."""

    def create(self, payload: dict[str, Any]) -> list[Any]: ...

    def listed(self, regulation: str, from_date: date, to_date: date) -> Iterable[dict[str, Any]]: ...

    def payload(self, batch: Batch, only: set[UserAction]) -> dict[str, Any]: ...


class PrivacyJobsApi:
    """Privacy Service: `POST /jobs`, the privacy list endpoint (per regulation)."""

    def __init__(self, hook: PrivacyServiceHook) -> None:
        self.hook = hook

    def create(self, payload: dict[str, Any]) -> list[Any]:
        return self.hook.create_jobs(payload)

    def listed(self, regulation: str, from_date: date, to_date: date) -> Iterable[dict[str, Any]]:
        return self.hook.iter_jobs(regulation, from_date=from_date, to_date=to_date)

    def payload(self, batch: Batch, only: set[UserAction]) -> dict[str, Any]:
        from privacy_pipeline.batching import batch_payload

        payload = batch_payload(batch, self.hook.org_id)
        users = []
        for user in payload["users"]:
            actions = [a for a in user["action"] if (user["key"], a) in only]
            if actions:
                users.append({**user, "action": actions})
        return {**payload, "users": users}


class HygieneJobsApi(PrivacyJobsApi):
    """Data Hygiene record deletes: `POST /data/core/hygiene/jobs`, the hygiene list endpoint."""

    def create(self, payload: dict[str, Any]) -> list[Any]:
        return self.hook.create_hygiene_jobs(payload)

    def listed(self, regulation: str, from_date: date, to_date: date) -> Iterable[dict[str, Any]]:
        return self.hook.iter_hygiene_jobs(from_date=from_date, to_date=to_date)

    def payload(self, batch: Batch, only: set[UserAction]) -> dict[str, Any]:
        payload = super().payload(batch, only)
        return {"companyContexts": payload["companyContexts"], "users": payload["users"]}


#: The counts a submit task reports (XCom), in the order the report reads them.
SUMMARY_COUNTS = ("submitted_batches", "postponed_batches", "postponed_subjects", "over_budget_batches",
                  "over_budget_subjects", "submitted_subjects", "api_posts", "jobs", "dry_run_subjects")


@dataclass
class SubmissionSummary:
    """What one submit task reports through XCom: ids and counts (`SUMMARY_COUNTS`), never identities."""

    chunk: int
    jobs_by_regulation: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    batch_ids: list[str] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    earliest: datetime | None = None

    def add_entry(self, entry: LedgerEntry) -> None:
        self.batch_ids.append(entry.batch_id)
        self.jobs_by_regulation[entry.regulation].extend(job.job_id for job in entry.jobs)
        self.counts.update(submitted_batches=1, jobs=len(entry.jobs),
                           submitted_subjects=len({key for key, _action in entry.user_actions}))
        if entry.intent_at is not None:
            self.earliest = entry.intent_at if self.earliest is None else min(self.earliest, entry.intent_at)

    def add_postponed(self, batch: Batch, *, over_budget: bool) -> None:
        self.counts.update(postponed_batches=1, postponed_subjects=len(batch.subjects))
        if over_budget:
            self.counts.update(over_budget_batches=1, over_budget_subjects=len(batch.subjects))

    def as_xcom(self, now: datetime) -> dict[str, Any]:
        from privacy_pipeline.reconcile import recovery_window

        from_date, to_date = recovery_window(self.earliest or now)
        return {
            "chunk": max(self.chunk, 0),
            "jobs_by_regulation": dict(self.jobs_by_regulation),
            "from_date": from_date.isoformat(),
            "to_date": to_date.isoformat(),
            "batch_ids": self.batch_ids,
            **{name: self.counts[name] for name in SUMMARY_COUNTS},
        }


class BatchSubmitter:
    """Submit batches to a job API exactly once, through the ledger and the daily budget.

    :param ledger: the typed ledger of the archive root.
    :param budget: the daily job budget shared by every DAG that creates jobs.
    :param api: the job API (privacy or hygiene).
    :param clock: every "now" (ledger times, the budget day).
    :param open_index: index each submitted batch in `ledger/open/` for reconcile (not for an API
        reconcile does not read: Data Hygiene).
    :param sleep: how waits are slept (injectable for tests).
    """

    def __init__(self, ledger: PrivacyLedger, budget: DailyJobBudget, api: JobsApi, *, clock: Clock,
                 open_index: bool = True, sleep: Callable[[float], None] = time.sleep) -> None:
        self.ledger = ledger
        self.budget = budget
        self.api = api
        self.clock = clock
        self.open_index = open_index
        self.sleep = sleep

    def submit_all(self, batches: Iterable[tuple[str, Batch]], *, run_id: str, chunk: int = 0,
                   dry_run: bool = False, held: Mapping[str, str] | None = None) -> SubmissionSummary:
        """Submit `(staged key, batch)` pairs in order; after back-pressure, postpone the rest.

        `held` (batch id -> reason): batches held back before any POST (the approval gate), postponed
        to a later run like back-pressure postpones them; a batch already submitted stays submitted.
        """
        summary = SubmissionSummary(chunk=chunk)
        refused: PrivacyBackPressureError | None = None
        held = held or {}
        for batch_key, batch in batches:
            if dry_run:
                summary.counts["dry_run_subjects"] += len(batch.subjects)
                continue
            if batch.batch_id in held and not self._submitted(batch.batch_id):
                log.info("Batch %s held back: %s", batch.batch_id, held[batch.batch_id])
                self.postpone(batch, batch_key, reason=held[batch.batch_id])
                summary.add_postponed(batch, over_budget=False)
                continue
            if refused is None:
                try:
                    entry = self.submit_once(batch, batch_key, run_id=run_id, summary=summary)
                except PrivacyBackPressureError as err:
                    refused = err
                    self._refused(batch, err)
                else:
                    summary.add_entry(entry)
                    if self.open_index:
                        self.ledger.mark_open(entry)  # the open marker first: a crash here leaves both
                    self.ledger.clear_pending(batch.batch_id)
                    continue
            self.postpone(batch, batch_key, reason=str(refused))
            summary.add_postponed(batch, over_budget=isinstance(refused, DailyBudgetExhaustedError))
        return summary

    def submit_once(self, batch: Batch, batch_key: str, *, run_id: str,
                    summary: SubmissionSummary) -> LedgerEntry:
        """The batch's submitted entry, posting only what neither the ledger nor the list endpoint has."""
        from privacy_pipeline.ledger import LedgerEntry

        entry = self.ledger.entry(batch.batch_id)
        if entry is not None and entry.state == "submitted":
            log.info("Batch %s already submitted (%d jobs); not posting", batch.batch_id, len(entry.jobs))
            return entry
        if entry is not None and entry.state == "intent":
            entry = self.recover(entry)
            if entry.state == "submitted":
                return entry
        if entry is None or entry.state == "postponed":
            entry = LedgerEntry.intent_for(batch, batch_key=batch_key, now=self.clock.now(), previous=entry)
        else:
            entry = entry.with_attempt(now=self.clock.now())
        remaining = self.budget.reserve(batch.batch_id, len(entry.missing))  # before the intent: a miss postpones cleanly
        log.info("Batch %s reserved %d jobs of today's budget; %d left", batch.batch_id, len(entry.missing), remaining)
        for wait in (*OUTCOME_RECHECK_WAITS, None):
            entry = entry.with_post(run_id)
            self.ledger.put_entry(entry)  # the intent (and this POST's count) before the POST goes out

            def count_resend() -> None:
                nonlocal entry
                assert entry is not None
                entry = entry.with_post(run_id)
                self.ledger.put_entry(entry)

            try:
                created = self._post_paced(self.api.payload(batch, set(entry.missing)), count_resend)
            except PrivacyOutcomeUnknownError as err:
                summary.counts["api_posts"] += 1
                if wait is None:
                    raise  # the intent stays: the task retry recovers again before any POST
                if may_be_in_flight(err):
                    wait = max(wait, IN_FLIGHT_SECONDS)
                log.warning("Outcome of POST for batch %s unknown; re-checking the list endpoint in %.0f s",
                            batch.batch_id, wait)
                self.sleep(wait)
                entry = self.recover(entry)
                if entry.state == "submitted":
                    return entry
                continue  # the list says these pairs are not there: only they go out again
            summary.counts["api_posts"] += 1
            entry = entry.with_jobs(created, now=self.clock.now())
            self.ledger.put_entry(entry)
            return entry
        raise AssertionError("unreachable")

    def recover(self, entry: LedgerEntry) -> LedgerEntry:
        """Add the jobs the list endpoint holds for the entry's missing pairs (and record them)."""
        from privacy_pipeline.ledger import recover_jobs
        from privacy_pipeline.reconcile import recovery_window

        assert entry.intent_at is not None
        from_date, to_date = recovery_window(entry.intent_at)
        found, missing = recover_jobs(entry, self.api.listed(entry.regulation, from_date, to_date))
        log.info("Batch %s: recovered %d jobs from the list endpoint, %d still missing",
                 entry.batch_id, len(found), len(missing))
        recovered = entry.with_recovered(found, missing, now=self.clock.now())
        if recovered != entry:
            self.ledger.put_entry(recovered)
        return recovered

    def postpone(self, batch: Batch, batch_key: str, *, reason: str) -> None:
        """List a batch for a later run; its entry says `postponed` unless a POST may have gone out.

        A batch refused at its POST already has an intent on record: the intent stays (the next run
        recovers from the list endpoint before posting), but the batch is still listed as pending.
        """
        from privacy_pipeline.ledger import LedgerEntry

        entry = self.ledger.entry(batch.batch_id)
        if entry is not None and entry.state == "submitted":
            return  # done: nothing to carry
        self.ledger.mark_pending(batch, key=batch_key, reason=reason)  # the carry list first, then the entry
        if entry is None or entry.state == "postponed":
            self.ledger.put_entry(LedgerEntry.postponed_for(batch, batch_key=batch_key, now=self.clock.now(),
                                                            reason=reason))

    def _submitted(self, batch_id: str) -> bool:
        entry = self.ledger.entry(batch_id)
        return entry is not None and entry.state == "submitted"

    def _refused(self, batch: Batch, err: PrivacyBackPressureError) -> None:
        if isinstance(err, DailyBudgetExhaustedError):
            log.warning("Daily job budget spent (%s); postponing the rest of this chunk", err)
        else:
            log.warning("Adobe asked to slow down (%s); postponing the rest of this chunk", err)
            self.budget.release(batch.batch_id)  # refused: nothing was created for it

    def _post_paced(self, payload: dict[str, Any], before_resend: Callable[[], None]) -> list[Any]:
        """POST until accepted, waiting out short rate limits (429); other back-pressure goes to the caller."""
        for attempt in _attempts():
            try:
                return self.api.create(payload)
            except PrivacyBackPressureError as err:
                wait = rate_limit_wait(err, attempt)
                if wait is None:
                    raise
                log.warning("POST rate-limited (attempt %d/%d); resending in %.1f s", attempt,
                            RATE_LIMIT_ATTEMPTS, wait)
                self.sleep(wait)
                before_resend()
        raise AssertionError("unreachable")


def rate_limit_wait(error: PrivacyBackPressureError, attempt: int) -> float | None:
    """Seconds to wait before resending a refused POST; None when the batch should be postponed instead."""
    if error.status != 429 or error.daily_limit or attempt >= RATE_LIMIT_ATTEMPTS:
        return None
    wait = error.retry_after if error.retry_after is not None else float(2**attempt)
    return wait if wait <= MAX_RATE_LIMIT_WAIT_SECONDS else None


def _attempts() -> Iterator[int]:
    attempt = 1
    while True:
        yield attempt
        attempt += 1
