"""JobArchiver against an in-memory store and a fake hook: quarantine is final, a retry never archives twice."""

from __future__ import annotations

import zipfile
from datetime import UTC, datetime

from adobe_privacy.archiving import JobArchiver
from adobe_privacy.ledger import PrivacyLedger
from privacy_pipeline.clock import Clock
from privacy_pipeline.layout import ArchiveLayout
from privacy_pipeline.ledger import JobRef, LedgerEntry
from privacy_pipeline.report import build_report, check_accounting

from tests.operators.fakes import FakeContentHook, MemoryStore


def setup(tmp_path):
    good, bad = tmp_path / "good.zip", tmp_path / "bad.zip"
    with zipfile.ZipFile(good, "w") as archive:
        archive.writestr("aepDataLake/data.json", "{}")
    bad.write_bytes(b"not a zip at all")
    jobs = [JobRef("j-good", "k1", "access"), JobRef("j-bad", "k2", "access"), JobRef("j-del", "k3", "delete")]
    details = {job.job_id: {"jobId": job.job_id, "status": "complete", "productResponses": []} for job in jobs}
    hook = FakeContentHook(details, {"j-good": good, "j-bad": bad})
    store = MemoryStore()
    layout = ArchiveLayout(store.prefix)
    archiver = JobArchiver(store, PrivacyLedger(store, layout), lambda: hook,
                           clock=Clock(datetime(2026, 3, 2, tzinfo=UTC), monotonic=lambda: 0.0),
                           max_parallel_jobs=2)
    entry = LedgerEntry(batch_id="b-1", regulation="gdpr", user_actions=[(j.user_key, j.action) for j in jobs],
                        state="submitted", jobs=jobs)
    return store, layout, hook, archiver, entry


def report_of(records):
    return build_report(intake={}, submissions=[], job_records=records, rejects_key="r", jobs_key="j")


def test_a_retried_archive_reports_quarantined_content_as_quarantined(tmp_path):
    store, layout, hook, archiver, entry = setup(tmp_path)
    run = layout.run("2026-03-02", "r1")

    first = {r["jobId"]: r for r in archiver.archive_entries([entry], run)}
    again = {r["jobId"]: r for r in archiver.archive_entries([entry], run)}

    assert (first["j-good"]["archive"], first["j-bad"]["archive"]) == ("archived", "quarantined")
    assert (again["j-good"]["archive"], again["j-bad"]["archive"]) == ("already_archived", "already_quarantined")
    assert "archive" not in first["j-del"], "a delete job has no content"
    assert hook.downloads == 2, "the retry downloads nothing"
    assert store.get_json(layout.ledger_job("j-bad"))["outcome"] == "quarantined"
    assert store.get_json(layout.ledger_job("j-good"))["archived_at"] == "2026-03-02T00:00:00+00:00"
    for records in (first, again):
        report = report_of(list(records.values()))
        assert (report["content_archived"], report["content_quarantined"]) == (1, 1)
    assert archiver.archived_record("j-bad")["outcome"] == "quarantined"
    assert set(store.list_keys(run.root + "/quarantine")) == {run.quarantine("j-bad")}


def test_the_report_still_adds_up_after_a_retry(tmp_path):
    _, layout, _, archiver, entry = setup(tmp_path)
    run = layout.run("2026-03-02", "r1")
    archiver.archive_entries([entry], run)
    records = archiver.archive_entries([entry], run)
    report = report_of(records)
    report.update(jobs_created=3, jobs_expected=None)
    check_accounting(report)
