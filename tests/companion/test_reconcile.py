"""Reconcile against the emulator and moto: resubmit errored jobs once, archive late content, cap, stuck, alerts.

The emulator's clock is moved forward (and the operator's `as_of` with it) instead of waiting.
"""

from __future__ import annotations

import logging

from tests.companion.conftest import JOBS_ROUTE, subject_rows

CONTENT_ROUTE = "GET /data/core/privacy/jobs/{jobId}/content"
LIST_ROUTE = "GET /data/core/privacy/jobs"


def reconcile(companion, run_id: str, **kwargs):
    from adobe_privacy.operators import ReconcilePrivacyJobsOperator
    from privacy_pipeline.layout import ArchiveLayout

    op = ReconcilePrivacyJobsOperator(task_id="reconcile", archive_uri=companion.archive_uri,
                                      as_of=companion.clock.isoformat(), **kwargs)
    chunks = op.execute(companion.context(run_id=run_id))
    summary = companion.get_json(ArchiveLayout(companion.prefix).run("2026-03-02", run_id).reconcile)
    return {**summary, "retry_chunks": chunks, "stuck": len(summary["stuck_jobs"]),
            "archive_overdue": len(summary["archive_overdue_jobs"])}


def submit_retries(companion, result, run_id: str) -> list[dict]:
    return [companion.submit(chunk, run_id=run_id) for chunk in result["retry_chunks"]]


def submitted_nightly(companion, rows: list[str], run_id: str = "nightly") -> dict:
    """What a nightly run leaves behind when its wait times out: submitted batches, open markers."""
    (keys,) = companion.take_in(companion.write_csv(f"{run_id}.csv", rows), run_id=run_id)
    return companion.submit(keys, run_id=run_id)


def test_errored_jobs_are_resubmitted_once_then_archived(companion):
    # Jobs finish only when the test moves the clock: the second reconcile of the same hour must see the
    # resubmitted jobs still open, however slowly this machine runs the steps in between.
    companion.emulator.configure(error_rate=1.0, processing_after_seconds=10.0, complete_after_seconds=20.0)
    first = submitted_nightly(companion, subject_rows(3) + subject_rows(1, action="delete", prefix="del"))
    assert first["jobs"] == 4 and len(companion.ledger("open")) == 1
    companion.advance(seconds=30)  # every job is now final: error

    result = reconcile(companion, "reconcile-1")
    assert result["decisions"] == {"resubmit": 4} and result["retry_batches"] == 1
    submit_retries(companion, result, "reconcile-1")
    assert set(companion.jobs_per_user_action().values()) == {2}  # one fresh job per subject and action
    (resubmit,) = {r["retry_batch_id"] for r in companion.ledger("resubmits").values()}
    assert resubmit.endswith(".r2")

    # The same hour again (a retried task): nothing new is staged or posted; the first batch closes.
    posts = companion.calls(JOBS_ROUTE)
    again = reconcile(companion, "reconcile-1")
    assert again["retry_chunks"] == [] and again["closed_batches"] == 1
    assert companion.calls(JOBS_ROUTE) == posts

    companion.emulator.configure(error_rate=0.0)
    companion.advance(seconds=30)
    done = reconcile(companion, "reconcile-2")
    assert done["archive_outcomes"] == {"archived": 3} and done["closed_batches"] == 1
    assert len(companion.keys("runs/2026-03-02/reconcile-2/content")) == 3
    assert companion.ledger("open") == {}
    assert reconcile(companion, "reconcile-3")["open_batches"] == 0


def test_attempt_cap_stuck_jobs_and_unarchived_content_raise_alerts(companion, caplog):
    companion.emulator.configure(error_rate=1.0)
    submitted_nightly(companion, subject_rows(2, prefix="err"))
    companion.advance(seconds=30)
    submit_retries(companion, reconcile(companion, "r1", max_attempts=2), "r1")
    companion.advance(seconds=30)
    with caplog.at_level(logging.ERROR, logger="adobe_privacy.notifiers"):
        capped = reconcile(companion, "r2", max_attempts=2)
    assert capped["decisions"] == {"give_up": 2, "resubmit": 2} and capped["retry_chunks"] == []
    assert "resubmit_cap_reached: 2 item(s)" in caplog.text
    assert companion.ledger("open") == {}  # given up is final, and reported

    # A job that never finishes: still processing after 45 days (beyond the list look-back).
    companion.emulator.configure(error_rate=0.0, complete_after_seconds=60 * 86400)
    submitted_nightly(companion, subject_rows(1, prefix="slow"), run_id="nightly-2")
    companion.advance(days=46)
    caplog.clear()
    with caplog.at_level(logging.ERROR, logger="adobe_privacy.notifiers"):
        stuck = reconcile(companion, "r3")
    assert stuck["stuck"] == 1 and "stuck_jobs: 1 item(s)" in caplog.text
    assert len(companion.ledger("open")) == 1  # stuck is reported, still open


