"""Operators that orchestrate: submit staged batches exactly once, and archive what the jobs produced.

Both work on a *chunk* of batches (a list of S3 keys) so that a DAG can map over at most a few hundred
chunks even for a million subjects (Airflow's max_map_length is 1024). All I/O goes through
`PrivacyServiceHook` (Adobe) and `PrivacyArchiveStore` (S3); the decisions come from
`privacy_pipeline` (pure logic).
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier, BaseOperator, Context

from adobe_privacy.budget import BUDGET_TEMPLATE, DailyBudgetExhaustedError, DailyJobBudget
from adobe_privacy.deadline_report import write_deadline_outputs
from adobe_privacy.exceptions import PrivacyBackPressureError, PrivacyOutcomeUnknownError
from adobe_privacy.notifiers import PrivacyAlertLogNotifier
from adobe_privacy.protocol import DEFAULT_CONN_ID
from adobe_privacy.sensors import PrivacyJobsSensor
from adobe_privacy.storage import PrivacyArchiveStore

if TYPE_CHECKING:
    # The hook module imports requests and aiohttp (through the HTTP provider): built at run time,
    # never imported while a DAG file is parsed.
    from adobe_privacy.hooks import PrivacyServiceHook

# How far back the list endpoint is searched when recovering jobs of an earlier attempt. Adobe's list
# look-back is 45 days and its span at most 30; an attempt's intent is never older than a few days.
RECOVERY_WINDOW_DAYS = 29

# A 429 on POST /jobs means Adobe refused the request unprocessed, so resending it is safe: short waits
# are sat out in the task. A longer wait, the daily cap or 1030-400 defers the batch to the next run.
RATE_LIMIT_ATTEMPTS = 5
MAX_RATE_LIMIT_WAIT_SECONDS = 60.0


# Templated on every operator that writes to S3, so a deployment sets them once as Airflow Variables.
ENCRYPTION_FIELDS = ("sse", "kms_key_id")


class PrivacyArchiveOperator(BaseOperator):
    """
    Base of every operator here: the Adobe connection, the archive root and how S3 writes are encrypted.

    Like the Amazon provider's `AwsBaseOperator`, it owns the connection arguments once, so each concrete
    operator declares only its own. The hooks are built lazily, never in `__init__`: operators are
    constructed at every DAG parse.

    :param archive_uri: `s3://bucket/prefix` root of the ledger and the run outputs (templated).
    :param adobe_privacy_conn_id: the `adobe_privacy_service` connection.
    :param aws_conn_id: the Amazon connection for S3.
    :param sse: server-side encryption of every write, `AES256` or `aws:kms` (templated).
    :param kms_key_id: the KMS key for `aws:kms` (templated).
    """

    def __init__(
        self,
        *,
        archive_uri: str,
        adobe_privacy_conn_id: str = DEFAULT_CONN_ID,
        aws_conn_id: str | None = "aws_default",
        sse: str = "AES256",
        kms_key_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.archive_uri = archive_uri
        self.adobe_privacy_conn_id = adobe_privacy_conn_id
        self.aws_conn_id = aws_conn_id
        self.sse = sse
        self.kms_key_id = kms_key_id

    @cached_property
    def store(self) -> PrivacyArchiveStore:
        return PrivacyArchiveStore(
            self.archive_uri, aws_conn_id=self.aws_conn_id, sse=self.sse, kms_key_id=self.kms_key_id or None
        )

    @cached_property
    def hook(self) -> PrivacyServiceHook:
        from adobe_privacy.hooks import PrivacyServiceHook

        return PrivacyServiceHook(adobe_privacy_conn_id=self.adobe_privacy_conn_id)

    @cached_property
    def layout(self):
        from privacy_pipeline.layout import ArchiveLayout

        return ArchiveLayout(self.store.prefix)


class SubmitPrivacyBatchesOperator(PrivacyArchiveOperator):
    """
    Submit each staged batch of a chunk to `POST /jobs` exactly once.

    Per batch: a `submitted` ledger entry means done (no call at all). An `intent` entry means an
    earlier attempt may have posted: its jobs are recovered from the list endpoint by userKey and
    action before anything is sent, and only what is still missing is posted. Otherwise the intent is
    written first, then the POST, then the job ids. A POST whose outcome is unknown (timeout, dropped
    connection, 5xx) is never resent blindly: the list endpoint decides. Back-pressure from Adobe
    (1030-400, the daily cap) marks this and the chunk's remaining batches `deferred`, for the next
    run to carry, without failing this one. So does our own daily job budget (Airflow Variable
    `privacy_daily_job_budget`, default 20,000, shared by every DAG that creates jobs): each batch
    reserves its jobs before its intent is written, and a batch that does not fit is deferred unposted.
    A submitted batch gets an `open` marker, the index `privacy_reconcile` works from.

    Returns a small summary: job ids by regulation (for the sensor), counts, and the submission window.
    """

    template_fields: Sequence[str] = ("batch_keys", "archive_uri", "dry_run", "daily_job_budget",
                                      *ENCRYPTION_FIELDS)
    ui_color = "#f2d0c4"

    def __init__(
        self,
        *,
        batch_keys: list[str],
        dry_run: bool | str = False,
        daily_job_budget: int | str | None = BUDGET_TEMPLATE,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.daily_job_budget = daily_job_budget
        self.batch_keys = batch_keys
        self.dry_run = dry_run

    def execute(self, context: Context) -> dict[str, Any]:
        from privacy_pipeline.batching import load_batch

        summary = SubmissionSummary(chunk=context["ti"].map_index)
        back_pressure: PrivacyBackPressureError | None = None
        for batch_key in self.batch_keys:
            batch = load_batch(self.store.get_bytes(batch_key))
            if _as_bool(self.dry_run):
                summary.add_dry_run(batch)
                continue
            if back_pressure is not None:
                self._defer(batch, batch_key, reason=str(back_pressure))
                summary.add_deferred(batch, over_budget=isinstance(back_pressure, DailyBudgetExhaustedError))
                continue
            try:
                entry = self._submit_once(batch, batch_key, summary, context["run_id"])
            except PrivacyBackPressureError as err:
                if isinstance(err, DailyBudgetExhaustedError):
                    self.log.warning("Daily job budget spent (%s); deferring the rest of this chunk", err)
                else:
                    self.log.warning("Adobe asked to slow down (%s); deferring the rest of this chunk", err)
                    self.budget.release(batch.batch_id)  # refused: nothing was created for it
                back_pressure = err
                self._defer(batch, batch_key, reason=str(err))
                summary.add_deferred(batch, over_budget=isinstance(err, DailyBudgetExhaustedError))
                continue
            summary.add_entry(entry)
            self.store.delete(self.layout.ledger_deferred(batch.batch_id))
            self._mark_open(entry)
        self.log.info(
            "Chunk done: %d batches submitted (%d POSTs), %d deferred, %d jobs",
            summary.submitted_batches,
            summary.api_posts,
            summary.deferred_batches,
            summary.jobs,
        )
        return summary.as_xcom()

    # -- exactly once -----------------------------------------------------------------------------
    def _submit_once(self, batch, batch_key: str, summary: SubmissionSummary, run_id: str):
        from privacy_pipeline.ledger import LedgerEntry

        ledger_key = self.layout.ledger_batch(batch.batch_id)
        existing = self.store.get_json(ledger_key)
        entry = LedgerEntry.from_json(existing) if existing else None
        if entry is not None and entry.state == "submitted":
            self.log.info("Batch %s already submitted (%d jobs); not posting", batch.batch_id, len(entry.jobs))
            return entry
        if entry is not None and entry.state == "intent":
            entry = self._recover(entry, batch)
            if entry.state == "submitted":
                self.store.put_json(ledger_key, entry.to_json())
                return entry
        entry = self._new_or_resumed_intent(entry, batch, batch_key)
        missing = self._missing_user_actions(entry)
        remaining = self.budget.reserve(batch.batch_id, len(missing))  # before the intent: a miss defers cleanly
        self.log.info("Batch %s reserved %d jobs of today's budget; %d left", batch.batch_id, len(missing), remaining)
        entry = entry.with_post(run_id)
        self.store.put_json(ledger_key, entry.to_json())

        def count_resend() -> None:
            nonlocal entry
            entry = entry.with_post(run_id)
            self.store.put_json(ledger_key, entry.to_json())

        try:
            created = self._post_paced(self._payload(batch, missing), before_resend=count_resend)
        except PrivacyOutcomeUnknownError:
            summary.api_posts += 1
            self.log.warning("Outcome of POST for batch %s unknown; reconciling via the list endpoint", batch.batch_id)
            entry = self._recover(entry, batch)
            self.store.put_json(ledger_key, entry.to_json())
            if entry.state != "submitted":
                # Not visible (yet): leave the intent; the task retry recovers again before any POST.
                raise
            return entry
        summary.api_posts += 1
        entry = entry.with_jobs(created, now=_utcnow())
        self.store.put_json(ledger_key, entry.to_json())
        return entry

    @cached_property
    def budget(self) -> DailyJobBudget:
        from privacy_pipeline.budget import parse_budget

        return DailyJobBudget(self.store, self.layout, parse_budget(self.daily_job_budget))

    def _mark_open(self, entry) -> None:
        """Index the batch for `privacy_reconcile` (idempotent; reconcile removes it when all is final)."""
        self.store.put_json(
            self.layout.ledger_open(entry.batch_id),
            {"batch_id": entry.batch_id, "regulation": entry.regulation, "jobs": len(entry.jobs),
             "submitted_at": entry.submitted_at.isoformat() if entry.submitted_at else None},
        )

    def _recover(self, entry, batch):
        from privacy_pipeline.ledger import recover_jobs

        since = entry.intent_at - timedelta(days=1)
        listed = self._listed_jobs(entry.regulation, since.date(), (since + timedelta(days=RECOVERY_WINDOW_DAYS)).date())
        found, missing = recover_jobs(entry, listed)
        self.log.info(
            "Batch %s: recovered %d jobs from the list endpoint, %d still missing",
            batch.batch_id,
            len(found),
            len(missing),
        )
        return entry.with_recovered(found, missing, now=_utcnow())

    def _post_paced(self, payload: dict, *, before_resend: Callable[[], None] = lambda: None):
        """POST until accepted, waiting out short rate limits (429); other back-pressure goes to the caller."""
        attempt = 1
        while True:
            try:
                return self._post_jobs(payload)
            except PrivacyBackPressureError as err:
                wait = _rate_limit_wait(err, attempt)
                if wait is None:
                    raise
                self.log.warning("POST rate-limited (attempt %d/%d); resending in %.1f s", attempt,
                                 RATE_LIMIT_ATTEMPTS, wait)
                time.sleep(wait)
                before_resend()
                attempt += 1

    # Seams for job APIs with the same exactly-once protocol (the Data Hygiene operators override them).
    def _post_jobs(self, payload: dict):
        return self.hook.create_jobs(payload)

    def _listed_jobs(self, regulation: str, from_date, to_date):
        return self.hook.iter_jobs(regulation, from_date=from_date, to_date=to_date)

    def _new_or_resumed_intent(self, entry, batch, batch_key: str):
        from privacy_pipeline.ledger import LedgerEntry

        if entry is None or entry.state == "deferred":
            return LedgerEntry.intent_for(batch, batch_key=batch_key, now=_utcnow(), previous=entry)
        return entry.with_attempt(now=_utcnow())

    @staticmethod
    def _missing_user_actions(entry) -> set[tuple[str, str]]:
        done = {(job.user_key, job.action) for job in entry.jobs}
        return {tuple(ua) for ua in entry.user_actions} - done

    def _payload(self, batch, only: set[tuple[str, str]]) -> dict:
        from privacy_pipeline.batching import batch_payload

        payload = batch_payload(batch, self.hook.org_id)
        users = []
        for user in payload["users"]:
            actions = [a for a in user["action"] if (user["key"], a) in only]
            if actions:
                users.append({**user, "action": actions})
        return {**payload, "users": users}

    def _defer(self, batch, batch_key: str, *, reason: str) -> None:
        """List a batch for the next run to carry; its ledger entry says `deferred` unless a POST may have gone out.

        A batch refused at its POST already has an intent on record: the intent stays (the next run
        recovers from the list endpoint before posting), but the batch must still be listed, or no later
        run would ever submit it.
        """
        from privacy_pipeline.ledger import LedgerEntry

        ledger_key = self.layout.ledger_batch(batch.batch_id)
        existing = self.store.get_json(ledger_key)
        entry = LedgerEntry.from_json(existing) if existing else None
        if entry is not None and entry.state == "submitted":
            return  # done: nothing to carry
        if entry is None or entry.state == "deferred":
            self.store.put_json(
                ledger_key,
                LedgerEntry.deferred_for(batch, batch_key=batch_key, now=_utcnow(), reason=reason).to_json(),
            )
        self.store.put_json(
            self.layout.ledger_deferred(batch.batch_id),
            {"batch_id": batch.batch_id, "key": batch_key, "regulation": batch.shape.regulation,
             "subjects": len(batch.subjects), "reason": reason},
        )


class SubmissionSummary:
    """What one submit task reports through XCom: ids and counts, never identities."""

    def __init__(self, chunk: int) -> None:
        self.chunk = max(chunk, 0)
        self.jobs_by_regulation: dict[str, list[str]] = defaultdict(list)
        self.batch_ids: list[str] = []
        self.submitted_batches = 0
        self.deferred_batches = 0
        self.deferred_subjects = 0
        self.over_budget_batches = 0
        self.over_budget_subjects = 0
        self.submitted_subjects = 0
        self.api_posts = 0
        self.jobs = 0
        self.earliest: datetime | None = None
        self.dry_run_subjects = 0

    def add_entry(self, entry) -> None:
        self.submitted_batches += 1
        self.batch_ids.append(entry.batch_id)
        self.jobs_by_regulation[entry.regulation].extend(job.job_id for job in entry.jobs)
        self.jobs += len(entry.jobs)
        self.submitted_subjects += len({key for key, _action in entry.user_actions})
        first = entry.intent_at
        self.earliest = first if self.earliest is None else min(self.earliest, first)

    def add_deferred(self, batch, *, over_budget: bool = False) -> None:
        self.deferred_batches += 1
        self.deferred_subjects += len(batch.subjects)
        if over_budget:
            self.over_budget_batches += 1
            self.over_budget_subjects += len(batch.subjects)

    def add_dry_run(self, batch) -> None:
        self.dry_run_subjects += len(batch.subjects)

    def as_xcom(self) -> dict[str, Any]:
        # The list endpoint's window: from the day before the first intent, 29 days on (Adobe allows 30).
        window_start = (self.earliest or _utcnow()) - timedelta(days=1)
        return {
            "chunk": self.chunk,
            "jobs_by_regulation": dict(self.jobs_by_regulation),
            "from_date": window_start.date().isoformat(),
            "to_date": (window_start + timedelta(days=RECOVERY_WINDOW_DAYS)).date().isoformat(),
            "batch_ids": self.batch_ids,
            "submitted_batches": self.submitted_batches,
            "deferred_batches": self.deferred_batches,
            "deferred_subjects": self.deferred_subjects,
            "over_budget_batches": self.over_budget_batches,
            "over_budget_subjects": self.over_budget_subjects,
            "submitted_subjects": self.submitted_subjects,
            "api_posts": self.api_posts,
            "jobs": self.jobs,
            "dry_run_subjects": self.dry_run_subjects,
        }


def _rate_limit_wait(error: PrivacyBackPressureError, attempt: int) -> float | None:
    """Seconds to wait before resending a refused POST; None when the batch should be deferred instead."""
    if error.status != 429 or error.daily_limit or attempt >= RATE_LIMIT_ATTEMPTS:
        return None
    wait = error.retry_after if error.retry_after is not None else float(2**attempt)
    return wait if wait <= MAX_RATE_LIMIT_WAIT_SECONDS else None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class ArchivePrivacyJobsOperator(PrivacyArchiveOperator):
    """
    Archive what a chunk's jobs produced: each complete access job's ZIP, and every job's record.

    Each job's detail is read once (status, product responses, download link). A ZIP streams to a
    temporary file while its sha256 is computed (memory stays flat), is inspected (valid ZIP, no absolute or `..` names, uncompressed size under the cap), then
    uploaded (multipart, encrypted) to `content/` or, when it fails inspection, `quarantine/`. An
    archive record per job in the ledger makes a retry skip what is already archived.

    Jobs are archived `max_parallel_jobs` at a time, each thread with its own hook: every job costs a
    round trip or two to Adobe and one to S3, and done one by one that latency is the whole run time.
    Disk holds up to `max_parallel_jobs` ZIPs at once.

    Writes one `jobs/part-<chunk>.jsonl` (no identity values: product `results` are reduced to counts)
    and returns counts for the report.
    """

    template_fields: Sequence[str] = ("batch_ids", "archive_uri", *ENCRYPTION_FIELDS)
    ui_color = "#c4e1f2"

    def __init__(
        self,
        *,
        batch_ids: list[str],
        chunk_index: int | str,
        max_uncompressed_bytes: int = 2 * 1024**3,
        max_parallel_jobs: int = 8,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch_ids = batch_ids
        self.chunk_index = chunk_index
        self.max_uncompressed_bytes = max_uncompressed_bytes
        self.max_parallel_jobs = max_parallel_jobs

    def execute(self, context: Context) -> dict[str, Any]:
        from privacy_pipeline.ledger import LedgerEntry
        from privacy_pipeline.report import jobs_jsonl

        run = self.layout.run(run_partition(context), context["run_id"])
        entries = []
        for batch_id in self.batch_ids:
            document = self.store.get_json(self.layout.ledger_batch(batch_id))
            if document is None:
                raise RuntimeError(f"ledger entry for batch {batch_id} is missing")
            entries.append(LedgerEntry.from_json(document))
        work = [(entry, job) for entry in entries for job in entry.jobs]
        with ThreadPoolExecutor(max_workers=max(1, int(self.max_parallel_jobs)), thread_name_prefix="archive") as pool:
            # map() keeps the input order, so the part file is the same whatever the timing.
            records = list(pool.map(lambda item: self._archive_job(item[0], item[1], run), work))
        counts: dict[str, int] = defaultdict(int)
        for record in records:
            counts[f"status:{record['status']}"] += 1
            if record.get("archive") in ("archived", "quarantined", "already_archived"):
                counts[record["archive"]] += 1
        self.store.put_bytes(
            run.jobs_part(int(self.chunk_index)), b"".join(jobs_jsonl(records)), content_type="application/x-ndjson"
        )
        self.log.info("Archived chunk %s: %s", self.chunk_index, dict(counts))
        return {"jobs": len(records), **counts}

    @property
    def hook(self) -> PrivacyServiceHook:
        """One hook per thread: jobs are archived concurrently, and an HTTP session is not shared."""
        from adobe_privacy.hooks import PrivacyServiceHook

        local = self.__dict__.setdefault("_thread_hooks", threading.local())
        if not hasattr(local, "hook"):
            local.hook = PrivacyServiceHook(adobe_privacy_conn_id=self.adobe_privacy_conn_id)
        return local.hook

    def _archive_job(self, entry, job, run) -> dict[str, Any]:
        # Product responses and the download link exist only on the detail endpoint, so each job is
        # read once here; waiting used the list endpoint, one call per 1000 jobs.
        detail = self._job_detail(job.job_id)
        record: dict[str, Any] = {
            "jobId": job.job_id,
            "userKey": job.user_key,
            "action": job.action,
            "regulation": entry.regulation,
            "batchId": entry.batch_id,
            "status": detail.get("status", "unknown"),
            "productResponses": [_product_outcome(p) for p in detail.get("productResponses") or []],
        }
        if record["status"] != "complete" or job.action != "access":
            return record  # open jobs are reported as open; the reconcile DAG picks them up later
        previous = self.store.get_json(self.layout.ledger_job(job.job_id))
        if previous and previous.get("content_key"):
            record.update({**_archive_fields(previous), "archive": "already_archived"})
            return record
        archived = self._archive_content(detail, job.job_id, run)
        self.store.put_json(self.layout.ledger_job(job.job_id), archived)
        record.update({**_archive_fields(archived), "archive": archived["outcome"]})
        return record

    def _job_detail(self, job_id: str) -> dict[str, Any]:
        return self.hook.get_job(job_id)

    def _archive_content(self, detail: dict, job_id: str, run) -> dict[str, Any]:
        from privacy_pipeline.archive import HashingWriter, inspect_zip

        with tempfile.TemporaryDirectory(prefix="privacy-zip-") as tmp:
            path = Path(tmp) / f"{job_id}.zip"
            with open(path, "wb") as raw, self.hook.stream_content(detail) as chunks:
                writer = HashingWriter(raw)
                for chunk in chunks:
                    writer.write(chunk)
            verdict = inspect_zip(path, self.max_uncompressed_bytes)
            key = run.content(job_id) if verdict.ok else run.quarantine(job_id)
            if not verdict.ok:
                self.log.warning("Content of job %s quarantined: %s", job_id, verdict.reason)
            self.store.put_file(path, key, content_type="application/zip")
        return {
            "job_id": job_id,
            "content_key": key,
            "sha256": writer.sha256,
            "size": writer.size,
            "outcome": "archived" if verdict.ok else "quarantined",
            "reason": verdict.reason,
            "archived_at": _utcnow().isoformat(),
        }


def _archive_fields(archived: dict[str, Any]) -> dict[str, Any]:
    return {
        "contentKey": archived["content_key"],
        "sha256": archived["sha256"],
        "size": archived["size"],
        "quarantineReason": archived.get("reason"),
    }


def _product_outcome(response: dict[str, Any]) -> dict[str, Any]:
    """A product response without identity values: `results` lists become counts."""
    status = response.get("productStatusResponse") or {}
    results = status.get("results") or {}
    return {
        "product": response.get("product"),
        "status": status.get("status"),
        "responseMsgCode": status.get("responseMsgCode"),
        "message": status.get("message"),
        "results": {name: len(values) for name, values in results.items() if isinstance(values, list)},
    }


class PrivacyIntakeOperator(PrivacyArchiveOperator):
    """
    Take in a run's requests: read, validate, batch, stage; return chunks of batch keys (the XCom).

    Reads every input object under `input_uri` (a local path or an s3:// prefix). An input whose
    content hash the ledger already holds is skipped (a file dropped twice is submitted once); a dry
    run marks no input as taken, so the real run that follows it still submits the file. Bad rows
    go to `rejects.csv` with their row, field and reason. Batches (≤ `max_subjects` subjects of one job
    shape) are staged as JSON under the run, and batches an earlier run had to defer (Adobe
    back-pressure) are carried in. The XCom is keys and counts only, chunked to at most `max_chunks` so
    the mapped tasks downstream stay far under `max_map_length` (1024) even for a million subjects.

    Idempotent per run: a retry (or a cleared rerun) of the same run returns what the first attempt
    recorded in `intake.json` instead of reading again. Counts are in `intake.json`, not XCom.
    """

    template_fields: Sequence[str] = (
        "input_uri",
        "archive_uri",
        "default_include",
        "map_legacy_regulations",
        "dry_run",
        "max_subjects",
        *ENCRYPTION_FIELDS,
    )
    ui_color = "#e8f2c4"

    def __init__(
        self,
        *,
        input_uri: str,
        default_include: list[str] | str,
        map_legacy_regulations: bool | str = False,
        allowed_actions: Sequence[str] | None = None,
        max_subjects: int = 1000,
        max_chunks: int = 16,
        min_batches_per_chunk: int = 8,
        dry_run: bool | str = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.dry_run = dry_run
        self.input_uri = input_uri
        self.default_include = default_include
        self.map_legacy_regulations = map_legacy_regulations
        self.allowed_actions = allowed_actions
        self.max_subjects = max_subjects
        self.max_chunks = max_chunks
        self.min_batches_per_chunk = min_batches_per_chunk

    def execute(self, context: Context) -> dict[str, Any]:
        from privacy_pipeline import catalog
        from privacy_pipeline.batching import chunk_evenly, dump_batch, plan_batches
        from privacy_pipeline.intake import InputSource, IntakeOptions, read_requests, split_opt_outs
        from privacy_pipeline.report import write_rejects_csv

        from adobe_privacy.storage import iter_input_objects

        run = self.layout.run(run_partition(context), context["run_id"])
        recorded = self.store.get_json(run.intake)
        if recorded is not None:
            self.log.info("Intake of this run was recorded already; reusing %s", run.intake)
            self._mark_taken_in(recorded["sources"], run.root)  # the first try may have died before it did
            return recorded["chunks"]

        # The shared inbox also carries opt-out-of-sale rows: they are privacy_opt_out's, so they are
        # counted as routed there, not rejected (unless this DAG names its own allowed actions).
        options = IntakeOptions(
            default_include=tuple(_as_list(self.default_include)),
            map_legacy_regulations=_as_bool(self.map_legacy_regulations),
            allowed_actions=tuple(self.allowed_actions or (*catalog.JOB_ACTIONS, catalog.OPT_OUT_OF_SALE)),
        )
        fresh, skipped = self._new_inputs(iter_input_objects(self.input_uri, aws_conn_id=self.aws_conn_id))
        # One read over every new file, so a request_id reused across two files is a reject, not a crash.
        result = read_requests([InputSource(name=name, open=opener) for name, opener, _digest in fresh], options)
        rejects, rows_read = result.rejects, result.rows_read
        sources = [{"name": s.name, "sha256": s.sha256, "rows_read": s.rows_read, "format": s.format}
                   for s in result.sources]
        # Columns all the way: plan_batches and dump_batch never build a Subject per input row.
        subjects, opt_outs = split_opt_outs(result.subjects)
        batches = plan_batches(subjects, max_subjects=self.max_subjects)
        staged = []
        for batch in batches:
            key = run.batch(batch.batch_id)
            self.store.put_bytes(key, dump_batch(batch), content_type="application/json")
            staged.append({
                "batch_id": batch.batch_id,
                "key": key,
                "regulation": batch.shape.regulation,
                "subjects": len(batch.subjects),
                "rows": batch.rows_total,
                "jobs_expected": batch.jobs_expected,
            })
        carried = self._carried_batches(exclude={b["batch_id"] for b in staged})

        with tempfile.SpooledTemporaryFile(max_size=8 * 1024**2) as buffer:
            write_rejects_csv(rejects, buffer)
            buffer.seek(0)
            self.store.put_fileobj(buffer, run.rejects, content_type="text/csv")

        keys = [b["key"] for b in staged] + [c["key"] for c in carried]
        # Enough chunks to submit in parallel, few enough that task overhead does not dominate.
        wanted = min(self.max_chunks, -(-len(keys) // self.min_batches_per_chunk))
        chunks = chunk_evenly(keys, wanted) if keys else []
        self._list_until_submitted(staged)
        self.store.put_json(run.intake, {
            "chunks": chunks,
            "sources": sources,
            "skipped_sources": skipped,
            "batches": staged,
            "carried": carried,
            "rows_read": rows_read,
            "rows_rejected": len(rejects),
            "rows_in_subjects": subjects.row_total(),
            "subjects": len(subjects),
            "rows_routed_to_opt_out": opt_outs.row_total(),
            "subjects_routed_to_opt_out": len(opt_outs),
            "rejects_key": run.rejects,
        })
        # Only now are the inputs marked taken: a crash before this line re-reads them next time.
        self._mark_taken_in(sources, run.root)
        self.log.info(
            "Intake: %d rows read, %d rejected, %d subjects in %d batches (+%d carried), %d opt-out subjects "
            "left to privacy_opt_out, %d inputs skipped",
            rows_read, len(rejects), len(subjects), len(staged), len(carried), len(opt_outs), len(skipped),
        )
        return chunks

    def _new_inputs(self, objects) -> tuple[list[tuple[str, Any, str]], list[dict[str, str]]]:
        """Split input objects into those not taken in yet and those an earlier run took in (by sha256).

        Hashing streams each object once before it is parsed; reading the new ones together afterwards
        costs a second read, which is what lets intake check keys across files.
        """
        fresh, skipped = [], []
        for name, opener in objects:
            digest = hashlib.sha256()  # of the stored bytes, as intake's own SourceSummary.sha256
            with closing(opener()) as stream:
                while chunk := stream.read(8 * 1024**2):
                    digest.update(chunk)
            sha256 = digest.hexdigest()
            if self.store.get_json(self.layout.ledger_input(sha256)) is not None:
                self.log.info("Input %s (sha256 %s) was taken in by an earlier run; skipping", name, sha256)
                skipped.append({"name": name, "sha256": sha256})
            else:
                fresh.append((name, opener, sha256))
        return fresh, skipped

    def _list_until_submitted(self, staged: list[dict[str, Any]]) -> None:
        """Give every staged batch a carry marker, which the submit task deletes once the batch is submitted.

        Written before intake.json (so a retry that reuses it finds them) and before the input is marked
        taken in: if this run's submit fails for good, the next run carries the batches (recovering any
        POST that went out from the list endpoint first) instead of no run ever submitting them. Not on
        a dry run, which must leave nothing for a later run to act on.
        """
        if _as_bool(self.dry_run):
            return
        for batch in staged:
            self.store.put_json(self.layout.ledger_deferred(batch["batch_id"]), {
                **{name: batch[name] for name in ("batch_id", "key", "regulation", "subjects", "jobs_expected")},
                "reason": "staged; carried by a later run unless this run submits it",
            })

    def _mark_taken_in(self, sources: list[dict[str, Any]], run_root: str) -> None:
        """Record each input's content hash so later runs skip the same file (idempotent; not on a dry run)."""
        if _as_bool(self.dry_run):
            return
        for source in sources:
            self.store.put_json(self.layout.ledger_input(source["sha256"]), {**source, "run_root": run_root})

    def _carried_batches(self, exclude: set[str]) -> list[dict[str, Any]]:
        carried = []
        for key in self.store.list_keys(self.layout.ledger_deferred_prefix) or []:
            marker = self.store.get_json(key)
            if marker and marker["batch_id"] not in exclude:
                carried.append(marker)
        return carried


