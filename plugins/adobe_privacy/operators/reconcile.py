"""Reconcile step: close the gaps nightly runs leave (jobs still open, content not archived, errored jobs)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from privacy_pipeline.events import DEFAULT_REGISTRATION_ID

from adobe_privacy.exceptions import PrivacyServiceError
from adobe_privacy.links import RunFolderLink
from adobe_privacy.notifiers import PrivacyAlertLogNotifier, send_alert
from adobe_privacy.operators.base import ENCRYPTION_FIELDS, PrivacyBaseOperator, run_clock

if TYPE_CHECKING:
    from airflow.sdk import BaseNotifier, Context
    from privacy_pipeline.clock import Clock
    from privacy_pipeline.events import ConsumerState, ReconcilePlan
    from privacy_pipeline.layout import RunLayout
    from privacy_pipeline.ledger import JobRef, LedgerEntry
    from privacy_pipeline.reconcile import JobState

    from adobe_privacy.archiving import JobArchiver
    from adobe_privacy.ledger import LedgerReadCache

#: Retry batches whose ledger entry is in one of these states are Adobe's (or a later run's) now.
HANDED_OVER_STATES = ("submitted", "postponed")
#: This reader's name under `ledger/events/<registration>/consumers/`.
CONSUMER = "reconcile"
#: More jobs with a final event than this in one run: one list sweep is cheaper than a detail read each.
MAX_DETAIL_READS = 200
#: More new records than this (a long outage of reconcile): sweep instead of reading them all.
MAX_RECORDS_PER_RUN = 2000


@dataclass(frozen=True)
class EventRound:
    """A reconcile run's use of the recorded events: the plan, and the consumer state to store after it."""

    plan: ReconcilePlan
    key: str
    consumer: ConsumerState


@dataclass
class ReconcileOutcome:
    """What one reconcile run found and did (ids and counts only)."""

    decisions: Counter[str] = field(default_factory=Counter)
    archive_outcomes: Counter[str] = field(default_factory=Counter)
    records: list[dict[str, Any]] = field(default_factory=list)
    #: (request key, resubmit record) of each job staged again: for the request index.
    resubmit_records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    retry_keys: list[str] = field(default_factory=list)
    resubmitted: list[str] = field(default_factory=list)
    gave_up: list[str] = field(default_factory=list)
    stuck: list[str] = field(default_factory=list)
    archive_overdue: list[str] = field(default_factory=list)
    archive_failures: int = 0
    closed_batches: int = 0


