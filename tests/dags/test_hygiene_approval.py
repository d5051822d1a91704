"""The approval gate of `data_hygiene_deletes`, driven through Airflow's human-in-the-loop API on real runs.

As for the nightly DAG (tests/dags/test_nightly_approval.py): `dag.test()` parks `ask_approval` in
`awaiting_input`, a person (another thread) answers through the REST API v2 as the *Required actions* page
does, or nobody answers and the scheduler's own sweep times the question out. The emulator says which
work orders were and were not created (and that a held batch cost no call to Adobe at all), the hygiene
ledger says what is carried, and the hygiene root's request index says who answered and when (the
evidence pack's approvals).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from privacy_pipeline.report import check_accounting

from tests.dags import test_nightly_approval
from tests.dags.conftest import ARCHIVE_BUCKET, list_keys
from tests.dags.test_hygiene_dag import DAG_ID, outputs, run_hygiene, write_deletes
from tests.dags.test_nightly_approval import APPROVER, Approver, Timeout, ti_states

WORKORDER_ROUTE = "POST /data/core/hygiene/workorder"
QUOTA_ROUTE = "GET /data/core/hygiene/quota"
#: write_deletes(emails=3, crm_ids=2): one batch (delete, gdpr) planned as two orders (Email, crmId).
REQUESTS = ["e-0", "e-1", "e-2", "c-0", "c-1"]
SECRETS = ["e-0@example.com", "e-1@example.com", "e-2@example.com", "C00000", "C00001"]
WHY = "2 Data Lifecycle work order(s)"
#: The nightly gate test's fixture: Airflow's core REST API in this process, with the admin `dpo`.
hitl_api = test_nightly_approval.hitl_api


@pytest.fixture
def hygiene(nightly):
    nightly.emulator.configure(workorder_complete_after_seconds=1.0, workorder_failure_rate=0.0)
    return nightly


def calls(harness, route: str) -> int:
    return sum(harness.emulator.stats()["calls"].get(route, {}).values())


def hygiene_ledger(harness, kind: str) -> dict[str, dict]:
    prefix = f"{harness.archive_prefix}/hygiene/ledger/{kind}/"
    return {key.rsplit("/", 1)[-1].removesuffix(".json"):
            json.loads(harness.s3.get_object(Bucket=ARCHIVE_BUCKET, Key=key)["Body"].read())
            for key in list_keys(harness.s3, ARCHIVE_BUCKET, prefix)}


def index_record(harness, request_id: str) -> dict | None:
    from adobe_privacy.index_store import RequestIndex
    from adobe_privacy.storage import PrivacyArchiveStore

    store = PrivacyArchiveStore(f"{harness.archive_uri}/hygiene", aws_conn_id="aws_default")
    return RequestIndex(store, cache_dir=harness.tmp_path / "hygiene-index-cache").lookup(request_id)


def settle_xcom(dag_run) -> object:
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        rows = session.scalars(XComModel.get_many(run_id=dag_run.run_id, dag_ids=DAG_ID, task_ids="settle_approval",
                                                  key="return_value"))
        return [XComModel.deserialize_value(row) for row in rows]


@pytest.mark.slow
def test_a_rejection_postpones_every_work_order_and_the_next_run_an_approval_sends_them_once(hygiene, hitl_api,
                                                                                              monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_APPROVAL_RULES", '{"work_orders": true}')
    source = write_deletes(hygiene, emails=3, crm_ids=2, bad=0)

    with Approver(hitl_api, "Reject", dag_id=DAG_ID) as person:
        rejected = run_hygiene(hygiene, "2026-03-02", input_uri=str(source))
    assert person.errors == [] and len(person.asked) == 1, "asked exactly once, and the answer was taken"
    asked = person.asked[0]
    assert asked["task_instance"]["task_id"] == "ask_approval" and asked["defaults"] == ["Reject"]
    assert WHY in asked["body"] and "**5** delete subject(s) in **1** batch(es)" in asked["body"]
    assert not any(value in asked["body"] + asked["subject"] for value in SECRETS + REQUESTS), "counts only"

    # Nothing reached Adobe for the held batch: no order, not even a quota read.
    stats = hygiene.emulator.stats()
    assert stats["workorders_total"] == 0 and calls(hygiene, WORKORDER_ROUTE) == 0 and calls(hygiene, QUOTA_ROUTE) == 0
    assert ti_states(rejected)["submit_deletes"] == "success", "a held batch is postponed, not a failure"
    report = outputs(hygiene, rejected).report
    check_accounting(report)
    assert report["subjects_postponed"] == 5 and report["subjects_submitted"] == 0 and report["jobs_created"] == 0
    pending = hygiene_ledger(hygiene, "pending")
    assert len(pending) == 1 and f"rejected by {APPROVER}" in next(iter(pending.values()))["reason"]
    assert [entry["state"] for entry in hygiene_ledger(hygiene, "batches").values()] == ["postponed"]
    assert [(a["decision"], a["by"]) for a in index_record(hygiene, "c-1")["approvals"]] == [("Reject", APPROVER)]

    # The next run carries the held batch (its partition is empty), asks again, and is approved.
    with Approver(hitl_api, "Approve", dag_id=DAG_ID) as person:
        approved = run_hygiene(hygiene, "2026-03-03")
    assert person.errors == [] and len(person.asked) == 1 and WHY in person.asked[0]["body"]
    stats = hygiene.emulator.stats()
    assert stats["workorders_total"] == 2 and stats["workorder_identities_total"] == 5
    assert calls(hygiene, WORKORDER_ROUTE) == 2, "each planned order posted once"
    assert calls(hygiene, QUOTA_ROUTE) == 1, "the quota is read once the batch is no longer held"
    assert hygiene_ledger(hygiene, "pending") == {}
    assert [entry["state"] for entry in hygiene_ledger(hygiene, "batches").values()] == ["submitted"]
    report = outputs(hygiene, approved).report
    check_accounting(report)
    assert report["subjects_carried_in"] == report["subjects_submitted"] == 5 and report["jobs_created"] == 2
    assert report["jobs_by_status"] == {"complete": 2}

    # The evidence packs of the hygiene root, as an auditor has them written (`adobe_privacy.audit packs`).
    from adobe_privacy.audit import main as audit

    assert audit(["packs", "--from", "2026-03-01", "--to", "2026-03-01",
                  "--archive-uri", f"{hygiene.archive_uri}/hygiene"]) == 0
    evidence = f"{hygiene.archive_prefix}/hygiene/evidence/"
    packs = [key for key in list_keys(hygiene.s3, ARCHIVE_BUCKET, evidence) if key.endswith("/pack.json")]
    assert len(packs) == len(REQUESTS)
    for key in packs:
        body = hygiene.s3.get_object(Bucket=ARCHIVE_BUCKET, Key=key)["Body"].read()
        approvals = json.loads(body)["approvals"]
        assert [(a["decision"], a["by"]) for a in approvals] == [("Reject", APPROVER), ("Approve", APPROVER)]
        rejected_at, approved_at = (datetime.fromisoformat(a["at"]) for a in approvals)
        assert rejected_at < approved_at <= datetime.now(UTC) and all(a["reasons"] == [WHY] for a in approvals)
        assert not any(secret.encode() in body for secret in SECRETS)


@pytest.mark.slow
def test_with_no_rules_the_hygiene_gate_is_skipped_and_the_orders_go(hygiene):
    source = write_deletes(hygiene, emails=2, crm_ids=1, bad=0)
    run = run_hygiene(hygiene, "2026-03-02", input_uri=str(source))

    states = ti_states(run)
    assert states["decide_approval"] == "success" and states["settle_approval"] == "success"
    assert states["ask_approval"] == "skipped", "nobody is asked, nothing waits"
    assert settle_xcom(run) == [{}]
    assert hygiene.emulator.stats()["workorders_total"] == 2 and hygiene_ledger(hygiene, "pending") == {}


@pytest.mark.slow
def test_no_answer_in_time_counts_as_reject_and_the_work_orders_are_carried(hygiene, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_APPROVAL_RULES", '{"max_delete_subjects": 2}')
    source = write_deletes(hygiene, emails=2, crm_ids=1, bad=0)

    with Timeout(dag_id=DAG_ID) as clock:
        run = run_hygiene(hygiene, "2026-03-02", input_uri=str(source), approval_timeout=3600)
    assert clock.swept == 1
    assert ti_states(run)["ask_approval"] == "success", "a timeout is an answer (the defaults), not a failure"
    assert hygiene.emulator.stats()["workorders_total"] == 0 and calls(hygiene, WORKORDER_ROUTE) == 0
    pending = hygiene_ledger(hygiene, "pending")
    assert len(pending) == 1 and "not given in time" in next(iter(pending.values()))["reason"]
    approvals = index_record(hygiene, "e-0")["approvals"]
    assert [(a["decision"], a["by"]) for a in approvals] == [("timed_out", None)] and approvals[0]["at"]
    check_accounting(outputs(hygiene, run).report)
