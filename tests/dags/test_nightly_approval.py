"""The approval gate, driven through Airflow's human-in-the-loop API on real nightly runs.

`dag.test()` parks the gate's task in `awaiting_input`; a person (another thread here) answers through
the REST API v2 of Airflow's own api-server app (SimpleAuthManager, a named admin `dpo`), exactly as the
*Required actions* page does. The emulator says what was and was not posted; the ledger says what was
carried; the request index (the evidence pack's source) says who answered and when.
"""

from __future__ import annotations

import csv
import json
import threading
import time

import pytest
from privacy_pipeline.report import check_accounting

from tests.dags.conftest import DAG_ID, assert_exactly_once

APPROVER = "dpo"
#: ccpa access only (never held), gdpr deletes (held on a first run of gdpr), gdpr access|delete in the
#: same batch shape as the deletes (held with them: a batch is submitted whole or not at all).
ROWS = [
    *[[f"acc-{i}", "access", "ccpa", "email", f"acc{i}@example.com", "standard", "2026-06-20T00:00:00Z", ""]
      for i in range(3)],
    *[[f"del-{i}", "delete", "gdpr", "email", f"del{i}@example.com", "standard", "2026-06-20T00:00:00Z", ""]
      for i in range(2)],
    ["both-0", "access|delete", "gdpr", "email", "both0@example.com", "standard", "2026-06-20T00:00:00Z", ""],
]
ACCESS_ONLY = {("acc-0", "access"), ("acc-1", "access"), ("acc-2", "access")}
GATED = {("del-0", "delete"), ("del-1", "delete"), ("both-0", "access"), ("both-0", "delete")}
SECRETS = [row[4] for row in ROWS]


def write_csv(path, rows) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["request_id", "action", "regulation", "namespace", "value", "type", "received_at", "include"])
        writer.writerows(rows)


@pytest.fixture(scope="module")
def hitl_api(airflow_db, tmp_path_factory):
    """Airflow's core REST API in this process, with one admin (`dpo`) and a token for them."""
    home = tmp_path_factory.mktemp("hitl-auth")
    (home / "passwords.json").write_text(json.dumps({APPROVER: "dpo-password"}))
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", f"{APPROVER}:admin")
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(home / "passwords.json"))
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    client = TestClient(create_app("core"))
    response = client.post("/auth/token", json={"username": APPROVER, "password": "dpo-password"})
    assert response.status_code == 201, response.text
    client.headers["Authorization"] = f"Bearer {response.json()['access_token']}"
    yield client
    mp.undo()


class Approver:
    """A person answering the gate from another thread, through the HITL REST API, once asked."""

    def __init__(self, client, choice: str, dag_id: str = DAG_ID) -> None:
        self.client, self.choice, self.dag_id = client, choice, dag_id
        self.asked: list[dict] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._answer, daemon=True)

    def __enter__(self) -> Approver:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _answer(self) -> None:
        while not self._stop.is_set():
            listed = self.client.get(f"/api/v2/dags/{self.dag_id}/dagRuns/~/hitlDetails",
                                     params={"response_received": False})
            waiting = [d for d in listed.json().get("hitl_details", [])] if listed.status_code == 200 else []
            for detail in waiting:
                ti = detail["task_instance"]
                self.asked.append(detail)
                answer = self.client.patch(
                    f"/api/v2/dags/{self.dag_id}/dagRuns/{ti['dag_run_id']}/taskInstances/{ti['task_id']}/"
                    f"{ti['map_index']}/hitlDetails", json={"chosen_options": [self.choice]})
                if answer.status_code != 200:
                    self.errors.append(f"{answer.status_code} {answer.text}")
                return
            time.sleep(0.5)


