"""Runs that follow runs: a cleared rerun, the same file dropped again, and back-pressure carried over."""

from __future__ import annotations

import pytest
from privacy_pipeline.report import check_accounting

from tests.dags.conftest import assert_exactly_once, report_accounting, write_input


@pytest.mark.slow
def test_a_rerun_posts_nothing_and_the_same_file_dropped_again_submits_nothing(nightly):
    source = nightly.tmp_path / "requests.csv"
    expected = write_input(source, rows=40, seed=41)
    first = nightly.run("2026-06-01", input_uri=source)
    posts = nightly.posts()
    first_report = nightly.outputs(first).report
    assert first_report["jobs_created"] == expected.jobs and posts == first_report["api_posts"] > 0

    rerun = nightly.run("2026-06-01", input_uri=source, run_after=first.run_after)

    assert rerun.run_id == first.run_id, "the same run, cleared and run again"
    out = nightly.outputs(rerun)
    assert nightly.posts() == posts, "a rerun makes no POST"
    # The report is the run's, across all its tries: the first try's POSTs, and not one more.
    assert out.report["api_posts"] == first_report["api_posts"]
    assert report_accounting(out.report) == report_accounting(first_report)
    assert len(out.keys("content")) == expected.access_jobs, "the rerun re-archives nothing as a new object"

    # The next night the same bytes land in the inbox the scheduled run reads (no input_uri given).
    inbox_key = f"{nightly.inbox_prefix}/2026-06-02/requests-again.csv"
    nightly.s3.put_object(Bucket=nightly.bucket, Key=inbox_key, Body=source.read_bytes())
    next_night = nightly.run("2026-06-02")

    out = nightly.outputs(next_night)
    assert nightly.posts() == posts, "a file taken in before is not submitted again"
    intake = out.json("intake.json")
    assert [s["name"] for s in intake["skipped_sources"]] == [f"s3://{nightly.bucket}/{inbox_key}"]
    assert out.report["rows_read"] == out.report["subjects_submitted"] == out.report["jobs_created"] == 0
    assert_exactly_once(nightly, expected.user_actions)


@pytest.mark.slow
def test_the_daily_cap_defers_batches_and_the_next_run_submits_them_once(nightly):
    source = nightly.tmp_path / "requests.csv"
    expected = write_input(source, rows=60, seed=51)
    nightly.emulator.configure(daily_job_cap=expected.jobs // 2)

    capped = nightly.run("2026-06-10", input_uri=source)

    report = nightly.outputs(capped).report
    check_accounting(report)
    assert 0 < report["subjects_postponed"] < expected.subjects
    assert report["subjects_submitted"] + report["subjects_postponed"] == expected.subjects
    assert report["jobs_created"] == nightly.emulator.stats()["jobs_total"] <= expected.jobs // 2
    markers = nightly.ledger("pending")
    assert len(markers) == report["batches_postponed"] > 0
    assert sum(m["subjects"] for m in markers.values()) == report["subjects_postponed"]

    nightly.emulator.configure(daily_job_cap=20000)
    carried = nightly.run("2026-06-11", input_uri=source)

    report = nightly.outputs(carried).report
    check_accounting(report)
    assert report["rows_read"] == 0, "the input itself was taken in last night"
    assert report["subjects_carried_in"] == report["subjects_submitted"] == sum(m["subjects"] for m in markers.values())
    assert report["subjects_postponed"] == 0
    assert nightly.ledger("pending") == {}
    assert_exactly_once(nightly, expected.user_actions)
