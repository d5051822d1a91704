"""The request index in S3 (moto over HTTP): rebuilt from a fixture archive, updated by deltas, compacted."""

from __future__ import annotations

import json
from datetime import date

from adobe_privacy.index_rebuild import rebuild
from adobe_privacy.index_store import RequestIndex, update_index

from tests.console.archive_fixture import NIGHTLY_RUN, SECRET_VALUES, SOURCE, SOURCE_SHA


def _all_objects(store):
    return store.hook.list_keys(bucket_name=store.bucket, prefix="privacy/index/") or []


def test_rebuild_indexes_an_archive_written_before_the_index_existed(archive, tmp_path):
    store, ids = archive
    summary = rebuild(store, cache_dir=tmp_path / "cache")
    assert summary["records"] == 4 and summary["deltas_folded"] == 1
    idx = RequestIndex(store, cache_dir=tmp_path / "cache2")

    a1 = idx.lookup("req-a1")
    assert a1["status"] == "complete" and a1["due_date"] == "2026-11-24"  # 2026-10-25 + GDPR 30 days
    assert a1["sources"] == [{"name": SOURCE, "sha256": SOURCE_SHA, "rows": [2, 3]}]
    jobs = {j["job_id"]: j for j in a1["jobs"]}
    assert jobs["job-a1-acc"]["content_key"] == ids["content_key"]
    assert jobs["job-a1-acc"]["content_sha256"] == "a" * 64
    assert [p["code"] for p in jobs["job-a1-acc"]["products"]] == ["PRIVACY-ACCESS-0001", "PRIVACY-ACCESS-0003"]
    assert a1["batches"][0]["batch_id"] == ids["b1"] and a1["batches"][0]["payload_sha256"]
    assert a1["runs"][0]["run_id"] == NIGHTLY_RUN and a1["runs"][0]["dag_id"] == "privacy_requests_nightly"

    a2 = idx.lookup("req-a2")
    assert a2["status"] == "submitted"  # errored, resubmitted: the retry job answers it now
    assert a2["resubmissions"] == [{"job_id": "job-a2-del", "action": "delete", "batch_id": ids["b1"],
                                    "retry_batch_id": ids["retry"], "at": "2026-11-02T03:21:00+00:00"}]
    assert {r["dag_id"] for r in a2["runs"]} == {"privacy_requests_nightly", "privacy_reconcile"}

    c1 = idx.lookup("req-c1")
    assert c1["status"] == "postponed" and c1["due_date"] == "2026-12-15"  # CCPA 45 days
    assert c1["postponements"][0]["reason"].startswith("daily job budget spent")
    assert idx.lookup("req-bad")["status"] == "rejected"
    assert idx.lookup("req-nope") is None

    dumped = json.dumps([idx.lookup(k) for k in ("req-a1", "req-a2", "req-c1", "req-bad")])
    assert not any(secret in dumped for secret in SECRET_VALUES)


def test_every_index_object_is_encrypted(archive, tmp_path):
    store, _ = archive
    rebuild(store, cache_dir=tmp_path)
    keys = _all_objects(store)
    assert keys
    for key in keys:
        assert store.client.head_object(Bucket=store.bucket, Key=key)["ServerSideEncryption"] == "AES256"


def test_rebuild_again_changes_nothing_and_a_delta_shows_before_compaction(archive, tmp_path):
    store, _ = archive
    rebuild(store, cache_dir=tmp_path / "a")
    before = RequestIndex(store, cache_dir=tmp_path / "b").lookup("req-a2")
    rebuild(store, cache_dir=tmp_path / "c")
    assert RequestIndex(store, cache_dir=tmp_path / "d").lookup("req-a2") == before

    key = update_index(store, dag_id="privacy_reconcile", run_id="r9", ds="2026-11-20", task_id="reconcile",
                       dag_version="privacy_reconcile-3",
                       job_records=[{"jobId": "job-a2-del-r2", "userKey": "req-a2", "action": "delete",
                                     "batchId": "x.r2", "status": "complete", "productResponses": []}])
    assert key and "/index/deltas/2026-11-20/r9/reconcile-" in key
    idx = RequestIndex(store, cache_dir=tmp_path / "e")
    after = idx.lookup("req-a2")
    assert after["status"] == "complete" and after["closed_at"]
    assert {"dag_id": "privacy_reconcile", "run_id": "r9", "dag_version": "privacy_reconcile-3"}.items() <= \
        next(r for r in after["runs"] if r["run_id"] == "r9").items()
    board = idx.query(open_only=True, as_of=date(2026, 11, 30))
    assert [i["request_id"] for i in board["items"]] == ["req-c1"]
    idx.compact()
    assert RequestIndex(store, cache_dir=tmp_path / "f").lookup("req-a2") == after
    assert not [k for k in _all_objects(store) if "/deltas/" in k]


