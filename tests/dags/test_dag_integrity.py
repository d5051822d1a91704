"""Every DAG file imports cleanly, quickly, and follows the project's conventions."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

DAGS_FOLDER = Path(__file__).resolve().parents[2] / "dags"
DAG_FILES = sorted(p for p in DAGS_FOLDER.glob("*.py") if not p.name.startswith("_"))


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(DAGS_FOLDER))


def test_dagbag_has_no_import_errors(dagbag):
    assert not dagbag.import_errors, dagbag.import_errors
    assert len(dagbag.dags) >= len(DAG_FILES), "every DAG file defines at least one DAG"


@pytest.mark.parametrize("dag_file", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_imports_without_errors_or_heavy_modules(dag_file):
    """Parse cost is paid by the DAG processor on every loop: no pandas/boto3 at module level."""
    probe = (
        "import sys, runpy, time; t=time.perf_counter(); "
        f"runpy.run_path({str(dag_file)!r}); "
        "heavy=[m for m in ('pandas','pyarrow','boto3','matplotlib') if m in sys.modules]; "
        "print(round(time.perf_counter()-t, 3)); print(','.join(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    heavy = lines[-1] if len(lines) >= 2 else ""
    assert heavy == "", f"{dag_file.name} imports {heavy} at parse time; import inside tasks instead"


def test_every_dag_has_tags_retries_and_docs(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert dag.doc_md, f"{dag_id} has no doc_md"
        assert dag.max_active_runs == 1 or dag_id.endswith("_backfill"), f"{dag_id}: one run at a time"
        for task in dag.tasks:
            assert task.retries >= 2, f"{dag_id}.{task.task_id} has retries={task.retries}"


def test_dagbag_parses_fast(dagbag):
    started = time.perf_counter()
    from airflow.dag_processing.dagbag import DagBag

    DagBag(dag_folder=str(DAGS_FOLDER))
    assert time.perf_counter() - started < 10
