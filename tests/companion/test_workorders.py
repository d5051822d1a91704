"""Data Lifecycle record-delete work orders against the emulator over HTTP: submit, recover, wait, archive, report.

Exactly once without an idempotency key is the promise under attack here: a POST whose response is
dropped after Adobe committed it, a task killed between its intent and its ledger record, a retry of a
task whose POST outcome it never learnt. The oracle is the emulator's own count of orders
(`/_emulator/stats` `workorders_total`), never our ledger.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import contextmanager
from typing import Any
from unittest import mock

import pytest

from tests.companion.conftest import subject_rows

WORKORDER_ROUTE = "POST /data/core/hygiene/workorder"
#: Orders move received → ... → completed in 20 emulator seconds; the tests move the clock.
WORKORDER_LIFECYCLE = {"workorder_complete_after_seconds": 20.0, "workorder_failure_rate": 0.0}


class ProcessDied(BaseException):
    """The worker died here (a BaseException: no `except Exception` on the way swallows it)."""


@contextmanager
def dies_at(predicate: Callable[[str, Any], bool], *, after_write: bool = False):
    """The first `put_json` matching `predicate(key, document)` kills the task, before or after writing."""
    from adobe_privacy.storage import PrivacyArchiveStore

    original = PrivacyArchiveStore.put_json
    fired = {"n": 0}

    def put_json(store, key, document):
        if fired["n"] or not predicate(key, document):
            return original(store, key, document)
        fired["n"] += 1
        if after_write:
            original(store, key, document)
        raise ProcessDied(f"killed at {key}")

    with mock.patch.object(PrivacyArchiveStore, "put_json", put_json):
        yield fired


def batch_document_with_orders(key: str, document: Any) -> bool:
    return "/ledger/batches/" in key and bool(document.get("workorders"))


def intent_document(key: str, document: Any) -> bool:
    return "/ledger/batches/" in key and document.get("state") == "intent"


@pytest.fixture
def hygiene(companion):
    companion.emulator.configure(**WORKORDER_LIFECYCLE)
    companion.hygiene_uri = f"{companion.archive_uri}/hygiene"
    return companion


def stage(companion, rows: list[str], run_id: str = "w1") -> list[str]:
    chunks = companion.take_in(companion.write_csv(f"deletes-{run_id}.csv", rows), run_id=run_id,
                               archive_uri=companion.hygiene_uri, allowed_actions=["delete"])
    return [key for chunk in chunks for key in chunk]


def submit(companion, keys: list[str], run_id: str = "w1", **kwargs: Any) -> dict[str, Any]:
    from adobe_privacy.operators.hygiene import SubmitHygieneDeletesOperator

    kwargs.setdefault("api", "workorder")
    op = SubmitHygieneDeletesOperator(task_id="submit_deletes", batch_keys=keys, archive_uri=companion.hygiene_uri,
                                      daily_job_budget="", **kwargs)
    return op.execute(companion.context(run_id=run_id))


def orders_total(companion) -> int:
    return companion.emulator.stats()["workorders_total"]


def ledger_orders(companion) -> dict[str, list[dict[str, Any]]]:
    root = f"{companion.prefix}/hygiene"
    return {batch_id: doc.get("workorders", []) for batch_id, doc in companion.ledger("batches", root=root).items()}


MIXED_ROWS = (subject_rows(3, action="delete", prefix="std")
              + subject_rows(2, action="delete", prefix="crm", namespace="crmId", id_type="custom"))


def test_a_work_order_run_goes_end_to_end(hygiene, caplog):
    """Submit (one order per namespace), a deferred wait, the archive of each final GET, a report that adds up."""
    from adobe_privacy.operators import PrivacyRunReportOperator
    from adobe_privacy.operators.hygiene import ArchiveHygieneDeletesOperator
    from adobe_privacy.sensors import HygieneDeletesSensor
    from adobe_privacy.triggers import WorkOrdersTrigger
    from airflow.sdk.exceptions import TaskDeferred

    keys = stage(hygiene, MIXED_ROWS)
    summary = submit(hygiene, keys)
    assert summary["api"] == "workorder" and summary["jobs"] == 2 and summary["api_posts"] == 2
    assert orders_total(hygiene) == 2 and hygiene.calls(WORKORDER_ROUTE) == 2
    assert summary["identities"] == 5 and summary["submitted_subjects"] == 5
    (orders,) = ledger_orders(hygiene).values()
    assert {o["namespace"]: sorted(o["request_keys"]) for o in orders} == {
        "crmId": ["crm-0", "crm-1"], "Email": ["std-0", "std-1", "std-2"]}
    assert all(o["workorder_id"].startswith("DI-") for o in orders)
    assert "std-0@example.com" not in caplog.text
    assert set(hygiene.ledger("open", root=f"{hygiene.prefix}/hygiene")) == set(summary["batch_ids"])

    again = submit(hygiene, keys)  # a retried task: the ledger says submitted, nothing is posted
    assert again["jobs"] == 2 and again["api_posts"] == 0 and orders_total(hygiene) == 2

    context = hygiene.context(run_id="w1")
    sensor = HygieneDeletesSensor(task_id="wait", submissions=[summary], api="workorder", poll_interval=5,
                                  wait_timeout=600)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    trigger = deferred.value.trigger
    assert isinstance(trigger, WorkOrdersTrigger) and sorted(trigger.job_ids) == sorted(summary["workorder_ids"])
    hygiene.advance(seconds=60)
    event = asyncio.run(trigger.run().__anext__())
    result = sensor.execute_complete(context, event.payload)
    assert result["status"] == "success" and result["counts"] == {"completed": 2} and result["api"] == "workorder"

    archived = ArchiveHygieneDeletesOperator(task_id="archive", batch_ids=summary["batch_ids"], chunk_index=0,
                                             archive_uri=hygiene.hygiene_uri, api="workorder").execute(context)
    assert archived == {"jobs": 2, "status:complete": 2}
    assert hygiene.ledger("open", root=f"{hygiene.prefix}/hygiene") == {}, "final orders leave the open index"
    report = PrivacyRunReportOperator(task_id="report", archive_uri=hygiene.hygiene_uri,
                                      submissions=[summary]).execute(context)
    assert report["jobs_created"] == 2 and report["subjects_submitted"] == 5 and report["api_posts"] == 2
    run_root = f"{hygiene.prefix}/hygiene/runs/2026-03-02/w1"
    full = hygiene.get_json(f"{run_root}/report.json")
    assert full["jobs_by_status"] == {"complete": 2} and full["jobs_recorded"] == 2
    assert full["product_outcomes"] == {name: {"success": 2} for name in
                                        ("Data Management", "Identity Service", "Profile Service")}
    body = hygiene.s3.get_object(Bucket=hygiene.bucket, Key=f"{run_root}/jobs.jsonl")["Body"].read().decode()
    assert "productStatusDetails" in body and "@example.com" not in body


def test_a_dropped_response_is_adopted_from_the_list_not_posted_again(hygiene, monkeypatch):
    """Adobe committed the order, the answer never came: the list by batch id finds it inside the task."""
    from adobe_privacy.operators import workorders

    monkeypatch.setattr(workorders, "OUTCOME_RECHECK_WAITS", (0.0,))
    keys = stage(hygiene, MIXED_ROWS)
    hygiene.emulator.add_fault(route=WORKORDER_ROUTE, kind="drop_after_commit", times=1)
    summary = submit(hygiene, keys)
    assert summary["jobs"] == 2 and orders_total(hygiene) == 2, "0 duplicate orders"
    (orders,) = ledger_orders(hygiene).values()
    assert sorted(o["adopted"] for o in orders) == [False, True]


def test_a_retry_after_an_unknown_outcome_lists_and_adopts_before_any_post(hygiene, monkeypatch):
    """The task gives up on an unknown outcome; its retry adopts the committed order and posts only the other."""
    from adobe_privacy.exceptions import PrivacyOutcomeUnknownError
    from adobe_privacy.operators import workorders

    monkeypatch.setattr(workorders, "OUTCOME_RECHECK_WAITS", ())
    keys = stage(hygiene, MIXED_ROWS)
    hygiene.emulator.add_fault(route=WORKORDER_ROUTE, kind="drop_after_commit", times=1)
    with pytest.raises(PrivacyOutcomeUnknownError):
        submit(hygiene, keys)
    assert orders_total(hygiene) == 1
    (document,) = hygiene.ledger("batches", root=f"{hygiene.prefix}/hygiene").values()
    assert document["state"] == "intent" and document["workorders"] == []
    summary = submit(hygiene, keys)
    assert orders_total(hygiene) == 2 and summary["jobs"] == 2
    assert hygiene.calls(WORKORDER_ROUTE) == 2, "the retry posted only the order the list did not hold"


@pytest.mark.parametrize(("predicate", "after_write", "orders_before_retry"), [
    (batch_document_with_orders, False, 1),  # POSTed, killed before the ledger learnt the order id
    (intent_document, True, 0),  # the intent on record, killed before the POST went out
], ids=["after-post-before-ledger", "after-intent-before-post"])
def test_a_task_killed_between_intent_and_record_never_duplicates(hygiene, predicate, after_write,
                                                                   orders_before_retry):
    keys = stage(hygiene, MIXED_ROWS)
    with dies_at(predicate, after_write=after_write), pytest.raises(ProcessDied):
        submit(hygiene, keys)
    assert orders_total(hygiene) == orders_before_retry
    summary = submit(hygiene, keys)
    assert orders_total(hygiene) == 2 and summary["jobs"] == 2 and summary["submitted_batches"] == 1
    (orders,) = ledger_orders(hygiene).values()
    assert sorted(o["namespace"] for o in orders) == ["Email", "crmId"]
    assert len({o["workorder_id"] for o in orders}) == 2


def test_quota_exhaustion_postpones_and_the_next_run_carries_the_batch(hygiene):
    """GET /quota before submitting: a batch over today's identities gets no POST and a pending marker."""
    rows = (subject_rows(2, action="delete", prefix="gd") +
            subject_rows(4, action="delete", regulation="ccpa", prefix="cc"))
    hygiene.emulator.configure(workorder_daily_identities=3)
    keys = stage(hygiene, rows)
    assert len(keys) == 2
    summary = submit(hygiene, keys)
    assert summary["submitted_batches"] == 1 and summary["submitted_subjects"] == 2
    assert summary["postponed_batches"] == 1 and summary["over_quota_batches"] == 1
    assert summary["postponed_subjects"] == 4 and orders_total(hygiene) == 1
    root = f"{hygiene.prefix}/hygiene"
    pending = hygiene.ledger("pending", root=root)
    assert len(pending) == 1 and "work-order quota" in next(iter(pending.values()))["reason"]
    states = sorted(doc["state"] for doc in hygiene.ledger("batches", root=root).values())
    assert states == ["postponed", "submitted"]

    hygiene.emulator.configure(workorder_daily_identities=1_000_000)
    carried = stage(hygiene, [], run_id="w2")
    assert len(carried) == 1
    later = submit(hygiene, carried, run_id="w2")
    assert later["submitted_batches"] == 1 and later["submitted_subjects"] == 4 and orders_total(hygiene) == 2
    assert hygiene.ledger("pending", root=root) == {}


