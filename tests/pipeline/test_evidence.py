"""Evidence packs: every section of the trail is there, the page is self-contained and escapes input."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from privacy_pipeline.evidence import EVIDENCE_FORMAT, evidence_json, evidence_pack, evidence_page

GENERATED = datetime(2027, 3, 1, tzinfo=UTC)
RECORD = {
    "request_id": "REQ-<b>1</b>",
    "regulation": "gdpr",
    "actions": ["access", "delete"],
    "received_at": "2026-11-01T09:00:00+00:00",
    "due_date": "2026-12-01",
    "status": "complete",
    "reason": None,
    "closed_at": "2026-11-20T10:00:00+00:00",
    "sources": [{"name": "inbox/2026-11-02/requests.csv", "sha256": "a" * 64, "rows": [2, 3]}],
    "rejections": [{"source": "inbox/2026-11-02/requests.csv", "row": 4, "line": 5, "field": "value",
                    "reason": "value is empty"}],
    "batches": [{"batch_id": "b-1", "payload_sha256": "c" * 64, "state": "submitted",
                 "posted_at": "2026-11-02T02:01:00+00:00", "submitted_at": "2026-11-02T02:01:01+00:00",
                 "attempts": 1}],
    "jobs": [
        {"job_id": "j-2", "action": "delete", "batch_id": "b-1", "attempt": 1, "status": "complete",
         "history": [{"status": "submitted", "at": "2026-11-02T02:01:01+00:00"},
                     {"status": "complete", "at": "2026-11-19T00:00:00+00:00"}],
         "products": [{"product": "Analytics", "status": "complete", "code": "200", "message": "Success"}]},
        {"job_id": "j-1", "action": "access", "batch_id": "b-1", "attempt": 1, "status": "complete",
         "history": [{"status": "complete", "at": "2026-11-20T09:00:00+00:00"}],
         "products": [{"product": "AudienceManager", "status": "complete", "code": "200", "message": "x" * 500}],
         "content_key": "privacy/content/j-1.zip", "content_size": 1234, "content_sha256": "d" * 64,
         "archived_at": "2026-11-20T10:00:00+00:00"},
    ],
    "approvals": [{"batch_id": "b-1", "decision": "Approve", "by": "alice", "at": "2026-11-02T02:00:30+00:00",
                   "reasons": ["1200 delete subjects exceed the limit of 1000"]}],
    "postponements": [{"batch_id": "b-0", "at": "2026-11-01T02:00:00+00:00", "reason": "daily budget spent"}],
    "resubmissions": [],
    "runs": [{"dag_id": "privacy_requests_nightly", "run_id": "scheduled__2026-11-02", "dag_version": "3",
              "at": "2026-11-02T02:00:00+00:00", "tasks": ["intake", "submit"]}],
}


def test_pack_carries_the_whole_trail():
    pack = evidence_pack(RECORD, generated_at=GENERATED, archive_uri="s3://archive/privacy")
    assert pack["format"] == EVIDENCE_FORMAT
    assert pack["request"]["due_date"] == "2026-12-01" and pack["request"]["closed_at"]
    assert pack["input"] == [{"file": "inbox/2026-11-02/requests.csv", "sha256": "a" * 64, "lines": [2, 3]}]
    assert pack["validation"]["outcome"] == "accepted with rejected rows"
    assert pack["submissions"][0]["payload_sha256"] == "c" * 64
    assert [j["job_id"] for j in pack["jobs"]] == ["j-1", "j-2"]  # by action, then attempt
    access = pack["jobs"][0]
    assert access["content"]["sha256"] == "d" * 64 and access["content"]["size"] == 1234
    assert len(access["products"][0]["message"]) == 200
    assert [h["status"] for h in pack["jobs"][1]["status_history"]] == ["submitted", "complete"]
    assert pack["approvals"][0]["by"] == "alice"
    assert pack["postponements"][0]["reason"] == "daily budget spent"
    assert pack["airflow_runs"][0]["dag_version"] == "3"
    assert json.loads(evidence_json(pack)) == json.loads(json.dumps(pack, default=str))


def test_page_is_self_contained_and_escapes_what_it_shows():
    page = evidence_page(evidence_pack(RECORD, generated_at=GENERATED), grid_url="http://127.0.0.1:8080").decode()
    assert "REQ-&lt;b&gt;1&lt;/b&gt;" in page and "<b>1</b>" not in page
    assert "<script" not in page and "src=\"http" not in page
    assert "privacy/content/j-1.zip" in page and "alice" in page
    assert "http://127.0.0.1:8080/dags/privacy_requests_nightly/runs/scheduled__2026-11-02" in page


def test_a_rejected_request_has_a_pack_too():
    rejected = {"request_id": "R9", "status": "rejected", "reason": "value: value is empty",
                "rejections": RECORD["rejections"]}
    pack = evidence_pack(rejected, generated_at=GENERATED)
    assert pack["validation"]["outcome"] == "rejected" and pack["jobs"] == []
    assert "not submitted" in evidence_page(pack).decode()


def test_pack_is_deterministic():
    one = evidence_json(evidence_pack(RECORD, generated_at=GENERATED))
    two = evidence_json(evidence_pack(dict(reversed(list(RECORD.items()))), generated_at=GENERATED))
    assert one == two
