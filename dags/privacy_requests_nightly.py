"""
### Nightly privacy requests → Adobe Privacy Service

Reads the logical date's pending data-subject requests (CSV or JSON Lines, a local path or every object
under an `s3://` prefix), validates them row by row (bad rows go to `rejects.csv` with a reason),
batches them (≤ 1000 subjects per `POST /jobs`, one job shape per batch), submits each batch **exactly
once** (ledger first, then the list endpoint, only then a POST), waits for the jobs in the triggerer,
archives every complete access job's ZIP and every job's record in S3, and writes `report.json`,
failing loudly if its counts do not add up.

Jobs still open at the wait timeout are reported as open, not failed: `privacy_reconcile` picks them up.

#### Before the first run
- **Connections**: `adobe_privacy_default` (type *Adobe Privacy Service*: API base URL, client id and
  secret, extra `org_id`) and `aws_default` (S3; `endpoint_url` in the extra for a local endpoint).
- **Variables** (all optional, read at run time): `privacy_input_uri` (inbox root, default
  `s3://privacy-inbox/requests`), `privacy_archive_uri` (default `s3://privacy-archive/privacy`),
  `privacy_sse` / `privacy_kms_key_id` (encryption of every write), `privacy_daily_job_budget` (20000),
  `privacy_input_lookback_days` (3: past inbox days searched for files that arrived late, taken in once by
  content hash), `privacy_extra_regulations` (JSON `{"code": window_days}` beyond Adobe's built-in ones),
  `privacy_approval_rules` (the optional approval gate before deletes; empty: off).
- **Pool**: `adobe_privacy_api` (or the name in `ADOBE_PRIVACY_API_POOL`), e.g. 4 slots. The submit
  tasks run in it; **without it they stay "scheduled" for ever** with an empty log.
- **Unpause** `privacy_reconcile` too (it finishes jobs that outlive this run's wait), and
  `privacy_opt_out` if the inbox carries opt-out-of-sale rows.

#### Params (the Trigger form)
`input_uri` (empty: `<privacy_input_uri>/<run date>/`, the run date being the logical date or, for a
manual run without one, the day it ran), `include` (products for rows naming none), `map_legacy_regulations`,
`dry_run` (validate and batch, post nothing), `poll_interval` and `wait_timeout` (seconds),
`approval_timeout` (seconds the approval gate waits for a person; no answer counts as Reject).

#### Outputs
Under `<privacy_archive_uri>/runs/<ds>/<run_id>/`: `intake.json`, `rejects.csv`, `batches/`,
`content/<jobId>.zip`, `quarantine/`, `jobs.jsonl`, `report.json`, `deadlines.png` / `deadlines.html`.
Each task's extra links open them; its log starts with the same locations.
"""

from __future__ import annotations

from adobe_privacy.operators.approval import approval_gate, approval_timeout_param
from adobe_privacy.operators.archive import ArchivePrivacyJobsOperator
from adobe_privacy.operators.base import EXTRA_REGULATIONS_TEMPLATE, LOOKBACK_DAYS_TEMPLATE
from adobe_privacy.operators.intake import PrivacyIntakeOperator
from adobe_privacy.operators.report import PrivacyRunReportOperator
from adobe_privacy.operators.submit import SubmitPrivacyBatchesOperator
from adobe_privacy.params import nightly_params
from adobe_privacy.pools import API_POOL
from adobe_privacy.sensors import PrivacyRunJobsSensor
from adobe_privacy.templates import ARCHIVE_URI, AS_OF, ENCRYPTION, INPUT_URI, dag_declaration
from airflow.sdk import dag

DEFAULT_PRODUCTS = ["aepDataLake", "profileService", "identity"]
#: Mapped instances read "chunk 0: 8 batches" instead of a bare index.
CHUNK_OF_KEYS = "chunk {{ ti.map_index }}: {{ task.batch_keys | length }} batches"
CHUNK_OF_IDS = "chunk {{ task.chunk_index }}: {{ task.batch_ids | length }} batches"
#: The inbox root whose past day partitions intake looks through for late files; none for an explicit input.
LOOKBACK_ROOT = "{{ '' if params.input_uri else var.value.get('privacy_input_uri', 's3://privacy-inbox/requests') }}"