def test_open_orders_at_the_timeout_are_reported_open_and_stay_in_the_open_index(hygiene):
    from adobe_privacy.operators import PrivacyRunReportOperator
    from adobe_privacy.operators.hygiene import ArchiveHygieneDeletesOperator
    from adobe_privacy.triggers import WorkOrdersTrigger

    keys = stage(hygiene, MIXED_ROWS)
    summary = submit(hygiene, keys)
    trigger = WorkOrdersTrigger(job_ids=summary["workorder_ids"], from_date=summary["from_date"],
                                to_date=summary["to_date"], poll_interval=1, end_at="2000-01-01T00:00:00+00:00")
    event = asyncio.run(trigger.run().__anext__()).payload
    assert event["status"] == "timeout" and event["open"] == 2
    context = hygiene.context(run_id="w1")
    ArchiveHygieneDeletesOperator(task_id="archive", batch_ids=summary["batch_ids"], chunk_index=0,
                                  archive_uri=hygiene.hygiene_uri, api="workorder").execute(context)
    root = f"{hygiene.prefix}/hygiene"
    assert set(hygiene.ledger("open", root=root)) == set(summary["batch_ids"])
    report = PrivacyRunReportOperator(task_id="report", archive_uri=hygiene.hygiene_uri,
                                      submissions=[summary]).execute(context)
    assert report["jobs_created"] == 2
    full = hygiene.get_json(f"{root}/runs/2026-03-02/w1/report.json")
    assert sum(full["jobs_by_status"].values()) == 2 and "complete" not in full["jobs_by_status"]