class PrivacyRunReportOperator(PrivacyArchiveOperator):
    """
    Write the run's `jobs.jsonl` and `report.json`, and fail loudly when the counts do not add up.

    `jobs.jsonl` is the concatenation of the archive tasks' parts (streamed part by part). The report
    is written before the accounting check, so a failed check still leaves the evidence behind.
    Legal deadlines: each subject's due date (`received_at` + its regulation's window, else
    `deadline_default_days`) gives `report["deadlines"]` (overdue and due-within-7-days keys), a chart
    `deadlines.png` + `deadlines.html` beside report.json, and `overdue_notifier` fires on overdue subjects.
    """

    template_fields: Sequence[str] = ("archive_uri", "submissions", "deadline_default_days", *ENCRYPTION_FIELDS)
    ui_color = "#d9c4f2"

    def __init__(
        self,
        *,
        submissions: list[dict[str, Any]] | Any,
        deadline_default_days: int | str = 30,
        overdue_notifier: BaseNotifier | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.submissions = submissions
        self.deadline_default_days = deadline_default_days
        self.overdue_notifier = overdue_notifier if overdue_notifier is not None else PrivacyAlertLogNotifier()

    def execute(self, context: Context) -> dict[str, Any]:
        import json

        from privacy_pipeline.report import AccountingError, build_report, check_accounting

        run = self.layout.run(run_partition(context), context["run_id"])
        intake = self.store.get_json(run.intake)
        parts = sorted(self.store.list_keys(run.jobs_parts_prefix) or [])
        records = []
        with tempfile.SpooledTemporaryFile(max_size=16 * 1024**2) as jobs_file:
            for part in parts:
                body = self.store.get_bytes(part) or b""
                jobs_file.write(body)
                records.extend(json.loads(line) for line in body.splitlines() if line.strip())
            jobs_file.seek(0)
            self.store.put_fileobj(jobs_file, run.jobs, content_type="application/x-ndjson")
        submissions = [s for s in materialize(self.submissions) if s]
        deadlines = write_deadline_outputs(self.store, run, intake, records, context=context,
                                           default_days=int(self.deadline_default_days),
                                           notifier=self.overdue_notifier)
        report = build_report(
            intake=intake,
            submissions=submissions,
            job_records=records,
            rejects_key=self.store.uri(run.rejects),
            jobs_key=self.store.uri(run.jobs),
            logical_date=run_partition(context),
            run_id=context["run_id"],
            deadlines=deadlines,
            api_posts=_posts_of_run(self.store, self.layout, intake, context["run_id"]),
        )
        try:
            check_accounting(report)
        except AccountingError as err:
            report["accounting_errors"] = err.problems
            self.store.put_json(run.report, report)
            raise
        self.store.put_json(run.report, report)
        self.log.info("Report written to %s: %s", self.store.uri(run.report), _headline(report))
        return {"report_key": run.report, **_headline(report)}


def _posts_of_run(store, layout, intake: dict[str, Any] | None, run_id: str) -> int:
    """POST /jobs requests this run sent, from the ledger: every try of every submit task counts."""
    from privacy_pipeline.ledger import LedgerEntry

    batch_ids = {b["batch_id"] for b in (intake or {}).get("batches", [])}
    batch_ids |= {c["batch_id"] for c in (intake or {}).get("carried", [])}
    total = 0
    for batch_id in sorted(batch_ids):
        document = store.get_json(layout.ledger_batch(batch_id))
        if document is not None:
            total += LedgerEntry.from_json(document).posts.get(run_id, 0)
    return total


def _headline(report: dict[str, Any]) -> dict[str, Any]:
    names = ("rows_read", "rows_rejected", "subjects_submitted", "jobs_created", "api_posts", "content_archived")
    return {name: report.get(name) for name in names}


def run_partition(context: Context) -> str:
    """The day a run's outputs are filed under: its logical date, or when it ran if it has none.

    A manual run triggered from the UI or the REST API with `logical_date: null` has no `ds`.
    """
    moment = context.get("logical_date") or context["dag_run"].run_after
    return moment.date().isoformat()


def _as_list(value: list[str] | str | None) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.replace("|", ",").split(",") if v.strip()]
    return list(value)


