"""The request index as the steps keep it (issue 15): intake, submit and reconcile record what they did,
reconcile compacts, sends deadline alerts over every open request and writes the evidence packs of the
requests that closed; a failed index write never loses a ledger write.

Real operators against the emulator and moto over HTTP; the emulator's clock is moved, never waited for.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseNotifier

from tests.companion.conftest import subject_rows


class RecordingNotifier(BaseNotifier):
    def __init__(self) -> None:
        super().__init__()
        self.alerts: list[dict[str, Any]] = []

    def notify(self, context: Any) -> None:
        self.alerts.append(dict(context["privacy_alert"]))


def request_index(companion):
    from adobe_privacy.index_store import RequestIndex
    from adobe_privacy.storage import PrivacyArchiveStore

    store = PrivacyArchiveStore(companion.archive_uri, aws_conn_id="aws_default")
    return store, RequestIndex(store, cache_dir=companion.tmp_path / "index-cache")


def reconcile(companion, run_id: str, notifier: BaseNotifier) -> dict[str, Any]:
    from adobe_privacy.operators import ReconcilePrivacyJobsOperator
    from privacy_pipeline.layout import ArchiveLayout

    op = ReconcilePrivacyJobsOperator(task_id="reconcile", archive_uri=companion.archive_uri,
                                      as_of=companion.clock.isoformat(), alert_notifier=notifier)
    op.execute(companion.context(run_id=run_id))
    return companion.get_json(ArchiveLayout(companion.prefix).run("2026-03-02", run_id).reconcile)


def test_each_step_records_its_requests_and_reconcile_closes_them_with_evidence(companion):
    from adobe_privacy.audit import evidence_keys

    companion.emulator.configure(processing_after_seconds=10.0, complete_after_seconds=20.0)
    rows = subject_rows(2, prefix="old") + subject_rows(1, action="delete", prefix="del")
    rows.append("bad-1,erase,gdpr,email,x@example.com,standard,2026-03-01T00:00:00Z,")
    (keys,) = companion.take_in(companion.write_csv("nightly.csv", rows), run_id="nightly")
    store, index = request_index(companion)

    received = index.lookup("old-0")
    assert received["status"] == "received" and received["sources"] and received["due_date"]
    assert index.lookup("bad-1")["status"] == "rejected"

    summary = companion.submit(keys, run_id="nightly")
    submitted = request_index(companion)[1].lookup("del-0")
    assert submitted["status"] == "submitted"
    (job,) = submitted["jobs"]
    assert job["action"] == "delete" and job["job_id"] in summary["jobs_by_regulation"]["gdpr"]

    companion.advance(days=1)  # every job complete (content still downloadable)
    notifier = RecordingNotifier()
    result = reconcile(companion, "reconcile-1", notifier)

    assert result["closed_batches"] == 1
    store, index = request_index(companion)
    manifest = store.get_json(index.manifest_key)
    assert manifest and manifest["records_count"] >= 4, "reconcile compacted the index"
    for key in ("old-0", "old-1", "del-0"):
        record = index.lookup(key)
        assert record["status"] == "complete", record
        assert store.get_json(evidence_keys(store, key)[0]) is not None, f"evidence pack of {key}"
    access = [j for j in index.lookup("old-0")["jobs"] if j["action"] == "access"]
    assert access and access[0].get("content_key"), "the archived content is in the record"

    # Nothing is open any more: no deadline alert. A request still open and overdue is alerted on.
    assert [a for a in notifier.alerts if a["kind"] in ("overdue_requests", "due_soon_requests")] == []
    assert result["overdue_requests"] == result["due_soon_requests"] == 0


def test_reconcile_alerts_on_every_open_overdue_request_of_any_run(companion):
    companion.emulator.configure(processing_after_seconds=0.0, complete_after_seconds=10 * 86400.0)
    for run_id, prefix in (("night-1", "a"), ("night-2", "b")):
        (keys,) = companion.take_in(companion.write_csv(f"{run_id}.csv", subject_rows(
            2, prefix=prefix, action="delete", received_at="2026-01-02T00:00:00Z")), run_id=run_id)
        companion.submit(keys, run_id=run_id)
    companion.advance(days=1)

    notifier = RecordingNotifier()
    result = reconcile(companion, "reconcile-1", notifier)

    overdue = [a for a in notifier.alerts if a["kind"] == "overdue_requests"]
    assert len(overdue) == 1 and sorted(overdue[0]["items"]) == ["a-0", "a-1", "b-0", "b-1"]
    assert result["overdue_requests"] == 4


def test_a_failing_index_never_loses_a_ledger_write(companion, monkeypatch):
    import adobe_privacy.index_store as index_store

    def broken(*_args, **_kwargs):
        raise OSError("index bucket unreachable")

    monkeypatch.setattr(index_store, "update_index", broken)
    (keys,) = companion.take_in(companion.write_csv("n.csv", subject_rows(3)), run_id="n")
    summary = companion.submit(keys, run_id="n")

    assert summary["jobs"] == 3
    assert {e["state"] for e in companion.ledger("batches").values()} == {"submitted"}
    assert len(companion.ledger("inputs")) == 1 and len(companion.ledger("open")) == 1
    assert companion.keys("index") == [], "nothing indexed, nothing lost: scripts/rebuild_index.py catches up"


def test_a_dry_run_leaves_no_trace_in_the_index(companion):
    companion.take_in(companion.write_csv("n.csv", subject_rows(2)), run_id="n", dry_run=True)
    assert companion.keys("index") == []


def test_an_unknown_key_before_the_first_compaction_is_none(companion):
    companion.take_in(companion.write_csv("n.csv", subject_rows(1)), run_id="n")
    assert request_index(companion)[1].lookup("no-such-request") is None
