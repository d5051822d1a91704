"""Crash tests: the submit and archive steps die at their worst moments, then run again as the retry.

The operators run for real (`execute`) against the emulator and moto; the only thing faked is the
death: the archive store's `put_json` raises at a chosen write, as if the worker process had been
killed there. The retry is a fresh operator instance, as Airflow's next try would be.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest
from adobe_privacy.operators import (
    ArchivePrivacyJobsOperator,
    PrivacyIntakeOperator,
    SubmitPrivacyBatchesOperator,
)
from adobe_privacy.storage import PrivacyArchiveStore

from tests.dags.conftest import BAD_ROWS, assert_exactly_once, write_input

LOGICAL_DATE = "2026-05-01"
RUN_ID = "manual__2026-05-01T02:00:00+00:00"


class ProcessDied(BaseException):
    """The worker died here. A BaseException, so no `except Exception` on the way can swallow it."""


@contextmanager
def dies_at(predicate: Callable[[str, Any], bool], *, nth: int = 1, after_write: bool = False):
    """Make the `nth` `put_json` matching `predicate(key, document)` kill the task, before or after writing."""
    original = PrivacyArchiveStore.put_json
    seen = {"matches": 0}

    def put_json(store, key, document):
        if not predicate(key, document):
            return original(store, key, document)
        seen["matches"] += 1
        if seen["matches"] != nth:
            return original(store, key, document)
        if after_write:
            original(store, key, document)
        raise ProcessDied(f"killed at write #{nth} of {key}")

    with mock.patch.object(PrivacyArchiveStore, "put_json", put_json):
        yield seen


def ledger_batch_in(state: str) -> Callable[[str, Any], bool]:
    return lambda key, document: "/ledger/batches/" in key and document.get("state") == state


def archive_record(key: str, _document: Any) -> bool:
    return "/ledger/jobs/" in key


@pytest.fixture
def staged(nightly):
    """An input taken in by the real intake operator: every staged batch key, in one chunk."""
    source = nightly.tmp_path / "requests.csv"
    expected = write_input(source, rows=40, seed=31, bad_rows=BAD_ROWS[:1])
    intake = PrivacyIntakeOperator(
        task_id="take_in_requests", input_uri=str(source), archive_uri=nightly.archive_uri,
        default_include=["aepDataLake", "profileService", "identity"],
    )
    chunks = intake.execute(nightly.task_context(LOGICAL_DATE, RUN_ID))
    keys = [key for chunk in chunks for key in chunk]
    assert len(keys) >= 4, "enough batches to die in the middle of the chunk"
    return keys, expected


def submit(nightly, keys: list[str]) -> dict[str, Any]:
    operator = SubmitPrivacyBatchesOperator(
        task_id="submit_batches", batch_keys=keys, archive_uri=nightly.archive_uri, daily_job_budget=20000
    )
    return operator.execute(nightly.task_context(LOGICAL_DATE, RUN_ID))


#: crash point -> (where it dies, POSTs that went out before it died)
CRASH_POINTS = {
    # The POST created the jobs; the process died before the ledger learnt their ids.
    "after-post-before-ledger": (dict(predicate=ledger_batch_in("submitted"), nth=1), 1),
    # The intent is on record; the process died before the POST went out.
    "after-intent-before-post": (dict(predicate=ledger_batch_in("intent"), nth=1, after_write=True), 0),
    # Two batches done, the third POSTed: death in the middle of the chunk.
    "mid-chunk": (dict(predicate=ledger_batch_in("submitted"), nth=3), 3),
}


@pytest.mark.parametrize(("crash", "posted_before_death"), CRASH_POINTS.values(), ids=CRASH_POINTS.keys())
def test_submit_dies_then_the_retry_finds_every_job_once(nightly, staged, crash, posted_before_death):
    keys, expected = staged

    with dies_at(**crash), pytest.raises(ProcessDied):
        submit(nightly, keys)
    assert nightly.posts() == posted_before_death
    assert nightly.emulator.stats()["jobs_total"] > 0 or posted_before_death == 0
    summary = submit(nightly, keys)

    assert_exactly_once(nightly, expected.user_actions)
    assert summary["jobs"] == expected.jobs and summary["submitted_batches"] == len(keys)
    assert nightly.posts() == len(keys), "one POST per batch: the retry never re-posts what went out"
    assert sum(len(ids) for ids in summary["jobs_by_regulation"].values()) == expected.jobs


def test_archive_dies_halfway_then_the_retry_completes_without_a_second_copy(nightly, staged):
    keys, expected = staged
    summary = submit(nightly, keys)
    nightly.emulator.advance_clock(60)  # every job complete
    context = nightly.task_context(LOGICAL_DATE, RUN_ID)

    def archive() -> dict[str, Any]:
        operator = ArchivePrivacyJobsOperator(
            task_id="archive_results", batch_ids=summary["batch_ids"], archive_uri=nightly.archive_uri,
            chunk_index=0,
        )
        return operator.execute(context)

    # The third ZIP is uploaded, then the process dies before its archive record is written.
    with dies_at(archive_record, nth=3), pytest.raises(ProcessDied):
        archive()
    counts = archive()

    from privacy_pipeline.layout import ArchiveLayout

    run = ArchiveLayout(nightly.archive_prefix).run(LOGICAL_DATE, RUN_ID)
    out = nightly.outputs_at(run.root)
    records = [r for part in out.keys("jobs") for r in out.jsonl(part)]
    assert sorted((r["userKey"], r["action"]) for r in records) == sorted(expected.user_actions)
    access = {r["jobId"]: r for r in records if r["action"] == "access"}
    assert len(access) == expected.access_jobs
    assert {r["archive"] for r in access.values()} <= {"archived", "already_archived"}
    assert counts["archived"] + counts["already_archived"] == expected.access_jobs
    assert out.keys("content") == sorted(run.content(job_id) for job_id in access), "one object per ZIP"
    assert out.keys("quarantine") == []
    archived = nightly.ledger("jobs")
    for job_id, record in access.items():
        assert nightly.head(run.content(job_id))["ContentLength"] == record["size"]
        assert archived[job_id]["content_key"] == run.content(job_id)
        assert archived[job_id]["sha256"] == record["sha256"]


def test_intake_dies_before_marking_its_input_then_the_retry_still_marks_it(nightly):
    source = nightly.tmp_path / "requests.csv"
    write_input(source, rows=20, seed=61, bad_rows=[])

    def intake(run_id: str) -> list[list[str]]:
        operator = PrivacyIntakeOperator(
            task_id="take_in_requests", input_uri=str(source), archive_uri=nightly.archive_uri,
            default_include=["aepDataLake"],
        )
        return operator.execute(nightly.task_context(LOGICAL_DATE, run_id))

    # intake.json is written, then the process dies before the input is marked as taken in.
    with dies_at(lambda key, _document: "/ledger/inputs/" in key), pytest.raises(ProcessDied):
        intake(RUN_ID)
    chunks = intake(RUN_ID)

    assert chunks and len(nightly.ledger("inputs")) == 1
    next_run = "manual__2026-05-02T02:00:00+00:00"
    intake(next_run)
    from privacy_pipeline.layout import ArchiveLayout

    recorded = nightly.outputs_at(ArchiveLayout(nightly.archive_prefix).run(LOGICAL_DATE, next_run).root)
    assert recorded.json("intake.json")["rows_read"] == 0, "the next run skips the file"


def test_a_chunk_whose_run_gave_up_is_submitted_by_the_next_run(nightly, staged):
    """Nothing lost even when nobody clears the failed run: the next night carries its batches."""
    from adobe_privacy.exceptions import PrivacyOutcomeUnknownError

    from tests.dags.conftest import JOBS_ROUTE

    keys, expected = staged
    nightly.emulator.add_fault(route=JOBS_ROUTE, kind="5xx", times=100)  # Adobe down for the whole run
    with pytest.raises(PrivacyOutcomeUnknownError):
        submit(nightly, keys)  # its last try: the run fails (first batch an intent, the rest untouched)
    nightly.emulator.clear_faults()

    next_run = "scheduled__2026-05-02T02:00:00+00:00"
    intake = PrivacyIntakeOperator(
        task_id="take_in_requests", input_uri=str(nightly.tmp_path / "requests.csv"),
        archive_uri=nightly.archive_uri, default_include=["aepDataLake", "profileService", "identity"],
    )
    chunks = intake.execute(nightly.task_context("2026-05-02", next_run))
    carried = [key for chunk in chunks for key in chunk]
    SubmitPrivacyBatchesOperator(
        task_id="submit_batches", batch_keys=carried, archive_uri=nightly.archive_uri, daily_job_budget=20000
    ).execute(nightly.task_context("2026-05-02", next_run))

    assert_exactly_once(nightly, expected.user_actions)
