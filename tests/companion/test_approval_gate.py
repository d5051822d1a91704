"""The approval gate's operators on hygiene deletes and on reconcile's resubmissions, over HTTP.

The HITL round trip itself is driven through Airflow's REST API in tests/dags/test_nightly_approval.py;
here the answer is handed to the settle step directly (hygiene, through the batch submitter's hygiene
API), or left to time out under the scheduler's own sweep (a real reconcile run), to check what Adobe
does and does not receive, and that a malformed Variable fails at once (no retry).
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tests.companion.conftest import HYGIENE_ROUTE, subject_rows
from tests.operators.fakes import FakeTaskInstance


class AnsweringTaskInstance(FakeTaskInstance):
    """A task instance whose XCom pull returns the ask step's answer."""

    def __init__(self, answer, **kwargs) -> None:
        super().__init__(**kwargs)
        self.answer = answer

    def xcom_pull(self, task_ids: str):
        assert task_ids == "ask_approval"
        return self.answer


def settle(companion, decision, answer, *, run_id: str, archive_uri: str) -> dict:
    from adobe_privacy.operators.approval import SettleApprovalOperator

    context = companion.context(run_id=run_id)
    context["ti"] = AnsweringTaskInstance(answer, dag_id="data_hygiene_deletes", task_id="settle_approval",
                                          run_id=run_id, map_index=-1)
    op = SettleApprovalOperator(task_id="settle_approval", decision=decision, ask_task_id="ask_approval",
                                archive_uri=archive_uri)
    return op.execute(context)


def submit(companion, keys, held, *, run_id: str, archive_uri: str) -> dict:
    from adobe_privacy.operators import SubmitHygieneBatchesOperator

    op = SubmitHygieneBatchesOperator(task_id="submit_deletes", batch_keys=keys, archive_uri=archive_uri, held=held,
                                      daily_job_budget="")
    return op.execute(companion.context(run_id=run_id))


def test_every_work_order_waits_for_a_person_and_a_rejection_carries_it(companion):
    from adobe_privacy.operators.approval import DecideApprovalOperator

    hygiene_uri = f"{companion.archive_uri}/hygiene"
    rows = subject_rows(3, action="delete", prefix="std")
    (keys,) = companion.take_in(companion.write_csv("deletes.csv", rows), run_id="h1", archive_uri=hygiene_uri,
                                allowed_actions=["delete"])
    decide = DecideApprovalOperator(task_id="decide_approval", batch_keys=[keys], work_orders=True,
                                    rules='{"work_orders": true}', archive_uri=hygiene_uri)
    decision = decide.execute(companion.context(run_id="h1"))
    assert decision["reasons"] == ["1 Data Lifecycle work order(s)"] and decision["delete_subjects"] == 3
    assert "std-0" not in str(decision), "ids and counts only in the XCom"

    rejected = {"chosen_options": ["Reject"], "responded_at": datetime(2026, 3, 2, 3, tzinfo=UTC),
                "responded_by_user": {"id": "dpo", "name": "dpo"}}
    held = settle(companion, decision, rejected, run_id="h1", archive_uri=hygiene_uri)
    assert list(held) == [decision["batches"][0]["batch_id"]]
    summary = submit(companion, keys, held, run_id="h1", archive_uri=hygiene_uri)
    assert summary["postponed_subjects"] == 3 and summary["jobs"] == 0
    assert companion.calls(HYGIENE_ROUTE) == 0, "not one work order was posted"
    pending = companion.ledger("pending", root=f"{companion.prefix}/hygiene")
    assert list(pending) == list(held) and "rejected by dpo" in pending[list(held)[0]]["reason"]

    # Tomorrow: intake carries the held batch, the person approves, it goes once.
    (carried,) = companion.take_in(companion.write_csv("none.csv", []), run_id="h2", archive_uri=hygiene_uri,
                                   allowed_actions=["delete"])
    assert carried == keys
    decision = decide.execute(companion.context(run_id="h2"))
    approved = {**rejected, "chosen_options": ["Approve"], "responded_at": datetime(2026, 3, 3, 3, tzinfo=UTC)}
    assert settle(companion, decision, approved, run_id="h2", archive_uri=hygiene_uri) == {}
    summary = submit(companion, carried, {}, run_id="h2", archive_uri=hygiene_uri)
    assert summary["jobs"] == 3 and companion.calls(HYGIENE_ROUTE) == 1
    assert companion.ledger("pending", root=f"{companion.prefix}/hygiene") == {}


def test_a_held_batch_already_submitted_stays_submitted_and_posts_nothing(companion):
    hygiene_uri = f"{companion.archive_uri}/hygiene"
    (keys,) = companion.take_in(companion.write_csv("d.csv", subject_rows(2, action="delete", prefix="x")),
                                run_id="h1", archive_uri=hygiene_uri, allowed_actions=["delete"])
    first = submit(companion, keys, {}, run_id="h1", archive_uri=hygiene_uri)
    held = {first["batch_ids"][0]: "held by the approval gate: test"}
    again = submit(companion, keys, held, run_id="h1", archive_uri=hygiene_uri)  # a retry after a late answer
    assert again["jobs"] == 2 and again["postponed_batches"] == 0 and companion.calls(HYGIENE_ROUTE) == 1
    assert companion.ledger("pending", root=f"{companion.prefix}/hygiene") == {}


@pytest.mark.parametrize("rules", ['{"work_orders": "yes"}', "{not json", '{"max_deletes": 1}'])
def test_a_malformed_variable_fails_the_decide_step_at_once(companion, rules):
    from adobe_privacy.operators.approval import DecideApprovalOperator
    from airflow.sdk.exceptions import AirflowFailException

    decide = DecideApprovalOperator(task_id="decide_approval", batch_keys=[], rules=rules,
                                    archive_uri=companion.archive_uri)
    with pytest.raises(AirflowFailException, match="privacy_approval_rules"):
        decide.execute(companion.context(run_id="bad"))


def test_reconcile_holds_errored_deletes_when_nobody_approves_their_resubmission(companion, airflow_db, monkeypatch):
    from airflow import settings
    from airflow.dag_processing.dagbag import DagBag

    from tests.companion.conftest import JOBS_ROUTE
    from tests.dags.conftest import REPO
    from tests.dags.test_nightly_approval import Timeout

    monkeypatch.setattr(settings, "DAGS_FOLDER", str(REPO / "dags"))
    monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_APPROVAL_RULES", '{"resubmit_errored_deletes": true}')
    companion.emulator.configure(error_rate=1.0)
    (keys,) = companion.take_in(companion.write_csv("n.csv", subject_rows(2, action="delete")), run_id="nightly")
    companion.submit(keys, run_id="nightly")
    companion.advance(seconds=30)

    dag = DagBag(dag_folder=str(REPO / "dags" / "privacy_reconcile.py")).get_dag("privacy_reconcile")
    with Timeout(dag_id="privacy_reconcile") as clock:
        run = dag.test(logical_date=datetime.now(UTC))
    assert run.state == "success" and clock.swept == 1
    assert companion.calls(JOBS_ROUTE) == 1, "the errored deletes were not resubmitted"
    pending = companion.ledger("pending")
    assert [batch_id.endswith(".r2") for batch_id in pending] == [True], "the retry batch is carried, not dropped"
    assert "not given in time" in next(iter(pending.values()))["reason"]
