"""The archive loop: one class that turns a job's final state into a record and its content into S3 objects.

Used (composed, not inherited) by the nightly archive step, reconcile and Data Hygiene. Per job: the
detail is read once (status, product responses, download link); a complete access job's ZIP streams to
a private spool file while its sha256 is computed (memory stays flat), is inspected, then uploaded
(multipart, encrypted) to `content/` or, when it fails inspection, `quarantine/`. The job's archive
record in the ledger says which, so a retry never archives twice and never reports quarantined content
as archived.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from privacy_pipeline.job_ids import checked_job_id
from privacy_pipeline.layout import RunLayout
from privacy_pipeline.spool import sweep_stale_spools

from adobe_privacy.storage import pooled

if TYPE_CHECKING:
    from privacy_pipeline.clock import Clock
    from privacy_pipeline.ledger import JobRef, LedgerEntry

    from adobe_privacy.hooks import PrivacyServiceHook
    from adobe_privacy.ledger import PrivacyLedger
    from adobe_privacy.storage import PrivacyArchiveStore

log = logging.getLogger(__name__)

#: Outcomes of a job's content in its record: stored (either place) or found stored by an earlier try.
ARCHIVE_OUTCOMES = ("archived", "quarantined", "already_archived", "already_quarantined")
#: Jobs archived at once by default: the loop waits on Adobe and S3 round trips, not on the CPU.
DEFAULT_PARALLEL_JOBS = 32
#: The bound on `max_parallel_jobs` (threads, sockets, and spool files on disk at once).
MAX_PARALLEL_JOBS = 64
#: Part uploads per job at once (a large ZIP's multipart upload).
PARTS_PER_JOB = 4


class JobArchiver:
    """Archive jobs' records and content; one hook per thread.

    :param store: the encrypted S3 store.
    :param ledger: where each job's archive record is kept.
    :param hook_factory: builds a hook (one per worker thread: an HTTP session is not shared).
    :param clock: the time written into archive records.
    :param hygiene: Data Hygiene jobs (detail from the hygiene API; deletes have no content).
    :param max_uncompressed_bytes: a ZIP that expands beyond this is quarantined.
    :param max_parallel_jobs: jobs archived at once (each a round trip or two to Adobe and a few to S3),
        at most `MAX_PARALLEL_JOBS`.
    """

    def __init__(self, store: PrivacyArchiveStore, ledger: PrivacyLedger,
                 hook_factory: Callable[[], PrivacyServiceHook], *, clock: Clock, hygiene: bool = False,
                 max_uncompressed_bytes: int = 2 * 1024**3, max_parallel_jobs: int = DEFAULT_PARALLEL_JOBS) -> None:
        self.max_parallel_jobs = min(MAX_PARALLEL_JOBS, max(1, int(max_parallel_jobs)))
        self.store = pooled(store, self.max_parallel_jobs * PARTS_PER_JOB)
        if self.store is not store:
            from adobe_privacy.ledger import PrivacyLedger

            ledger = PrivacyLedger(self.store, ledger.layout)
        self.ledger = ledger
        self.hook_factory = hook_factory
        self.clock = clock
        self.hygiene = hygiene
        self.max_uncompressed_bytes = max_uncompressed_bytes
        self._local = threading.local()
        removed = sweep_stale_spools()  # killed tasks leave personal data behind: gone at the next start
        if removed:
            log.warning("Removed %d spool folder(s) of killed tasks", len(removed))

    @property
    def hook(self) -> PrivacyServiceHook:
        if not hasattr(self._local, "hook"):
            self._local.hook = self.hook_factory()
        return self._local.hook

    def archive_entries(self, entries: Iterable[LedgerEntry], run: RunLayout) -> list[dict[str, Any]]:
        """Every job of the entries, in order (the part file is the same whatever the timing).

        Statuses come from the list endpoint first (about one call per 1000 jobs): a job it shows still
        open is recorded as such without its detail read; only final (or unlisted) jobs are read one by one.
        """
        entries = list(entries)
        listed = {} if self.hygiene else self.listed_statuses(entries)
        work = [(entry, job) for entry in entries for job in entry.jobs]
        with ThreadPoolExecutor(max_workers=self.max_parallel_jobs, thread_name_prefix="archive") as pool:
            return list(pool.map(lambda item: self.archive_job(item[0], item[1], run, listed.get(item[1].job_id)),
                                 work))

    def listed_statuses(self, entries: Iterable[LedgerEntry]) -> dict[str, str]:
        """Job id -> status, from the list endpoint over each regulation's submission window."""
        from privacy_pipeline import status
        from privacy_pipeline.reconcile import recovery_window

        wanted: dict[str, set[str]] = {}
        since: dict[str, Any] = {}
        for entry in entries:
            wanted.setdefault(entry.regulation, set()).update(job.job_id for job in entry.jobs)
            if entry.intent_at is not None:
                since[entry.regulation] = min(since.get(entry.regulation, entry.intent_at), entry.intent_at)
        statuses: dict[str, str] = {}
        for regulation, job_ids in sorted(wanted.items()):
            if not job_ids or regulation not in since:
                continue
            from_date, to_date = recovery_window(since[regulation])
            left = set(job_ids)
            for listed in self.hook.iter_jobs(regulation, from_date=from_date, to_date=to_date):
                job_id = str(listed.get("jobId"))
                if job_id in left:
                    statuses[job_id] = status.normalize(listed.get("status"))
                    left.discard(job_id)
                    if not left:
                        break  # closing the generator stops paging
        return statuses

    def archive_job(self, entry: LedgerEntry, job: JobRef, run: RunLayout,
                    listed_status: str | None = None) -> dict[str, Any]:
        """The job's record; its content archived now unless its archive record says it was already.

        :param listed_status: the job's status from the list endpoint; when not final, no detail is read.
        """
        from privacy_pipeline import status

        if listed_status is not None and not status.is_final(listed_status):
            return {"jobId": job.job_id, "userKey": job.user_key, "action": job.action,
                    "regulation": entry.regulation, "batchId": entry.batch_id, "status": listed_status,
                    "productResponses": []}
        detail = self.hook.get_hygiene_job(job.job_id) if self.hygiene else self.hook.get_job(job.job_id)
        record: dict[str, Any] = {
            "jobId": job.job_id,
            "userKey": job.user_key,
            "action": job.action,
            "regulation": entry.regulation,
            "batchId": entry.batch_id,
            "status": detail.get("status", "unknown"),
            "productResponses": [product_outcome(p) for p in detail.get("productResponses") or []],
        }
        if self.hygiene or record["status"] != "complete" or job.action != "access":
            return record  # open jobs are reported as open; reconcile picks them up later
        previous = self.ledger.job_record(checked_job_id(job.job_id)) or {}
        if _is_final_record(previous):
            stored = {**previous, "outcome": previous.get("outcome") or "archived"}
            return {**record, **archive_fields(stored), "archive": f"already_{stored['outcome']}"}
        if previous.get("run_root"):
            target = RunLayout(previous["run_root"])  # an earlier try's intent: the same key, never a 2nd copy
        else:
            target = run
            self.ledger.put_job_record(job.job_id, {"job_id": job.job_id, "state": "intent", "run_root": run.root,
                                                    "intent_at": self.clock.now().isoformat()})
        archived = self.archive_content(detail, job.job_id, target)
        self.ledger.put_job_record(job.job_id, {**archived, "run_root": target.root})
        return {**record, **archive_fields(archived), "archive": archived["outcome"]}

    def archived_record(self, job_id: str) -> dict[str, Any] | None:
        """The job's archive record when its content is stored (archived or quarantined), else None."""
        record = self.ledger.job_record(job_id)
        if not record or not _is_final_record(record):
            return None
        return {**record, "outcome": record.get("outcome") or "archived"}

    def archive_content(self, detail: dict[str, Any], job_id: str, run: RunLayout) -> dict[str, Any]:
        """Stream one job's ZIP to S3 while it downloads, verify every member, then keep or quarantine it.

        `adobe_privacy.content.archive_content` overlaps the download, hashing, the member read-through and
        the multipart upload; a ZIP that fails verification never appears under `content/`. Returns the
        archive record (not yet stored).
        """
        from privacy_pipeline.zipcheck import ZipLimits

        from adobe_privacy.content import archive_content

        job_id = checked_job_id(job_id)
        with self.hook.stream_content(detail) as chunks:
            result = archive_content(
                chunks, s3_client=self.store.client, bucket=self.store.bucket, key=run.content(job_id),
                quarantine_key=run.quarantine(job_id), encryption_args=self.store.encryption_args,
                limits=ZipLimits(max_uncompressed_bytes=self.max_uncompressed_bytes),
                max_concurrency=PARTS_PER_JOB,  # `max_parallel_jobs` jobs run at once
            )
        if not result.archived:
            log.warning("Content of job %s quarantined: %s", job_id, result.reason)
        return result.record(job_id, archived_at=self.clock.now().isoformat())


def _is_final_record(record: dict[str, Any]) -> bool:
    """Archived or quarantined, stored or not (a download over the size limit is quarantined unstored)."""
    return bool(record.get("content_key")) or record.get("outcome") == "quarantined"


def archive_fields(archived: dict[str, Any]) -> dict[str, Any]:
    return {
        "contentKey": archived["content_key"],
        "sha256": archived["sha256"],
        "size": archived["size"],
        "quarantineReason": archived.get("reason"),
    }


def product_outcome(response: dict[str, Any]) -> dict[str, Any]:
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
