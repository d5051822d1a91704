"""Data Hygiene steps: record deletes through Adobe's work orders (default) or the seed's alpha jobs API.

Which API a run uses is the setting `api` (the DAG passes the Variable `privacy_hygiene_api`):

- `workorder` (default): Adobe's GA Data Lifecycle API, `POST /data/core/hygiene/workorder`, one order
  per namespace of a batch (`adobe_privacy.operators.workorders`);
- `jobs`: `POST /data/core/hygiene/jobs`, the alpha page the seed describes. Adobe's current API has no
  such path; kept for deployments that still have it. Same ledger, budget, recovery and archive loop as
  privacy jobs; only the job API differs.

Point `archive_uri` at a root of its own so its ledger and budget (hygiene has its own Adobe quota) stay
apart from privacy jobs. Record delete is not for data-subject requests: those go through Privacy
Service (`privacy_requests_nightly`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from adobe_privacy.operators.archive import ArchivePrivacyJobsOperator
from adobe_privacy.operators.base import run_clock
from adobe_privacy.operators.submit import SubmitPrivacyBatchesOperator
from adobe_privacy.operators.workorders import ArchiveWorkOrdersOperator, SubmitWorkOrdersOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

#: The hygiene API a run uses, from the Airflow Variable `privacy_hygiene_api` (rendered at run time).
HYGIENE_API_TEMPLATE = "{{ var.value.get('privacy_hygiene_api', 'workorder') }}"
HYGIENE_APIS = ("workorder", "jobs")
DEFAULT_HYGIENE_API = "workorder"


def hygiene_api(value: Any) -> str:
    """The hygiene API named by a setting (empty: the default); a `ConfigurationError` for anything else."""
    from privacy_pipeline.errors import ConfigurationError

    name = str(value or "").strip().lower() or DEFAULT_HYGIENE_API
    if name not in HYGIENE_APIS:
        raise ConfigurationError("api (Variable privacy_hygiene_api)", value, HYGIENE_APIS,
                                 "workorder is Adobe's current Data Lifecycle API; jobs is the seed's alpha page")
    return name


class SubmitHygieneBatchesOperator(SubmitPrivacyBatchesOperator):
    """`SubmitPrivacyBatchesOperator` to the alpha `POST /data/core/hygiene/jobs` (standard and custom namespaces)."""

    jobs_api = "hygiene"


class ArchiveHygieneJobsOperator(ArchivePrivacyJobsOperator):
    """Record each alpha hygiene job's final state (its detail read once); deletes have no content."""

    hygiene = True


class SubmitHygieneDeletesOperator(SubmitWorkOrdersOperator):
    """
    Submit a chunk's staged delete batches to the hygiene API the setting names, exactly once.

    :param api: `workorder` (default) or `jobs` (templated; the DAG passes `privacy_hygiene_api`).
    :param held: batches the approval gate holds back, batch id -> reason (templated): postponed on
        either API, before any call to Adobe.
    """

    template_fields: Sequence[str] = (*SubmitWorkOrdersOperator.template_fields, "api")

    def __init__(self, *, api: str = HYGIENE_API_TEMPLATE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api = api

    def execute(self, context: Context) -> dict[str, Any]:
        if hygiene_api(self.api) == "workorder":
            return super().execute(context)
        from adobe_privacy.submission import BatchSubmitter, HygieneJobsApi

        clock = run_clock(self.as_of)
        submitter = BatchSubmitter(self.ledger, self.daily_budget(clock), HygieneJobsApi(self.hook), clock=clock,
                                   open_index=False)
        summary = self.submit_chunk(submitter, context, self.staged_batches())
        counts = summary.counts
        self.log.info("Chunk done (alpha hygiene jobs): %d batches submitted (%d POSTs), %d postponed, %d jobs",
                      counts["submitted_batches"], counts["api_posts"], counts["postponed_batches"], counts["jobs"])
        return {**summary.as_xcom(clock.now()), "api": "jobs"}


class ArchiveHygieneDeletesOperator(ArchiveWorkOrdersOperator):
    """
    Record every order's (or alpha job's) final state of a chunk in `jobs/part-<chunk>.jsonl`.

    :param api: `workorder` (default) or `jobs` (templated; the DAG passes `privacy_hygiene_api`).
    :param as_of: the run's "now" for the alpha jobs' records (templated).
    """

    template_fields: Sequence[str] = (*ArchiveWorkOrdersOperator.template_fields, "api", "as_of")

    def __init__(self, *, api: str = HYGIENE_API_TEMPLATE, as_of: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.api = api
        self.as_of = as_of

    def execute(self, context: Context) -> dict[str, Any]:
        if hygiene_api(self.api) == "workorder":
            return super().execute(context)
        from privacy_pipeline.report import jobs_jsonl

        from adobe_privacy.archiving import JobArchiver

        run = self.run_layout(context)
        entries = [self.ledger.require_entry(batch_id) for batch_id in self.batch_ids]
        archiver = JobArchiver(self.store, self.ledger, self.new_hook, clock=run_clock(self.as_of), hygiene=True)
        records = archiver.archive_entries(entries, run)
        self.store.put_bytes(run.jobs_part(int(self.chunk_index)), b"".join(jobs_jsonl(records)),
                             content_type="application/x-ndjson")
        counts = Counter(f"status:{record['status']}" for record in records)
        self.log.info("Recorded chunk %s (alpha hygiene jobs): %s", self.chunk_index, dict(counts))
        return {"jobs": len(records), **counts}
