"""The request record: built from what each step knows, merged in any order, statuses and due dates derived."""

from __future__ import annotations

import json
import random
from datetime import UTC, date, datetime

import pytest
from privacy_pipeline import index
from privacy_pipeline.batching import Batch, JobShape, dump_batch
from privacy_pipeline.ledger import JobRef, LedgerEntry
from privacy_pipeline.models import Identity, Subject

SECRET = "jane.doe@example.com"
T0 = datetime(2026, 11, 1, 2, 0, tzinfo=UTC)


def _batch() -> Batch:
    shape = JobShape("gdpr", ("aepDataLake", "profileService"))
    subjects = (
        Subject("req-1", ("access", "delete"), "gdpr", shape.include, (Identity("email", SECRET),),
                received_at=datetime(2026, 10, 30, tzinfo=UTC), source="s3://inbox/a.csv", rows=(3, 4)),
        Subject("req-2", ("delete",), "gdpr", shape.include, (Identity("email", "x@example.com"),),
                received_at=datetime(2026, 10, 1, tzinfo=UTC), source="s3://inbox/a.csv", rows=(5,)),
    )
    from privacy_pipeline.batching import batch_id_for

    return Batch(batch_id_for(shape, subjects), shape, subjects)


def _facts() -> list[dict]:
    batch = _batch()
    facts = list(index.from_staged_batch(dump_batch(batch), {"s3://inbox/a.csv": "ab" * 32}))
    entry = LedgerEntry.intent_for(batch, now=T0, batch_key="runs/x/batches/b.json")
    entry = entry.with_jobs([JobRef("j1", "req-1", "access"), JobRef("j2", "req-1", "delete"),
                             JobRef("j3", "req-2", "delete")], now=T0)
    facts += list(index.from_ledger_entry(entry.to_json()))
    facts += list(index.from_job_records([
        {"jobId": "j1", "userKey": "req-1", "action": "access", "regulation": "gdpr", "batchId": batch.batch_id,
         "status": "complete", "productResponses": [{"product": "aepDataLake", "status": "complete",
                                                      "responseMsgCode": "PRIVACY-ACCESS-0001", "message": "ok"}],
         "contentKey": "runs/x/content/j1.zip", "sha256": "cd" * 32, "size": 10},
        {"jobId": "j2", "userKey": "req-1", "action": "delete", "regulation": "gdpr", "batchId": batch.batch_id,
         "status": "complete", "productResponses": []},
        {"jobId": "j3", "userKey": "req-2", "action": "delete", "regulation": "gdpr", "batchId": batch.batch_id,
         "status": "processing", "productResponses": []},
    ], observed_at=datetime(2026, 11, 3, tzinfo=UTC)))
    facts += list(index.touched_by(["req-1", "req-2"], dag_id="privacy_requests_nightly", run_id="r1",
                                   dag_version="v7", at=T0, task_id="submit"))
    return facts


def test_a_request_carries_its_whole_trail_and_no_identity_value():
    records = index.merge_all(_facts())
    one = records["req-1"]
    assert one["status"] == "complete" and one["closed_at"] == "2026-11-03T00:00:00+00:00"
    assert one["due_date"] == "2026-11-29"  # received 2026-10-30 + GDPR 30 days
    assert one["sources"] == [{"name": "s3://inbox/a.csv", "sha256": "ab" * 32, "rows": [3, 4]}]
    assert {j["job_id"]: j["status"] for j in one["jobs"]} == {"j1": "complete", "j2": "complete"}
    access = index.latest_jobs(one)["access"]
    assert access["content_key"] == "runs/x/content/j1.zip" and access["products"][0]["code"] == "PRIVACY-ACCESS-0001"
    assert one["batches"][0]["payload_sha256"] and one["batches"][0]["state"] == "submitted"
    assert one["runs"] == [{"dag_id": "privacy_requests_nightly", "run_id": "r1", "dag_version": "v7",
                            "at": T0.isoformat(), "tasks": ["submit"]}]
    assert records["req-2"]["status"] == "processing" and records["req-2"]["closed_at"] is None
    assert SECRET not in json.dumps(records) and "x@example.com" not in json.dumps(records)