def test_content_not_archived_days_after_completion_alerts(companion, caplog):
    submitted_nightly(companion, subject_rows(1, prefix="zip"))
    companion.advance(seconds=30)
    # The download keeps failing (Adobe says come back much later): nothing archived, no alert yet.
    companion.emulator.add_fault(route=CONTENT_ROUTE, kind="429", retry_after=100_000)
    early = reconcile(companion, "r1", archive_alert_days=7)
    assert early["archive_failures"] == 1 and early["archive_overdue"] == 0
    companion.advance(days=8)
    with caplog.at_level(logging.ERROR, logger="adobe_privacy.notifiers"):
        late = reconcile(companion, "r2", archive_alert_days=7)
    assert late["archive_overdue"] == 1 and "content_not_archived: 1 item(s)" in caplog.text
    companion.emulator.clear_faults()
    healed = reconcile(companion, "r3", archive_alert_days=7)
    assert healed["archive_outcomes"] == {"archived": 1} and companion.ledger("open") == {}


def test_a_submitted_batch_in_no_index_is_found_and_archived(companion):
    """A crash between two ledger writes (as older versions ordered them) left a batch in no index."""
    first = submitted_nightly(companion, subject_rows(2, prefix="lost"))
    (batch_id,) = first["batch_ids"]
    companion.s3.delete_object(Bucket=companion.bucket, Key=f"{companion.prefix}/ledger/open/{batch_id}.json")
    assert companion.ledger("open") == {} and companion.ledger("pending") == {}
    companion.advance(seconds=30)

    found = reconcile(companion, "r1")
    assert found["recovered_batches"] == [batch_id]
    assert found["archive_outcomes"] == {"archived": 2} and found["closed_batches"] == 1
    assert set(companion.ledger("closed")) == {batch_id} and companion.ledger("open") == {}
    assert reconcile(companion, "r2")["recovered_batches"] == [], "a closed batch is in an index too"


def test_a_job_beyond_the_list_look_back_is_read_alone_once_a_day(companion):
    detail_route = "GET /data/core/privacy/jobs/{jobId}"
    companion.emulator.configure(complete_after_seconds=60 * 86400)
    submitted_nightly(companion, subject_rows(1, prefix="old"))
    companion.advance(days=46)


    def reads() -> int:  # answered reads: the run's first call may meet an expired token (401) and be sent again
        return companion.emulator.stats()["calls"].get(detail_route, {}).get("200", 0)

    first = reconcile(companion, "r1")
    first_reads = reads()
    again = reconcile(companion, "r2")  # the next hour, the same day
    assert first["stuck"] == 1 and first_reads == 1
    assert reads() == first_reads, "no second detail read the same day"
    assert again["open_batches"] == 1 and len(companion.ledger("open")) == 1
    companion.advance(days=1)
    reconcile(companion, "r3")
    assert reads() == first_reads + 1, "read again the next day"


def test_windows_without_an_open_job_are_not_listed():
    from datetime import UTC, datetime, timedelta

    from adobe_privacy.operators.reconcile import _list_plan
    from privacy_pipeline.ledger import JobRef, LedgerEntry

    now = datetime(2026, 6, 30, 12, tzinfo=UTC)

    def entry(batch_id: str, regulation: str, days_ago: float) -> tuple[LedgerEntry, list[JobRef]]:
        at = now - timedelta(days=days_ago)
        jobs = [JobRef(f"{batch_id}-job", f"{batch_id}-key", "access")]
        return LedgerEntry(batch_id=batch_id, regulation=regulation, user_actions=[(f"{batch_id}-key", "access")],
                           state="submitted", jobs=jobs, intent_at=at, submitted_at=at), jobs

    plan = _list_plan([entry("old", "gdpr", 40), entry("new", "gdpr", 5), entry("gone", "gdpr", 46),
                       entry("recent", "ccpa", 2)], now)
    # gdpr: two windows (44 days in spans of 29), each waiting for its own batch; the job beyond the
    # look-back is waited for by none (it is read alone, once a day). ccpa: its one recent window only.
    assert [(regulation, expected) for regulation, _window, expected in plan] == [
        ("ccpa", ["recent-job"]), ("gdpr", ["old-job"]), ("gdpr", ["new-job"])]
    assert plan[0][1] == (datetime(2026, 6, 27).date(), now.date())


def test_an_unchanged_run_reads_no_ledger_document_and_lists_each_regulation_once(companion, monkeypatch):
    from botocore.client import BaseClient

    companion.emulator.configure(complete_after_seconds=30 * 86400)
    submitted_nightly(companion, subject_rows(3) + subject_rows(2, regulation="ccpa", prefix="ca"))
    companion.advance(hours=1)
    reconcile(companion, "r1")

    reads: list[str] = []
    original = BaseClient._make_api_call

    def counting(client, operation_name, params):
        if operation_name in ("GetObject", "HeadObject") and "/ledger/" in params.get("Key", ""):
            reads.append(params["Key"].split("/ledger/", 1)[1].split("/", 1)[0])
        return original(client, operation_name, params)

    monkeypatch.setattr(BaseClient, "_make_api_call", counting)
    lists = companion.calls(LIST_ROUTE)
    companion.advance(hours=1)
    again = reconcile(companion, "r2")
    assert again["open_batches"] == 2
    assert companion.calls(LIST_ROUTE) - lists == 2, "one page per regulation with open jobs"
    assert not [kind for kind in reads if kind in ("open", "batches")], reads
