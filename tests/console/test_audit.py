"""The auditor's commands over a real index in moto S3: packs for a range, metrics that add up, encrypted."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, date, datetime

import pytest
from adobe_privacy import audit
from adobe_privacy.audit import main, metric_facts, write_closed_packs, write_metrics, write_packs
from adobe_privacy.index_rebuild import rebuild
from adobe_privacy.index_store import RequestIndex

from tests.console.archive_fixture import SECRET_VALUES


def _objects(store, under: str) -> dict[str, bytes]:
    client = store.client
    keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(
        Bucket=store.bucket, Prefix=store.key(under) + "/") for o in page.get("Contents", [])]
    return {key: client.get_object(Bucket=store.bucket, Key=key)["Body"].read() for key in keys}


def test_packs_for_a_range_hold_the_trail_encrypted_and_without_identity_values(archive, tmp_path):
    store, _ids = archive
    rebuild(store, cache_dir=tmp_path / "cache")
    written = write_packs(store, RequestIndex(store, cache_dir=tmp_path / "c2"), date(2026, 1, 1),
                          date(2026, 12, 31), at=datetime(2027, 1, 2, tzinfo=UTC))
    objects = _objects(store, "evidence")
    assert written >= 3 and len(objects) == 2 * written
    pack = json.loads(objects[store.key("evidence", "req-a1", "pack.json")])
    assert pack["request"]["status"] == "complete" and pack["submissions"] and pack["jobs"]
    assert all(store.client.head_object(Bucket=store.bucket, Key=k)["ServerSideEncryption"] == "AES256"
               for k in objects)
    assert not any(secret.encode() in body for body in objects.values() for secret in SECRET_VALUES)


@pytest.mark.parametrize("round_size", [1, 2, 2000])
def test_closed_requests_only_get_a_pack_when_a_step_closes_them(archive, tmp_path, monkeypatch, round_size):
    """Whatever the rounds the keys are looked up in (a key named twice still gets one pack)."""
    monkeypatch.setattr(audit, "PACK_ROUND", round_size)
    store, _ids = archive
    rebuild(store, cache_dir=tmp_path / "cache")
    request_index = RequestIndex(store, cache_dir=tmp_path / "c2")
    assert write_closed_packs(store, request_index, ["req-zz", "req-c1", "req-a1", "req-a1", "req-0", "req-a0"],
                              at=datetime(2027, 1, 2, tzinfo=UTC)) == 1  # req-c1 is open, req-zz, req-0 and req-a0 unknown
    assert list(_objects(store, "evidence")) == [store.key("evidence", "req-a1", "pack.html"),
                                                 store.key("evidence", "req-a1", "pack.json")]


def test_metrics_from_the_index_add_up_and_are_written(archive, tmp_path):
    store, _ids = archive
    rebuild(store, cache_dir=tmp_path / "cache")
    request_index = RequestIndex(store, cache_dir=tmp_path / "c2")
    facts, denied = metric_facts(r for r in (request_index.lookup(k) for k in ("req-a1", "req-a2", "req-c1")) if r)
    assert {(f.request_key, f.action) for f in facts} >= {("req-a1", "access"), ("req-a1", "delete")}
    result = write_metrics(store, request_index, date(2026, 1, 1), date(2026, 12, 31))
    rows = {r["request_type"]: r for r in csv.DictReader(io.StringIO(
        _objects(store, "metrics")[store.key("metrics", "2026-01-01_2026-12-31", "metrics.csv")].decode()))}
    assert int(rows["know"]["received"]) >= 1 and int(rows["delete"]["complied_in_whole"]) >= 1
    for row in result["rows"]:
        assert row["received"] == sum(row[k] for k in ("complied_in_whole", "complied_in_part", "not_completed",
                                                       "denied", "open"))


def test_the_command_writes_metrics(archive, tmp_path, capsys, monkeypatch):
    store, _ids = archive
    rebuild(store, cache_dir=tmp_path / "cache")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    assert main(["metrics", "--from", "2026-01-01", "--to", "2026-12-31", "--archive-uri", store.archive_uri]) == 0
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["csv"].endswith("metrics/2026-01-01_2026-12-31/metrics.csv")


def test_the_metrics_task_writes_the_year_so_far_from_the_index(archive, tmp_path, monkeypatch):
    from adobe_privacy.operators.metrics import RequestMetricsOperator

    store, _ids = archive
    rebuild(store, cache_dir=tmp_path / "cache")
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    task = RequestMetricsOperator(task_id="write_request_metrics", archive_uri=store.archive_uri,
                                  year="2026", until="2026-11-30")
    result = task.execute({})
    assert result["csv"] == store.uri(store.key("metrics", "2026-01-01_2026-11-30", "metrics.csv"))
    written = _objects(store, "metrics")
    assert store.key("metrics", "2026-01-01_2026-11-30", "metrics.html") in written
    for row in result["rows"]:
        assert row["received"] == sum(row[k] for k in ("complied_in_whole", "complied_in_part", "not_completed",
                                                       "denied", "open"))


def test_the_metrics_task_refuses_a_year_that_is_not_one(archive):
    from adobe_privacy.operators.metrics import RequestMetricsOperator
    from airflow.sdk.exceptions import AirflowFailException

    store, _ids = archive
    task = RequestMetricsOperator(task_id="m", archive_uri=store.archive_uri, year="last year")
    with pytest.raises(AirflowFailException, match="year"):
        task.execute({})