class ReconcilePrivacyJobsOperator(PrivacyBaseOperator):
    """
    Jobs of earlier runs still open (`ledger/open/`): archive, resubmit, report stuck, alert.

    Returns the retry batches' keys in chunks (the downstream submit task maps over them); writes the
    counts and the job ids it reports to `reconcile.json`. See the README ("Operations").

    :param max_attempts: jobs per subject and action, at most (templated).
    :param archive_alert_days: alert on complete content not archived after this many days (templated).
    :param stuck_after_days: a job processing longer is reported stuck (templated).
    :param as_of: the run's "now", ISO-8601 (templated; the DAGs pass the Variable `privacy_as_of`); empty: the wall clock.
    :param max_chunks: chunks of retry batch keys at most.
    :param alert_notifier: fired per alert kind (default: log at ERROR).
    :param full_sweep_hours: with events (the connection's `journal_url`), hours between two full list
        sweeps, the safety net for a missing event (templated); between sweeps only the jobs whose final
        event was recorded are read, one detail each. Without events every run sweeps.
    :param registration_id: the event registration whose recorded journal is read.
    """

    template_fields: Sequence[str] = ("archive_uri", "max_attempts", "archive_alert_days", "stuck_after_days",
                                      "as_of", "full_sweep_hours", *ENCRYPTION_FIELDS)
    ui_color = "#f2e8c4"
    operator_extra_links = (RunFolderLink(),)

    def __init__(
        self,
        *,
        max_attempts: int = 3,
        archive_alert_days: float = 7,
        stuck_after_days: float = 45,
        as_of: str | None = None,
        max_chunks: int = 16,
        alert_notifier: BaseNotifier | None = None,
        full_sweep_hours: float = 24,
        registration_id: str = DEFAULT_REGISTRATION_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.full_sweep_hours = full_sweep_hours
        self.registration_id = registration_id
        self.max_attempts = max_attempts
        self.archive_alert_days = archive_alert_days
        self.stuck_after_days = stuck_after_days
        self.as_of = as_of
        self.max_chunks = max_chunks
        self.alert_notifier = alert_notifier if alert_notifier is not None else PrivacyAlertLogNotifier()

    def execute(self, context: Context) -> list[list[str]]:
        from privacy_pipeline.batching import chunk_evenly
        from privacy_pipeline.report import jobs_jsonl

        from adobe_privacy.archiving import JobArchiver

        run = self.run_layout(context)
        self.publish_run_links(context, run)
        clock = run_clock(self.as_of)
        now = clock.now()
        archiver = JobArchiver(self.store, self.ledger, self.new_hook, clock=clock, max_parallel_jobs=1)
        recovered = self._sweep_lost_batches()
        markers, entries = self.ledger.open_batches(self._read_cache())
        events = self._event_plan(entries.values(), markers, now)
        states, read_alone = self._job_states(entries.values(), markers, now, events)
        outcome = ReconcileOutcome()
        for batch_id, entry in entries.items():
            marker = markers[batch_id]
            final = self._reconcile_batch(entry, marker, states, now, run, archiver, outcome)
            checked = {**marker.get("checked", {}), **{j.job_id: read_alone[j.job_id]
                                                       for j in entry.jobs if j.job_id in read_alone}}
            if len(final) == len(entry.jobs):
                self.ledger.close(batch_id, final)
                outcome.closed_batches += 1
            elif final != marker.get("final", {}) or checked != marker.get("checked", {}):
                self.ledger.update_open({**marker, "checked": checked}, final)
        if outcome.records:
            self.store.put_bytes(run.jobs_part(0), b"".join(jobs_jsonl(outcome.records)),
                                 content_type="application/x-ndjson")
        retry_keys = sorted(set(outcome.retry_keys))
        deadlines = self._index_run(context, entries, states, outcome, clock)
        summary: dict[str, Any] = {
            "as_of": now.isoformat(),
            "open_batches": len(entries),
            "recovered_batches": recovered,
            "closed_batches": outcome.closed_batches,
            "decisions": dict(sorted(outcome.decisions.items())),
            "archive_outcomes": dict(sorted(outcome.archive_outcomes.items())),
            "resubmitted_jobs": sorted(outcome.resubmitted),
            "retry_batches": len(retry_keys),
            "gave_up_jobs": sorted(outcome.gave_up),
            "stuck_jobs": sorted(outcome.stuck),
            "archive_overdue_jobs": sorted(outcome.archive_overdue),
            "archive_failures": outcome.archive_failures,
            "overdue_requests": len(deadlines["overdue"]),
            "due_soon_requests": len(deadlines["due_soon"]),
            "checked_by": events.plan.reason if events else "list",
            "event_detail_reads": len(events.plan.detail_job_ids) if events and not events.plan.sweep else 0,
        }
        self.store.put_json(run.reconcile, summary)
        if events is not None:  # only once the run's decisions are stored: a crash reads the events again
            self.store.put_json(events.key, events.consumer.to_json())
        self.log.info("Reconcile: %s", {k: v for k, v in summary.items() if not isinstance(v, list)})
        send_alert(self.alert_notifier, context, kind="content_not_archived", items=summary["archive_overdue_jobs"])
        send_alert(self.alert_notifier, context, kind="stuck_jobs", items=summary["stuck_jobs"])
        send_alert(self.alert_notifier, context, kind="resubmit_cap_reached", items=summary["gave_up_jobs"])
        # From the index, over every open request of every run, on every reconcile run.
        send_alert(self.alert_notifier, context, kind="overdue_requests",
                   items=[item["request_id"] for item in deadlines["overdue"]])
        send_alert(self.alert_notifier, context, kind="due_soon_requests",
                   items=[item["request_id"] for item in deadlines["due_soon"]])
        return chunk_evenly(retry_keys, self.max_chunks) if retry_keys else []

    def _index_run(self, context: Context, entries: dict[str, LedgerEntry], states: dict[str, JobState],
                   outcome: ReconcileOutcome, clock: Clock) -> dict[str, list[dict[str, str]]]:
        """After the ledger writes: record this run in the request index, compact it, write the evidence
        packs of requests that closed, and return the index's deadline alerts (overdue, due soon).

        The index is derived (`scripts/rebuild_index.py` rebuilds it): any failure here is a WARNING.
        """
        from adobe_privacy.index_store import RequestIndex

        now = clock.now()
        owners = {job.job_id: (job.user_key, job.action) for entry in entries.values() for job in entry.jobs}
        observed: dict[str, dict[str, Any]] = {}  # every job whose state this run read, archived ones in full
        for entry in entries.values():
            for job in entry.jobs:
                if job.job_id in states:
                    observed[job.job_id] = {"jobId": job.job_id, "userKey": job.user_key, "action": job.action,
                                            "regulation": entry.regulation, "batchId": entry.batch_id,
                                            "status": states[job.job_id].status}
        observed.update({record["jobId"]: record for record in outcome.records})
        gave_up = [(owners[job_id][0], job_id, owners[job_id][1]) for job_id in outcome.gave_up if job_id in owners]
        self.update_request_index(context, at=now, ledger_entries=[entry.to_json() for entry in entries.values()],
                                  job_records=list(observed.values()),
                                  resubmits=outcome.resubmit_records,
                                  gave_up=gave_up)
        request_index = RequestIndex(self.store)
        try:
            request_index.compact()
            deadlines = request_index.deadline_alerts(clock.today())
        except Exception as err:  # noqa: BLE001 - the index is derived: reconcile's own work is done
            self.log.warning("Request index not compacted or read (%s); no deadline alerts this run",
                             type(err).__name__)
            deadlines = {"overdue": [], "due_soon": []}
        self.write_evidence_packs({record["userKey"] for record in observed.values()}, at=now)
        self.log.info("Request index: %d open request(s) overdue, %d due within 7 days",
                      len(deadlines["overdue"]), len(deadlines["due_soon"]))
        return deadlines

    def _read_cache(self) -> LedgerReadCache | None:
        """This worker's cache of unchanged ledger documents (None when its folder cannot be made)."""
        from adobe_privacy.ledger import LedgerReadCache

        try:
            return LedgerReadCache.for_store(self.store)
        except OSError as err:
            self.log.warning("No ledger read cache (%s): every open batch is read", type(err).__name__)
            return None

    def _sweep_lost_batches(self) -> list[str]:
        """Index again every batch a crash between two ledger writes left in no index; returns their ids.

        A submitted batch gets its open marker (so its jobs are reconciled and archived); any other gets
        its pending marker back (the next nightly run carries it).
        """
        recovered = []
        for batch_id in self.ledger.lost_batch_ids():
            entry = self.ledger.entry(batch_id)
            if entry is None:
                continue
            if entry.state == "submitted":
                self.ledger.mark_open(entry)
            elif entry.batch_key:
                self.ledger.mark_pending(_pending_of(entry), reason="found in no index by reconcile")
            else:
                continue
            self.log.warning("Batch %s (%s) was in no ledger index; indexed again", batch_id, entry.state)
            recovered.append(batch_id)
        return recovered

    # -- statuses -------------------------------------------------------------------------------
    def _event_plan(self, entries: Iterable[LedgerEntry], markers: dict[str, dict[str, Any]],
                    now: datetime) -> EventRound | None:
        """With events on, what this run asks Adobe (see `plan_reconcile`) and the consumer seq to store after."""
        from privacy_pipeline.events import ConsumerState, EventKeys, plan_reconcile

        from adobe_privacy.events import S3JournalStore

        if not self.hook.settings.journal_url:
            return None
        keys = EventKeys(self.store.prefix, self.registration_id)
        journal = S3JournalStore(self.store, keys)
        position, _ = journal.read_position()  # records up to here are this run's; later ones the next run's
        consumer = ConsumerState.from_json(self.store.get_json(keys.consumer(CONSUMER)))
        open_ids = [job.job_id for entry in entries for job in entry.jobs
                    if job.job_id not in markers[entry.batch_id].get("final", {})]
        seqs = [seq for seq in journal.record_seqs(consumer.seq) if seq <= position.seq]
        records = [] if len(seqs) > MAX_RECORDS_PER_RUN else [r for r in map(journal.get_record, seqs) if r]
        plan = plan_reconcile(open_ids, records, consumer, now=now,
                              sweep_every=timedelta(hours=float(self.full_sweep_hours)),
                              detail_reads_max=MAX_DETAIL_READS)
        if len(seqs) > MAX_RECORDS_PER_RUN and not plan.sweep:
            plan = replace(plan, sweep=True, reason="many records", detail_job_ids=())
        self.log.info("Events: records %d..%d, %d events; %s (%s)", consumer.seq + 1, position.seq, plan.events,
                      "full list sweep" if plan.sweep else f"{len(plan.detail_job_ids)} detail reads", plan.reason)
        swept = now.isoformat() if plan.sweep else consumer.last_sweep_at
        return EventRound(plan, keys.consumer(CONSUMER), ConsumerState(seq=max(position.seq, consumer.seq),
                                                                       last_sweep_at=swept))

    def _job_states(self, entries: Iterable[LedgerEntry], markers: dict[str, dict[str, Any]],
                    now: datetime, events: EventRound | None = None,
                    ) -> tuple[dict[str, JobState], dict[str, str]]:
        """Job id -> JobState for every job not yet final: list endpoint first, detail for the rest.

        The list is called only over the windows that hold open jobs, each paged until it has shown them
        (`_list_plan`). A job the lists did not show (older than the look-back, or on its edge) is read
        alone at most once a day: the day is kept in its batch's open marker (`checked`), and a job
        already read today is left open. Also returns the jobs read alone in this run, with the day.

        With events between two sweeps (`events.plan`), only the jobs whose final event was recorded are
        read, one detail each, and the list endpoint is not called.
        """
        wanted: dict[str, JobRef] = {}
        checked_today: set[str] = set()
        today = now.date().isoformat()
        open_entries: list[tuple[LedgerEntry, list[JobRef]]] = []
        for entry in entries:
            final = markers[entry.batch_id].get("final", {})
            checked_today |= {job_id for job_id, day in markers[entry.batch_id].get("checked", {}).items()
                              if day == today}
            open_jobs = [job for job in entry.jobs if job.job_id not in final]
            wanted.update((job.job_id, job) for job in open_jobs)
            if open_jobs:
                open_entries.append((entry, open_jobs))
        states: dict[str, JobState] = {}
        if events is not None and not events.plan.sweep:
            # Events are hints: the job's detail (what the archive reads anyway) says whether it is final.
            for job_id in events.plan.detail_job_ids:
                states[job_id] = _job_state(wanted[job_id], self.hook.get_job(job_id))
            return states, {}
        for regulation, window, expected in _list_plan(open_entries, now):
            left = set(expected) - states.keys()
            if not left:
                continue  # every open job this window can hold was seen in an earlier one
            for listed in self.hook.iter_jobs(regulation, from_date=window[0], to_date=window[1]):
                job_id = str(listed.get("jobId"))
                match = wanted.get(job_id)
                if match is not None:
                    states[match.job_id] = _job_state(match, listed)
                    left.discard(job_id)
                    if not left:
                        break  # closing the generator stops paging
        read_alone: dict[str, str] = {}
        for job_id, job in wanted.items():
            if job_id not in states and job_id not in checked_today:  # beyond the look-back, or not listed
                states[job_id] = _job_state(job, self.hook.get_job(job_id))
                read_alone[job_id] = today
        return states, read_alone

    # -- decisions ------------------------------------------------------------------------------
    def _reconcile_batch(self, entry: LedgerEntry, marker: dict[str, Any], states: dict[str, JobState],
                         now: datetime, run: RunLayout, archiver: JobArchiver,
                         outcome: ReconcileOutcome) -> dict[str, str]:
        from privacy_pipeline.reconcile import archive_overdue, decide, retry_attempt

        final = dict(marker.get("final", {}))
        attempt = retry_attempt(entry.batch_id)
        errored = []
        for job in entry.jobs:
            if job.job_id in final or job.job_id not in states:
                continue  # final, read alone earlier today, or no event between two sweeps: still open
            state = states[job.job_id]
            archived = (state.status == "complete" and job.action == "access"
                        and archiver.archived_record(job.job_id) is not None)
            decision = decide(state, archived=archived, attempt=attempt, max_attempts=int(self.max_attempts),
                              now=now, stuck_after=timedelta(days=float(self.stuck_after_days)))
            outcome.decisions[decision] += 1
            if decision in ("final", "give_up"):
                # Its record in this run's jobs file: a nightly run killed before its own part was written
                # leaves this run the only one that reports the job.
                outcome.records.append(_final_record(entry, job, state.status, archiver.archived_record(job.job_id)
                                                     if archived else None))
            if decision == "final":
                final[job.job_id] = state.status
            elif decision == "give_up":
                final[job.job_id] = "gave_up"
                outcome.gave_up.append(job.job_id)
            elif decision == "stuck":
                outcome.stuck.append(job.job_id)
            elif decision == "resubmit":
                errored.append(job)
            elif decision == "archive":
                stored = self._archive_now(archiver, entry, job, run, outcome)
                if stored is not None:
                    final[job.job_id] = stored  # archived or quarantined: both are final
                elif archive_overdue(state, now=now, alert_after=timedelta(days=float(self.archive_alert_days))):
                    outcome.archive_overdue.append(job.job_id)
        if errored:
            final.update(self._resubmit(entry, errored, run, outcome))
        return final

    def _archive_now(self, archiver: JobArchiver, entry: LedgerEntry, job: JobRef, run: RunLayout,
                     outcome: ReconcileOutcome) -> str | None:
        """`archived` or `quarantined` once the content is stored; None when it could not be yet."""
        from adobe_privacy.archiving import ARCHIVE_OUTCOMES

        try:
            record = archiver.archive_job(entry, job, run)
        except PrivacyServiceError as err:
            self.log.warning("Job %s: content could not be archived yet (%s)", job.job_id, type(err).__name__)
            outcome.archive_failures += 1
            return None
        outcome.records.append(record)
        outcome.archive_outcomes[record.get("archive") or "not_complete"] += 1
        archive = record.get("archive")
        return archive.removeprefix("already_") if archive in ARCHIVE_OUTCOMES else None

    def _resubmit(self, entry: LedgerEntry, errored: list[JobRef], run: RunLayout,
                  outcome: ReconcileOutcome) -> dict[str, str]:
        """Stage a retry batch for the errored jobs without one; returns the jobs now handed over."""
        from privacy_pipeline.batching import dump_batch, load_batch
        from privacy_pipeline.reconcile import retry_batch

        handed_over: dict[str, str] = {}
        fresh = []
        for job in errored:
            record = self.ledger.resubmit_record(job.job_id)
            if record is None:
                fresh.append(job)
                continue
            retry_entry = self.ledger.entry(record["retry_batch_id"])
            if retry_entry is not None and retry_entry.state in HANDED_OVER_STATES:
                handed_over[job.job_id] = f"resubmitted:{record['retry_batch_id']}"
            else:  # staged by an earlier run whose submit did not finish: submit it again (ledger-safe)
                outcome.retry_keys.append(record["retry_batch_key"])
        if fresh:
            body = self.store.get_bytes(entry.batch_key) if entry.batch_key else None
            if body is None:
                raise RuntimeError(f"ledger entry {entry.batch_id} has no staged batch to resubmit from")
            batch = retry_batch(load_batch(body), [(job.user_key, job.action) for job in fresh])
            key = run.batch(batch.batch_id)
            self.store.put_bytes(key, dump_batch(batch), content_type="application/json")
            staged_at = run_clock(self.as_of).now().isoformat()
            for job in fresh:
                record = {"job_id": job.job_id, "batch_id": entry.batch_id, "action": job.action,
                          "retry_batch_id": batch.batch_id, "retry_batch_key": key, "staged_at": staged_at}
                self.ledger.put_resubmit_record(job.job_id, record)
                outcome.resubmitted.append(job.job_id)
                outcome.resubmit_records.append((job.user_key, record))
            outcome.retry_keys.append(key)
            self.log.info("Batch %s: %d errored job(s) go out again in %s", entry.batch_id, len(fresh), batch.batch_id)
        return handed_over


def _pending_of(entry: LedgerEntry) -> dict[str, Any]:
    return {"batch_id": entry.batch_id, "key": entry.batch_key, "regulation": entry.regulation,
            "subjects": len({key for key, _action in entry.user_actions}), "jobs_expected": len(entry.user_actions)}


def _final_record(entry: LedgerEntry, job: JobRef, status: str, archived: dict[str, Any] | None) -> dict[str, Any]:
    """The jobs.jsonl record of a job reconcile finds final (with its archive fields when its content is stored)."""
    from adobe_privacy.archiving import archive_fields

    record: dict[str, Any] = {"jobId": job.job_id, "userKey": job.user_key, "action": job.action,
                              "regulation": entry.regulation, "batchId": entry.batch_id, "status": status}
    if archived:
        record.update({**archive_fields(archived), "archive": f"already_{archived['outcome']}"})
    return record


def _list_plan(open_entries: Iterable[tuple[LedgerEntry, list[JobRef]]], now: datetime,
               ) -> list[tuple[str, tuple[date, date], list[str]]]:
    """(regulation, list window, open jobs that window is sure to hold) for each window worth a list call.

    A batch's jobs were created between its intent and its submission (give or take a day of clock
    skew, in GMT days); a window is listed only when it can hold a job of an open batch of its
    regulation that no earlier window could hold, and its paging stops once it has shown them all. Jobs
    whose days reach before the look-back are not waited for (the list may not show them): seen or
    not, the caller reads any job left unseen alone, once a day.
    """
    from privacy_pipeline.reconcile import LIST_LOOKBACK_DAYS, list_windows

    look_back = (now - timedelta(days=LIST_LOOKBACK_DAYS)).date()
    spans: dict[str, list[tuple[datetime, date, date, list[str]]]] = {}
    for entry, jobs in open_entries:
        since = entry.intent_at or now
        last = max(entry.submitted_at or now, since) + timedelta(days=1)
        spans.setdefault(entry.regulation, []).append(
            (since, (since - timedelta(days=1)).date(), last.date(), [job.job_id for job in jobs]))
    plan = []
    for regulation, batches in sorted(spans.items()):
        for window in list_windows(min(since for since, _, _, _ in batches), now):
            expected = [job_id for _, first, last, job_ids in batches
                        if look_back <= first <= window[1] and last >= window[0] for job_id in job_ids]
            if expected:
                plan.append((regulation, window, expected))
    return plan


def _job_state(job: JobRef, adobe: dict[str, Any]) -> JobState:
    from privacy_pipeline import status
    from privacy_pipeline.ledger import parse_adobe_date
    from privacy_pipeline.reconcile import JobState

    return JobState(job_id=job.job_id, user_key=job.user_key, action=job.action,
                    status=status.normalize(adobe.get("status")),
                    created=parse_adobe_date(adobe.get("createdDate")),
                    modified=parse_adobe_date(adobe.get("lastModifiedDate")))
