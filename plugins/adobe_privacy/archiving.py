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
import tempfile
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from privacy_pipeline.clock import Clock
    from privacy_pipeline.layout import RunLayout
    from privacy_pipeline.ledger import JobRef, LedgerEntry

    from adobe_privacy.hooks import PrivacyServiceHook
    from adobe_privacy.ledger import PrivacyLedger
    from adobe_privacy.storage import PrivacyArchiveStore

log = logging.getLogger(__name__)

#: Outcomes of a job's content in its record: stored (either place) or found stored by an earlier try.
ARCHIVE_OUTCOMES = ("archived", "quarantined", "already_archived", "already_quarantined")
SPOOL_PREFIX = "privacy-zip-"


class JobArchiver:
    """Archive jobs' records and content; one hook per thread.

    :param store: the encrypted S3 store.
    :param ledger: where each job's archive record is kept.
    :param hook_factory: builds a hook (one per worker thread: an HTTP session is not shared).
    :param clock: the time written into archive records.
    :param hygiene: Data Hygiene jobs (detail from the hygiene API; deletes have no content).
    :param max_uncompressed_bytes: a ZIP that expands beyond this is quarantined.
    :param max_parallel_jobs: jobs archived at once (each a round trip or two to Adobe and one to S3).
    """

    def __init__(self, store: PrivacyArchiveStore, ledger: PrivacyLedger,
                 hook_factory: Callable[[], PrivacyServiceHook], *, clock: Clock, hygiene: bool = False,
                 max_uncompressed_bytes: int = 2 * 1024**3, max_parallel_jobs: int = 8) -> None:
        self.store = store
        self.ledger = ledger
        self.hook_factory = hook_factory
        self.clock = clock
        self.hygiene = hygiene
        self.max_uncompressed_bytes = max_uncompressed_bytes
        self.max_parallel_jobs = max(1, int(max_parallel_jobs))
        self._local = threading.local()

    @property
    def hook(self) -> PrivacyServiceHook:
        if not hasattr(self._local, "hook"):
            self._local.hook = self.hook_factory()
        return self._local.hook

    def archive_entries(self, entries: Iterable[LedgerEntry], run: RunLayout) -> list[dict[str, Any]]:
        """Every job of the entries, in order (the part file is the same whatever the timing)."""
        work = [(entry, job) for entry in entries for job in entry.jobs]
        with ThreadPoolExecutor(max_workers=self.max_parallel_jobs, thread_name_prefix="archive") as pool:
            return list(pool.map(lambda item: self.archive_job(item[0], item[1], run), work))

    def archive_job(self, entry: LedgerEntry, job: JobRef, run: RunLayout) -> dict[str, Any]:
        """The job's record; its content archived now unless its archive record says it was already."""
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
        previous = self.archived_record(job.job_id)
        if previous is not None:
            return {**record, **archive_fields(previous), "archive": f"already_{previous['outcome']}"}
        archived = self._archive_content(detail, job.job_id, run)
        self.ledger.put_job_record(job.job_id, archived)
        return {**record, **archive_fields(archived), "archive": archived["outcome"]}

    def archived_record(self, job_id: str) -> dict[str, Any] | None:
        """The job's archive record when its content is stored (archived or quarantined), else None."""
        record = self.ledger.job_record(job_id)
        if not record or not record.get("content_key"):
            return None
        return {**record, "outcome": record.get("outcome") or "archived"}

    def _archive_content(self, detail: dict[str, Any], job_id: str, run: RunLayout) -> dict[str, Any]:
        from privacy_pipeline.archive import HashingWriter, inspect_zip

        with tempfile.TemporaryDirectory(prefix=SPOOL_PREFIX) as tmp:
            path = Path(tmp) / f"{job_id}.zip"
            with open(path, "wb") as raw, self.hook.stream_content(detail) as chunks:
                writer = HashingWriter(raw)
                for chunk in chunks:
                    writer.write(chunk)
            verdict = inspect_zip(path, self.max_uncompressed_bytes)
            key = run.content(job_id) if verdict.ok else run.quarantine(job_id)
            if not verdict.ok:
                log.warning("Content of job %s quarantined: %s", job_id, verdict.reason)
            self.store.put_file(path, key, content_type="application/zip")
        return {
            "job_id": job_id,
            "content_key": key,
            "sha256": writer.sha256,
            "size": writer.size,
            "outcome": "archived" if verdict.ok else "quarantined",
            "reason": verdict.reason,
            "archived_at": self.clock.now().isoformat(),
        }


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
