"""The nightly DAG against Adobe's known bugs (the content-endpoint draft's flagged orgs), over HTTP.

With the emulator's `adobe_known_bugs` mode, every job detail carries a download link: before the job is
complete and on delete jobs too. The pipeline must never download a delete job's link, never archive
before `complete`, and never count such a link as content. Links point at the emulator's unauthenticated
blob host (`legacy_download`), whose request log is the oracle: what was fetched, not what we say.
"""

from __future__ import annotations

import pytest
from privacy_pipeline.report import check_accounting

from tests.dags.conftest import assert_exactly_once, write_input

CONTENT_ROUTE = "GET /data/core/privacy/jobs/{jobId}/content"


def fetched_job_ids(emulator) -> list[str]:
    """Job ids whose ZIP the blob host served or was asked for, one per request."""
    return [request["path"].rsplit("/", 1)[-1].removesuffix(".zip") for request in emulator.blob_requests()]


def link_of(job_id: str) -> str | None:
    """What Adobe (the emulator) tells any client about this job's link right now."""
    from adobe_privacy.hooks import PrivacyServiceHook

    return PrivacyServiceHook().get_job(job_id).get("downloadUrl")


@pytest.fixture
def buggy(nightly):
    nightly.emulator.configure(legacy_download=True)
    nightly.emulator.adobe_known_bugs(True)
    yield nightly
    nightly.emulator.adobe_known_bugs(False)
    nightly.emulator.configure(legacy_download=False)


def content_calls(emulator) -> dict[str, int]:
    """Calls of the API's own content endpoint (the default link), by status."""
    return emulator.stats()["calls"].get(CONTENT_ROUTE, {})


@pytest.mark.slow
def test_links_on_delete_jobs_are_never_downloaded_nor_counted_api_host(nightly):
    """The same bug with Adobe's default link (the API's content endpoint): one 200 per access job, nothing else."""
    nightly.emulator.adobe_known_bugs(True)
    source = nightly.tmp_path / "requests.csv"
    expected = write_input(source, rows=40, seed=37, bad_rows=[])

    run = nightly.run("2026-03-02", input_uri=source)

    report = nightly.outputs(run).report
    check_accounting(report)
    deletes = [r["jobId"] for r in nightly.outputs(run).jobs if r["action"] == "delete"]
    assert "/content" in link_of(deletes[0]), "the bug mode is on: a delete job links to the content endpoint"
    assert content_calls(nightly.emulator) == {"200": expected.access_jobs}, "no call for a delete job's link"
    assert report["content_archived"] == expected.access_jobs and report["archive_on_other_jobs"] == 0
    nightly.emulator.adobe_known_bugs(False)


@pytest.mark.slow
def test_links_on_delete_jobs_are_never_downloaded_nor_counted(buggy):
    source = buggy.tmp_path / "requests.csv"
    expected = write_input(source, rows=60, seed=23, bad_rows=[])
    assert expected.access_jobs and expected.jobs > expected.access_jobs, "both access and delete jobs"

    run = buggy.run("2026-03-02", input_uri=source)

    out = buggy.outputs(run)
    report = out.report
    check_accounting(report)
    assert_exactly_once(buggy, expected.user_actions)
    records = out.jobs
    deletes = [r["jobId"] for r in records if r["action"] == "delete"]
    access = [r["jobId"] for r in records if r["action"] == "access"]
    assert link_of(deletes[0]), "the bug mode is on: a delete job carries a link"
    fetched = fetched_job_ids(buggy.emulator)
    assert not set(fetched) & set(deletes), "a delete job's link is never downloaded"
    assert sorted(fetched) == sorted(access), "each complete access job's ZIP fetched exactly once"
    assert content_calls(buggy.emulator) == {}
    assert report["content_archived"] == report["complete_access_jobs"] == expected.access_jobs
    assert report["archive_on_other_jobs"] == 0
    assert sorted(key.rsplit("/", 1)[-1] for key in out.keys("content")) == sorted(f"{j}.zip" for j in access)
    assert all("archive" not in r and "contentKey" not in r for r in records if r["action"] == "delete")


@pytest.mark.slow
def test_links_before_completion_are_never_downloaded_nor_archived(buggy):
    """The wait times out with every job still processing (each with a link): nothing is fetched or counted."""
    buggy.emulator.configure(complete_after_seconds=3600.0)
    source = buggy.tmp_path / "requests.csv"
    expected = write_input(source, rows=30, seed=29, bad_rows=[])

    run = buggy.run("2026-03-03", input_uri=source, wait_timeout=10)

    out = buggy.outputs(run)
    report = out.report
    check_accounting(report)
    records = out.jobs
    assert len(records) == expected.jobs and {r["status"] for r in records} == {"processing"}
    access = [r["jobId"] for r in records if r["action"] == "access"]
    assert link_of(access[0]), "the bug mode is on: an unfinished access job carries a link"
    assert buggy.emulator.blob_requests() == [], "no link is followed before the job is complete"
    assert content_calls(buggy.emulator) == {}
    assert report["content_archived"] == report["content_quarantined"] == report["complete_access_jobs"] == 0
    assert out.keys("content") == [] and out.keys("quarantine") == []
    assert buggy.ledger("jobs") == {}, "no archive record for any job"
    assert set(buggy.ledger("open")) == {r["batchId"] for r in records}, "reconcile will pick them up"
