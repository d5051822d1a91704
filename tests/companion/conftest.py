"""Fixtures for the companion DAGs' tests: the session emulator and moto server over real HTTP.

Each test gets a reset emulator (fast lifecycle, no faults) and its own archive root in moto, and a
`Companion` helper that runs our operators' `execute` against them with a minimal task context (the
operators read only `ds`, `run_id` and `ti.map_index`), or whole DAGs with `dag.test()`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.operators.fakes import FakeTaskInstance

REPO = Path(__file__).resolve().parents[2]
JOBS_ROUTE = "POST /data/core/privacy/jobs"
CONSENT_ROUTE = "POST /data/core/privacy/consent"
HYGIENE_ROUTE = "POST /data/core/hygiene/jobs"
ARCHIVE_BUCKET = "privacy-archive"
#: Jobs go processing at once and complete a second later (tests move the clock instead of waiting).
FAST_LIFECYCLE = {"processing_after_seconds": 0.2, "complete_after_seconds": 1.0, "jitter_ratio": 0.0,
                  "error_rate": 0.0, "content_bytes": 4096}
HEADER = "request_id,action,regulation,namespace,value,type,received_at,include\n"


class Companion:
    def __init__(self, emulator, s3, prefix: str, tmp_path: Path) -> None:
        self.emulator, self.s3, self.prefix, self.tmp_path = emulator, s3, prefix, tmp_path
        self.bucket = ARCHIVE_BUCKET
        self.archive_uri = f"s3://{ARCHIVE_BUCKET}/{prefix}"
        self.clock = datetime.now(UTC)  # our side of the emulator clock: moved with advance()

    def advance(self, **delta: float) -> datetime:
        """Move the emulator's clock (and our `as_of`) forward instead of waiting."""
        step = timedelta(**delta)
        self.emulator.advance_clock(step.total_seconds())
        self.clock += step
        return self.clock

    @staticmethod
    def context(ds: str = "2026-03-02", run_id: str = "manual__test", map_index: int = 0,
                dag_id: str = "companion_test", task_id: str = "task") -> dict[str, Any]:
        return {"ds": ds, "logical_date": datetime.fromisoformat(ds).replace(tzinfo=UTC), "run_id": run_id,
                "ti": FakeTaskInstance(dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index)}

    def write_csv(self, name: str, rows: list[str]) -> Path:
        path = self.tmp_path / name
        path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
        return path

    def take_in(self, input_path: Path, run_id: str = "manual__test", **kwargs: Any) -> list[list[str]]:
        from adobe_privacy.operators import PrivacyIntakeOperator

        op = PrivacyIntakeOperator(task_id="take_in", input_uri=str(input_path), archive_uri=kwargs.pop(
            "archive_uri", self.archive_uri), default_include=["aepDataLake"], **kwargs)
        return op.execute(self.context(run_id=run_id))

    def submit(self, batch_keys: list[str], run_id: str = "manual__test", budget: int | str = "",
               archive_uri: str | None = None, operator=None) -> dict[str, Any]:
        from adobe_privacy.operators import SubmitPrivacyBatchesOperator

        operator = operator or SubmitPrivacyBatchesOperator
        op = operator(task_id="submit", batch_keys=batch_keys, archive_uri=archive_uri or self.archive_uri,
                      daily_job_budget=budget)
        return op.execute(self.context(run_id=run_id))

    def ledger(self, kind: str, root: str | None = None) -> dict[str, Any]:
        prefix = f"{root or self.prefix}/ledger/{kind}/"
        return {key.rsplit("/", 1)[-1].removesuffix(".json"): self.get_json(key)
                for key in list_keys(self.s3, self.bucket, prefix)}

    def get_json(self, key: str) -> Any:
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def keys(self, under: str) -> list[str]:
        return list_keys(self.s3, self.bucket, f"{self.prefix}/{under}")

    def calls(self, route: str) -> int:
        return sum(self.emulator.stats()["calls"].get(route, {}).values())

    def jobs_per_user_action(self) -> Counter:
        counts: Counter = Counter()
        for pair, n in self.emulator.stats()["jobs_per_user_action"].items():
            key, _, action = pair.rpartition("|")
            counts[(key, action)] = n
        return counts


def list_keys(s3, bucket: str, prefix: str) -> list[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.fixture(scope="session")
def archive_s3(s3_server):
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url, region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    if ARCHIVE_BUCKET not in {b["Name"] for b in client.list_buckets()["Buckets"]}:
        client.create_bucket(Bucket=ARCHIVE_BUCKET)
    return client


@pytest.fixture
def companion(request, emulator, archive_s3, airflow_connections, monkeypatch, tmp_path):
    from adobe_privacy.protocol import TOKEN_CACHE

    emulator.reset()
    emulator.configure(**FAST_LIFECYCLE)
    TOKEN_CACHE.clear()
    prefix = "companion-" + re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_ARCHIVE_URI", f"s3://{ARCHIVE_BUCKET}/{prefix}")
    yield Companion(emulator, archive_s3, prefix, tmp_path)
    emulator.clear_faults()
    TOKEN_CACHE.clear()


def subject_rows(count: int, *, action: str = "access", regulation: str = "gdpr", prefix: str = "req",
                 received_at: str = "2026-03-01T00:00:00Z", namespace: str = "email", id_type: str = "standard",
                 ) -> list[str]:
    """`count` one-identity subjects (synthetic example.com addresses)."""
    rows = []
    for i in range(count):
        value = f"{prefix}-{i}@example.com" if namespace == "email" else f"{prefix}-{i}"
        rows.append(f"{prefix}-{i},{action},{regulation},{namespace},{value},{id_type},{received_at},")
    return rows
