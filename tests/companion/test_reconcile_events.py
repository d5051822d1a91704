"""Reconcile on recorded Adobe I/O Events, against the emulator's journal and moto over HTTP.

Jobs finish when the test moves the emulator's clock; `record_journal` (the recorder DAG's function)
records the journal; reconcile reads the records from its own seq. Oracles: the emulator's per-route
call counts, its log of dropped events, and the archive in S3.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from privacy_emulator.testing import privacy_connection

from tests.companion.conftest import REPO, subject_rows
from tests.companion.test_reconcile import reconcile, submitted_nightly

LIST_ROUTE = "GET /data/core/privacy/jobs"
DETAIL_ROUTE = "GET /data/core/privacy/jobs/{jobId}"
CONSUMER = "ledger/events/privacy-events/consumers/reconcile.json"


@pytest.fixture
def events_on(companion, monkeypatch):
    emulator = companion.emulator
    emulator._admin("POST", "/events/reset")
    ((name, value),) = privacy_connection(emulator).items()
    conn = json.loads(value)
    conn["extra"]["journal_url"] = (f"{emulator.base_url}/events/organizations/{emulator.org_id}"
                                    f"/integrations/{emulator.client_id}/privacy-events")
    monkeypatch.setenv(name, json.dumps(conn))
    # Jobs finish only when the test moves the clock (however slowly this machine runs the steps between).
    emulator.configure(processing_after_seconds=60.0, complete_after_seconds=120.0)
    yield companion
    emulator._admin("POST", "/events/reset")


def record(companion) -> dict:
    from adobe_privacy.events import record_journal

    return record_journal(companion.archive_uri)


def content(companion, run_id: str) -> list[str]:
    return [k for k in companion.keys(f"runs/2026-03-02/{run_id}/content") if k.endswith(".zip")]


def test_completion_events_are_archived_with_detail_reads_and_no_list_call(events_on):
    companion = events_on
    companion.emulator._admin("PATCH", "/events/config", json={"duplicate_rate": 0.6, "reorder": True})
    submitted_nightly(companion, subject_rows(4) + subject_rows(1, action="delete", prefix="del"))
    first = reconcile(companion, "reconcile-1")  # no consumer yet: one full sweep, nothing final
    assert first["checked_by"] == "first run" and first["decisions"] == {"open": 5}

    companion.advance(seconds=150)  # every job completes; the journal has their events (some twice)
    assert record(companion)["duplicates"] > 0
    lists, details = companion.calls(LIST_ROUTE), companion.calls(DETAIL_ROUTE)
    second = reconcile(companion, "reconcile-2")

    assert second["checked_by"] == "events" and second["event_detail_reads"] == 5
    assert companion.calls(LIST_ROUTE) == lists  # events said which jobs: no list call
    assert companion.calls(DETAIL_ROUTE) - details >= 5
    assert second["archive_outcomes"] == {"archived": 4} and second["closed_batches"] == 1
    assert len(content(companion, "reconcile-2")) == 4
    position = companion.get_json(f"{companion.prefix}/ledger/events/privacy-events/position.json")
    assert companion.get_json(f"{companion.prefix}/{CONSUMER}")["seq"] == position["seq"] > 0

    # The same records again (a retried run, duplicates): nothing archived twice.
    companion.s3.put_object(Bucket=companion.bucket, Key=f"{companion.prefix}/{CONSUMER}",
                            Body=json.dumps({"seq": 0, "last_sweep_at": companion.clock.isoformat()}).encode())
    again = reconcile(companion, "reconcile-3")
    assert again["open_batches"] == 0 and content(companion, "reconcile-3") == []


def test_a_dropped_event_waits_for_the_daily_sweep_and_is_then_archived(events_on):
    companion = events_on
    companion.emulator._admin("PATCH", "/events/config", json={"drop_rate": 1.0})
    submitted_nightly(companion, subject_rows(3))
    assert reconcile(companion, "reconcile-1")["checked_by"] == "first run"
    companion.advance(seconds=150)
    record(companion)
    assert {item["type"] for item in companion.emulator._admin("GET", "/events/log")["dropped"]} >= {
        "com.adobe.platform.gdpr.jobcomplete"}

    quiet = reconcile(companion, "reconcile-2")  # no event: nothing read, nothing lost either
    assert quiet["checked_by"] == "events" and quiet["event_detail_reads"] == 0 and quiet["open_batches"] == 1

    companion.advance(hours=25)  # the safety net: a full list sweep a day
    swept = reconcile(companion, "reconcile-3", full_sweep_hours=24)
    assert swept["checked_by"] == "sweep due" and swept["archive_outcomes"] == {"archived": 3}
    assert companion.ledger("open") == {}


def test_an_expired_journal_position_sends_every_open_job_to_the_list(events_on):
    companion = events_on
    submitted_nightly(companion, subject_rows(2))
    assert reconcile(companion, "reconcile-1")["checked_by"] == "first run"
    companion.advance(seconds=150)
    record(companion)
    companion.emulator._admin("PATCH", "/events/config", json={"gone_next": 1})
    companion.advance(seconds=5)
    assert record(companion)["gaps"] == 1  # the recorder lost its position: a gap is recorded
    lists = companion.calls(LIST_ROUTE)

    result = reconcile(companion, "reconcile-2")

    assert result["checked_by"] == "gap" and companion.calls(LIST_ROUTE) > lists
    assert result["archive_outcomes"] == {"archived": 2}


def test_the_recorder_dag_records_and_its_asset_queues_reconcile(events_on, airflow_db, monkeypatch):
    """The asset path: the recorder DAG's run updates `privacy_events_recorded`, which queues a reconcile run."""
    from airflow.dag_processing.dagbag import DagBag
    from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    companion = events_on
    monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_AS_OF", companion.clock.isoformat())
    # Active assets have unique names: earlier tests of this process registered the DAGs' assets with
    # their own archive roots. A deployment has one root; this test gets a fresh metadata DB, as one would.
    from adobe_privacy.pools import ensure_pool
    from airflow.utils import db

    db.resetdb()
    ensure_pool()
    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    recorder, reconcile_dag = bag.get_dag("privacy_events_recorder"), bag.get_dag("privacy_reconcile")
    submitted_nightly(companion, subject_rows(2))
    assert reconcile_dag.test(logical_date=datetime.now(UTC) - timedelta(minutes=5)).state == "success"
    (outlet,) = recorder.get_task("record_events").outlets

    with create_session() as session:  # the scheduler queues asset-triggered runs of unpaused DAGs only
        session.get(DagModel, "privacy_reconcile").is_paused = False

    companion.advance(seconds=150)
    monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_AS_OF", companion.clock.isoformat())
    recorded = recorder.test()
    assert recorded.state == "success"
    uri = outlet.uri
    assert uri.startswith("x-privacy-ledger://") and uri.endswith("/ledger/events/privacy-events")
    with create_session() as session:
        asset = session.scalar(select(AssetModel).where(AssetModel.uri == uri))
        assert asset is not None and asset.name == "privacy_events_recorded"
        assert session.scalar(select(AssetEvent).where(AssetEvent.asset_id == asset.id)) is not None
        queued = session.scalars(select(AssetDagRunQueue.target_dag_id).where(AssetDagRunQueue.asset_id == asset.id))
        assert "privacy_reconcile" in set(queued)

    run = reconcile_dag.test(logical_date=datetime.now(UTC))
    assert run.state == "success"
    summaries = [companion.get_json(k) for k in companion.keys("runs") if k.endswith("/reconcile.json")]
    assert any(s["checked_by"] == "events" and s["archive_outcomes"] == {"archived": 2} for s in summaries)
