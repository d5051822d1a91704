"""Fixtures for the nightly DAG's guarantee tests: real runs against the emulator and moto over HTTP.

Every test gets a reset emulator (fast job lifecycle, no faults) and its own archive root in the
moto server (`s3://privacy-archive/<test>`), so ledgers, carried batches and input hashes of one test
never leak into another. `NightlyHarness` runs the real DAG with `dag.test()` (in this process, the
deferrable sensor's trigger run inline) and reads back what the run left in S3.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAG_ID = "privacy_requests_nightly"
ARCHIVE_BUCKET = "privacy-archive"
JOBS_ROUTE = "POST /data/core/privacy/jobs"
#: Jobs go processing at once and complete a second later: the sensor's first poke sees them open,
#: defers, and the trigger's first poll (poll_interval) finds them complete.
FAST_LIFECYCLE = {
    "processing_after_seconds": 0.2,
    "complete_after_seconds": 1.0,
    "jitter_ratio": 0.0,
    "error_rate": 0.0,
    "content_bytes": 4096,
}
#: The smallest poll interval the DAG's form accepts (Adobe's API is not to be hammered).
POLL_INTERVAL = 5


@dataclass(frozen=True)
class ExpectedCounts:
    """What a run of an input file must report, worked out from the CSV alone (not by our intake)."""

    rows_read: int
    rows_rejected: int
    subjects: int
    jobs: int
    access_jobs: int
    user_actions: frozenset[tuple[str, str]]


def expected_from_csv(path: Path, rejected_request_ids: set[str]) -> ExpectedCounts:
    """Count rows, subjects and (subject, action) pairs of a file whose only bad rows are the given requests."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    actions: dict[str, set[str]] = {}
    for row in rows:
        if row["request_id"] not in rejected_request_ids:
            actions.setdefault(row["request_id"], set()).update(row["action"].split("|"))
    pairs = frozenset((key, action) for key, acts in actions.items() for action in acts)
    return ExpectedCounts(
        rows_read=len(rows),
        rows_rejected=sum(1 for row in rows if row["request_id"] in rejected_request_ids),
        subjects=len(actions),
        jobs=len(pairs),
        access_jobs=sum(1 for _key, action in pairs if action == "access"),
        user_actions=pairs,
    )


#: Rows our contract must reject, each for its own reason, each its own request (so nothing else shrinks).
BAD_ROWS = [
    ["bad-legacy-1", "access", "cpra_usa", "email", "legacy@example.com", "standard", "2026-03-01T00:00:00Z", ""],
    ["bad-email-1", "delete", "gdpr", "email", "not-an-email@@example", "standard", "2026-03-01T00:00:00Z", ""],
    ["bad-namespace-1", "access", "ccpa", "loyaltyId", "L-123", "standard", "2026-03-01T00:00:00Z", ""],
    ["bad-action-1", "erase", "gdpr", "email", "erase@example.com", "standard", "2026-03-01T00:00:00Z", ""],
]


def load_dag_with_fast_retries(dag_id: str):
    """The project's DAG `dag_id` from its file, parsed without import errors, retrying within a second.

    Production retries wait minutes (exponential); here a retry follows within a second, so a test that
    needs the retry path (faults, outcome unknown) stays fast. Counts stay the same.
    """
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO / "dags" / f"{dag_id}.py"))
    assert not bag.import_errors, bag.import_errors
    dag = bag.get_dag(dag_id)
    for task in dag.tasks:
        task.retry_delay = timedelta(seconds=1)
        task.retry_exponential_backoff = False
    return dag


