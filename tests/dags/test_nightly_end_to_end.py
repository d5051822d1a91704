"""The nightly DAG end to end, as `dag.test()` runs it: counts, S3 objects, ZIP integrity, encryption.

Each test runs the real DAG file in this process against the emulator and moto over HTTP; the
deferrable sensor's trigger runs inline. Expected numbers come from the CSV itself (see
`expected_from_csv`), not from our intake code.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile

import pytest
from privacy_pipeline.report import check_accounting

from tests.dags.conftest import (
    BAD_ROWS,
    assert_encrypted,
    assert_exactly_once,
    write_input,
)

RUN_FILES = ("intake.json", "rejects.csv", "jobs.jsonl", "report.json")


@pytest.mark.slow
def test_clean_run_adds_up_archives_every_access_zip_and_encrypts_everything(nightly):
    source = nightly.tmp_path / "requests.csv"
    expected = write_input(source, rows=150, seed=11)

    run = nightly.run("2026-03-02", input_uri=source)

    out = nightly.outputs(run)
    report = out.report
    check_accounting(report)
    assert report["rows_read"] == expected.rows_read
    assert report["rows_rejected"] == expected.rows_rejected
    assert report["subjects_submitted"] == expected.subjects
    assert report["jobs_created"] == expected.jobs
    assert report["jobs_by_status"] == {"complete": expected.jobs}
    assert report["complete_access_jobs"] == report["content_archived"] == expected.access_jobs
    assert report["subjects_postponed"] == report["content_quarantined"] == report["content_pending"] == 0
    assert report["api_posts"] == report["batches_submitted"], "one POST per batch on a clean run"
    assert_exactly_once(nightly, expected.user_actions)
    assert nightly.ledger("pending") == {}, "every carry marker is cleared once its batch is submitted"
    assert len(nightly.ledger("inputs")) == 1

    rejected = out.rejects()
    assert sorted(r["request_id"] for r in rejected) == sorted(row[0] for row in BAD_ROWS)
    assert all(r["reason"] for r in rejected)

    for name in RUN_FILES:
        assert out.key(name) in out.keys(), name
    records = out.jobs
    assert sorted((r["userKey"], r["action"]) for r in records) == sorted(expected.user_actions)
    access = {r["jobId"]: r for r in records if r["action"] == "access"}
    zips = out.keys("content")
    assert sorted(zips) == sorted(out.key(f"content/{job_id}.zip") for job_id in access)
    for job_id, record in access.items():
        _assert_zip_matches_record(out.get(f"content/{job_id}.zip"), job_id, record)

    for artefact in (out.get("jobs.jsonl"), out.get("report.json"), out.get("intake.json")):
        assert b"@example.com" not in artefact, "identity values never leave the rejects file"
    checked = assert_encrypted(nightly, nightly.archive_prefix, sse="AES256")
    assert checked > len(zips) + len(RUN_FILES), "ledger and staged batches are checked too"

    intake = out.json("intake.json")
    physical_lines = len(source.read_bytes().splitlines())
    assert intake["lines_read"] == report["lines_read"] == physical_lines
    assert [s["lines_read"] for s in intake["sources"]] == [physical_lines]
    assert intake["alerts"] == [] and report["input_alerts"] == [] and report["nothing_to_do"] is None

    _assert_indexed_with_evidence(nightly, expected, records)
    _assert_links_published(nightly, run)


def _assert_indexed_with_evidence(nightly, expected, records) -> None:
    """Every request of the input has its index record, with its jobs; a closed one has its evidence pack."""
    from adobe_privacy.audit import evidence_keys
    from adobe_privacy.index_store import RequestIndex

    store = nightly.store()
    request_index = RequestIndex(store, cache_dir=nightly.tmp_path / "index-cache")
    jobs_of = {}
    for record in records:
        jobs_of.setdefault(record["userKey"], set()).add((record["jobId"], record["action"]))
    for key in sorted(jobs_of)[:5]:
        found = request_index.lookup(key)
        assert found is not None, key
        assert {(job["job_id"], job["action"]) for job in found["jobs"]} == jobs_of[key]
        assert found["status"] == "complete" and found["due_date"] and found["sources"], found
        assert any(run["dag_id"] == "privacy_requests_nightly" for run in found["runs"])
        pack_json, pack_html = evidence_keys(store, key)
        pack = store.get_json(pack_json)
        assert pack is not None and pack_html in store.list_keys(store.key("evidence")), key
        assert "@example.com" not in json.dumps(pack), "keys and hashes only"
    rejected = request_index.lookup(BAD_ROWS[0][0])
    assert rejected is not None and rejected["status"] == "rejected"
    assert request_index.lookup("no-such-request") is None


def _assert_links_published(nightly, run) -> None:
    """Each task that owns run outputs pushed exactly the links it declares; the wait links Adobe's UI."""
    from adobe_privacy import links

    dag = nightly.dag()
    for task_id in ("take_in_requests", "wait_for_jobs", "archive_results", "write_report"):
        declared = dag.get_task(task_id).operator_extra_links
        xcoms = nightly.task_xcoms(run, task_id)
        pushed = {k for k in xcoms if k != "return_value" and not k.startswith("_link_")}
        assert declared and pushed == {link.key for link in declared}, (task_id, declared, pushed)
        for link in declared:  # what Airflow stored for the UI at the end of the task: the pushed URL
            assert xcoms[f"_link_{type(link).__name__}"] == xcoms[link.key], (task_id, link.name)
    report_links = nightly.task_xcoms(run, "write_report")
    out = nightly.outputs(run)
    assert report_links[links.REPORT_KEY].endswith(f"/{out.key('report.json')}")
    assert report_links[links.RUN_FOLDER_KEY].startswith("http://127.0.0.1:")
    assert nightly.task_xcoms(run, "wait_for_jobs")[links.PRIVACY_UI_KEY].startswith("https://")