TAKE_IN_DOC = """Reads every input file of the run (skipping files an earlier run took in, by content hash),
validates each row, writes `rejects.csv` (row, field, reason) and the batches, and returns the batch keys
in chunks. Its log says how many rows were rejected and why (counts by reason, never values)."""
SUBMIT_DOC = """Posts each batch of its chunk to `POST /jobs` **exactly once** (ledger, then the list endpoint,
only then a POST), within the daily job budget; what Adobe pushes back on is carried to the next run.
Runs in the API pool named in the DAG docs."""
WAIT_DOC = """One wait for every job of the run, in the triggerer (no worker slot): on Adobe I/O Events when
the connection has `journal_url` (a job with no event after `privacy_event_fallback_seconds` is asked of the
list endpoint), else polling Adobe's list endpoint. Jobs still open at the timeout are reported as open;
`privacy_reconcile` finishes them."""
ARCHIVE_DOC = """Streams each complete access job's ZIP to S3 after checking it (bad ZIPs go to
`quarantine/`), and writes every job's final record to `jobs/part-<chunk>.jsonl`."""
GATE_DOC = """The approval gate (off unless the Variable `privacy_approval_rules` holds rules): `decide_approval`
says whether this run's delete batches need a person; `ask_approval` is skipped when they do not, else it
waits (no slot held) for Approve / Reject under *Required actions*; `settle_approval` holds the delete
batches back when rejected or unanswered (carried to the next run, never dropped) and records who
answered, and when, in the request index. Batches without a delete are submitted either way."""
REPORT_DOC = """Writes `jobs.jsonl`, `report.json` and the deadlines chart; fails when the counts do not add
up (the report is written first, so the evidence stays)."""


def _archive_arguments(submission: dict) -> dict:
    return {
        "batch_ids": submission["batch_ids"],
        "chunk_index": submission["chunk"],
    }


@dag(schedule="0 2 * * *", **dag_declaration(
    __doc__,
    "Nightly: the day's access/delete requests to Adobe Privacy Service, exactly once; ZIPs and report to S3",
    tags=["adobe", "gdpr", "ccpa"],
    params={**nightly_params(DEFAULT_PRODUCTS), "approval_timeout": approval_timeout_param()},
))
def privacy_requests_nightly():
    intake = PrivacyIntakeOperator(
        task_id="take_in_requests",
        input_uri=INPUT_URI,
        archive_uri=ARCHIVE_URI,
        default_include="{{ params.include }}",
        map_legacy_regulations="{{ params.map_legacy_regulations }}",
        dry_run="{{ params.dry_run }}",  # a rehearsal must not mark the input as taken in
        as_of=AS_OF,
        extra_regulations=EXTRA_REGULATIONS_TEMPLATE,
        lookback_root=LOOKBACK_ROOT,
        lookback_days=LOOKBACK_DAYS_TEMPLATE,
        api_pool=API_POOL,  # checked first: without it the submit tasks would wait for ever
        doc_md=TAKE_IN_DOC,
        **ENCRYPTION,
    )
    held = approval_gate(
        intake.output, dry_run="{{ params.dry_run }}", doc_md=GATE_DOC, archive_uri=ARCHIVE_URI, **ENCRYPTION
    )
    submitted = SubmitPrivacyBatchesOperator.partial(
        task_id="submit_batches",
        pool=API_POOL,
        archive_uri=ARCHIVE_URI,
        as_of=AS_OF,
        dry_run="{{ params.dry_run }}",
        held=held,  # delete batches the approval gate holds back (none when it is off)
        map_index_template=CHUNK_OF_KEYS,
        doc_md=SUBMIT_DOC,
        **ENCRYPTION,
    ).expand(batch_keys=intake.output)
    waited = PrivacyRunJobsSensor(
        task_id="wait_for_jobs",
        submissions=submitted.output,
        archive_uri=ARCHIVE_URI,  # the trigger reads a large run's job ids from its ledger
        poll_interval="{{ params.poll_interval }}",
        wait_timeout="{{ params.wait_timeout }}",
        doc_md=WAIT_DOC,
        **ENCRYPTION,  # the event-driven wait writes its state to the ledger
    )
    archived = ArchivePrivacyJobsOperator.partial(
        task_id="archive_results",
        archive_uri=ARCHIVE_URI,
        as_of=AS_OF,
        map_index_template=CHUNK_OF_IDS,
        doc_md=ARCHIVE_DOC,
        **ENCRYPTION,
    ).expand_kwargs(submitted.output.map(_archive_arguments))
    report = PrivacyRunReportOperator(
        task_id="write_report",
        archive_uri=ARCHIVE_URI,
        as_of=AS_OF,
        submissions=submitted.output,
        trigger_rule="none_failed",  # an input with no valid row maps nothing, and still gets its report
        doc_md=REPORT_DOC,
        **ENCRYPTION,
    )
    intake >> report
    submitted >> waited >> archived >> report


privacy_requests_nightly()
