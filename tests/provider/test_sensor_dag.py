"""The sensor inside a real DAG run (``dag.test()``): submit, poke once, defer, resume with the event."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.provider.helpers import JOBS_ROUTE, calls

PROBE_DAGS = Path(__file__).parent / "dags"


@pytest.mark.slow
def test_sensor_defers_and_resumes_inside_dag_test(emu, airflow_db, monkeypatch, caplog):
    from airflow import settings
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    # dag.test() runs only DAGs it can serialise from the DAGs-folder bundle: point it at our probe.
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(PROBE_DAGS))
    from tests.provider.dags.privacy_sensor_probe import dag

    # Jobs finish 2 s after submission: the sensor's first poke sees them open and defers.
    emu.configure(processing_after_seconds=0.5, complete_after_seconds=2.0, jitter_ratio=0.0, error_rate=0.0)

    with caplog.at_level("INFO", logger="airflow.sdk.definitions.dag"):
        run = dag.test()

    assert run.state == "success"
    with create_session() as session:
        (xcom,) = session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=dag.dag_id, task_ids="wait",
                                                            key="return_value"))
        summary = XComModel.deserialize_value(xcom)
    assert summary == {"status": "success", "counts": {"complete": 2}, "open": 0, "error_count": 0, "error_job_ids": []}
    assert "running trigger in line" in caplog.text  # the sensor deferred; the trigger finished the wait
    # one poke by the sensor, then at least one poll by the trigger
    assert calls(emu, f"GET {JOBS_ROUTE}")["200"] >= 2
