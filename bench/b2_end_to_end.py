"""B2 end to end with 50 ms per call: the nightly DAG against a naive sequential client.

Both sides run against their own fresh emulator with the same settings: 50 ms latency on every route,
jobs complete within seconds, small content ZIPs. Ours is `airflow dags test privacy_requests_nightly`
(a subprocess, as scripts/demo.py runs it; the DB migration is done before the clock starts). The
naive client (bench.naive_client) submits the same accepted subjects, GETs each job until it is final
and downloads each access job's ZIP. Calls are counted by the emulator.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from contextlib import closing
from datetime import UTC, datetime

from bench.inputs import requests_csv
from bench.measure import work_dir
from bench.naive_client import run_naive
from bench.report import BenchmarkRun, Result
from bench.stack import ARCHIVE_BUCKET, migrate_airflow_db, running_stack

DAG_ID = "privacy_requests_nightly"
TARGET_WALL_RATIO = 10.0
TARGET_STATUS_RATIO = 100.0
LATENCY_MS = 50
ROWS_PER_SUBJECT = 1.8
#: The DAG's default products, so that both sides create the same jobs.
DEFAULT_PRODUCTS = ("aepDataLake", "profileService", "identity")
EMULATOR_SETTINGS = {
    "processing_after_seconds": 1,
    "complete_after_seconds": 3,
    "content_bytes": 16_384,
    "faults": [{"route": "*", "kind": "latency", "latency_ms": LATENCY_MS}],
}
LIST_ROUTE = "GET /data/core/privacy/jobs"
DETAIL_ROUTE = "GET /data/core/privacy/jobs/{jobId}"
POST_ROUTE = "POST /data/core/privacy/jobs"
CONTENT_ROUTE = "GET /data/core/privacy/jobs/{jobId}/content"


def _calls(stats: dict, route: str) -> int:
    return sum(stats["calls"].get(route, {}).values())


def run_ours(rows: int) -> dict:
    input_path = requests_csv(rows)
    with running_stack("b2-ours", EMULATOR_SETTINGS) as stack:
        env = {**os.environ, **stack.env}
        migrate_airflow_db(env, stack.airflow_home / "db-migrate.log")
        logical_date = datetime.now(UTC).date().isoformat()
        conf = json.dumps({"input_uri": str(input_path), "poll_interval": 5})
        log = stack.airflow_home / "dags-test.log"
        started = time.perf_counter()
        with open(log, "wb") as out:
            code = subprocess.run(
                [sys.executable, "-m", "airflow", "dags", "test", DAG_ID, logical_date, "-c", conf],
                env=env, stdout=out, stderr=subprocess.STDOUT, check=False,
            ).returncode
        seconds = time.perf_counter() - started
        if code != 0:
            raise RuntimeError(f"the DAG run failed (exit {code}); see {log}")
        stats = stack.emulator.stats()
        report = _run_report(stack, logical_date)
        tasks = _task_seconds(stack.airflow_home / "airflow.db")
    return {
        "seconds": seconds, "posts": _calls(stats, POST_ROUTE), "lists": _calls(stats, LIST_ROUTE),
        "details": _calls(stats, DETAIL_ROUTE), "downloads": _calls(stats, CONTENT_ROUTE), "report": report,
        "task_seconds": tasks,
    }


def _task_seconds(db_path) -> dict[str, float]:
    """Seconds spent per task (mapped instances summed), from the run's own metadata DB."""
    import sqlite3

    with closing(sqlite3.connect(db_path)) as db:
        rows = db.execute(
            "SELECT task_id, SUM((julianday(end_date) - julianday(start_date)) * 86400) "
            "FROM task_instance GROUP BY task_id ORDER BY MIN(start_date)"
        ).fetchall()
    return {task_id: round(seconds or 0.0, 1) for task_id, seconds in rows}