def write_input(path: Path, *, rows: int, seed: int, bad_rows: list[list[str]] = BAD_ROWS) -> ExpectedCounts:
    """A sample file (privacy_pipeline.sample, no broken rows) plus known-bad rows; returns its expectations."""
    from privacy_pipeline.sample import generate_requests_csv

    generate_requests_csv(path, rows=rows, bad_fraction=0.0, seed=seed,
                          received_until=datetime(2026, 3, 1, tzinfo=UTC))
    with path.open("a", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(bad_rows)
    return expected_from_csv(path, {row[0] for row in bad_rows})


class RunOutputs:
    """What one DAG run left under its run prefix, read back through boto3."""

    def __init__(self, s3, bucket: str, root: str) -> None:
        self.s3, self.bucket, self.root = s3, bucket, root

    def key(self, name: str) -> str:
        return f"{self.root}/{name}"

    def keys(self, under: str = "") -> list[str]:
        prefix = f"{self.root}/{under}".rstrip("/") + "/"
        return list_keys(self.s3, self.bucket, prefix)

    def get(self, name: str) -> bytes:
        return self.s3.get_object(Bucket=self.bucket, Key=self.key(name))["Body"].read()

    def json(self, name: str) -> Any:
        return json.loads(self.get(name))

    def jsonl(self, key: str) -> list[dict[str, Any]]:
        """The records of a JSON Lines object, by its full key."""
        body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    @property
    def report(self) -> dict[str, Any]:
        return self.json("report.json")

    @property
    def jobs(self) -> list[dict[str, Any]]:
        return self.jsonl(self.key("jobs.jsonl"))

    def rejects(self) -> list[dict[str, str]]:
        return list(csv.DictReader(io.StringIO(self.get("rejects.csv").decode("utf-8"))))


def list_keys(s3, bucket: str, prefix: str) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


class NightlyHarness:
    """Runs `privacy_requests_nightly` for real and exposes the emulator, S3 and the run's outputs."""

    def __init__(self, emulator, s3, archive_prefix: str, monkeypatch, tmp_path: Path) -> None:
        self.emulator = emulator
        self.s3 = s3
        self.bucket = ARCHIVE_BUCKET
        self.archive_prefix = archive_prefix
        self.archive_uri = f"s3://{ARCHIVE_BUCKET}/{archive_prefix}"
        self.inbox_prefix = f"inbox/{archive_prefix}"  # outside the archive root, as in production
        self.monkeypatch = monkeypatch
        self.tmp_path = tmp_path
        self.runs: list[Any] = []

    # -- running --------------------------------------------------------------------------------------
    def dag(self):
        return load_dag_with_fast_retries(DAG_ID)

    def run(self, logical_date: str, *, run_after: datetime | None = None, **conf: Any):
        """One `dag.test()` run of the nightly DAG (`conf` is the run's form); returns the successful DagRun.

        `run_after` of an earlier run gives that run's run_id again: dag.test() replaces the run, so
        this is a clear-and-rerun of it (XComs gone, its S3 state and ledger intact).
        """
        conf = {"poll_interval": POLL_INTERVAL, "wait_timeout": 120, **conf}
        if isinstance(conf.get("input_uri"), Path):
            conf["input_uri"] = str(conf["input_uri"])
        when = datetime.fromisoformat(logical_date).replace(tzinfo=UTC)
        dag_run = self.dag().test(logical_date=when, run_conf=conf, run_after=run_after)
        self.runs.append(dag_run)
        assert dag_run.state == "success", self.failed_tasks(dag_run)
        return dag_run

    @staticmethod
    def failed_tasks(dag_run) -> str:
        from airflow.utils.session import create_session

        with create_session() as session:
            tis = dag_run.get_task_instances(session=session)
            return "; ".join(f"{ti.task_id}[{ti.map_index}]={ti.state}" for ti in tis)

    def outputs(self, dag_run) -> RunOutputs:
        from privacy_pipeline.layout import ArchiveLayout

        root = ArchiveLayout(self.archive_prefix).run(dag_run.logical_date.date().isoformat(), dag_run.run_id).root
        return self.outputs_at(root)

    def outputs_at(self, root: str) -> RunOutputs:
        return RunOutputs(self.s3, self.bucket, root)

    def task_xcom(self, dag_run, task_id: str) -> list[Any]:
        """The return values of a task, one per map index."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            rows = session.scalars(XComModel.get_many(run_id=dag_run.run_id, dag_ids=DAG_ID, task_ids=task_id,
                                                      key="return_value"))
            return [XComModel.deserialize_value(row) for row in rows]

    def task_xcoms(self, dag_run, task_id: str) -> dict[str, Any]:
        """Every XCom of a task (its first map index) by key: the return value and the links' URLs."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            rows = session.scalars(XComModel.get_many(run_id=dag_run.run_id, dag_ids=DAG_ID, task_ids=task_id,
                                                      include_prior_dates=False, map_indexes=None))
            found: dict[str, Any] = {}
            for row in rows:
                found.setdefault(row.key, XComModel.deserialize_value(row))
            return found

    def task_instance(self, dag_run, task_id: str):
        from airflow.models.taskinstance import TaskInstance
        from airflow.utils.session import create_session

        with create_session() as session:
            return session.query(TaskInstance).filter_by(dag_id=dag_run.dag_id, run_id=dag_run.run_id,
                                                         task_id=task_id).first()

    def store(self):
        """The archive root as the operators see it (for the request index and the evidence packs)."""
        from adobe_privacy.storage import PrivacyArchiveStore

        return PrivacyArchiveStore(self.archive_uri, aws_conn_id="aws_default")

    def use_fresh_archive(self, suffix: str) -> None:
        """Point the DAG at a new archive root: a new ledger, as if on another deployment."""
        self.archive_prefix = f"{self.archive_prefix}-{suffix}"
        self.archive_uri = f"s3://{ARCHIVE_BUCKET}/{self.archive_prefix}"
        self.monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_ARCHIVE_URI", self.archive_uri)

    # -- the ledger and the emulator's view ---------------------------------------------------------
    def ledger(self, kind: str) -> dict[str, dict[str, Any]]:
        """Ledger documents of one kind (`batches`, `pending`, `inputs`, `jobs`) by object name."""
        prefix = f"{self.archive_prefix}/ledger/{kind}/"
        return {
            key.rsplit("/", 1)[-1].removesuffix(".json"): json.loads(
                self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
            )
            for key in list_keys(self.s3, self.bucket, prefix)
        }

    def posts(self) -> int:
        return sum(self.emulator.stats()["calls"].get(JOBS_ROUTE, {}).values())

    def faults_fired(self) -> dict[str, int]:
        """Fault id -> how often it fired (the emulator's admin view)."""
        import httpx

        faults = httpx.get(f"{self.emulator.base_url}/_emulator/faults", timeout=10).json()
        return {fault["id"]: fault["fired"] for fault in faults}

    def jobs_per_user_action(self) -> Counter:
        """(userKey, action) -> how many jobs the emulator holds for it."""
        counts = Counter()
        for pair, n in self.emulator.stats()["jobs_per_user_action"].items():
            key, _, action = pair.rpartition("|")
            counts[(key, action)] = n
        return counts

    def head(self, key: str) -> dict[str, Any]:
        return self.s3.head_object(Bucket=self.bucket, Key=key)

    def task_context(self, logical_date: str, run_id: str, map_index: int = 0) -> dict[str, Any]:
        """The parts of a task context our operators read, for calling `execute` directly."""
        when = datetime.fromisoformat(logical_date).replace(tzinfo=UTC)
        from tests.operators.fakes import FakeTaskInstance

        return {"ds": logical_date, "logical_date": when, "run_id": run_id,
                "dag_run": SimpleNamespace(run_id=run_id, run_after=when),
                "ti": FakeTaskInstance(dag_id=DAG_ID, task_id="task", run_id=run_id, map_index=map_index)}


