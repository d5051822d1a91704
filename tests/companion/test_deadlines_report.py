"""Legal deadlines in the nightly report step: lists of keys, the chart beside report.json, the overdue notifier."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from unittest import mock

from tests.companion.conftest import subject_rows


class _Captured(logging.Handler):
    """Records on the notifier's logger itself: after a dag.test() in the same process, Airflow's logging
    setup may stop propagation to the root logger, where pytest's caplog listens."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_report_lists_overdue_and_due_soon_keys_writes_chart_and_notifies(companion):
    from adobe_privacy.operators import ArchivePrivacyJobsOperator, PrivacyRunReportOperator

    # The jobs must still be open at the report, however slowly this machine gets there.
    companion.emulator.configure(processing_after_seconds=30.0, complete_after_seconds=60.0)

    today = datetime.now(UTC)
    soon = (today - timedelta(days=25)).strftime("%Y-%m-%dT00:00:00Z")  # GDPR: due in about 5 days
    rows = (subject_rows(2, prefix="late", received_at="2026-01-02T00:00:00Z")
            + subject_rows(1, prefix="soon", received_at=soon)
            + subject_rows(1, prefix="fresh", regulation="ccpa", received_at=today.strftime("%Y-%m-%dT00:00:00Z")))
    (keys,) = companion.take_in(companion.write_csv("d.csv", rows), run_id="d1")
    summary = companion.submit(keys, run_id="d1")
    ArchivePrivacyJobsOperator(task_id="archive", batch_ids=summary["batch_ids"], archive_uri=companion.archive_uri,
                               chunk_index=0).execute(companion.context(run_id="d1"))  # jobs still open
    notifier_log, captured = logging.getLogger("adobe_privacy.notifiers"), _Captured()
    notifier_log.addHandler(captured)
    from adobe_privacy.storage import PrivacyArchiveStore

    read, original = [], PrivacyArchiveStore.get_bytes

    def recording_get_bytes(store, key):
        read.append(key)
        return original(store, key)

    try:
        with mock.patch.object(PrivacyArchiveStore, "get_bytes", recording_get_bytes):
            PrivacyRunReportOperator(task_id="report", archive_uri=companion.archive_uri,
                                     submissions=[summary]).execute(companion.context(run_id="d1"))
    finally:
        notifier_log.removeHandler(captured)
    staged = [key for key in read if "/runs/" in key and "/batches/" in key]
    assert read and not staged, "the report never reloads staged batches"
    alerts = "\n".join(captured.lines)

    run_root = "runs/2026-03-02/d1"
    deadlines = companion.get_json(f"{companion.prefix}/{run_root}/report.json")["deadlines"]
    assert [item["key"] for item in deadlines["overdue"]] == ["late-0", "late-1"]
    assert [item["key"] for item in deadlines["due_within_7_days"]] == ["soon-0"]
    assert deadlines["open"] == 4 and deadlines["open_by_bucket"]["31+ days"]
    assert "overdue_subjects: 2 item(s)" in alerts and "late-0" in alerts
    assert "@example.com" not in alerts  # keys only, never identity values
    chart = companion.s3.get_object(Bucket=companion.bucket, Key=f"{companion.prefix}/{run_root}/deadlines.png")
    assert chart["Body"].read()[:8] == b"\x89PNG\r\n\x1a\n" and chart["ServerSideEncryption"] == "AES256"
    page = companion.s3.get_object(Bucket=companion.bucket, Key=f"{companion.prefix}/{run_root}/deadlines.html")
    html = page["Body"].read().decode()
    assert "data:image/png;base64," in html and "late-1" in html and "@example.com" not in html
