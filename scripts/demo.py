"""`make demo`: the nightly privacy job on the embedded default, end to end, on this machine.

Starts our Adobe emulator and a moto S3 server on 127.0.0.1 (free ports), creates the buckets and the
API pool (`adobe_privacy.pools`), generates a sample input (a few thousand rows, some of them bad)
unless --input is given, runs `privacy_requests_nightly` with `airflow dags test` (deferrable sensors run their triggers inline),
prints the run report, mirrors the run's S3 prefix into demo-output/, and stops what it started.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEMO_HOME = REPO / ".airflow" / "demo"
OUTPUT = REPO / "demo-output"
INBOX_BUCKET = "privacy-inbox"
ARCHIVE_URI = "s3://privacy-archive/privacy"
DAG_ID = "privacy_requests_nightly"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--input", help="a CSV or JSON Lines file of requests (default: a generated sample)")
    parser.add_argument("--rows", type=int, default=3000, help="rows in the generated sample (default 3000)")
    args = parser.parse_args()

    from privacy_emulator.testing import EmulatorServer, MotoS3Server, privacy_connection, s3_connection

    started = time.monotonic()
    shutil.rmtree(DEMO_HOME, ignore_errors=True)
    DEMO_HOME.mkdir(parents=True)
    logical_date = datetime.now(UTC).date().isoformat()
    input_path = Path(args.input).resolve() if args.input else DEMO_HOME / f"requests-{logical_date}.csv"
    if not args.input:
        from privacy_pipeline.sample import generate_requests_csv

        generate_requests_csv(input_path, rows=args.rows, seed=7)
    print(f"input: {input_path} ({_count_lines(input_path)} lines)")

    # Jobs finish within seconds here; --realistic on the emulator would take days, as Adobe does.
    settings = {"processing_after_seconds": 2, "complete_after_seconds": 6, "content_bytes": 200_000}
    with EmulatorServer(db_path=DEMO_HOME / "emulator.sqlite", settings=settings) as adobe, MotoS3Server() as s3:
        print(f"emulator: {adobe.base_url}   local S3: {s3.endpoint_url}")
        env = _airflow_env(privacy_connection(adobe) | s3_connection(s3))
        _make_buckets(s3.endpoint_url)
        _run(["airflow", "db", "migrate"], env, DEMO_HOME / "db-migrate.log")
        # The API pool, as airflow-init does in compose: `dags test` runs without it, a scheduler never would.
        if _run([sys.executable, "-m", "adobe_privacy.pools"], env, DEMO_HOME / "pool.log") != 0:
            print(f"could not create the API pool; see {DEMO_HOME / 'pool.log'}", file=sys.stderr)
            return 1
        print((DEMO_HOME / "pool.log").read_text().strip())
        conf = json.dumps({"input_uri": str(input_path), "poll_interval": 5, "wait_timeout": 600})
        print(f"running {DAG_ID} for {logical_date} (log: {DEMO_HOME / 'dags-test.log'}) ...")
        code = _run(
            ["airflow", "dags", "test", DAG_ID, logical_date, "-c", conf], env, DEMO_HOME / "dags-test.log",
            progress=True,
        )
        report_key = _mirror_run(s3.endpoint_url, logical_date)
        stats = adobe.stats()
    _print_summary(report_key, stats, time.monotonic() - started)
    if code != 0:
        print(f"\nThe DAG run failed (exit {code}); see {DEMO_HOME / 'dags-test.log'}", file=sys.stderr)
    return code


def _airflow_env(connections: dict[str, str]) -> dict[str, str]:
    from privacy_emulator.testing import local_airflow_env

    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_CONN_")}
    env.update(connections)
    env.update(local_airflow_env(DEMO_HOME, REPO, archive_uri=ARCHIVE_URI, input_uri=f"s3://{INBOX_BUCKET}/requests"))
    return env


# Our operators' own log lines (intake counts, chunks submitted, jobs open, archive, report) are the
# run's story; everything else goes to the log file only.
PROGRESS = re.compile(r"^\S+\s+\[(?:info|warning|error)\s*\]\s+(?P<message>.*?)\s+\[airflow\.task\.operators\.adobe_privacy\.(?:[\w.]+\.)?(?P<task>\w+)\]")


def _run(command: list[str], env: dict[str, str], log: Path, *, progress: bool = False) -> int:
    with open(log, "w") as out, subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    ) as process:
        for line in process.stdout:
            out.write(line)
            match = PROGRESS.match(line) if progress else None
            if match and not match["message"].startswith("Batch "):  # per-batch lines: log file only
                print(f"  {match['task']:<34} {match['message'][:150]}", flush=True)
    return process.returncode


def _s3(endpoint_url: str):
    import boto3

    return boto3.client(
        "s3", endpoint_url=endpoint_url, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )


def _make_buckets(endpoint_url: str) -> None:
    client = _s3(endpoint_url)
    for bucket in (INBOX_BUCKET, ARCHIVE_URI.split("/")[2]):
        client.create_bucket(Bucket=bucket)


def _mirror_run(endpoint_url: str, logical_date: str) -> str | None:
    """Copy the run's prefix (and the ledger) into demo-output/; return the report's key."""
    client = _s3(endpoint_url)
    bucket = ARCHIVE_URI.split("/")[2]
    shutil.rmtree(OUTPUT, ignore_errors=True)
    report_key = None
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            key = item["Key"]
            target = OUTPUT / key
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, key, str(target))
            if key.endswith("report.json") and f"/runs/{logical_date}/" in key:
                report_key = key
    return report_key


def _print_summary(report_key: str | None, stats: dict, elapsed: float) -> None:
    print()
    if report_key is None:
        print("No report.json was written.")
        return
    report = json.loads((OUTPUT / report_key).read_text())
    print(f"Run report ({OUTPUT / report_key}):")
    for name in (
        "rows_read", "rows_rejected", "subjects_submitted", "subjects_postponed", "jobs_created",
        "api_posts", "content_archived", "content_quarantined",
    ):
        if name in report:
            print(f"  {name:<22} {report[name]}")
    print(f"  {'jobs_by_status':<22} {json.dumps(report.get('jobs_by_status', {}), sort_keys=True)}")
    _print_rejects(OUTPUT / report_key.replace("report.json", "rejects.csv"))
    calls = stats.get("calls", {})
    posts = sum(calls.get("POST /data/core/privacy/jobs", {}).values())
    lists = sum(calls.get("GET /data/core/privacy/jobs", {}).values())
    print(f"  emulator saw: {posts} POST /jobs, {lists} list calls, "
          f"{stats.get('duplicate_user_actions', 0)} duplicate (userKey, action) jobs")
    print(f"\nOutputs mirrored to {OUTPUT}/ (rejects.csv, jobs.jsonl, report.json, content/*.zip)")
    print(f"Demo finished in {elapsed:.0f} s.")


def _print_rejects(path: Path) -> None:
    """Rejected rows by field, with one example reason each: what a user fixes in their input."""
    if not path.exists():
        return
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return
    by_field: dict[str, list[str]] = {}
    for row in rows:
        by_field.setdefault(row["field"], []).append(row["reason"])
    print("  rejected rows by field (details in rejects.csv):")
    for field, reasons in sorted(by_field.items(), key=lambda item: -len(item[1])):
        print(f"    {len(reasons):>5}  {field:<14} e.g. {reasons[0][:90]}")


def _count_lines(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for _ in handle)


if __name__ == "__main__":
    sys.exit(main())