class Timeout:
    """Nobody answers: once the gate waits, its deadline is moved into the past (time passing, not a sleep)
    and the scheduler's own awaiting-input sweep resolves it, as a running scheduler would."""

    def __init__(self, dag_id: str = DAG_ID) -> None:
        self.dag_id = dag_id
        self.swept = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._expire, daemon=True)

    def __enter__(self) -> Timeout:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _expire(self) -> None:
        import logging
        from datetime import UTC, datetime, timedelta
        from types import SimpleNamespace

        from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session
        from airflow.utils.state import TaskInstanceState
        from sqlalchemy import select

        while not self._stop.is_set():
            with create_session() as session:
                waiting = session.scalars(select(TaskInstance).where(
                    TaskInstance.dag_id == self.dag_id, TaskInstance.state == TaskInstanceState.AWAITING_INPUT)).all()
                for ti in waiting:
                    assert ti.trigger_timeout is not None, "the gate waits with a response timeout"
                    ti.trigger_timeout = datetime.now(UTC) - timedelta(seconds=1)
            if waiting:
                SchedulerJobRunner.check_awaiting_input_timeouts(SimpleNamespace(log=logging.getLogger("sweep")))
                self.swept += len(waiting)
                return
            time.sleep(0.5)


def ti_states(dag_run) -> dict[str, str]:
    from airflow.utils.session import create_session

    with create_session() as session:
        return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances(session=session) if ti.map_index <= 0}


def index_record(nightly, request_id: str) -> dict | None:
    from adobe_privacy.index_store import RequestIndex
    from adobe_privacy.storage import PrivacyArchiveStore

    store = PrivacyArchiveStore(nightly.archive_uri, aws_conn_id="aws_default")
    return RequestIndex(store, cache_dir=nightly.tmp_path / "index-cache").lookup(request_id)


def index_snapshot(nightly) -> dict[str, dict]:
    from adobe_privacy.index_store import RequestIndex
    from adobe_privacy.storage import PrivacyArchiveStore

    store = PrivacyArchiveStore(nightly.archive_uri, aws_conn_id="aws_default")
    return dict(RequestIndex(store, cache_dir=nightly.tmp_path / "index-cache").snapshot().merged)


def pairs_posted(nightly) -> set[tuple[str, str]]:
    return set(nightly.jobs_per_user_action())


