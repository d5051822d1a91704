"""
### Opt-out of sale → `POST /consent`

Reads the logical date's request files (the nightly DAG's CSV / JSON Lines contract; the same inbox
or a file of its own), takes the rows whose action is `opt_out_of_sale`, and sends them to Adobe's
consent endpoint in payloads of at most 1000 values (`entities` grouped by `nameSpace`). There is no
job and nothing to poll: Adobe's 202 is the evidence, written to S3 with the exact body sent and the
time. Each payload is sent once (a ledger marker per payload hash). Access and delete rows are left to
`privacy_requests_nightly`.

Outputs under `<privacy_archive_uri>/runs/<ds>/<run_id>/`: `consent/<sha256>.json`, `opt_out.json`,
`rejects.csv`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from adobe_privacy.operators.opt_out import SubmitOptOutsOperator
from adobe_privacy.templates import ARCHIVE_URI, AS_OF, ENCRYPTION, INPUT_URI
from airflow.sdk import Param, dag


@dag(
    dag_id="privacy_opt_out",
    schedule="30 2 * * *",  # after the nightly intake has the day's partition
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 3, "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True},
    params={"input_uri": Param(None, type=["null", "string"], description="local path or s3:// prefix")},
    tags=["privacy", "adobe", "ccpa", "opt-out"],
    doc_md=__doc__,
)
def privacy_opt_out():
    SubmitOptOutsOperator(
        task_id="send_opt_outs",
        pool="adobe_privacy_api",
        input_uri=INPUT_URI,
        archive_uri=ARCHIVE_URI,
        as_of=AS_OF,
        **ENCRYPTION,
    )


privacy_opt_out()
