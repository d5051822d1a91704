"""No silent green run, and configuration errors that fail at once (issues 11 and 13), in real `dag.test()` runs.

- an empty inbox: the run succeeds, and intake.json, report.json and the task log (WARNING) say it did
  nothing, with the `inbox_empty` alert fired through the notifier;
- a bad product in `include`: the intake task fails on its first try (retries configured, none used),
  naming the allowed products; a malformed Variable fails the same way on the real nightly DAG.
"""

from __future__ import annotations

import logging
import textwrap
from datetime import UTC, datetime, timedelta

import pytest
import structlog

from tests.dags.conftest import write_input

BAD_INCLUDE_DAG_ID = "bad_include_param"
# The nightly DAG's form refuses an unknown product before a run exists: a DAG whose param has no enum
# (an author's typo in a default, a form bypassed) is what reaches the intake operator.
BAD_INCLUDE_DAG = f"""
from datetime import datetime, timedelta

from adobe_privacy.operators import PrivacyIntakeOperator
from airflow.sdk import DAG, Param

with DAG("{BAD_INCLUDE_DAG_ID}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False,
         render_template_as_native_obj=True,
         default_args={{"retries": 3, "retry_delay": timedelta(seconds=1)}},
         params={{"include": Param(["photoshop"], type="array"), "input_uri": Param("", type="string")}}):
    PrivacyIntakeOperator(
        task_id="take_in_requests",
        input_uri="{{{{ params.input_uri }}}}",
        archive_uri="{{{{ var.value.privacy_archive_uri }}}}",
        default_include="{{{{ params.include }}}}",
    )
"""


def task_logs():
    """Capture the task logs of a `dag.test()` run, each exception rendered (`log.exception`) as text."""
    return structlog.testing.capture_logs(processors=[structlog.processors.format_exc_info])


def _failure_text(logs: list[dict]) -> str:
    """What the task log says: each event, with the traceback and message of its exception."""
    return "\n".join(f"{entry.get('event')} {entry.get('exception', '')}" for entry in logs)


@pytest.mark.slow
def test_an_empty_inbox_is_a_green_run_that_says_it_did_nothing(nightly, caplog):
    with caplog.at_level(logging.WARNING), task_logs() as logs:
        run = nightly.run("2026-03-08")  # nothing was put in the inbox partition of that day

    out = nightly.outputs(run)
    intake, report = out.json("intake.json"), out.report
    inbox = f"s3://{nightly.bucket}/{nightly.inbox_prefix}/2026-03-08/"
    assert [a["kind"] for a in intake["alerts"]] == ["inbox_empty"] == [a["kind"] for a in report["input_alerts"]]
    assert intake["alerts"][0]["items"] == [inbox]
    assert report["nothing_to_do"] == intake["nothing_to_do"] == f"This run did nothing: no input under {inbox}"
    assert report["rows_read"] == report["jobs_created"] == 0 and nightly.posts() == 0
    warnings = [str(entry) for entry in logs if entry.get("log_level") == "warning"]
    assert any("This run did nothing" in message for message in warnings), logs
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("Privacy alert inbox_empty" in message for message in errors), errors


@pytest.mark.slow
def test_a_bad_include_fails_on_the_first_try_naming_the_allowed_products(nightly, monkeypatch):
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag

    folder = nightly.tmp_path / "dags"
    folder.mkdir()
    (folder / f"{BAD_INCLUDE_DAG_ID}.py").write_text(textwrap.dedent(BAD_INCLUDE_DAG))
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(folder))  # dag.test() serialises from the DAGs folder
    source = nightly.tmp_path / "requests.csv"
    write_input(source, rows=5, seed=9, bad_rows=[])
    bag = DagBag(dag_folder=str(folder))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(BAD_INCLUDE_DAG_ID)

    with task_logs() as logs:
        run = dag.test(logical_date=datetime(2026, 3, 9, tzinfo=UTC), run_conf={"input_uri": str(source)})

    ti = nightly.task_instance(run, "take_in_requests")
    assert (run.state, ti.state, ti.try_number) == ("failed", "failed", 1), "no retry for a typo"
    text = _failure_text(logs)
    assert "photoshop" in text and "aepDataLake" in text and "profileService" in text, text[-3000:]
    assert nightly.emulator.stats()["jobs_total"] == 0


@pytest.mark.slow
def test_a_malformed_variable_fails_the_nightly_intake_at_once(nightly):
    nightly.monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_EXTRA_REGULATIONS", "{not json")
    source = nightly.tmp_path / "requests.csv"
    write_input(source, rows=5, seed=10, bad_rows=[])
    dag = nightly.dag()
    for task in dag.tasks:
        task.retries = 3
        task.retry_delay = timedelta(seconds=1)

    with task_logs() as logs:
        run = dag.test(logical_date=datetime(2026, 3, 10, tzinfo=UTC),
                       run_conf={"input_uri": str(source), "poll_interval": 5, "wait_timeout": 60})

    ti = nightly.task_instance(run, "take_in_requests")
    assert (run.state, ti.state, ti.try_number) == ("failed", "failed", 1)
    assert "privacy_extra_regulations" in _failure_text(logs)
    assert nightly.posts() == 0 and nightly.ledger("inputs") == {}, "nothing taken in"
