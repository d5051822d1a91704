"""Archive step: every job of a chunk's batches gets its record, and each complete access job its ZIP in S3."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from adobe_privacy.links import RunFolderLink
from adobe_privacy.operators.base import ENCRYPTION_FIELDS, PrivacyBaseOperator, run_clock

if TYPE_CHECKING:
    from airflow.sdk import Context

    from adobe_privacy.archiving import JobArchiver


class ArchivePrivacyJobsOperator(PrivacyBaseOperator):
    """
    Archive what a chunk's jobs produced (see `adobe_privacy.archiving.JobArchiver`).

    Writes one `jobs/part-<chunk>.jsonl` (no identity values) and returns counts for the report.

    :param batch_ids: the chunk's submitted batches (templated; from the submit task's summary).
    :param chunk_index: the part file's number.
    :param max_uncompressed_bytes: a ZIP that expands beyond this is quarantined.
    :param max_parallel_jobs: jobs archived at once (at most 64); disk holds up to this many ZIPs.
    :param as_of: the run's "now", ISO-8601 (templated; the DAGs pass the Variable `privacy_as_of`); empty: the wall clock.
    """

    template_fields: Sequence[str] = ("batch_ids", "archive_uri", "as_of", *ENCRYPTION_FIELDS)
    ui_color = "#c4e1f2"
    operator_extra_links = (RunFolderLink(),)
    #: Data Hygiene jobs: detail from the hygiene API, no content.
    hygiene = False

    def __init__(
        self,
        *,
        batch_ids: list[str],
        chunk_index: int,
        max_uncompressed_bytes: int = 2 * 1024**3,
        max_parallel_jobs: int = 32,
        as_of: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch_ids = batch_ids
        self.chunk_index = chunk_index
        self.max_uncompressed_bytes = max_uncompressed_bytes
        self.max_parallel_jobs = max_parallel_jobs
        self.as_of = as_of

    def execute(self, context: Context) -> dict[str, Any]:
        from privacy_pipeline.report import jobs_jsonl

        from adobe_privacy.archiving import ARCHIVE_OUTCOMES

        run = self.run_layout(context)
        self.publish_run_links(context, run)
        entries = [self.ledger.require_entry(batch_id) for batch_id in self.batch_ids]
        records = self.archiver().archive_entries(entries, run)
        counts: Counter[str] = Counter()
        for record in records:
            counts[f"status:{record['status']}"] += 1
            if record.get("archive") in ARCHIVE_OUTCOMES:
                counts[record["archive"]] += 1
        self.store.put_bytes(run.jobs_part(int(self.chunk_index)), b"".join(jobs_jsonl(records)),
                             content_type="application/x-ndjson")
        self.update_request_index(context, at=run_clock(self.as_of).now(), job_records=records)
        self.log.info("Archived chunk %s: %s", self.chunk_index, dict(counts))
        return {"jobs": len(records), **counts}

    def archiver(self) -> JobArchiver:
        from adobe_privacy.archiving import JobArchiver

        return JobArchiver(self.store, self.ledger, self.new_hook, clock=run_clock(self.as_of), hygiene=self.hygiene,
                           max_uncompressed_bytes=self.max_uncompressed_bytes,
                           max_parallel_jobs=self.max_parallel_jobs)