def boto3_s3(endpoint_url: str):
    import boto3

    return boto3.client("s3", endpoint_url=endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture(scope="session")
def archive_s3(s3_server):
    client = boto3_s3(s3_server.endpoint_url)
    client.create_bucket(Bucket=ARCHIVE_BUCKET)
    return client


@pytest.fixture
def nightly(request, emulator, archive_s3, airflow_connections, airflow_db, monkeypatch, tmp_path):
    """A reset emulator with a fast lifecycle, a fresh archive root, and the DAG's Variables set."""
    from adobe_privacy.protocol import TOKEN_CACHE

    emulator.reset()
    emulator.configure(**FAST_LIFECYCLE)
    TOKEN_CACHE.clear()
    from adobe_privacy.pools import ensure_pool

    ensure_pool()  # as every way we start Airflow does: intake checks it first
    archive_prefix = re.sub(r"[^A-Za-z0-9]+", "-", request.node.name).strip("-")
    harness = NightlyHarness(emulator, archive_s3, archive_prefix, monkeypatch, tmp_path)
    monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_ARCHIVE_URI", harness.archive_uri)
    monkeypatch.setenv("AIRFLOW_VAR_PRIVACY_INPUT_URI", f"s3://{ARCHIVE_BUCKET}/{harness.inbox_prefix}")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    yield harness
    emulator.clear_faults()
    TOKEN_CACHE.clear()


# -- the guarantees, as assertions shared by every test ------------------------------------------------
def assert_exactly_once(harness: NightlyHarness, expected_pairs: frozenset[tuple[str, str]]) -> None:
    """0 duplicates and 0 lost in Adobe (the emulator), and a ledger that says the same."""
    per_pair = harness.jobs_per_user_action()
    assert harness.emulator.stats()["duplicate_user_actions"] == 0
    assert {pair for pair, n in per_pair.items() if n > 1} == set()
    assert set(per_pair) == set(expected_pairs), "every subject x action has exactly one job, and no other job exists"
    entries = harness.ledger("batches").values()
    assert {entry["state"] for entry in entries} == {"submitted"}
    ledger_pairs = [(job["user_key"], job["action"]) for entry in entries for job in entry["jobs"]]
    assert sorted(ledger_pairs) == sorted(expected_pairs), "the ledger holds each pair once"
    assert len({job["job_id"] for entry in entries for job in entry["jobs"]}) == len(ledger_pairs)
    for entry in entries:
        assert sorted(map(tuple, entry["user_actions"])) == sorted((j["user_key"], j["action"]) for j in entry["jobs"])


def assert_encrypted(harness: NightlyHarness, prefix: str, *, sse: str, kms_key_id: str | None = None) -> int:
    """Every object under `prefix` is encrypted at rest as configured; returns how many were checked."""
    keys = list_keys(harness.s3, harness.bucket, prefix.rstrip("/") + "/")
    assert keys, f"nothing under {prefix}"
    for key in keys:
        head = harness.head(key)
        assert head.get("ServerSideEncryption") == sse, key
        if kms_key_id:
            assert kms_key_id in head.get("SSEKMSKeyId", ""), key
    return len(keys)


def report_accounting(report: dict[str, Any]) -> dict[str, Any]:
    """The counts that must not depend on how bumpy the road was (POST counts may)."""
    names = ("rows_read", "rows_rejected", "rows_in_subjects", "subjects_intake", "subjects_submitted",
             "subjects_postponed", "jobs_expected", "jobs_created", "jobs_recorded", "jobs_by_status",
             "complete_access_jobs", "content_archived", "content_quarantined", "content_pending")
    return {name: report[name] for name in names}
