"""
### Nightly privacy requests → Adobe Privacy Service

Reads the logical date's pending data-subject requests (CSV or JSON Lines, a local path or every object
under an `s3://` prefix), validates them row by row (bad rows go to `rejects.csv` with a reason),
batches them (≤ 1000 subjects per `POST /jobs`, one job shape per batch), submits each batch **exactly
once** (ledger first, then the list endpoint, only then a POST), waits for the jobs in the triggerer,
archives every complete access job's ZIP and every job's record in S3, and writes `report.json`,
failing loudly if its counts do not add up.

Jobs still open at the wait timeout are reported as open, not failed: `privacy_reconcile` picks them up.

**Params** (the form of a manual run): `input_uri` (default: `<privacy_input_uri>/<ds>/`, where a run
without a logical date uses the day it ran),
`include` (products for rows that name none), `map_legacy_regulations`, `dry_run` (validate and batch,
post nothing), `poll_interval` and `wait_timeout` (seconds).

**Outputs** under `<privacy_archive_uri>/runs/<ds>/<run_id>/`: `intake.json`, `rejects.csv`,
`batches/`, `content/<jobId>.zip`, `quarantine/`, `jobs.jsonl`, `report.json`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from adobe_privacy.operators.archive import ArchivePrivacyJobsOperator
from adobe_privacy.operators.intake import PrivacyIntakeOperator
from adobe_privacy.operators.report import PrivacyRunReportOperator
from adobe_privacy.operators.submit import SubmitPrivacyBatchesOperator
from adobe_privacy.sensors import PrivacyRunJobsSensor
from adobe_privacy.templates import ARCHIVE_URI, AS_OF, ENCRYPTION, INPUT_URI
from airflow.sdk import Param, dag

DEFAULT_PRODUCTS = ["aepDataLake", "profileService", "identity"]


def _archive_arguments(submission: dict) -> dict:
    return {
        "batch_ids": submission["batch_ids"],
        "chunk_index": submission["chunk"],
    }


@dag(
    dag_id="privacy_requests_nightly",
    schedule="0 2 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args={"retries": 3, "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True},
    params={
        "input_uri": Param(None, type=["null", "string"], description="local path or s3:// prefix"),
        "include": Param(DEFAULT_PRODUCTS, type="array", description="products for rows naming none"),
        "map_legacy_regulations": Param(False, type="boolean"),
        "dry_run": Param(False, type="boolean", description="validate and batch; post nothing"),
        "poll_interval": Param(900, type="integer", minimum=5, description="seconds between polls"),
        "wait_timeout": Param(6 * 3600, type="integer", minimum=10, description="seconds to wait"),
    },
    tags=["privacy", "adobe", "gdpr", "ccpa"],
    doc_md=__doc__,
)
def privacy_requests_nightly():
    intake = PrivacyIntakeOperator(
        task_id="take_in_requests",
        input_uri=INPUT_URI,
        archive_uri=ARCHIVE_URI,
        default_include="{{ params.include }}",
        map_legacy_regulations="{{ params.map_legacy_regulations }}",
        dry_run="{{ params.dry_run }}",  # a rehearsal must not mark the input as taken in
        **ENCRYPTION,
    )
    submitted = SubmitPrivacyBatchesOperator.partial(
        task_id="submit_batches",
        pool="adobe_privacy_api",
        archive_uri=ARCHIVE_URI,
        as_of=AS_OF,
        dry_run="{{ params.dry_run }}",
        **ENCRYPTION,
    ).expand(batch_keys=intake.output)
    waited = PrivacyRunJobsSensor(
        task_id="wait_for_jobs",
        submissions=submitted.output,
        archive_uri=ARCHIVE_URI,  # the trigger reads a large run's job ids from its ledger
        poll_interval="{{ params.poll_interval }}",
        wait_timeout="{{ params.wait_timeout }}",
    )
    archived = ArchivePrivacyJobsOperator.partial(
        task_id="archive_results",
        archive_uri=ARCHIVE_URI,
        as_of=AS_OF,
        **ENCRYPTION,
    ).expand_kwargs(submitted.output.map(_archive_arguments))
    report = PrivacyRunReportOperator(
        task_id="write_report",
        archive_uri=ARCHIVE_URI,
        as_of=AS_OF,
        submissions=submitted.output,
        trigger_rule="none_failed",  # an input with no valid row maps nothing, and still gets its report
        **ENCRYPTION,
    )
    intake >> report
    submitted >> waited >> archived >> report


privacy_requests_nightly()
