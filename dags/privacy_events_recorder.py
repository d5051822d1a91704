"""
### Adobe I/O Events recorder: the journal of Privacy Service events, into the ledger

Adobe announces each job's (and product's) completion or error as an I/O Event. This DAG is the one
reader of our event registration's journal: an `AssetWatcher` in the triggerer looks at the journal
every 5 minutes (the environment variable `ADOBE_PRIVACY_JOURNAL_WATCH_SECONDS` sets another interval;
one `limit=1` read past the recorded position) and, when there is something new,
runs `record_events`, which reads every new page and records it under
`<privacy_archive_uri>/ledger/events/privacy-events/` (`records/<seq>.json`, then `position.json`).

The nightly wait and `privacy_reconcile` read those records from their own place; they never read the
journal, so they cannot take events from each other, and a restart goes on from the recorded position.
Events are hints: a job is final only when Adobe's list endpoint, or the job detail the archive reads,
says so. Each run updates the asset `privacy_events_recorded`, which starts `privacy_reconcile`.

#### Before the first run
- **Connections**: `adobe_privacy_default` with the extra `journal_url`, the journal URL of the event
  registration (Adobe Developer Console, see the README's "Events"; without it this DAG fails at once,
  and the nightly wait polls the list endpoint as before), and `aws_default` (S3).
- **Variables**: `privacy_archive_uri` (the same as the other DAGs'; the watcher reads it when the file is
  parsed, so set it as the environment variable `AIRFLOW_VAR_PRIVACY_ARCHIVE_URI`), `privacy_sse` /
  `privacy_kms_key_id`.
- **Unpause** this DAG: without it events stay in Adobe's journal (7 days) and waits fall back to the list.
"""

from __future__ import annotations

from datetime import timedelta

from adobe_privacy.event_triggers import PrivacyJournalWatchTrigger
from adobe_privacy.operators.events import (
    JOURNAL_ASSET,
    RecordPrivacyEventsOperator,
    events_archive_uri,
    journal_watch_interval,
    recorded_events_asset,
)
from adobe_privacy.templates import ARCHIVE_URI, ENCRYPTION, dag_declaration
from airflow.sdk import Asset, AssetWatcher, dag

JOURNAL_WATCHED = Asset(
    name=JOURNAL_ASSET.name,
    uri=JOURNAL_ASSET.uri,
    watchers=[
        AssetWatcher(
            name="privacy_journal_watch",
            trigger=PrivacyJournalWatchTrigger(
                archive_uri=events_archive_uri(), interval=journal_watch_interval()
            ),
        )
    ],
)


@dag(schedule=[JOURNAL_WATCHED], **dag_declaration(
    __doc__, "Adobe I/O Events: record the Privacy Service journal into the ledger when it has new events",
    tags=["adobe", "events"], retry_delay=timedelta(minutes=1), native=False,
))
def privacy_events_recorder():
    RecordPrivacyEventsOperator(
        task_id="record_events",
        archive_uri=ARCHIVE_URI,
        outlets=[recorded_events_asset()],
        doc_md="Reads the journal from the recorded position and records every new page; counts in its log.",
        **ENCRYPTION,
    )


privacy_events_recorder()
