"""The companion DAG files: they parse cheaply with sane defaults, and privacy_reconcile runs for real."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.companion.conftest import JOBS_ROUTE, subject_rows

DAGS = Path(__file__).resolve().parents[2] / "dags"
COMPANIONS = ("privacy_reconcile", "privacy_opt_out", "data_hygiene_deletes")


@pytest.mark.parametrize("dag_id", COMPANIONS)
def test_dag_parses_with_retries_tags_and_one_active_run(dag_id, airflow_db):
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(DAGS / f"{dag_id}.py"))
    assert not bag.import_errors
    dag = bag.get_dag(dag_id)
    assert dag.max_active_runs == 1 and not dag.catchup and "privacy" in dag.tags and dag.doc_md
    assert all(task.retries >= 2 for task in dag.tasks)


@pytest.mark.slow
def test_reconcile_dag_resubmits_through_the_mapped_submit_task(companion, airflow_db, monkeypatch):
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setattr(settings, "DAGS_FOLDER", str(DAGS))
    companion.emulator.configure(error_rate=1.0)
    (keys,) = companion.take_in(companion.write_csv("n.csv", subject_rows(2)), run_id="nightly")
    companion.submit(keys, run_id="nightly")
    companion.advance(seconds=30)

    dag = DagBag(dag_folder=str(DAGS / "privacy_reconcile.py")).get_dag("privacy_reconcile")
    run = dag.test(logical_date=datetime.now(UTC))
    assert run.state == "success"
    assert companion.calls(JOBS_ROUTE) == 2  # the nightly POST, then one POST of the retry batch
    assert set(companion.jobs_per_user_action().values()) == {2}
    assert any(batch_id.endswith(".r2") for batch_id in companion.ledger("open"))


@pytest.mark.slow
def test_the_as_of_variable_moves_every_now_of_a_reconcile_run(companion, airflow_db, monkeypatch):
    """A month and a half later by the emulator's clock, set once as the Variable: the 45-day stuck rule fires."""
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setattr(settings, "DAGS_FOLDER", str(DAGS))
    companion.emulator.configure(complete_after_seconds=60 * 86400)  # never finishes in this test
    (keys,) = companion.take_in(companion.write_csv("slow.csv", subject_rows(1, prefix="slow")), run_id="nightly")
    companion.submit(keys, run_id="nightly")
    as_of = companion.advance(days=46)
    monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_AS_OF", as_of.isoformat())

    dag = DagBag(dag_folder=str(DAGS / "privacy_reconcile.py")).get_dag("privacy_reconcile")
    run = dag.test(logical_date=datetime.now(UTC))
    assert run.state == "success"
    (key,) = [k for k in companion.keys("runs") if k.endswith("/reconcile.json")]
    summary = companion.get_json(key)
    assert datetime.fromisoformat(summary["as_of"]) - as_of < timedelta(minutes=5)
    assert len(summary["stuck_jobs"]) == 1 and companion.ledger("open"), "stuck is reported, still open"