def _as_bool(value: bool | str) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


class PrivacyRunJobsSensor(PrivacyJobsSensor):
    """
    Wait for every job a run submitted, with one sensor (and so one trigger) for the whole run.

    Takes the submit tasks' summaries, not job ids: the merge happens here at run time, so the list
    endpoint is polled once per regulation per cycle for the run instead of once per submit chunk.
    `poll_interval` and `wait_timeout` are templated (a manual run's form can set them); the parent
    sensor's `poke_interval` and `timeout` are set from them before the first poke.
    """

    template_fields: Sequence[str] = (*PrivacyJobsSensor.template_fields, "submissions", "poll_interval",
                                      "wait_timeout")

    def __init__(
        self,
        *,
        submissions: list[dict[str, Any]] | Any,
        poll_interval: float | str = 900,
        wait_timeout: float | str = 6 * 3600,
        **kwargs: Any,
    ) -> None:
        super().__init__(jobs_by_regulation={}, **kwargs)
        self.submissions = submissions
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout

    def execute(self, context: Context) -> Any:
        from privacy_pipeline.report import merge_submissions

        window = merge_submissions(materialize(self.submissions))
        self.jobs_by_regulation = window["jobs_by_regulation"]
        self.from_date, self.to_date = window["from_date"], window["to_date"]
        self.poke_interval = float(self.poll_interval)
        self.timeout = float(self.wait_timeout)
        if not any(self.jobs_by_regulation.values()):
            self.log.info("This run submitted no jobs; nothing to wait for")
            return {"status": "success", "counts": {}, "open": 0, "error_job_ids": []}
        return super().execute(context)


def materialize(values: Any) -> list[Any]:
    """A mapped task's XCom list, read by index (iterating it probes one index past the end and logs a 404)."""
    if values is None:
        return []
    if isinstance(values, dict):
        return [values]
    return [values[i] for i in range(len(values))]