def _assert_zip_matches_record(body: bytes, job_id: str, record: dict) -> None:
    """The archived ZIP opens, its members sit in one folder per product, and its digest is the record's."""
    assert record["sha256"] == hashlib.sha256(body).hexdigest()
    assert record["size"] == len(body)
    assert record["archive"] == "archived"
    with zipfile.ZipFile(io.BytesIO(body)) as archive:
        assert archive.testzip() is None
        names = archive.namelist()
    assert names and all(name.startswith(f"{job_id}/") and ".." not in name for name in names)
    folders = {name.split("/")[1] for name in names if name.count("/") >= 2}
    assert folders == {p["product"] for p in record["productResponses"]}
    for folder in folders:
        assert f"{job_id}/{folder}/response.json" in names


@pytest.mark.slow
def test_kms_variables_encrypt_every_object_including_a_multipart_zip(nightly):
    key_id = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    nightly.monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_SSE", "aws:kms")
    nightly.monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_KMS_KEY_ID", key_id)
    # Above boto3's 8 MiB multipart threshold: the encryption must reach CreateMultipartUpload too.
    # Every product finds data: a "user IDs not found" (6052) product has no data files, and with random
    # job ids the one access job's ZIP would otherwise be tiny now and then.
    nightly.emulator.configure(content_bytes=9 * 1024**2, product_outcome_weights={"6000": 1.0})
    source = nightly.tmp_path / "requests.csv"
    expected = write_input(source, rows=4, seed=5, bad_rows=BAD_ROWS[:1])

    run = nightly.run("2026-03-03", input_uri=source)

    out = nightly.outputs(run)
    assert out.report["content_archived"] == expected.access_jobs == 1
    (zip_key,) = out.keys("content")
    head = nightly.head(zip_key)
    assert head["ContentLength"] > 9 * 1024**2 and head["ETag"].strip('"').endswith("-2"), "uploaded in parts"
    assert_encrypted(nightly, nightly.archive_prefix, sse="aws:kms", kms_key_id=key_id)


@pytest.mark.slow
def test_dry_run_validates_and_batches_but_posts_nothing(nightly):
    source = nightly.tmp_path / "requests.csv"
    expected = write_input(source, rows=40, seed=3)

    run = nightly.run("2026-03-04", input_uri=source, dry_run=True)

    report = nightly.outputs(run).report
    assert nightly.posts() == 0
    assert nightly.emulator.stats()["jobs_total"] == 0
    assert report["subjects_dry_run"] == expected.subjects
    assert report["rows_rejected"] == expected.rows_rejected
    assert report["subjects_submitted"] == report["jobs_created"] == 0
    assert nightly.ledger("batches") == nightly.ledger("pending") == nightly.ledger("inputs") == {}

    # A dry run is a rehearsal: the same file taken in for real afterwards is submitted in full.
    real = nightly.run("2026-03-05", input_uri=source)
    assert nightly.outputs(real).report["jobs_created"] == expected.jobs
    assert_exactly_once(nightly, expected.user_actions)


@pytest.mark.slow
def test_an_input_with_no_valid_row_is_a_successful_run_that_says_so(nightly):
    source = nightly.tmp_path / "requests.csv"
    expected = write_input(source, rows=0, seed=1)

    run = nightly.run("2026-03-06", input_uri=source)

    out = nightly.outputs(run)
    report = out.report
    check_accounting(report)
    assert report["rows_read"] == report["rows_rejected"] == expected.rows_rejected == len(BAD_ROWS)
    assert report["subjects_intake"] == report["subjects_submitted"] == report["jobs_created"] == 0
    assert len(out.rejects()) == len(BAD_ROWS)
    assert nightly.posts() == 0


@pytest.mark.slow
def test_jobs_still_processing_at_the_wait_timeout_are_reported_open_not_failed(nightly):
    nightly.emulator.configure(processing_after_seconds=0.0, complete_after_seconds=3600.0)
    source = nightly.tmp_path / "requests.csv"
    expected = write_input(source, rows=10, seed=2, bad_rows=[])

    run = nightly.run("2026-03-07", input_uri=source, wait_timeout=10)

    (waited,) = nightly.task_xcom(run, "wait_for_jobs")
    assert waited["status"] == "timeout" and waited["open"] == expected.jobs
    report = nightly.outputs(run).report
    assert report["jobs_created"] == expected.jobs
    assert report["jobs_by_status"] == {"processing": expected.jobs}
    assert report["content_archived"] == 0
    assert_exactly_once(nightly, expected.user_actions)
