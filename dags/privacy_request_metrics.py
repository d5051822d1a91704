"""
### Yearly request metrics (11 CCR §7102)

California's regulations make a large business publish, by July 1, how many requests to know, to delete
and to opt out it received, complied with in whole or in part, and denied in the previous calendar year,
and the median or mean days to respond. This DAG writes those figures from the request index, for the
year of the run so far (and, run on 1 January, for the whole year just ended):
`<privacy_archive_uri>/metrics/<year>-01-01_<day>/metrics.csv` and `metrics.html` (a chart and the
denial reasons). The definitions: README, "What an auditor gets". For any other range:
`python -m adobe_privacy.audit metrics --from … --to …`.

#### Before the first run
- **Connections**: `aws_default` (S3); it never calls Adobe, so `adobe_privacy_default` is not used.
- **Variables** (optional): `privacy_archive_uri`, `privacy_sse` / `privacy_kms_key_id`.
- **Unpause first**: `privacy_requests_nightly` and `privacy_reconcile` (they keep the index).
"""

from __future__ import annotations

from adobe_privacy.operators.metrics import RequestMetricsOperator
from adobe_privacy.templates import ARCHIVE_URI, ENCRYPTION, dag_declaration
from airflow.sdk import dag


@dag(schedule="0 4 1 * *", **dag_declaration(
    __doc__, "Monthly: 11 CCR §7102 request metrics (received, complied, denied, days to respond) to S3",
    tags=["audit", "ccpa"], native=False,
))
def privacy_request_metrics():
    RequestMetricsOperator(
        task_id="write_request_metrics",
        archive_uri=ARCHIVE_URI,
        # The year of the day before the run: the run of 1 January reports the whole year just ended.
        year="{{ macros.ds_add(ds, -1)[:4] }}",
        until="{{ macros.ds_add(ds, -1) }}",
        doc_md="Reads the request index and writes `metrics.csv` and `metrics.html` for the year so far.",
        **ENCRYPTION,
    )


privacy_request_metrics()
