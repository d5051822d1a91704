"""Recorder step: drain the I/O Events journal of our registration into the ledger, and the assets around it.

One recorder per registration (its DAG runs one at a time) reads the journal from the recorded position
and writes each page as an immutable record (`ledger/events/<registration>/records/<seq>.json`), then
moves `position.json`. The nightly wait and `privacy_reconcile` read those records from their own seq;
they never read the journal, so they cannot take events from each other. See `adobe_privacy.events`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset
from privacy_pipeline.events import DEFAULT_REGISTRATION_ID

from adobe_privacy.operators.base import PrivacyBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

DEFAULT_ARCHIVE_URI = "s3://privacy-archive/privacy"
#: URI schemes of our assets. An `x-` scheme is not normalised by a provider: any other scheme (even ours)
#: makes Airflow load every provider's URI handlers, boto3 among them, each time a DAG file is parsed.
JOURNAL_SCHEME = "x-adobe-io-events"
LEDGER_SCHEME = "x-privacy-ledger"
#: The journal, as the asset its watcher fires for (the URI names the registration, not a host).
JOURNAL_ASSET = Asset(name="privacy_journal_new_events", uri=f"{JOURNAL_SCHEME}://{DEFAULT_REGISTRATION_ID}")
#: Seconds between two looks of the journal watcher (parse time, so from the environment, like the pool).
WATCH_INTERVAL_ENV = "ADOBE_PRIVACY_JOURNAL_WATCH_SECONDS"
DEFAULT_WATCH_INTERVAL = 300.0


def events_archive_uri() -> str:
    """The archive root for the watcher and the assets, known when the DAG file is parsed.

    Read from the environment form of the Variable `privacy_archive_uri` (`AIRFLOW_VAR_PRIVACY_ARCHIVE_URI`),
    never from the metadata database at parse time; tasks render the Variable itself at run time.
    """
    return os.environ.get("AIRFLOW_VAR_PRIVACY_ARCHIVE_URI") or DEFAULT_ARCHIVE_URI


def journal_watch_interval(environ: Mapping[str, str] = os.environ) -> float:
    """The watcher's interval: `ADOBE_PRIVACY_JOURNAL_WATCH_SECONDS`, else 300 s; a bad value fails the parse."""
    raw = environ.get(WATCH_INTERVAL_ENV, "").strip()
    if not raw:
        return DEFAULT_WATCH_INTERVAL
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not 1.0 <= seconds <= 86400.0:
        raise ValueError(f"{WATCH_INTERVAL_ENV}={raw!r}: give seconds between 1 and 86400")
    return seconds


def recorded_events_asset(archive_uri: str | None = None, registration_id: str = DEFAULT_REGISTRATION_ID) -> Asset:
    """`privacy_events_recorded`: the recorded journal in the ledger; updated by every recorder run.

    Its URI is the ledger's S3 location under our own scheme: `x-privacy-ledger://<bucket>/<prefix>/ledger/events/...`.
    """
    root = (archive_uri or events_archive_uri()).rstrip("/").removeprefix("s3://")
    return Asset(name="privacy_events_recorded", uri=f"{LEDGER_SCHEME}://{root}/ledger/events/{registration_id}")


class RecordPrivacyEventsOperator(PrivacyBaseOperator):
    """
    Record the registration's new journal events into the ledger once; return the recording summary.

    Counts only (pages, events, final events, duplicates, gaps, the last seq), never event content.

    :param registration_id: the event registration (its journal is the connection's `journal_url`).
    :param max_pages: journal pages read at most in one run (the next run goes on from the position).
    """

    template_fields: Sequence[str] = (*PrivacyBaseOperator.template_fields,)
    ui_color = "#dfe8f6"

    def __init__(self, *, registration_id: str = DEFAULT_REGISTRATION_ID, max_pages: int = 1000,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.registration_id = registration_id
        self.max_pages = max_pages

    def execute(self, context: Context) -> dict[str, Any]:
        from adobe_privacy.events import record_journal

        summary = record_journal(
            self.archive_uri, adobe_privacy_conn_id=self.adobe_privacy_conn_id, aws_conn_id=self.aws_conn_id,
            registration_id=self.registration_id, sse=self.sse, kms_key_id=self.kms_key_id or None,
            max_pages=self.max_pages,
        )
        if summary.get("gaps"):
            self.log.warning("The journal lost our position: %d gap(s) recorded; waits and reconcile ask the "
                             "list endpoint about every open job", summary["gaps"])
        return summary
