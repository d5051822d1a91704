"""A small archive as the pipeline writes it (ledger + run outputs, written with the pipeline's own
writers), for the index and console tests. Keys only matter here; identity values are fake but present
in the staged batches and rejects.csv, as in a real archive, so tests can check none reaches the index.

What it holds (logical dates in November 2026):
- run 2026-11-01 (nightly): file a.csv (sha256 known), batch B1 (gdpr: req-a1 access+delete, req-a2
  delete), batch B2 (ccpa: req-c1 access) postponed (a legacy ledger entry saying `deferred`, carry marker under the new
  `ledger/pending/` name); jobs.jsonl: req-a1 access complete + archived, req-a1 delete complete,
  req-a2 delete error; rejects.csv: req-bad (received_at).
- run 2026-11-02 (reconcile): req-a2's errored job resubmitted in retry batch B1.r2, still processing.
- ledger/open marker of B1 with the retry job; an older carry marker under `ledger/deferred/`.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

from privacy_pipeline.batching import Batch, JobShape, batch_id_for, dump_batch
from privacy_pipeline.layout import ArchiveLayout
from privacy_pipeline.ledger import JobRef, LedgerEntry
from privacy_pipeline.models import Identity, Reject, Subject
from privacy_pipeline.reconcile import retry_batch
from privacy_pipeline.report import jobs_jsonl, write_rejects_csv

SECRET_VALUES = ("alice@example.com", "bob@example.com", "carol@example.com", "mallory@example.com")
SOURCE = "s3://privacy-inbox/requests/2026-11-01/a.csv"
SOURCE_SHA = "5" * 64
NIGHTLY_RUN = "scheduled__2026-11-01T02:00:00+00:00"
RECONCILE_RUN = "scheduled__2026-11-02T03:20:00+00:00"
T1 = datetime(2026, 11, 1, 2, 5, tzinfo=UTC)


def _subject(key, actions, regulation, include, value, received, rows):
    return Subject(key, actions, regulation, include, (Identity("email", value),),
                   received_at=datetime.fromisoformat(received), source=SOURCE, rows=rows)


def batches() -> tuple[Batch, Batch]:
    gdpr = JobShape("gdpr", ("aepDataLake", "profileService"))
    subjects = (_subject("req-a1", ("access", "delete"), "gdpr", gdpr.include, SECRET_VALUES[0],
                         "2026-10-25T09:00:00+00:00", (2, 3)),
                _subject("req-a2", ("delete",), "gdpr", gdpr.include, SECRET_VALUES[1], "2026-10-20", (4,)))
    ccpa = JobShape("ccpa", ("aepDataLake",))
    others = (_subject("req-c1", ("access",), "ccpa", ccpa.include, SECRET_VALUES[2], "2026-10-31", (5,)),)
    return (Batch(batch_id_for(gdpr, subjects), gdpr, subjects), Batch(batch_id_for(ccpa, others), ccpa, others))


def write_archive(client, bucket: str, root: str = "privacy") -> dict[str, str]:
    """Write the archive into `bucket` under `root` (encrypted, as the store does); returns ids by name."""
    layout = ArchiveLayout(root)
    put = lambda key, body: client.put_object(Bucket=bucket, Key=key, Body=body,  # noqa: E731
                                              ServerSideEncryption="AES256")
    b1, b2 = batches()
    run = layout.run("2026-11-01", NIGHTLY_RUN)
    for batch in (b1, b2):
        put(run.batch(batch.batch_id), dump_batch(batch))
    put(run.intake, json.dumps({"sources": [{"name": SOURCE, "sha256": SOURCE_SHA, "rows_read": 5}],
                                "batches": [], "carried": []}))
    entry = LedgerEntry.intent_for(b1, now=T1, batch_key=run.batch(b1.batch_id)).with_post(NIGHTLY_RUN)
    entry = entry.with_jobs([JobRef("job-a1-acc", "req-a1", "access"), JobRef("job-a1-del", "req-a1", "delete"),
                             JobRef("job-a2-del", "req-a2", "delete")], now=T1)
    put(layout.ledger_batch(b1.batch_id), json.dumps(entry.to_json()))
    deferred = LedgerEntry.postponed_for(b2, now=T1, reason="daily job budget spent (20000 of 20000)",
                                        batch_key=run.batch(b2.batch_id))
    legacy = {**deferred.to_json(), "state": "deferred"}  # written before the state was called `postponed`
    put(layout.ledger_batch(b2.batch_id), json.dumps(legacy))
    put(f"{root}/ledger/pending/{b2.batch_id}.json", json.dumps(
        {"batch_id": b2.batch_id, "key": run.batch(b2.batch_id), "regulation": "ccpa", "subjects": 1,
         "reason": "daily job budget spent (20000 of 20000)"}))
    put(f"{root}/ledger/deferred/{b1.batch_id}.json", json.dumps(
        {"batch_id": b1.batch_id, "key": run.batch(b1.batch_id), "reason": "staged; carried by a later run"}))
    content_key = run.content("job-a1-acc")
    put(content_key, b"PK\x05\x06" + b"\x00" * 18)
    put(layout.ledger_job("job-a1-acc"), json.dumps({
        "job_id": "job-a1-acc", "content_key": content_key, "sha256": "a" * 64, "size": 22,
        "outcome": "archived", "reason": None, "archived_at": "2026-11-01T02:30:00+00:00"}))
    records = [
        {"jobId": "job-a1-acc", "userKey": "req-a1", "action": "access", "regulation": "gdpr",
         "batchId": b1.batch_id, "status": "complete",
         "productResponses": [{"product": "aepDataLake", "status": "complete", "responseMsgCode": "PRIVACY-ACCESS-0001",
                               "message": "Data found", "results": {"userIDs": 1}},
                              {"product": "profileService", "status": "complete",
                               "responseMsgCode": "PRIVACY-ACCESS-0003", "message": "No data found"}],
         "contentKey": content_key, "sha256": "a" * 64, "size": 22, "quarantineReason": None, "archive": "archived"},
        {"jobId": "job-a1-del", "userKey": "req-a1", "action": "delete", "regulation": "gdpr",
         "batchId": b1.batch_id, "status": "complete",
         "productResponses": [{"product": "aepDataLake", "status": "complete",
                               "responseMsgCode": "PRIVACY-DELETE-0001", "message": "Deleted"}]},
        {"jobId": "job-a2-del", "userKey": "req-a2", "action": "delete", "regulation": "gdpr",
         "batchId": b1.batch_id, "status": "error",
         "productResponses": [{"product": "aepDataLake", "status": "error", "responseMsgCode": "PRIVACY-DELETE-0500",
                               "message": "Internal error"}]},
    ]
    put(run.jobs, b"".join(jobs_jsonl(records)))
    put(run.report, json.dumps({"run_id": NIGHTLY_RUN, "logical_date": "2026-11-01"}))
    buffer = io.BytesIO()
    write_rejects_csv([Reject(SOURCE, 5, "req-bad", "received_at", "received_at is not an ISO-8601 date",
                              raw={"value": SECRET_VALUES[3]}, line=6)], buffer)
    put(run.rejects, buffer.getvalue())

    retry = retry_batch(b1, [("req-a2", "delete")])
    rec = layout.run("2026-11-02", RECONCILE_RUN)
    put(rec.batch(retry.batch_id), dump_batch(retry))
    put(rec.reconcile, json.dumps({"resubmitted_jobs": ["job-a2-del"]}))
    put(layout.ledger_resubmit("job-a2-del"), json.dumps({
        "job_id": "job-a2-del", "batch_id": b1.batch_id, "action": "delete", "retry_batch_id": retry.batch_id,
        "retry_batch_key": rec.batch(retry.batch_id), "staged_at": "2026-11-02T03:21:00+00:00"}))
    retry_entry = LedgerEntry.intent_for(retry, now=datetime(2026, 11, 2, 3, 25, tzinfo=UTC))
    retry_entry = retry_entry.with_jobs([JobRef("job-a2-del-r2", "req-a2", "delete")],
                                        now=datetime(2026, 11, 2, 3, 25, tzinfo=UTC))
    put(layout.ledger_batch(retry.batch_id), json.dumps(retry_entry.to_json()))
    put(layout.ledger_open(b1.batch_id), json.dumps({"batch_id": b1.batch_id,
                                                     "final": {"job-a1-acc": "archived"}}))
    return {"b1": b1.batch_id, "b2": b2.batch_id, "retry": retry.batch_id, "content_key": content_key}