@pytest.mark.parametrize("seed", range(20))
def test_merge_gives_one_record_whatever_the_order_duplicates_or_grouping(seed):
    facts = _facts()
    expected = index.merge_all(facts)
    rng = random.Random(seed)
    shuffled = facts + rng.sample(facts, k=len(facts) // 2)  # replays
    rng.shuffle(shuffled)
    # fold some of them into intermediate records first (compaction), then the rest
    cut = rng.randrange(len(shuffled))
    partial = index.merge_all(shuffled[:cut])
    assert index.merge_all([*partial.values(), *shuffled[cut:]]) == expected


def test_statuses_postponed_error_resubmitted_gave_up_rejected_archiving():
    batch = _batch()
    deferred = LedgerEntry.postponed_for(batch, now=T0, reason="daily job budget spent")
    rec = index.merge_all(index.from_ledger_entry(deferred.to_json()))["req-1"]
    assert rec["status"] == "postponed" and rec["reason"] == "daily job budget spent"
    assert rec["postponements"] == [{"batch_id": batch.batch_id, "at": T0.isoformat(),
                                     "reason": "daily job budget spent"}]

    errored = [{"jobId": "j9", "userKey": "req-9", "action": "delete", "batchId": "b-1", "status": "error"}]
    rec = index.merge_all(index.from_job_records(errored, observed_at=T0))["req-9"]
    assert rec["status"] == "error"
    retry = [{"jobId": "j10", "userKey": "req-9", "action": "delete", "batchId": "b-2.r2", "status": "complete"}]
    facts = [*index.from_job_records(errored, observed_at=T0), *index.from_job_records(retry, observed_at=T0),
             index.from_resubmit({"job_id": "j9", "action": "delete", "retry_batch_id": "b-2.r2",
                                  "staged_at": T0.isoformat()}, request_id="req-9")]
    rec = index.merge_all(facts)["req-9"]
    assert rec["status"] == "complete" and rec["resubmissions"][0]["retry_batch_id"] == "b-2.r2"

    rec = index.merge_all([*index.from_job_records(errored, observed_at=T0),
                           index.gave_up("j9", request_id="req-9", action="delete", at=T0)])["req-9"]
    assert rec["status"] == "gave_up" and rec["closed_at"] == T0.isoformat()

    access = [{"jobId": "j5", "userKey": "req-5", "action": "access", "batchId": "b-1", "status": "complete"}]
    assert index.merge_all(index.from_job_records(access, observed_at=T0))["req-5"]["status"] == "archiving"

    rejects = [{"request_id": "req-7", "source": "a.csv", "row": "4", "line": "5", "field": "received_at",
                "reason": "received_at is not an ISO-8601 date", "value": SECRET},
               {"request_id": "", "field": "*", "reason": "empty"},
               {"request_id": "'=cmd()", "field": "request_id", "reason": "formula"}]
    records = index.merge_all(index.from_rejects(rejects))
    assert list(records) == ["req-7"] and records["req-7"]["status"] == "rejected"
    assert SECRET not in json.dumps(records)


def test_deadline_alerts_cover_every_open_request_and_only_open_ones():
    rows = [
        {"request_id": "late", "status": "processing", "due_date": "2026-11-20"},
        {"request_id": "later", "status": "postponed", "due_date": "2026-11-29"},
        {"request_id": "soon", "status": "submitted", "due_date": "2026-12-07"},
        {"request_id": "far", "status": "submitted", "due_date": "2026-12-08"},
        {"request_id": "done", "status": "complete", "due_date": "2026-11-01"},
        {"request_id": "nodate", "status": "submitted", "due_date": None},
    ]
    alerts = index.deadline_alerts(rows, date(2026, 11, 30))
    assert alerts == {"overdue": [{"request_id": "late", "due_date": "2026-11-20"},
                                  {"request_id": "later", "due_date": "2026-11-29"}],
                      "due_soon": [{"request_id": "soon", "due_date": "2026-12-07"}]}


def test_approvals_are_kept_per_batch_and_answer():
    facts = [*index.from_approval(["req-1", "req-2"], batch_id="b-1", decision="Reject", by="dpo", at=T0,
                                  reasons=["first delete submission under regulation(s) gdpr"]),
             *index.from_approval(["req-1"], batch_id="b-1", decision="Approve", by="dpo",
                                  at=datetime(2026, 11, 2, tzinfo=UTC))]
    records = index.merge_all(facts + facts)
    assert [a["decision"] for a in records["req-1"]["approvals"]] == ["Reject", "Approve"]
    assert records["req-2"]["approvals"] == [{"batch_id": "b-1", "decision": "Reject", "by": "dpo", "at": T0.isoformat(),
                                              "reasons": ["first delete submission under regulation(s) gdpr"]}]


def test_a_record_needs_a_key_and_known_fields():
    with pytest.raises(ValueError):
        index.new_record("")
    with pytest.raises(ValueError):
        index.new_record("k", email="x")


def test_a_denied_request_keeps_its_type_and_receipt_day_and_no_other_cell():
    """The yearly metrics count a denial under its request type: the rejected rows' action and day, when valid."""
    from adobe_privacy.audit import metric_facts
    from privacy_pipeline.models import Reject

    rejects = [
        Reject("a.csv", 4, "req-d1", "value", "value is empty",
               raw={"action": "delete", "received_at": "2026-02-03T10:00:00Z", "value": SECRET}, line=5),
        Reject("a.csv", 6, "req-d2", "namespace", "unknown namespace",
               raw={"action": "Access|delete", "received_at": "9999-12-31", "namespace": SECRET}),
        # A careless export: an identity value in the action column, a date that is not one.
        Reject("a.csv", 8, "req-d3", "action", "action is not one of access, delete",
               raw={"action": SECRET, "received_at": "-1"}),
    ]
    records = index.merge_all(index.from_rejects(rejects))
    assert SECRET not in json.dumps(records)
    first = {key: rec["rejections"][0] for key, rec in records.items()}
    assert (first["req-d1"]["action"], first["req-d1"]["received_at"]) == ("delete", "2026-02-03")
    assert (first["req-d2"]["action"], first["req-d2"]["received_at"]) == ("access|delete", None)
    assert (first["req-d3"]["action"], first["req-d3"]["received_at"]) == (None, None)

    _facts, denied = metric_facts(records[key] for key in sorted(records))
    assert [(d.action, d.received_at.date() if d.received_at else None) for d in denied][:1] == [
        ("delete", date(2026, 2, 3))]
    assert [d.action for d in denied] == ["delete", "access|delete", "unknown"]
