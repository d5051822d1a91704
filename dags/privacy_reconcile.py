"""
### Hourly reconcile: finish what the nightly runs could not

Privacy jobs take days to weeks (15-45 days "processing" is normal), Adobe never re-runs a failed job,
and access content may be gone 30 days after completion. Every hour this DAG reads the ledger's
`open/` index (batches whose jobs are not all final and archived), checks their jobs through the list
endpoint, and:

- archives the content of access jobs that completed since (encrypted, under this run's `content/`);
- resubmits errored jobs as a fresh job for that subject and action (`resubmit`, exactly once through
  the submit ledger and the daily job budget), at most `max_attempts` attempts per subject and action;
- reports jobs processing longer than `stuck_after_days` as stuck, and alerts on a complete access job
  whose content is still not archived `archive_alert_days` after completion (the default notifier
  logs at ERROR).

Outputs under `<privacy_archive_uri>/runs/<ds>/<run_id>/`: `reconcile.json`, `jobs/part-00000.jsonl`,
`content/`, retry `batches/`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from adobe_privacy.operators.reconcile import ReconcilePrivacyJobsOperator
from adobe_privacy.operators.submit import SubmitPrivacyBatchesOperator
from adobe_privacy.templates import ARCHIVE_URI, AS_OF, ENCRYPTION
from airflow.sdk import Param, dag


@dag(
    dag_id="privacy_reconcile",
    schedule="20 * * * *",  # hourly, clear of the nightly run's 02:00 submit burst
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args={"retries": 2, "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True},
    params={
        "max_attempts": Param(3, type="integer", minimum=1, description="jobs per subject and action, at most"),
        "archive_alert_days": Param(7, type="integer", minimum=1, maximum=25,
                                    description="alert when complete content is not archived after this"),
        "stuck_after_days": Param(45, type="integer", minimum=1, description="processing longer is stuck"),
    },
    tags=["privacy", "adobe", "reconcile"],
    doc_md=__doc__,
)
def privacy_reconcile():
    reconciled = ReconcilePrivacyJobsOperator(
        task_id="reconcile",
        archive_uri=ARCHIVE_URI,
        as_of=AS_OF,
        max_attempts="{{ params.max_attempts }}",
        archive_alert_days="{{ params.archive_alert_days }}",
        stuck_after_days="{{ params.stuck_after_days }}",
        **ENCRYPTION,
    )
    SubmitPrivacyBatchesOperator.partial(
        task_id="resubmit",
        pool="adobe_privacy_api",
        archive_uri=ARCHIVE_URI,
        as_of=AS_OF,
        **ENCRYPTION,
    ).expand(batch_keys=reconciled.output)


privacy_reconcile()
