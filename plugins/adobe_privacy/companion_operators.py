"""Operators of the companion DAGs: reconcile and resubmit, opt-out of sale, Data Hygiene deletes.

They reuse the nightly operators' machinery: the archive store and layout, the exactly-once ledger
(`SubmitPrivacyBatchesOperator` submits retry batches and hygiene batches), and the archive logic of
`ArchivePrivacyJobsOperator` (reconcile archives what has completed since, with the same code).
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier, BaseSensorOperator, Context, PokeReturnValue
from airflow.sdk.exceptions import AirflowSensorTimeout

from adobe_privacy.exceptions import PrivacyServiceError
from adobe_privacy.notifiers import PrivacyAlertLogNotifier, send_alert
from adobe_privacy.operators import (
    ENCRYPTION_FIELDS,
    ArchivePrivacyJobsOperator,
    PrivacyArchiveOperator,
    SubmitPrivacyBatchesOperator,
    materialize,
    run_partition,
)
from adobe_privacy.protocol import DEFAULT_CONN_ID

if TYPE_CHECKING:
    # The hook module imports requests and aiohttp (through the HTTP provider): built at run time,
    # never imported while a DAG file is parsed.
    pass

#: Adobe's list endpoint looks back 45 days and spans at most 30; we stay a day inside both.
LIST_LOOKBACK_DAYS = 44
LIST_SPAN_DAYS = 29
#: Retry batches whose ledger entry is in one of these states are Adobe's (or the carry-over's) now.
HANDED_OVER_STATES = ("submitted", "deferred")


class ReconcilePrivacyJobsOperator(ArchivePrivacyJobsOperator):
    """
    Close the gaps a nightly run leaves: jobs of earlier runs that are still open, or complete but not archived.

    Works from the `ledger/open/` index (one marker per submitted batch, removed once every job of the
    batch is final), so each run reads only what is still open, never the whole ledger. Statuses come
    from the list endpoint (about one call per 1000 jobs, per regulation); only jobs older than its
    45-day look-back are read one by one. Then, per job (`privacy_pipeline.reconcile.decide`):
    complete access content is archived now (the nightly archive code); an errored job gets a fresh
    job for that subject and action in a retry batch (attempt counter in the batch id, cap
    `max_attempts`, a resubmit record per errored job in the ledger) that the downstream submit task
    posts exactly once; a job past `stuck_after_days` is reported stuck; a complete access job still
    not archived `archive_alert_days` after completion raises an alert through `alert_notifier`.

    Returns the retry batches' keys in chunks (the downstream submit task maps over them); writes the
    counts and the stuck / given-up / overdue job ids to `reconcile.json` under the run.
    """

    template_fields: Sequence[str] = ("archive_uri", "max_attempts", "archive_alert_days", "stuck_after_days",
                                      "as_of", *ENCRYPTION_FIELDS)
    ui_color = "#f2e8c4"

    def __init__(
        self,
        *,
        max_attempts: int | str = 3,
        archive_alert_days: float | str = 7,
        stuck_after_days: float | str = 45,
        as_of: str | None = None,
        max_chunks: int = 16,
        alert_notifier: BaseNotifier | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(batch_ids=[], chunk_index=0, **kwargs)
        self.max_attempts = max_attempts
        self.archive_alert_days = archive_alert_days
        self.stuck_after_days = stuck_after_days
        self.as_of = as_of
        self.max_chunks = max_chunks
        self.alert_notifier = alert_notifier if alert_notifier is not None else PrivacyAlertLogNotifier()

    def execute(self, context: Context) -> dict[str, Any]:
        from privacy_pipeline.batching import chunk_evenly
        from privacy_pipeline.ledger import LedgerEntry
        from privacy_pipeline.report import jobs_jsonl

        now = _as_of(self.as_of)
        run = self.layout.run(run_partition(context), context["run_id"])
        markers = {}
        for key in self.store.list_keys(self.layout.ledger_open_prefix) or []:
            marker = self.store.get_json(key)
            if marker:
                markers[marker["batch_id"]] = marker
        entries = {batch_id: LedgerEntry.from_json(self.store.get_json(self.layout.ledger_batch(batch_id)))
                   for batch_id in sorted(markers)}
        states = self._job_states(entries.values(), markers, now)
        outcome = ReconcileOutcome()
        for batch_id, entry in entries.items():
            final = self._reconcile_batch(entry, markers[batch_id], states, now, run, outcome)
            if len(final) == len(entry.jobs):
                self.store.delete(self.layout.ledger_open(batch_id))
                outcome.closed_batches += 1
            elif final != markers[batch_id].get("final", {}):
                self.store.put_json(self.layout.ledger_open(batch_id), {**markers[batch_id], "final": final})
        if outcome.records:
            self.store.put_bytes(run.jobs_part(0), b"".join(jobs_jsonl(outcome.records)),
                                 content_type="application/x-ndjson")
        retry_keys = sorted(set(outcome.retry_keys))
        summary = {
            "as_of": now.isoformat(),
            "open_batches": len(entries),
            "closed_batches": outcome.closed_batches,
            "decisions": dict(sorted(outcome.decisions.items())),
            "archive_outcomes": dict(sorted(outcome.archive_outcomes.items())),
            "resubmitted_jobs": sorted(outcome.resubmitted),
            "retry_batches": len(retry_keys),
            "gave_up_jobs": sorted(outcome.gave_up),
            "stuck_jobs": sorted(outcome.stuck),
            "archive_overdue_jobs": sorted(outcome.archive_overdue),
            "archive_failures": outcome.archive_failures,
        }
        self.store.put_json(run.reconcile, summary)
        self.log.info("Reconcile: %s", {k: v for k, v in summary.items() if not isinstance(v, list)})
        send_alert(self.alert_notifier, context, kind="content_not_archived", items=summary["archive_overdue_jobs"])
        send_alert(self.alert_notifier, context, kind="stuck_jobs", items=summary["stuck_jobs"])
        send_alert(self.alert_notifier, context, kind="resubmit_cap_reached", items=summary["gave_up_jobs"])
        # The XCom is the retry batches' keys in chunks, for the mapped submit task; the rest is in reconcile.json.
        return chunk_evenly(retry_keys, self.max_chunks) if retry_keys else []

    # -- statuses -------------------------------------------------------------------------------
    def _job_states(self, entries, markers, now: datetime) -> dict[str, Any]:
        """Job id -> JobState for every job not yet final: list endpoint first, detail for the rest."""
        from privacy_pipeline.reconcile import JobState

        wanted: dict[str, dict[str, Any]] = {}
        earliest: dict[str, datetime] = {}
        for entry in entries:
            final = markers[entry.batch_id].get("final", {})
            for job in entry.jobs:
                if job.job_id not in final:
                    wanted[job.job_id] = {"job": job, "regulation": entry.regulation}
                    since = entry.intent_at or now
                    earliest[entry.regulation] = min(earliest.get(entry.regulation, since), since)
        states: dict[str, Any] = {}
        for regulation, since in sorted(earliest.items()):
            for listed in self._iter_window(regulation, since, now):
                ref = wanted.get(str(listed.get("jobId")))
                if ref is not None:
                    states[ref["job"].job_id] = _job_state(JobState, ref["job"], listed)
        for job_id, ref in wanted.items():
            if job_id not in states:  # older than the list's look-back, or not listed: read it alone
                states[job_id] = _job_state(JobState, ref["job"], self._job_detail(job_id))
        return states

    def _iter_window(self, regulation: str, since: datetime, now: datetime) -> Iterator[dict[str, Any]]:
        """Jobs of `regulation` created since `since`, in list windows Adobe accepts (look-back, span)."""
        start = max(since - timedelta(days=1), now - timedelta(days=LIST_LOOKBACK_DAYS)).date()
        while start <= now.date():
            end = min(start + timedelta(days=LIST_SPAN_DAYS), now.date())
            yield from self.hook.iter_jobs(regulation, from_date=start, to_date=end)
            start = end + timedelta(days=1)

    # -- decisions ------------------------------------------------------------------------------
    def _reconcile_batch(self, entry, marker, states, now, run, outcome: ReconcileOutcome) -> dict[str, str]:
        from privacy_pipeline.reconcile import archive_overdue, decide, retry_attempt

        final = dict(marker.get("final", {}))
        attempt = retry_attempt(entry.batch_id)
        errored = []
        for job in entry.jobs:
            if job.job_id in final:
                continue
            state = states[job.job_id]
            archived = state.status == "complete" and job.action == "access" and self._archived(job.job_id)
            decision = decide(state, archived=archived, attempt=attempt, max_attempts=int(self.max_attempts),
                              now=now, stuck_after=timedelta(days=float(self.stuck_after_days)))
            outcome.decisions[decision] += 1
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
                if self._archive_now(entry, job, run, outcome):
                    final[job.job_id] = "archived"
                elif archive_overdue(state, now=now, alert_after=timedelta(days=float(self.archive_alert_days))):
                    outcome.archive_overdue.append(job.job_id)
        if errored:
            final.update(self._resubmit(entry, errored, run, outcome))
        return final

    def _archived(self, job_id: str) -> bool:
        record = self.store.get_json(self.layout.ledger_job(job_id))
        return bool(record and record.get("content_key"))

    def _archive_now(self, entry, job, run, outcome: ReconcileOutcome) -> bool:
        try:
            record = self._archive_job(entry, job, run)
        except PrivacyServiceError as err:
            self.log.warning("Job %s: content could not be archived yet (%s)", job.job_id, type(err).__name__)
            outcome.archive_failures += 1
            return False
        outcome.records.append(record)
        outcome.archive_outcomes[record.get("archive") or "not_complete"] += 1
        return record.get("archive") in ("archived", "already_archived", "quarantined")

    def _resubmit(self, entry, errored, run, outcome: ReconcileOutcome) -> dict[str, str]:
        """Stage a retry batch for the errored jobs without one; returns the jobs now handed over."""
        from privacy_pipeline.batching import dump_batch, load_batch
        from privacy_pipeline.reconcile import retry_batch

        handed_over: dict[str, str] = {}
        fresh = []
        for job in errored:
            record = self.store.get_json(self.layout.ledger_resubmit(job.job_id))
            if record is None:
                fresh.append(job)
                continue
            retry_entry = self.store.get_json(self.layout.ledger_batch(record["retry_batch_id"]))
            if retry_entry and retry_entry.get("state") in HANDED_OVER_STATES:
                handed_over[job.job_id] = f"resubmitted:{record['retry_batch_id']}"
            else:  # staged by an earlier run whose submit did not finish: submit it again (ledger-safe)
                outcome.retry_keys.append(record["retry_batch_key"])
        if fresh:
            if entry.batch_key is None:
                raise RuntimeError(f"ledger entry {entry.batch_id} has no staged batch key to resubmit from")
            batch = retry_batch(load_batch(self.store.get_bytes(entry.batch_key)),
                                [(job.user_key, job.action) for job in fresh])
            key = run.batch(batch.batch_id)
            self.store.put_bytes(key, dump_batch(batch), content_type="application/json")
            for job in fresh:
                self.store.put_json(self.layout.ledger_resubmit(job.job_id), {
                    "job_id": job.job_id, "batch_id": entry.batch_id, "action": job.action,
                    "retry_batch_id": batch.batch_id, "retry_batch_key": key,
                    "staged_at": datetime.now(UTC).isoformat(),
                })
                outcome.resubmitted.append(job.job_id)
            outcome.retry_keys.append(key)
            self.log.info("Batch %s: %d errored job(s) go out again in %s", entry.batch_id, len(fresh), batch.batch_id)
        return handed_over


class ReconcileOutcome:
    """What one reconcile run found and did (ids and counts only)."""

    def __init__(self) -> None:
        self.decisions: Counter = Counter()
        self.archive_outcomes: Counter = Counter()
        self.records: list[dict[str, Any]] = []
        self.retry_keys: list[str] = []
        self.resubmitted: list[str] = []
        self.gave_up: list[str] = []
        self.stuck: list[str] = []
        self.archive_overdue: list[str] = []
        self.archive_failures = 0
        self.closed_batches = 0


def _job_state(factory, job, adobe: dict[str, Any]):
    from privacy_pipeline.ledger import parse_adobe_date

    return factory(job_id=job.job_id, user_key=job.user_key, action=job.action,
                   status=str(adobe.get("status") or "unknown").lower(),
                   created=parse_adobe_date(adobe.get("createdDate")),
                   modified=parse_adobe_date(adobe.get("lastModifiedDate")))


def _as_of(value: str | datetime | None) -> datetime:
    if value in (None, ""):
        return datetime.now(UTC)
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


# ------------------------------------------------------------------------------------ opt-out of sale


class SubmitOptOutsOperator(PrivacyArchiveOperator):
    """
    Send a run's opt-out-of-sale requests to `POST /consent`, each payload once, with evidence in S3.

    Reads the same inputs and CSV contract as the nightly intake; rows with action `opt_out_of_sale`
    become consent payloads (`entities` grouped by namespace, at most `max_values_per_request` values),
    access/delete rows are left to the nightly DAG (counted, not rejected). There is no job and nothing
    to wait for: Adobe's 202 is the evidence, written under the run with the exact body sent and the
    time (`consent/<sha256>.json`, encrypted; identity values never reach the logs). A ledger marker
    per payload hash makes a retried or re-run task skip what Adobe already accepted. A crash between
    the 202 and the marker re-sends that payload once: harmless, an opt-out is a state, not a job.
    """

    template_fields: Sequence[str] = ("input_uri", "archive_uri", *ENCRYPTION_FIELDS)
    ui_color = "#c4f2dc"

    def __init__(
        self,
        *,
        input_uri: str,
        max_values_per_request: int = 1000,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input_uri = input_uri
        self.max_values_per_request = max_values_per_request

    def execute(self, context: Context) -> dict[str, Any]:
        from privacy_pipeline import catalog
        from privacy_pipeline.intake import (
            InputSource,
            IntakeOptions,
            consent_payloads,
            read_requests,
            split_opt_outs,
        )
        from privacy_pipeline.report import write_rejects_csv

        from adobe_privacy.storage import iter_input_objects

        run = self.layout.run(run_partition(context), context["run_id"])
        options = IntakeOptions(default_include=("aepDataLake",),
                                allowed_actions=(*catalog.JOB_ACTIONS, catalog.OPT_OUT_OF_SALE))
        sources = [InputSource(name=name, open=opener)
                   for name, opener in iter_input_objects(self.input_uri, aws_conn_id=self.aws_conn_id)]
        result = read_requests(sources, options)
        job_subjects, opt_outs = split_opt_outs(result.subjects)
        counts: Counter = Counter()
        for payload in consent_payloads(opt_outs, self.max_values_per_request):
            counts[self._send_once(payload, run, context["run_id"])] += 1
        body = io.BytesIO()
        write_rejects_csv(result.rejects, body)
        self.store.put_bytes(run.rejects, body.getvalue(), content_type="text/csv")
        summary = {
            "rows_read": result.rows_read,
            "rows_rejected": len(result.rejects),
            "opt_out_subjects": len(opt_outs),
            "job_subjects_left_to_nightly": len(job_subjects),
            "payloads_sent": counts["sent"],
            "payloads_already_accepted": counts["already_accepted"],
            "rejects_key": self.store.uri(run.rejects),
        }
        self.store.put_json(run.opt_out, summary)
        self.log.info("Opt-out of sale: %s", summary)
        return summary

    def _send_once(self, payload: dict[str, Any], run, run_id: str) -> str:
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
        marker_key = self.layout.ledger_consent(digest)
        if self.store.get_json(marker_key) is not None:
            self.log.info("Consent payload %s was accepted by an earlier run; not sending", digest[:12])
            return "already_accepted"
        self.hook.submit_consent(payload)  # returns only on Adobe's 202; anything else raises
        accepted_at = datetime.now(UTC).isoformat()
        evidence_key = run.consent_evidence(digest)
        values = sum(len(entity["values"]) for entity in payload["entities"])
        self.store.put_json(evidence_key, {"sha256": digest, "status": 202, "accepted_at": accepted_at,
                                           "run_id": run_id, "values": values, "sent": payload})
        self.store.put_json(marker_key, {"sha256": digest, "accepted_at": accepted_at, "values": values,
                                         "evidence_key": evidence_key})
        self.log.info("Consent payload %s accepted (202): %d values in %d namespaces",
                      digest[:12], values, len(payload["entities"]))
        return "sent"


# ------------------------------------------------------------------------------------ Data Hygiene


class SubmitHygieneBatchesOperator(SubmitPrivacyBatchesOperator):
    """`SubmitPrivacyBatchesOperator` for Data Hygiene record deletes: same ledger, budget and recovery.

    Only the API differs: `POST /data/core/hygiene/jobs` with `users` (standard and custom namespaces),
    and recovery from the hygiene list endpoint. Point `archive_uri` at a root of its own so its
    ledger and budget (hygiene has its own Adobe quota) stay apart from privacy jobs.
    """

    def _post_jobs(self, payload: dict):
        return self.hook.create_hygiene_jobs(payload)

    def _listed_jobs(self, regulation: str, from_date, to_date):
        return self.hook.iter_hygiene_jobs(from_date=from_date, to_date=to_date)

    def _payload(self, batch, only: set[tuple[str, str]]) -> dict:
        payload = super()._payload(batch, only)
        return {"companyContexts": payload["companyContexts"], "users": payload["users"]}


class HygieneJobsSensor(BaseSensorOperator):
    """
    Wait for a run's Data Hygiene jobs, polling the hygiene list endpoint (one call per 1000 jobs).

    Runs in `reschedule` mode: between pokes it holds no worker slot, which costs what a deferral
    would at these intervals (minutes), without a second async client for the hygiene API. Jobs still
    open at `timeout` are reported, not failed (like the privacy sensor): `privacy_reconcile`-style
    follow-up reads the ledger.
    """

    template_fields: Sequence[str] = ("submissions", "poll_interval", "wait_timeout")

    def __init__(
        self,
        *,
        submissions: list[dict[str, Any]] | Any,
        poll_interval: float | str = 900,
        wait_timeout: float | str = 6 * 3600,
        adobe_privacy_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.submissions = submissions
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self.adobe_privacy_conn_id = adobe_privacy_conn_id

    def _summary(self) -> dict[str, Any]:
        from privacy_pipeline.report import merge_submissions

        from adobe_privacy.protocol import SummaryBuilder

        window = merge_submissions(materialize(self.submissions))
        job_ids = [job_id for ids in window["jobs_by_regulation"].values() for job_id in ids]
        builder = SummaryBuilder({"hygiene": job_ids})
        if job_ids:
            from adobe_privacy.hooks import PrivacyServiceHook

            hook = PrivacyServiceHook(self.adobe_privacy_conn_id)
            for job in hook.iter_hygiene_jobs(from_date=window["from_date"], to_date=window["to_date"]):
                builder.observe("hygiene", [job])
                if builder.all_seen("hygiene"):
                    break
        return builder.build().as_dict()

    def poke(self, context: Context) -> PokeReturnValue:
        summary = self._summary()
        self.log.info("%d hygiene jobs open; counts %s", summary["open"], summary["counts"])
        return PokeReturnValue(summary["open"] == 0, {"status": "success", **summary})

    def execute(self, context: Context) -> Any:
        self.poke_interval = float(self.poll_interval)
        self.timeout = float(self.wait_timeout)
        try:
            return super().execute(context)
        except AirflowSensorTimeout:
            summary = {"status": "timeout", **self._summary()}
            self.log.warning("%d hygiene jobs still open at the timeout; reporting them", summary["open"])
            return summary


class ArchiveHygieneJobsOperator(ArchivePrivacyJobsOperator):
    """Record each hygiene job's final state (detail read once) in the run's jobs parts; deletes have no content."""

    def _job_detail(self, job_id: str) -> dict[str, Any]:
        return self.hook.get_hygiene_job(job_id)
