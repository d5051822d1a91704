"""Jinja templates and DAG settings every DAG shares: where the archive and the inbox are, how S3 writes are
encrypted, the scheduling defaults (`dag_settings`) and what every DAG declares (`dag_declaration`).

Rendered at run time from Airflow Variables (never read at parse time), so one Variable configures
every DAG: `privacy_archive_uri`, `privacy_input_uri`, `privacy_sse`, `privacy_kms_key_id`, `privacy_as_of`.
"""

from datetime import datetime, timedelta
from typing import Any

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


#: A task's first retry waits this long (doubling after).
RETRY_DELAY = timedelta(minutes=2)


def dag_settings(*, retries: int = 3, retry_delay: timedelta = RETRY_DELAY, native: bool = True) -> dict[str, Any]:
    """What every DAG of the project shares: a start date in the past and no catch-up (backfills are
    explicit), one run at a time (runs share the ledger and the daily budget), exponential retries, and
    params rendered as their real types."""
    return {
        "start_date": datetime(2026, 1, 1),
        "catchup": False,
        "max_active_runs": 1,
        "render_template_as_native_obj": native,
        "default_args": {"retries": retries, "retry_delay": retry_delay, "retry_exponential_backoff": True},
    }


def dag_declaration(
    doc: str | None, description: str, *, tags: list[str], params: dict[str, Any] | None = None, **settings: Any
) -> dict[str, Any]:
    """The keyword arguments of every DAG's `@dag(...)` but its schedule (stated beside them, where Airflow's
    lint rule looks for it); its id is the decorated function's name.

    `doc` is the DAG file's docstring (its docs in the UI), `description` its line in the DAGs list, `tags`
    its own beside `privacy`, which every DAG of the project carries; `settings` go to `dag_settings`."""
    return {
        "description": description,
        "params": params or {},
        "tags": ["privacy", *tags],
        "doc_md": doc,
        **dag_settings(**settings),
    }
