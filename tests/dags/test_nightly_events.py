"""The nightly DAG waiting on Adobe I/O Events: real runs against the emulator's journal and moto over HTTP.

A recorder loop (the recorder DAG's own function, `record_journal`) records the emulator's journal into
the run's archive while `dag.test()` runs the nightly; the wait reads only those records. Oracles: the
emulator's per-route call counts, its log of dropped events, and what the run left in S3.
"""

from __future__ import annotations

import json
import threading

import pytest
from privacy_emulator.testing import privacy_connection
from privacy_pipeline.report import check_accounting

from tests.dags.conftest import assert_encrypted, assert_exactly_once, list_keys, write_input

LIST_ROUTE = "GET /data/core/privacy/jobs"
#: Jobs finish 20 s after submission: polling every 5 s would list them several times over.
SLOW_ENOUGH = {"processing_after_seconds": 0.5, "complete_after_seconds": 20.0}


def list_calls(emulator) -> int:
    return sum(emulator.stats()["calls"].get(LIST_ROUTE, {}).values())


class RecorderLoop:
    """The recorder, every 0.3 s in a thread, as the recorder DAG would run it on each watcher event."""

    def __init__(self, archive_uri: str, **encryption: str) -> None:
        self.archive_uri = archive_uri
        self.encryption = encryption
        self.stop = threading.Event()
        self.summaries: list[dict] = []
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        from adobe_privacy.events import record_journal

        while not self.stop.wait(0.3):
            try:
                self.summaries.append(record_journal(self.archive_uri, **self.encryption))
            except BaseException as err:  # noqa: BLE001 - reported by the test
                self.errors.append(err)
                return

    def __enter__(self) -> RecorderLoop:
        self.thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop.set()
        self.thread.join(timeout=30)
        assert not self.errors, self.errors


@pytest.fixture
def events_on(nightly, monkeypatch):
    """The connection with `journal_url`, a reset journal, and a short fallback to the list endpoint."""
    emulator = nightly.emulator
    emulator._admin("POST", "/events/reset")
    ((name, value),) = privacy_connection(emulator).items()
    conn = json.loads(value)
    conn["extra"]["journal_url"] = (f"{emulator.base_url}/events/organizations/{emulator.org_id}"
                                    f"/integrations/{emulator.client_id}/privacy-events")
    monkeypatch.setenv(name, json.dumps(conn))
    monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_EVENT_FALLBACK_SECONDS", "60")
    yield nightly
    emulator._admin("POST", "/events/reset")


def journal_configure(emulator, **changes) -> None:
    emulator._admin("PATCH", "/events/config", json=changes)


def content_keys(nightly, run) -> list[str]:
    return [k for k in nightly.outputs(run).keys("content") if k.endswith(".zip")]


def wait_result(nightly, run) -> dict:
    (result,) = nightly.task_xcom(run, "wait_for_jobs")
    return result


@pytest.mark.slow
def test_the_wait_completes_on_events_with_far_fewer_list_calls_than_polling(events_on):
    nightly = events_on
    nightly.emulator.configure(**SLOW_ENOUGH)
    source = nightly.tmp_path / "requests.csv"
    expected = write_input(source, rows=40, seed=31, bad_rows=[])

    before = list_calls(nightly.emulator)
    with RecorderLoop(nightly.archive_uri) as recorder:
        run = nightly.run("2026-03-02", input_uri=source)
    on_events = list_calls(nightly.emulator) - before

    report = nightly.outputs(run).report
    check_accounting(report)
    assert report["jobs_created"] == expected.jobs and report["content_archived"] == expected.access_jobs
    assert_exactly_once(nightly, expected.user_actions)
    result = wait_result(nightly, run)
    assert result["waited_on"] == "events" and result["status"] == "success" and result["open"] == 0
    assert sum(s["final_events"] for s in recorder.summaries) >= expected.jobs

    # The same input through list polling (no journal_url), on a fresh archive: the baseline.
    nightly.monkeypatch.delenv("AIRFLOW_VAR_PRIVACY_EVENT_FALLBACK_SECONDS")
    ((name, value),) = privacy_connection(nightly.emulator).items()
    nightly.monkeypatch.setenv(name, value)
    nightly.use_fresh_archive("polling")
    nightly.emulator.reset()
    nightly.emulator.configure(**{**SLOW_ENOUGH, "jitter_ratio": 0.0, "error_rate": 0.0, "content_bytes": 4096})
    before = list_calls(nightly.emulator)
    polled_run = nightly.run("2026-03-02", input_uri=source)
    polling = list_calls(nightly.emulator) - before
    assert "waited_on" not in wait_result(nightly, polled_run)

    print(f"list calls: events {on_events}, polling {polling}")
    # Both runs list the same way to submit; events add one read per regulation (the first poke) and
    # none while waiting, polling a read per regulation every cycle.
    regulations = len({row.split(",")[2] for row in source.read_text().splitlines()[1:]})
    assert polling - on_events >= 2 * regulations
    assert 2 * on_events < polling


