"""Millisecond checks of the wiring: links registered and declared as published, the connection form,
and the base's rule that a request index or evidence failure is a WARNING, never a failed step."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime

import pytest
import structlog
from airflow.sdk import BaseOperatorLink

from tests.operators.fakes import FakeTaskInstance


def test_the_provider_registers_every_link_class_by_path():
    from adobe_privacy import links
    from adobe_privacy.get_provider_info import get_provider_info

    registered = get_provider_info()["extra-links"]
    assert registered == links.EXTRA_LINK_CLASSES
    for path in registered:
        module, _, name = path.rpartition(".")
        assert issubclass(getattr(importlib.import_module(module), name), BaseOperatorLink)


def test_the_connection_form_shows_the_prod_sandbox_and_the_list_and_journal_fields():
    from adobe_privacy.get_provider_info import CONN_FIELDS, UI_FIELD_BEHAVIOUR
    from adobe_privacy.hooks import PrivacyServiceHook
    from adobe_privacy.protocol.settings import DEFAULT_SANDBOX_NAME

    assert UI_FIELD_BEHAVIOUR["placeholders"]["sandbox_name"] == "prod" == DEFAULT_SANDBOX_NAME
    assert CONN_FIELDS["sandbox_name"]["schema"]["default"] == "prod"
    assert {"page_size", "journal_url"} <= set(CONN_FIELDS)
    assert PrivacyServiceHook.get_ui_field_behaviour()["placeholders"] == UI_FIELD_BEHAVIOUR["placeholders"]


@pytest.mark.parametrize("module, name, keys", [
    ("intake", "PrivacyIntakeOperator", {"run_folder_url", "rejects_url"}),
    ("opt_out", "SubmitOptOutsOperator", {"run_folder_url", "rejects_url"}),
    ("archive", "ArchivePrivacyJobsOperator", {"run_folder_url"}),
    ("hygiene", "ArchiveHygieneJobsOperator", {"run_folder_url"}),
    ("reconcile", "ReconcilePrivacyJobsOperator", {"run_folder_url"}),
    ("report", "PrivacyRunReportOperator", {"run_folder_url", "report_url", "rejects_url", "deadlines_url"}),
])
def test_each_step_declares_the_links_it_publishes(module, name, keys):
    cls = getattr(importlib.import_module(f"adobe_privacy.operators.{module}"), name)
    assert {link.key for link in cls.operator_extra_links} == keys


def test_the_wait_declares_adobes_ui_and_the_hygiene_wait_nothing():
    from adobe_privacy.sensors import HygieneJobsSensor, PrivacyRunJobsSensor

    assert [link.name for link in PrivacyRunJobsSensor.operator_extra_links] == ["Adobe Privacy Service jobs"]
    assert not HygieneJobsSensor.operator_extra_links


class BrokenStore:
    """A store whose every write fails (an index bucket that cannot be reached)."""

    prefix = "root"
    bucket = "b"

    def key(self, *parts: str) -> str:
        return "/".join((self.prefix, *parts))

    def uri(self, key: str) -> str:
        return f"s3://b/{key}"

    def put_bytes(self, *_args, **_kwargs):
        raise OSError("unreachable: alice@example.com")

    get_json = get_bytes = list_keys = put_bytes


def _operator_with(store):
    from adobe_privacy.operators import PrivacyBaseOperator

    op = PrivacyBaseOperator(task_id="step", archive_uri="s3://b/root")
    op.__dict__["store"] = store  # the cached property, replaced
    return op


def test_a_failed_index_write_is_a_warning_naming_no_value():
    op = _operator_with(BrokenStore())
    context = {"logical_date": datetime(2026, 3, 2, tzinfo=UTC), "run_id": "r",
               "ti": FakeTaskInstance(dag_id="d", task_id="step", run_id="r")}
    rows = [{"request_id": "k1", "source": "s", "row": 2, "line": 2, "field": "action", "reason": "unknown"}]

    with structlog.testing.capture_logs() as logs:
        assert op.update_request_index(context, rejects=rows) is None
        assert op.write_evidence_packs(["k1"], at=datetime(2026, 3, 2, tzinfo=UTC)) == 0

    warnings = [entry for entry in logs if entry["log_level"] == "warning"]
    assert len(warnings) == 2 and "rebuild_index" in str(warnings[0]) and "audit packs" in str(warnings[1])
    assert "example.com" not in str(logs), "the error's message may quote a value: only its class is logged"