def test_the_alpha_jobs_api_still_works_with_a_deferred_wait(hygiene):
    from adobe_privacy.operators import PrivacyRunReportOperator
    from adobe_privacy.operators.hygiene import ArchiveHygieneDeletesOperator
    from adobe_privacy.sensors import HygieneDeletesSensor
    from adobe_privacy.triggers import HygieneJobsTrigger
    from airflow.sdk.exceptions import TaskDeferred

    from tests.companion.conftest import HYGIENE_ROUTE

    hygiene.emulator.configure(processing_after_seconds=5.0, complete_after_seconds=20.0)
    keys = stage(hygiene, MIXED_ROWS)
    summary = submit(hygiene, keys, api="jobs")
    assert summary["api"] == "jobs" and summary["jobs"] == 5 and hygiene.calls(HYGIENE_ROUTE) == 1
    assert orders_total(hygiene) == 0
    context = hygiene.context(run_id="w1")
    # The Variable says workorder, the submit tasks used jobs: the run's own API wins.
    sensor = HygieneDeletesSensor(task_id="wait", submissions=[summary], api="workorder", poll_interval=5,
                                  wait_timeout=600)
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute(context)
    assert isinstance(deferred.value.trigger, HygieneJobsTrigger)
    hygiene.advance(seconds=60)
    event = asyncio.run(deferred.value.trigger.run().__anext__())
    assert sensor.execute_complete(context, event.payload)["counts"] == {"complete": 5}
    archived = ArchiveHygieneDeletesOperator(task_id="archive", batch_ids=summary["batch_ids"], chunk_index=0,
                                             archive_uri=hygiene.hygiene_uri, api="jobs").execute(context)
    assert archived == {"jobs": 5, "status:complete": 5}
    report = PrivacyRunReportOperator(task_id="report", archive_uri=hygiene.hygiene_uri,
                                      submissions=[summary]).execute(context)
    assert report["jobs_created"] == 5


