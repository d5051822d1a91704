"""
### Data Hygiene record deletes

Record deletes (action `delete`, standard **and custom** namespaces) through Adobe's Data Lifecycle
**work orders** (`/data/core/hygiene/workorder`, the default) or the seed's alpha hygiene jobs API, with
the nightly pipeline's guarantees: the same intake and rejects, each batch submitted exactly once (ledger
first; for work orders, one order per namespace whose display name carries the batch id, so a retry lists
with `search=<batch id>` and adopts what exists before any POST), Adobe's identity quota (`GET /quota`)
read before submitting and the daily budget (a batch over either is postponed to the next run), a
deferrable wait, every order's or job's final record archived, and a report that must add up.

**Not for data-subject requests.** Adobe says record delete must not be used for them: a person's access
or delete request goes through Privacy Service, in `privacy_requests_nightly`. This DAG is for the
organisation's own record-level clean-up.

Input: `<privacy_input_uri>/hygiene/<ds>/` unless `input_uri` is given. Ledger and outputs live under
`<privacy_archive_uri>/hygiene/` (its own ledger and budget: hygiene has its own Adobe quota).

#### Before the first run
- **Connections**: `adobe_privacy_default` (type *Adobe Privacy Service*) and `aws_default` (S3).
- **Variables** (optional, read at run time): `privacy_input_uri`, `privacy_archive_uri`, `privacy_sse` /
  `privacy_kms_key_id`, `privacy_input_lookback_days`, `privacy_extra_regulations`; the connection's
  extra `sandbox_name` (default `prod`) picks the sandbox; `privacy_hygiene_api`: `workorder` (default,
  Adobe's current API) or `jobs` (the seed's alpha `/hygiene/jobs`, which Adobe's current API does not
  have). Any other value fails the run at once. `privacy_approval_rules`: the optional approval gate
  before the deletes (`{"work_orders": true}` asks a person before every work order; empty: off).
- **Waiting**: work orders take up to 30 days. Orders still open at `wait_timeout` are reported open
  (`jobs_by_status`), and their batches stay under `ledger/open/`: every later run's
  `follow_up_open_orders` records them once final (`runs/<ds>/<run>/followup/workorders.jsonl`).
- **Pool**: `adobe_privacy_api` (or the name in `ADOBE_PRIVACY_API_POOL`), e.g. 4 slots: the submit tasks
  run in it and **stay "scheduled" for ever without it**.
- **Unpause first**: nothing; this DAG stands alone (it shares only the inbox layout with the nightly DAG).

#### Params (the Trigger form)
`input_uri` (empty: `<privacy_input_uri>/hygiene/<run date>/`), `poll_interval` and `wait_timeout` (seconds),
`approval_timeout` (seconds the approval gate waits for a person; no answer counts as Reject).
"""

from __future__ import annotations

from adobe_privacy.operators.approval import approval_gate, approval_timeout_param
from adobe_privacy.operators.base import EXTRA_REGULATIONS_TEMPLATE, LOOKBACK_DAYS_TEMPLATE
from adobe_privacy.operators.hygiene import (
    HYGIENE_API_TEMPLATE,
    ArchiveHygieneDeletesOperator,
    SubmitHygieneDeletesOperator,
)
from adobe_privacy.operators.intake import PrivacyIntakeOperator
from adobe_privacy.operators.report import PrivacyRunReportOperator
from adobe_privacy.operators.workorders import FollowUpWorkOrdersOperator
from adobe_privacy.params import hygiene_params
from adobe_privacy.pools import API_POOL
from adobe_privacy.sensors import HygieneDeletesSensor
from adobe_privacy.templates import AS_OF, ENCRYPTION, HYGIENE_ARCHIVE_URI, HYGIENE_INPUT_URI, dag_declaration
from airflow.sdk import dag

#: Mapped instances read "chunk 0: 8 batches" instead of a bare index.
CHUNK_OF_KEYS = "chunk {{ ti.map_index }}: {{ task.batch_keys | length }} batches"
CHUNK_OF_IDS = "chunk {{ task.chunk_index }}: {{ task.batch_ids | length }} batches"
#: The hygiene inbox root whose past day partitions intake looks through for late files.
LOOKBACK_ROOT = (
    "{{ '' if params.input_uri else (var.value.get('privacy_input_uri', 's3://privacy-inbox/requests') ~ '/hygiene') }}"
)
GATE_DOC = """The approval gate (off unless the Variable `privacy_approval_rules` holds rules; `work_orders`
holds for every run with a work order): `decide_approval` says whether this run's deletes need a person;
`ask_approval` is skipped when they do not, else it waits (no slot held) for Approve / Reject under
*Required actions*; `settle_approval` holds the batches back when rejected or unanswered (postponed to the
next run, never dropped) and records who answered, and when, in the request index."""


def _archive_arguments(submission: dict) -> dict:
    # The API the submit task used, so a Variable changed mid-run cannot split the run.
    return {"batch_ids": submission["batch_ids"], "chunk_index": submission["chunk"],
            "api": submission.get("api") or "workorder"}


@dag(schedule="0 3 * * *", **dag_declaration(
    __doc__, "Daily: Data Hygiene record deletes (custom namespaces too), exactly once; results and report to S3",
    tags=["adobe", "data-hygiene"], params={**hygiene_params(), "approval_timeout": approval_timeout_param()},
))
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
    held = approval_gate(intake.output, doc_md=GATE_DOC, work_orders=True, archive_uri=HYGIENE_ARCHIVE_URI,
                         **ENCRYPTION)
    submitted = SubmitHygieneDeletesOperator.partial(
        task_id="submit_deletes",
        pool=API_POOL,
        archive_uri=HYGIENE_ARCHIVE_URI,
        api=HYGIENE_API_TEMPLATE,
        as_of=AS_OF,
        held=held,  # batches the approval gate holds back (none when it is off)
        map_index_template=CHUNK_OF_KEYS,
        doc_md="Creates each batch's work orders (one per namespace; or one alpha hygiene job) exactly once: "
               "ledger, then the list by batch id, then Adobe's quota, only then a POST.",
        **ENCRYPTION,
    ).expand(batch_keys=intake.output)
    waited = HygieneDeletesSensor(
        task_id="wait_for_deletes",
        submissions=submitted.output,
        api=HYGIENE_API_TEMPLATE,
        poll_interval="{{ params.poll_interval }}",
        wait_timeout="{{ params.wait_timeout }}",
        doc_md="Waits in the triggerer for every work order (or hygiene job) of the run; reports open ones "
               "at the timeout.",
    )
    archived = ArchiveHygieneDeletesOperator.partial(
        task_id="archive_results",
        archive_uri=HYGIENE_ARCHIVE_URI,
        as_of=AS_OF,
        map_index_template=CHUNK_OF_IDS,
        doc_md="Writes every order's final GET (productStatusDetails) or job's record to `jobs/part-<chunk>.jsonl`.",
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
    followed_up = FollowUpWorkOrdersOperator(
        task_id="follow_up_open_orders",
        archive_uri=HYGIENE_ARCHIVE_URI,
        exclude_submissions=submitted.output,
        trigger_rule="all_done",
        doc_md="Records the final state of earlier runs' work orders that were still open when those runs "
               "stopped waiting (`followup/workorders.jsonl`), and takes them out of `ledger/open/`.",
        **ENCRYPTION,
    )
    intake >> report
    submitted >> waited >> archived >> [report, followed_up]


data_hygiene_deletes()
