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

#### Before the first run
- **Connections**: `adobe_privacy_default` (type *Adobe Privacy Service*) and `aws_default` (S3).
- **Variables** (optional, read at run time): `privacy_input_uri`, `privacy_archive_uri`, `privacy_sse` / `privacy_kms_key_id`,
  `privacy_extra_regulations`.
- **Pool**: `adobe_privacy_api` (or the name in `ADOBE_PRIVACY_API_POOL`), e.g. 4 slots: `send_opt_outs`
  run in it and **stay "scheduled" for ever without it**.
- **Unpause first**: nothing; `privacy_requests_nightly` reads the same inbox and leaves these rows to this DAG.

#### Params (the Trigger form)
`input_uri` (empty: `<privacy_input_uri>/<run date>/`).
"""

from __future__ import annotations

from adobe_privacy.operators.base import EXTRA_REGULATIONS_TEMPLATE
from adobe_privacy.operators.opt_out import SubmitOptOutsOperator
from adobe_privacy.params import opt_out_params
from adobe_privacy.pools import API_POOL
from adobe_privacy.templates import ARCHIVE_URI, AS_OF, ENCRYPTION, INPUT_URI, dag_declaration
from airflow.sdk import dag


# After the nightly intake has the day's partition.
@dag(schedule="30 2 * * *", **dag_declaration(
    __doc__, "Daily: opt-out-of-sale rows to POST /consent, once per payload; the 202 kept as evidence in S3",
    tags=["adobe", "ccpa", "opt-out"], params=opt_out_params(), native=False,
))
def privacy_opt_out():
    SubmitOptOutsOperator(
        task_id="send_opt_outs",
        pool=API_POOL,
        input_uri=INPUT_URI,
        archive_uri=ARCHIVE_URI,
        as_of=AS_OF,
        extra_regulations=EXTRA_REGULATIONS_TEMPLATE,
        doc_md="Sends the day's opt-out-of-sale rows to `POST /consent` (≤ 1000 values a payload), each "
        "payload once; writes the exact body and Adobe's 202 as evidence.",
        **ENCRYPTION,
    )


privacy_opt_out()
