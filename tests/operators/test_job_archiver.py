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
                        state="submitted", jobs=jobs, intent_at=datetime(2026, 3, 1, tzinfo=UTC))
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


def test_a_crash_after_the_upload_never_leaves_a_second_copy(tmp_path):
    """The intent names the run folder first: a retry from another run writes the same key again."""
    store, layout, hook, archiver, entry = setup(tmp_path)
    first_run, later_run = layout.run("2026-03-02", "r1"), layout.run("2026-03-09", "reconcile")
    original = archiver.ledger.put_job_record

    def dies_after_upload(job_id, record):
        if record.get("content_key"):
            raise RuntimeError("killed")
        original(job_id, record)

    archiver.ledger.put_job_record = dies_after_upload
    try:
        archiver.archive_job(entry, entry.jobs[0], first_run)
    except RuntimeError:
        pass
    archiver.ledger.put_job_record = original
    record = archiver.archive_job(entry, entry.jobs[0], later_run)

    assert record["contentKey"] == first_run.content("j-good")
    assert [k for k in store.objects if k.endswith(".zip")] == [first_run.content("j-good")]


def test_spool_files_are_private_and_stale_spools_of_dead_processes_are_removed(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale = tmp_path / f"privacy-zip-{dead}-abc"  # the archive task's folders before the content pipeline
    live = tmp_path / f"privacy-spool-{os.getppid()}-def"
    for folder in (stale, live):
        folder.mkdir()
        (folder / "x.zip").write_bytes(b"personal data")
    store, layout, hook, archiver, entry = setup(tmp_path)  # building an archiver sweeps
    assert not stale.exists() and live.exists()

    from contextlib import contextmanager

    modes = []
    original = hook.stream_content

    @contextmanager
    def watching(detail):
        with original(detail) as chunks:
            def observed():
                for chunk in chunks:
                    for spool in tmp_path.glob(f"privacy-spool-{os.getpid()}-*/*"):  # this task's spool
                        modes.append((spool.stat().st_mode & 0o777, spool.parent.stat().st_mode & 0o777))
                    yield chunk
            yield observed()

    hook.stream_content = watching
    archiver.archive_job(entry, entry.jobs[0], layout.run("2026-03-02", "r1"))
    assert modes and set(modes) == {(0o600, 0o700)}, modes
    assert [p.name for p in tmp_path.glob("privacy-spool-*")] == [live.name], "nothing left behind"


def test_ids_from_the_api_never_reach_a_path_or_a_key(tmp_path):
    import pytest
    from privacy_pipeline.ledger import JobRef

    store, layout, hook, archiver, entry = setup(tmp_path)
    hook.details["../x"] = {"jobId": "../x", "status": "complete", "productResponses": []}
    with pytest.raises(ValueError, match="unsafe job id"):
        archiver.archive_job(entry, JobRef("../x", "k1", "access"), layout.run("2026-03-02", "r1"))
    assert not [k for k in store.objects if ".." in k]


def test_jobs_the_list_shows_still_open_cost_no_detail_read(tmp_path):
    store, layout, hook, archiver, entry = setup(tmp_path)
    hook.details["j-good"]["status"] = "processing"
    records = {r["jobId"]: r for r in archiver.archive_entries([entry], layout.run("2026-03-02", "r1"))}

    assert hook.list_calls == 1 and hook.detail_reads == 2, "one list call; details only for final jobs"
    assert records["j-good"]["status"] == "processing" and "archive" not in records["j-good"]
    assert records["j-bad"]["archive"] == "quarantined"


def test_many_parallel_jobs_get_an_s3_connection_pool_that_fits_them(tmp_path):
    from types import SimpleNamespace

    from botocore.config import Config

    class Hook:  # the part of S3Hook the archiver uses to make a client with a larger pool
        config = Config()

        def get_client_type(self, config):
            return SimpleNamespace(max_pool_connections=config.max_pool_connections)

    store = MemoryStore()
    store.hook = Hook()
    layout = ArchiveLayout(store.prefix)
    clock = Clock(datetime(2026, 3, 2, tzinfo=UTC), monotonic=lambda: 0.0)
    archiver = JobArchiver(store, PrivacyLedger(store, layout), lambda: None, clock=clock, max_parallel_jobs=500)
    assert archiver.max_parallel_jobs == 64, "bounded"
    assert archiver.store.client.max_pool_connections == 64 * 4  # every job with its parts in flight
    assert archiver.ledger.store is archiver.store and archiver.ledger.layout == layout
    assert store.client is not archiver.store.client, "the caller's store keeps its own client"
    few = JobArchiver(store, PrivacyLedger(store, layout), lambda: None, clock=clock, max_parallel_jobs=2)
    assert few.store is store, "10 connections fit 2 jobs: no second client"