def _run_report(stack, logical_date: str) -> dict:
    client = stack.s3_client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=ARCHIVE_BUCKET):
        for item in page.get("Contents", []):
            if item["Key"].endswith("report.json") and f"/runs/{logical_date}/" in item["Key"]:
                return json.loads(client.get_object(Bucket=ARCHIVE_BUCKET, Key=item["Key"])["Body"].read())
    raise RuntimeError("the DAG run wrote no report.json")


def run_reference(rows: int) -> dict:
    with running_stack("b2-naive", EMULATOR_SETTINGS) as stack:
        naive = run_naive(stack.emulator, requests_csv(rows), DEFAULT_PRODUCTS)
        stats = stack.emulator.stats()
    return {
        "seconds": naive.seconds, "subjects": naive.subjects, "jobs": naive.jobs, "passes": naive.passes,
        "posts": _calls(stats, POST_ROUTE), "status_gets": _calls(stats, DETAIL_ROUTE),
        "downloads": _calls(stats, CONTENT_ROUTE), "statuses": naive.statuses,
    }


def run(smoke: bool = False) -> BenchmarkRun:
    subjects = 40 if smoke else 2_000
    rows = int(subjects * ROWS_PER_SUBJECT)
    bench = BenchmarkRun(
        "B2", "end to end at 50 ms per call", "python -m bench --only B2",
        notes=[
            f"Emulator: {LATENCY_MS} ms added to every call, jobs processing after 1 s and complete after 3 s "
            "(+ up to 20% seeded jitter), 16 KiB ZIPs. Each side gets its own fresh emulator.",
            "Ours: `airflow dags test` wall time, poll_interval 5 s (the param's minimum), triggers inline; "
            "the Airflow DB migration is not timed. It also stages batches, keeps the ledger, inspects "
            "and uploads every ZIP to S3 (moto), which the naive client does not.",
            f"Size capped at {rows:,} input rows (about {subjects:,} subjects before rejects and shapes): the naive "
            "side is sequential by design (minutes at this size).",
            "Status calls: ours = every list call the run made (whoever made it); naive = GET /jobs/{id} until final. "
            "The `all job reads` row adds ours' GET /jobs/{id} detail reads (archive: product responses "
            "and download URL of each final job).",
        ],
    )
    reference = run_reference(rows)
    ours = run_ours(rows)
    size = f"{reference['subjects']:,} subjects, {reference['jobs']:,} jobs"
    wall_ratio = reference["seconds"] / ours["seconds"]
    bench.results.append(
        Result("B2", f"{size}, wall", f"{ours['seconds']:.0f} s", f"{reference['seconds']:.0f} s (naive)",
               wall_ratio, f">= {TARGET_WALL_RATIO:g}x less", wall_ratio >= TARGET_WALL_RATIO,
               notes=f"ours {ours['posts']} POSTs, {ours['lists']} list calls, {ours['details']} detail GETs, "
                     f"{ours['downloads']} downloads; report jobs_by_status "
                     f"{json.dumps(ours['report'].get('jobs_by_status', {}), sort_keys=True)}. Naive "
                     f"{reference['posts']} POSTs, {reference['status_gets']} GETs in {reference['passes']} passes, "
                     f"{reference['downloads']} downloads. Ours per task: "
                     + ", ".join(f"{task} {sec:g} s" for task, sec in ours["task_seconds"].items())),
    )
    status_ratio = reference["status_gets"] / max(ours["lists"], 1)
    bench.results.append(
        Result("B2", f"{size}, status calls", str(ours["lists"]), f"{reference['status_gets']:,} (naive)",
               status_ratio, f">= {TARGET_STATUS_RATIO:g}x fewer", status_ratio >= TARGET_STATUS_RATIO)
    )
    reads = ours["lists"] + ours["details"]
    bench.results.append(
        Result("B2", f"{size}, all job reads", f"{reads:,}", f"{reference['status_gets']:,} (naive)",
               reference["status_gets"] / reads, "report", None)
    )
    work_dir("b2").joinpath("raw.json").write_text(json.dumps({"ours": ours, "naive": reference}, indent=1, default=str))
    return bench
