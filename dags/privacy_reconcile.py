"""
### Hourly reconcile: finish what the nightly runs could not

Privacy jobs take days to weeks (15-45 days "processing" is normal), Adobe never re-runs a failed job,
and access content may be gone 30 days after completion. Every hour, and whenever
`privacy_events_recorder` records new Adobe I/O Events (the asset `privacy_events_recorded`), this DAG
reads the ledger's `open/` index (batches whose jobs are not all final and archived), checks their jobs
and:

- archives the content of access jobs that completed since (encrypted, under this run's `content/`);
- resubmits errored jobs as a fresh job for that subject and action (`resubmit`, exactly once through
  the submit ledger and the daily job budget), at most `max_attempts` attempts per subject and action;
- with events (`journal_url` on the connection): reads only the jobs whose completion or error event
  arrived, one detail each (events are hints; the detail decides), and sweeps the list endpoint once a
  day, or at once after a journal gap, so a missing event never loses a job; without events, every run
  checks every open job through the list endpoint;
- reports jobs processing longer than `stuck_after_days` as stuck, and alerts on a complete access job
  whose content is still not archived `archive_alert_days` after completion (the default notifier
  logs at ERROR).

Outputs under `<privacy_archive_uri>/runs/<ds>/<run_id>/`: `reconcile.json`, `jobs/part-00000.jsonl`,
`content/`, retry `batches/`.

#### Before the first run
- **Connections**: `adobe_privacy_default` (type *Adobe Privacy Service*) and `aws_default` (S3).
- **Variables** (optional, read at run time): `privacy_archive_uri` (the same as the nightly DAG's),
  `privacy_sse` / `privacy_kms_key_id`, `privacy_daily_job_budget`, `privacy_approval_rules` (the optional
  approval gate: `resubmit_errored_deletes` asks a person before errored deletes are resubmitted).
- **Pool**: `adobe_privacy_api` (or the name in `ADOBE_PRIVACY_API_POOL`), e.g. 4 slots: the `resubmit` tasks
  run in it and **stay "scheduled" for ever without it**.
- **Unpause first**: `privacy_requests_nightly` (this DAG only finishes what it started); unpause both.

#### Params (the Trigger form)
`max_attempts` (jobs per subject and action), `archive_alert_days` and `stuck_after_days` (days),
`approval_timeout` (seconds; default 50 min, so an unanswered gate never blocks the next hourly run: a
rejected or unanswered resubmission is carried, and the next nightly run asks again).
"""

from __future__ import annotations

from adobe_privacy.operators.approval import approval_gate, approval_timeout_param
from adobe_privacy.operators.events import recorded_events_asset
from adobe_privacy.operators.reconcile import ReconcilePrivacyJobsOperator
from adobe_privacy.operators.submit import SubmitPrivacyBatchesOperator
from adobe_privacy.params import reconcile_params
from adobe_privacy.pools import API_POOL
from adobe_privacy.templates import ARCHIVE_URI, AS_OF, ENCRYPTION, dag_declaration
from airflow.sdk import AssetOrTimeSchedule, CronTriggerTimetable, dag

#: Hourly, clear of the nightly run's 02:00 submit burst, and whenever the recorder records new events.
HOURLY_AND_ON_EVENTS = AssetOrTimeSchedule(
    timetable=CronTriggerTimetable("20 * * * *", timezone="UTC"), assets=[recorded_events_asset()]
)


@dag(schedule=HOURLY_AND_ON_EVENTS, **dag_declaration(
    __doc__, "Hourly: archive late content, resubmit errored jobs, alert on stuck jobs and unarchived content",
    tags=["adobe", "reconcile"], params={**reconcile_params(), "approval_timeout": approval_timeout_param(50 * 60)},
    retries=2,
))
def privacy_reconcile():
    reconciled = ReconcilePrivacyJobsOperator(
        task_id="reconcile",
        archive_uri=ARCHIVE_URI,
        as_of=AS_OF,
        max_attempts="{{ params.max_attempts }}",
        archive_alert_days="{{ params.archive_alert_days }}",
        stuck_after_days="{{ params.stuck_after_days }}",
        doc_md="Checks every open batch's jobs through the list endpoint; archives, plans resubmits, alerts.",
        **ENCRYPTION,
    )
    held = approval_gate(
        reconciled.output, doc_md="The approval gate (Variable `privacy_approval_rules`; skipped when no rule holds).",
        archive_uri=ARCHIVE_URI, **ENCRYPTION,
    )
    SubmitPrivacyBatchesOperator.partial(
        task_id="resubmit",
        pool=API_POOL,
        archive_uri=ARCHIVE_URI,
        as_of=AS_OF,
        held=held,  # errored deletes the approval gate holds back (none when it is off)
        map_index_template="chunk {{ ti.map_index }}: {{ task.batch_keys | length }} retry batches",
        doc_md="Submits the retry batches exactly once, within the daily job budget.",
        **ENCRYPTION,
    ).expand(batch_keys=reconciled.output)


privacy_reconcile()
