"""Jinja templates every DAG shares: where the archive and the inbox are, and how S3 writes are encrypted.

Rendered at run time from Airflow Variables (never read at parse time), so one Variable configures
every DAG: `privacy_archive_uri`, `privacy_input_uri`, `privacy_sse`, `privacy_kms_key_id`, `privacy_as_of`.
"""

ARCHIVE_URI = "{{ var.value.get('privacy_archive_uri', 's3://privacy-archive/privacy') }}"
#: Data Hygiene gets its own root under the archive: its own ledger, and its own budget (its own Adobe quota).
HYGIENE_ARCHIVE_URI = "{{ var.value.get('privacy_archive_uri', 's3://privacy-archive/privacy') }}/hygiene"
#: A run reads its day's partition of the inbox; a run without a logical date (a manual trigger) the day it ran.
INPUT_URI = (
    "{{ params.input_uri or (var.value.get('privacy_input_uri', 's3://privacy-inbox/requests')"
    " ~ '/' ~ ((dag_run.logical_date or dag_run.run_after) | ds) ~ '/') }}"
)
#: Data Hygiene deletes arrive in their own partition of the inbox.
HYGIENE_INPUT_URI = (
    "{{ params.input_uri or (var.value.get('privacy_input_uri', 's3://privacy-inbox/requests')"
    " ~ '/hygiene/' ~ ((dag_run.logical_date or dag_run.run_after) | ds) ~ '/') }}"
)
ENCRYPTION = {
    "sse": "{{ var.value.get('privacy_sse', 'AES256') }}",
    "kms_key_id": "{{ var.value.get('privacy_kms_key_id', '') }}",
}
#: The moment runs take as "now" (`privacy_pipeline.clock`): empty for the wall clock; an ISO date or
#: date-time for a rehearsal, a simulated month against the emulator, or a rerun of an old day.
AS_OF = "{{ var.value.get('privacy_as_of', '') }}"