@pytest.mark.slow
def test_dropped_duplicated_and_reordered_events_lose_nothing_and_archive_once(events_on, monkeypatch):
    nightly = events_on
    # Jobs finish 20 s after submission (after the first poke); jobs with no event are listed at 25 s.
    monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_EVENT_FALLBACK_SECONDS", "25")
    nightly.emulator.configure(processing_after_seconds=0.5, complete_after_seconds=20.0)
    journal_configure(nightly.emulator, drop_rate=0.3, duplicate_rate=0.5, reorder=True)
    source = nightly.tmp_path / "requests.csv"
    expected = write_input(source, rows=40, seed=37, bad_rows=[])

    with RecorderLoop(nightly.archive_uri) as recorder:
        run = nightly.run("2026-03-02", input_uri=source)

    log = nightly.emulator._admin("GET", "/events/log")
    dropped_jobs = {item["job_id"] for item in log["dropped"] if item["type"].endswith(("jobcomplete", "joberror"))}
    assert dropped_jobs, "the seeded fault dropped at least one job's final event"
    assert sum(s["duplicates"] for s in recorder.summaries) > 0
    report = nightly.outputs(run).report
    check_accounting(report)
    assert report["jobs_by_status"] == {"complete": expected.jobs}  # the dropped ones too, by the fallback
    assert report["content_archived"] == expected.access_jobs
    keys = content_keys(nightly, run)
    assert len(keys) == len(set(keys)) == expected.access_jobs  # one ZIP per access job, never two
    assert_exactly_once(nightly, expected.user_actions)
    result = wait_result(nightly, run)
    assert result["waited_on"] == "events" and result["open"] == 0
    waits = list_keys(nightly.s3, nightly.bucket, f"{nightly.archive_prefix}/ledger/events/privacy-events/waits/")
    first_wait = json.loads(nightly.s3.get_object(Bucket=nightly.bucket, Key=waits[0])["Body"].read())
    assert dropped_jobs <= set(first_wait["open"]), "the dropped events' jobs were waited on, then found by the list"


@pytest.mark.slow
def test_with_kms_the_event_driven_wait_writes_its_state_encrypted_like_everything_else(events_on, monkeypatch):
    """The wait's state in `ledger/events/.../waits/` follows `privacy_sse` / `privacy_kms_key_id` too."""
    nightly = events_on
    key_id = "arn:aws:kms:us-east-1:123456789012:key/5678abcd-12ab-34cd-56ef-1234567890ab"
    monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_SSE", "aws:kms")
    monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_KMS_KEY_ID", key_id)
    nightly.emulator.configure(**SLOW_ENOUGH)
    source = nightly.tmp_path / "requests.csv"
    write_input(source, rows=6, seed=41, bad_rows=[])

    with RecorderLoop(nightly.archive_uri, sse="aws:kms", kms_key_id=key_id):
        run = nightly.run("2026-03-05", input_uri=source)

    assert wait_result(nightly, run)["waited_on"] == "events"
    waits = [k for k in list_keys(nightly.s3, nightly.bucket, nightly.archive_prefix.rstrip("/") + "/")
             if "/ledger/events/" in k and "/waits/" in k]
    assert waits, "the event-driven wait wrote no state"
    assert_encrypted(nightly, nightly.archive_prefix, sse="aws:kms", kms_key_id=key_id)