def test_an_unknown_api_setting_fails_at_once_without_a_call(hygiene):
    from airflow.sdk.exceptions import AirflowFailException

    keys = stage(hygiene, MIXED_ROWS)
    with pytest.raises(AirflowFailException, match="privacy_hygiene_api"):
        submit(hygiene, keys, api="hygiene-v2")
    assert orders_total(hygiene) == 0


def test_the_wait_triggers_survive_the_schedulers_serialization():
    from adobe_privacy.triggers import HygieneJobsTrigger, WorkOrdersTrigger

    for cls in (WorkOrdersTrigger, HygieneJobsTrigger):
        trigger = cls(job_ids=["DI-1"], from_date="2026-03-01", to_date="2026-03-31", poll_interval=30,
                      max_poll_interval=10, end_at="2026-04-01T00:00:00+00:00")
        path, kwargs = trigger.serialize()
        assert path == f"adobe_privacy.triggers.{cls.__name__}"
        rebuilt = cls(**kwargs)
        assert rebuilt.serialize() == (path, kwargs) and rebuilt.max_poll_interval == 30.0


def test_orders_open_when_a_run_stopped_waiting_are_recorded_by_a_later_runs_follow_up(hygiene):
    from adobe_privacy.operators.hygiene import ArchiveHygieneDeletesOperator
    from adobe_privacy.operators.workorders import FollowUpWorkOrdersOperator

    keys = stage(hygiene, MIXED_ROWS)
    summary = submit(hygiene, keys)
    ArchiveHygieneDeletesOperator(task_id="archive", batch_ids=summary["batch_ids"], chunk_index=0,
                                  archive_uri=hygiene.hygiene_uri, api="workorder").execute(hygiene.context(run_id="w1"))
    root = f"{hygiene.prefix}/hygiene"

    def follow_up(run_id: str, exclude=None) -> dict:
        return FollowUpWorkOrdersOperator(task_id="follow_up", archive_uri=hygiene.hygiene_uri,
                                          exclude_submissions=exclude).execute(hygiene.context(run_id=run_id))

    assert follow_up("w1", exclude=[summary]) == {"orders_recorded": 0}, "its own run's batches are not followed up"
    assert follow_up("w2") == {"orders_recorded": 0, "batches_checked": 1, "orders_open": 2}
    assert set(hygiene.ledger("open", root=root)) == set(summary["batch_ids"])

    hygiene.advance(seconds=60)
    done = follow_up("w3")
    assert done == {"orders_recorded": 2, "batches_checked": 1, "batches_closed": 1, "status:complete": 2}
    assert hygiene.ledger("open", root=root) == {}
    (key,) = hygiene.keys("hygiene/runs/2026-03-02/w3/followup")
    body = hygiene.s3.get_object(Bucket=hygiene.bucket, Key=key)["Body"].read().decode()
    assert body.count("productStatusDetails") == 2 and "@example.com" not in body
    assert follow_up("w4") == {"orders_recorded": 0}
    assert orders_total(hygiene) == 2 and hygiene.calls(WORKORDER_ROUTE) == 2