@pytest.mark.slow
def test_a_rejection_holds_the_deletes_and_the_next_night_an_approval_sends_them_once(nightly, hitl_api, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_APPROVAL_RULES", '{"first_run_of_regulation": true}')
    source = nightly.tmp_path / "requests.csv"
    write_csv(source, ROWS)

    with Approver(hitl_api, "Reject") as person:
        rejected = nightly.run("2026-07-01", input_uri=source)
    assert person.errors == [] and len(person.asked) == 1, "asked exactly once, and the answer was taken"
    asked = person.asked[0]
    assert asked["task_instance"]["task_id"] == "ask_approval" and asked["defaults"] == ["Reject"]
    assert "first delete submission under regulation(s) gdpr" in asked["body"]
    assert not any(secret in asked["body"] + asked["subject"] for secret in SECRETS)
    assert not any(pair[0] in asked["body"] for pair in GATED | ACCESS_ONLY), "no request keys either"

    # What was and was not posted: the access-only batch went, the batch with deletes did not.
    assert pairs_posted(nightly) == ACCESS_ONLY
    assert not [pair for pair in nightly.emulator.stats()["jobs_per_user_action"] if pair.endswith("|delete")]
    report = nightly.outputs(rejected).report
    check_accounting(report)
    assert report["subjects_postponed"] == 3 and report["subjects_submitted"] == 3
    pending = nightly.ledger("pending")
    assert len(pending) == 1 and f"rejected by {APPROVER}" in next(iter(pending.values()))["reason"]
    record = index_record(nightly, "del-0")
    assert [(a["decision"], a["by"]) for a in record["approvals"]] == [("Reject", APPROVER)]
    touched = index_snapshot(nightly)  # every request the index has heard of since its last compaction
    assert {key for key, rec in touched.items() if rec["approvals"]} == {"del-0", "del-1", "both-0"}, \
        "the answer is on every request of the held batch, and on no access-only request"

    # The next night carries the held batch; the gate asks again (gdpr is still new) and is approved.
    with Approver(hitl_api, "Approve") as person:
        approved = nightly.run("2026-07-02")
    assert person.errors == [] and len(person.asked) == 1
    assert pairs_posted(nightly) == ACCESS_ONLY | GATED
    assert nightly.ledger("pending") == {}
    report = nightly.outputs(approved).report
    check_accounting(report)
    assert report["subjects_carried_in"] == report["subjects_submitted"] == 3
    assert_exactly_once(nightly, frozenset(ACCESS_ONLY | GATED))

    from datetime import UTC, datetime

    from privacy_pipeline.evidence import evidence_json, evidence_pack

    pack = evidence_pack(index_record(nightly, "both-0"), generated_at=datetime(2026, 7, 3, tzinfo=UTC))
    assert [(a["decision"], a["by"]) for a in pack["approvals"]] == [("Reject", APPROVER), ("Approve", APPROVER)]
    assert all(a["at"] and a["reasons"] == ["first delete submission under regulation(s) gdpr"]
               for a in pack["approvals"])
    assert not any(secret.encode() in evidence_json(pack) for secret in SECRETS)

    # gdpr deletes are known now: the same rule asks nothing for tomorrow's gdpr deletes.
    more = nightly.tmp_path / "more.csv"
    write_csv(more, [["del-9", "delete", "gdpr", "email", "del9@example.com", "standard", "2026-06-21T00:00:00Z", ""]])
    quiet = nightly.run("2026-07-03", input_uri=more)
    assert ti_states(quiet)["ask_approval"] == "skipped"
    assert ("del-9", "delete") in pairs_posted(nightly)


@pytest.mark.slow
def test_with_no_rules_the_gate_is_skipped_and_the_run_is_unchanged(nightly):
    source = nightly.tmp_path / "requests.csv"
    write_csv(source, ROWS)
    run = nightly.run("2026-07-10", input_uri=source)

    states = ti_states(run)
    assert states["decide_approval"] == "success" and states["settle_approval"] == "success"
    assert states["ask_approval"] == "skipped", "nobody is asked, nothing waits"
    assert nightly.task_xcom(run, "settle_approval") == [{}]
    assert pairs_posted(nightly) == ACCESS_ONLY | GATED
    report = nightly.outputs(run).report
    assert report["subjects_postponed"] == 0 and nightly.ledger("pending") == {}
    deltas = nightly.s3.list_objects_v2(Bucket=nightly.bucket, Prefix=f"{nightly.archive_prefix}/index/deltas/")
    assert not [o["Key"] for o in deltas.get("Contents", []) if "settle_approval" in o["Key"]], "nothing to record"




@pytest.mark.slow
def test_no_answer_in_time_counts_as_reject_and_the_deletes_are_carried(nightly, monkeypatch):
    monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_APPROVAL_RULES", '{"max_delete_subjects": 0}')
    source = nightly.tmp_path / "requests.csv"
    write_csv(source, ROWS)

    with Timeout() as clock:
        run = nightly.run("2026-07-20", input_uri=source, approval_timeout=3600)
    assert clock.swept == 1
    assert ti_states(run)["ask_approval"] == "success", "a timeout is an answer (the defaults), not a failure"
    assert pairs_posted(nightly) == ACCESS_ONLY
    pending = nightly.ledger("pending")
    assert len(pending) == 1 and "not given in time" in next(iter(pending.values()))["reason"]
    approvals = index_record(nightly, "del-1")["approvals"]
    assert [(a["decision"], a["by"]) for a in approvals] == [("timed_out", None)] and approvals[0]["at"]
    check_accounting(nightly.outputs(run).report)
