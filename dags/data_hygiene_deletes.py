"""
### Data Hygiene record deletes

Delete requests (action `delete`, standard **and custom** namespaces) through the Data Hygiene jobs
API, with the nightly pipeline's guarantees: the same intake and rejects, batches of ≤ 1000 subjects
submitted exactly once (ledger, then the hygiene list endpoint, only then a POST), the daily budget,
a wait on the list endpoint, every job's final record archived, and a report that must add up.

Input: `<privacy_input_uri>/hygiene/<ds>/` unless `input_uri` is given. Ledger and outputs live under
`<privacy_archive_uri>/hygiene/` (its own ledger and budget: hygiene has its own Adobe quota).

#### Before the first run
- **Connections**: `adobe_privacy_default` (type *Adobe Privacy Service*) and `aws_default` (S3).
- **Variables** (optional, read at run time): `privacy_input_uri`, `privacy_archive_uri`, `privacy_sse` /
  `privacy_kms_key_id`, `privacy_input_lookback_days`, `privacy_extra_regulations`; the connection's extra `sandbox_name` (default `prod`) picks the sandbox.
- **Pool**: `adobe_privacy_api` (or the name in `ADOBE_PRIVACY_API_POOL`), e.g. 4 slots: the submit tasks
  run in it and **stay "scheduled" for ever without it**.
- **Unpause first**: nothing; this DAG stands alone (it shares only the inbox layout with the nightly DAG).

#### Params (the Trigger form)
`input_uri` (empty: `<privacy_input_uri>/hygiene/<run date>/`), `poll_interval` and `wait_timeout` (seconds).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from adobe_privacy.operators.base import EXTRA_REGULATIONS_TEMPLATE, LOOKBACK_DAYS_TEMPLATE
from adobe_privacy.operators.hygiene import ArchiveHygieneJobsOperator, SubmitHygieneBatchesOperator
from adobe_privacy.operators.intake import PrivacyIntakeOperator
from adobe_privacy.operators.report import PrivacyRunReportOperator
from adobe_privacy.params import hygiene_params
from adobe_privacy.pools import API_POOL
from adobe_privacy.sensors import HygieneJobsSensor
from adobe_privacy.templates import AS_OF, ENCRYPTION, HYGIENE_ARCHIVE_URI, HYGIENE_INPUT_URI
from airflow.sdk import dag

#: Mapped instances read "chunk 0: 8 batches" instead of a bare index.
CHUNK_OF_KEYS = "chunk {{ ti.map_index }}: {{ task.batch_keys | length }} batches"
CHUNK_OF_IDS = "chunk {{ task.chunk_index }}: {{ task.batch_ids | length }} batches"
#: The hygiene inbox root whose past day partitions intake looks through for late files.
LOOKBACK_ROOT = (
    "{{ '' if params.input_uri else (var.value.get('privacy_input_uri', 's3://privacy-inbox/requests') ~ '/hygiene') }}"
)


def _archive_arguments(submission: dict) -> dict:
    return {"batch_ids": submission["batch_ids"], "chunk_index": submission["chunk"]}


@dag(
    dag_id="data_hygiene_deletes",
    description="Daily: Data Hygiene record deletes (custom namespaces too), exactly once; results and report to S3",
    schedule="0 3 * * *",
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args={"retries": 3, "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True},
    params=hygiene_params(),
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
        as_of=AS_OF,
        extra_regulations=EXTRA_REGULATIONS_TEMPLATE,
        lookback_root=LOOKBACK_ROOT,
        lookback_days=LOOKBACK_DAYS_TEMPLATE,
        api_pool=API_POOL,  # checked first: without it the submit tasks would wait for ever
        doc_md="Reads the day's hygiene partition: delete rows only; bad rows go to `rejects.csv`.",
        **ENCRYPTION,
    )
    submitted = SubmitHygieneBatchesOperator.partial(
        task_id="submit_deletes",
        pool=API_POOL,
        archive_uri=HYGIENE_ARCHIVE_URI,
        as_of=AS_OF,
        map_index_template=CHUNK_OF_KEYS,
        doc_md="Creates one hygiene job per batch, exactly once (ledger, then the hygiene list endpoint).",
        **ENCRYPTION,
    ).expand(batch_keys=intake.output)
    waited = HygieneJobsSensor(
        task_id="wait_for_deletes",
        submissions=submitted.output,
        poll_interval="{{ params.poll_interval }}",
        wait_timeout="{{ params.wait_timeout }}",
        doc_md="Waits in the triggerer for every hygiene job of the run.",
    )
    archived = ArchiveHygieneJobsOperator.partial(
        task_id="archive_results",
        archive_uri=HYGIENE_ARCHIVE_URI,
        as_of=AS_OF,
        map_index_template=CHUNK_OF_IDS,
        doc_md="Writes every hygiene job's final record to `jobs/part-<chunk>.jsonl`.",
        **ENCRYPTION,
    ).expand_kwargs(submitted.output.map(_archive_arguments))
    report = PrivacyRunReportOperator(
        task_id="write_report",
        archive_uri=HYGIENE_ARCHIVE_URI,
        as_of=AS_OF,
        submissions=submitted.output,
        trigger_rule="none_failed",
        doc_md="Writes `jobs.jsonl` and `report.json`; fails when the counts do not add up.",
        **ENCRYPTION,
    )
    intake >> report
    submitted >> waited >> archived >> report


data_hygiene_deletes()