def test_the_wait_without_orders_returns_at_once_and_a_bad_setting_or_event_fails_loudly(hygiene):
    from adobe_privacy.exceptions import PrivacyServiceError
    from adobe_privacy.sensors import HygieneDeletesSensor
    from airflow.sdk.exceptions import AirflowException, AirflowFailException

    context = hygiene.context(run_id="w1")
    empty = HygieneDeletesSensor(task_id="wait", submissions=[{"jobs_by_regulation": {}, "jobs": 0}],
                                 api="workorder")
    assert empty.execute(context) == {"status": "success", "api": "workorder", "counts": {}, "open": 0,
                                      "error_job_ids": []}
    assert hygiene.calls("GET /data/core/hygiene/workorder") == 0
    wrong = HygieneDeletesSensor(task_id="wait", submissions=[], api="v3")
    with pytest.raises(AirflowFailException, match="privacy_hygiene_api"):
        wrong.execute(context)
    sensor = HygieneDeletesSensor(task_id="wait", submissions=[], api="workorder")
    with pytest.raises(PrivacyServiceError, match="gateway down"):
        sensor.execute_complete(context, {"status": "error", "message": "gateway down"})
    with pytest.raises(AirflowException, match="invalid event"):
        sensor.execute_complete(context, {"status": "done"})
    split = HygieneDeletesSensor(task_id="wait", submissions=[{"api": "jobs"}, {"api": "workorder"}])
    with pytest.raises(AirflowException, match="different hygiene APIs"):
        split.execute(context)
