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


# ---- what a person sees in the UI: descriptions, the Trigger form, docs, mapped-task names ----------------
def test_every_dag_has_a_description_for_the_dags_list(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.description and 20 <= len(dag.description) <= 140, (dag_id, dag.description)


def test_every_dag_doc_names_its_connections_variables_pool_and_what_to_unpause(dagbag):
    from adobe_privacy.pools import DEFAULT_POOL, POOL_ENV

    for dag_id, dag in dagbag.dags.items():
        doc = dag.doc_md
        for needed in ("adobe_privacy_default", "aws_default", "privacy_archive_uri", "Unpause"):
            assert needed in doc, f"{dag_id}'s docs do not mention {needed!r}"
        pooled = {task.pool for task in dag.tasks} - {"default_pool"}
        for pool in pooled:
            assert pool == DEFAULT_POOL and DEFAULT_POOL in doc and POOL_ENV in doc, (dag_id, pool)


def test_every_task_has_a_doc(dagbag):
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            assert task.doc_md and len(task.doc_md) > 20, f"{dag_id}.{task.task_id} has no doc_md"


def test_every_param_has_a_title_and_a_description(dagbag):
    for dag_id, dag in dagbag.dags.items():
        for name, param in dag.params.items():
            schema = param.schema
            assert schema.get("title"), f"{dag_id}.params.{name} has no title"
            assert param.description and len(param.description) > 20, f"{dag_id}.params.{name}"
            if schema.get("type") == "integer":
                assert "minimum" in schema and "maximum" in schema, f"{dag_id}.params.{name} is unbounded"


def test_times_carry_their_unit_in_the_title(dagbag):
    for dag_id, dag in dagbag.dags.items():
        for name, param in dag.params.items():
            if name in ("poll_interval", "wait_timeout"):
                assert "(seconds)" in param.schema["title"], (dag_id, name)
            if name.endswith("_days"):
                assert "(days)" in param.schema["title"], (dag_id, name)


def test_input_uri_says_what_empty_means(dagbag):
    for dag_id, dag in dagbag.dags.items():
        if "input_uri" in dag.params:
            assert "Empty: <privacy_input_uri>/" in dag.params.get_param("input_uri").description, dag_id


def test_include_offers_exactly_the_product_catalogue_and_refuses_a_typo(dagbag):
    from airflow.sdk.exceptions import ParamValidationError
    from privacy_pipeline import catalog

    param = dagbag.dags["privacy_requests_nightly"].params.get_param("include")
    allowed = sorted(param.schema["items"]["enum"])
    assert allowed == sorted(catalog.PRODUCTS.values())
    assert sorted(param.schema["examples"]) == allowed  # the form's multi-select offers the same list
    assert param.resolve(["aepDataLake", "analytics"]) == ["aepDataLake", "analytics"]
    for bad in (["photoshop"], [], ["analytics", "analytics"], ["AEPDATALAKE"], "aepDataLake"):
        with pytest.raises(ParamValidationError):
            param.resolve(bad)
    with pytest.raises(ParamValidationError, match="aepDataLake"):  # the message lists the allowed codes
        param.resolve(["photoshop"])


def test_legacy_mapping_param_explains_itself(dagbag):
    param = dagbag.dags["privacy_requests_nightly"].params.get_param("map_legacy_regulations")
    assert "2025-07-28" in param.description  # when Adobe stopped accepting legacy values
    assert "cpa → cpa_co_usa" in param.description  # an example of the mapping
    assert "gdpr" in param.description  # the current values are listed


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [("poll_interval", 5, 4), ("poll_interval", 86400, 86401), ("wait_timeout", 10, 9),
     ("wait_timeout", 7 * 86400, 7 * 86400 + 1), ("wait_timeout", 3600, "3600")],
)
def test_time_bounds(dagbag, name, good, bad):
    from airflow.sdk.exceptions import ParamValidationError

    param = dagbag.dags["privacy_requests_nightly"].params.get_param(name)
    assert param.resolve(good) == good
    with pytest.raises(ParamValidationError):
        param.resolve(bad)


def test_defaults_validate(dagbag):
    for dag_id, dag in dagbag.dags.items():
        dag.params.validate()  # a DAG whose defaults do not pass its own form could never be triggered
        assert dag_id


def test_mapped_tasks_name_their_chunks(dagbag):
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            if isinstance(task, MappedOperator):
                template = task.partial_kwargs.get("map_index_template") or getattr(task, "map_index_template", None)
                assert template and "chunk" in template, f"{dag_id}.{task.task_id} has no map_index_template"


def test_map_index_template_renders_chunk_and_batch_count(dagbag):
    """The label a person reads in the grid, rendered as the task runner renders it (the DAG's own env)."""
    from types import SimpleNamespace

    from airflow.sdk.definitions.mappedoperator import MappedOperator

    chunk = SimpleNamespace(batch_keys=["k1", "k2"], batch_ids=["b1", "b2"], chunk_index=3)
    rendered = set()
    for dag in dagbag.dags.values():
        for task in dag.tasks:
            if isinstance(task, MappedOperator):
                template = task.partial_kwargs.get("map_index_template") or task.map_index_template
                text = dag.get_template_env().from_string(template).render(
                    ti=SimpleNamespace(map_index=3), task=chunk
                )
                rendered.add(str(text))
    assert rendered == {"chunk 3: 2 batches", "chunk 3: 2 retry batches"}, rendered