def test_queries_order_overdue_first_and_filter(archive, tmp_path):
    store, _ = archive
    rebuild(store, cache_dir=tmp_path)
    idx = RequestIndex(store, cache_dir=tmp_path)
    board = idx.query(open_only=True, as_of=date(2026, 11, 30))
    assert [(i["request_id"], i["days_left"]) for i in board["items"]] == [("req-a2", -11), ("req-c1", 15)]
    assert board["by_bucket"] == {"overdue": {"submitted": 1}, "15-30 days": {"postponed": 1}}
    assert [i["request_id"] for i in idx.query(prefix="req-a")["items"]] == ["req-a2", "req-a1"]
    assert [i["request_id"] for i in idx.query(regulation="ccpa")["items"]] == ["req-c1"]
    assert [i["request_id"] for i in idx.query(action="access")["items"]] == ["req-a1", "req-c1"]
    assert [i["request_id"] for i in idx.query(status="rejected")["items"]] == ["req-bad"]
    assert idx.query(prefix="zzz")["total"] == 0
    assert idx.deadline_alerts(date(2026, 11, 30)) == {
        "overdue": [{"request_id": "req-a2", "due_date": "2026-11-19"}], "due_soon": []}


def test_the_rebuild_command_indexes_the_archive(archive, tmp_path):
    import subprocess
    import sys

    from tests.conftest import REPO

    store, _ = archive
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "rebuild_index.py"), "--archive-uri",
                             store.archive_uri, "--cache-dir", str(tmp_path)], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1])["records"] == 4
    assert RequestIndex(store, cache_dir=tmp_path / "x").lookup("req-c1")["status"] == "postponed"


def test_a_closed_request_touched_again_keeps_its_whole_record(archive, tmp_path):
    """A delta touching a request that is closed in the base (not in the open file) merges with its base row."""
    store, _ = archive
    rebuild(store, cache_dir=tmp_path / "a")
    before = RequestIndex(store, cache_dir=tmp_path / "b").lookup("req-a1")
    update_index(store, dag_id="privacy_reconcile", run_id="r10", ds="2026-11-21", task_id="reconcile",
                 job_records=[{"jobId": "job-a1-del", "userKey": "req-a1", "action": "delete", "batchId": "b",
                               "status": "complete", "productResponses": []}])
    idx = RequestIndex(store, cache_dir=tmp_path / "c")
    after = idx.lookup("req-a1")
    assert after["status"] == "complete" and after["sources"] == before["sources"]
    assert {j["job_id"] for j in after["jobs"]} == {"job-a1-acc", "job-a1-del"}
    assert [i["request_id"] for i in idx.query(status="complete")["items"]] == ["req-a1"]
    assert "req-a1" not in [i["request_id"] for i in idx.query(open_only=True)["items"]]


def test_run_stamp_reads_the_task_context():
    from datetime import UTC, datetime
    from types import SimpleNamespace
    from uuid import UUID

    from adobe_privacy.index_store import run_stamp

    ti = SimpleNamespace(dag_id="privacy_requests_nightly", run_id="manual__x", task_id="archive_results",
                         map_index=3, dag_version_id=UUID(int=7))
    context = {"ti": ti, "logical_date": None, "dag_run": SimpleNamespace(run_after=datetime(2026, 11, 30, 5, tzinfo=UTC))}
    assert run_stamp(context) == {"dag_id": "privacy_requests_nightly", "run_id": "manual__x", "ds": "2026-11-30",
                                  "task_id": "archive_results", "map_index": 3, "dag_version": str(UUID(int=7))}


