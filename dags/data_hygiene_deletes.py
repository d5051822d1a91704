"""
### Data Hygiene record deletes

Delete requests (action `delete`, standard **and custom** namespaces) through the Data Hygiene jobs
API, with the nightly pipeline's guarantees: the same intake and rejects, batches of ≤ 1000 subjects
submitted exactly once (ledger, then the hygiene list endpoint, only then a POST), the daily budget,
a wait on the list endpoint, every job's final record archived, and a report that must add up.

Input: `<privacy_input_uri>/hygiene/<ds>/` unless `input_uri` is given. Ledger and outputs live under
`<privacy_archive_uri>/hygiene/` (its own ledger and budget: hygiene has its own Adobe quota).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from adobe_privacy.operators.hygiene import ArchiveHygieneJobsOperator, SubmitHygieneBatchesOperator
from adobe_privacy.operators.intake import PrivacyIntakeOperator
from adobe_privacy.operators.report import PrivacyRunReportOperator
from adobe_privacy.sensors import HygieneJobsSensor
from adobe_privacy.templates import AS_OF, ENCRYPTION, HYGIENE_ARCHIVE_URI, HYGIENE_INPUT_URI
from airflow.sdk import Param, dag


def _archive_arguments(submission: dict) -> dict:
    return {"batch_ids": submission["batch_ids"], "chunk_index": submission["chunk"]}


@dag(
    dag_id="data_hygiene_deletes",
    schedule="0 3 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args={"retries": 3, "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True},
    params={
        "input_uri": Param(None, type=["null", "string"], description="local path or s3:// prefix"),
        "poll_interval": Param(900, type="integer", minimum=5, description="seconds between polls"),
        "wait_timeout": Param(6 * 3600, type="integer", minimum=10, description="seconds to wait"),
    },
    tags=["privacy", "adobe", "data-hygiene"],
    doc_md=__doc__,
)
def data_hygiene_deletes():
    intake = PrivacyIntakeOperator(
        task_id="take_in_deletes",
        input_uri=HYGIENE_INPUT_URI,
        archive_uri=HYGIENE_ARCHIVE_URI,
        default_include=["aepDataLake"],  # required by the contract; the hygiene API ignores it
        allowed_actions=["delete"],
        **ENCRYPTION,
    )
    submitted = SubmitHygieneBatchesOperator.partial(
        task_id="submit_deletes",
        pool="adobe_privacy_api",
        archive_uri=HYGIENE_ARCHIVE_URI,
        as_of=AS_OF,
        **ENCRYPTION,
    ).expand(batch_keys=intake.output)
    waited = HygieneJobsSensor(
        task_id="wait_for_deletes",
        submissions=submitted.output,
        poll_interval="{{ params.poll_interval }}",
        wait_timeout="{{ params.wait_timeout }}",
    )
    archived = ArchiveHygieneJobsOperator.partial(
        task_id="archive_results",
        archive_uri=HYGIENE_ARCHIVE_URI,
        as_of=AS_OF,
        **ENCRYPTION,
    ).expand_kwargs(submitted.output.map(_archive_arguments))
    report = PrivacyRunReportOperator(
        task_id="write_report",
        archive_uri=HYGIENE_ARCHIVE_URI,
        as_of=AS_OF,
        submissions=submitted.output,
        trigger_rule="none_failed",
        **ENCRYPTION,
    )
    intake >> report
    submitted >> waited >> archived >> report


data_hygiene_deletes()