def test_prefix_search_matches_startswith_for_any_key(s3_client, tmp_path):
    """Seeded fuzz: keys with ASCII, accents, CJK, emoji and edge code points; the oracle is str.startswith."""
    import random
    import uuid

    from adobe_privacy.storage import PrivacyArchiveStore
    from privacy_pipeline import index

    rng = random.Random(1234)
    alphabet = ["a", "b", "z", "-", "0", "9", "é", "ÿ", "中", "😀", "\ud7ff", "\ue000", "\uffff", "~"]
    keys = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 5))) for _ in range(300)})
    bucket = f"fuzz-{uuid.uuid4().hex[:8]}"
    s3_client.create_bucket(Bucket=bucket)
    store = PrivacyArchiveStore(f"s3://{bucket}/privacy")
    idx = RequestIndex(store, cache_dir=tmp_path)
    half = len(keys) // 2
    idx.write_delta([index.new_record(k, regulation="gdpr") for k in keys[:half]], ds="d", run_id="r", name="a")
    idx.compact()  # half in the base, half still in a delta
    idx.write_delta([index.new_record(k, regulation="gdpr") for k in keys[half:]], ds="d", run_id="r", name="b")
    prefixes = {k[: rng.randint(1, len(k))] for k in rng.sample(keys, 40)} | {"", "zzz", "\uffff", "😀"}
    for prefix in sorted(prefixes):
        expected = sorted(k for k in keys if k.startswith(prefix))
        found = idx.query(prefix=prefix or None, limit=1000)
        assert sorted(i["request_id"] for i in found["items"]) == expected, prefix
        assert found["total"] == len(expected)


def test_the_console_answers_from_the_previous_listing_while_a_newer_one_is_merged(archive, tmp_path):
    store, _ = archive
    rebuild(store, cache_dir=tmp_path / "a")
    idx = RequestIndex(store, cache_dir=tmp_path / "b", serve_stale=True)
    assert idx.lookup("req-a2")["status"] == "submitted"
    update_index(store, dag_id="privacy_reconcile", run_id="r11", ds="2026-11-22", task_id="reconcile",
                 job_records=[{"jobId": "job-a2-del-r2", "userKey": "req-a2", "action": "delete",
                               "status": "complete", "productResponses": []}])
    idx._listing = None  # as after the listing's few seconds
    assert idx.lookup("req-a2")["status"] == "submitted"  # stale, not blocked
    idx._refreshing.join(timeout=60)
    assert idx.lookup("req-a2")["status"] == "complete"


def test_a_lookup_before_the_first_compaction_reads_the_deltas(archive, tmp_path):
    """No base yet, only deltas: a key the deltas never touched is unknown, one they touched is found."""
    from adobe_privacy.index_store import RequestIndex
    from privacy_pipeline import index

    store, _ids = archive
    request_index = RequestIndex(store, cache_dir=tmp_path / "cache")
    request_index.write_delta([index.new_record("fresh-1", regulation="gdpr", actions=["access"],
                                                received_at="2026-11-01T00:00:00+00:00")],
                              ds="2026-11-01", run_id="manual__1", name="intake")
    assert request_index.lookup("never-seen") is None
    assert request_index.lookup("fresh-1")["status"] == "received"
    assert request_index.query(prefix="fresh")["total"] == 1


def test_lookup_many_is_lookup_of_each_key_from_the_base_and_from_deltas(archive, tmp_path, monkeypatch):
    import adobe_privacy.index_store as index_store

    store, _ = archive
    rebuild(store, cache_dir=tmp_path / "a")
    update_index(store, dag_id="privacy_reconcile", run_id="r9", ds="2026-11-20", task_id="reconcile",
                 job_records=[{"jobId": "job-a2-del-r2", "userKey": "req-a2", "action": "delete",
                               "batchId": "x.r2", "status": "complete", "productResponses": []}])
    monkeypatch.setattr(index_store, "LOOKUP_CHUNK", 2)  # several queries of the base
    idx = RequestIndex(store, cache_dir=tmp_path / "b")
    keys = ["req-a1", "req-a2", "req-c1", "req-bad", "req-nope", "req-a1"]
    many = idx.lookup_many(keys)
    assert sorted(many) == ["req-a1", "req-a2", "req-bad", "req-c1"]
    assert many == {key: idx.lookup(key) for key in many}
    assert many["req-a2"]["status"] == "complete"  # the delta, merged over the base
