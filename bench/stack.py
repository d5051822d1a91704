"""The servers and Airflow environment the benchmarks run against, all on 127.0.0.1.

The emulator and moto are the same subprocess servers the tests use (`privacy_emulator.testing`);
the `AIRFLOW_CONN_*` values come from the same module, the one source of the connection shape.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.measure import work_dir
from bench.report import REPO

ARCHIVE_BUCKET = "privacy-archive"
ARCHIVE_URI = f"s3://{ARCHIVE_BUCKET}/privacy"
INBOX_BUCKET = "privacy-inbox"
#: The emulator's job-creation cap is Adobe's (20,000 a day); B1 submits more than that on purpose.
UNCAPPED = 10**9


@dataclass
class Stack:
    emulator: Any  # privacy_emulator.testing.EmulatorServer
    s3: Any  # privacy_emulator.testing.MotoS3Server
    airflow_home: Path

    @property
    def env(self) -> dict[str, str]:
        """Environment for a process that uses the hook and the store (a probe, `airflow dags test`)."""
        return airflow_env(self.airflow_home) | connection_env(self.emulator, self.s3)

    def s3_client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.s3.endpoint_url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )


@contextmanager
def running_stack(name: str, emulator_settings: dict[str, Any] | None = None) -> Iterator[Stack]:
    """Emulator + moto S3 (with the archive and inbox buckets) for one benchmark; stopped by PID after."""
    from privacy_emulator.testing import EmulatorServer, MotoS3Server

    home = work_dir(name)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    with ExitStack() as stack:
        emulator = stack.enter_context(EmulatorServer(db_path=home / "emulator.sqlite", settings=emulator_settings))
        s3 = stack.enter_context(MotoS3Server())
        running = Stack(emulator=emulator, s3=s3, airflow_home=home / "airflow")
        running.airflow_home.mkdir()
        client = running.s3_client()
        for bucket in (ARCHIVE_BUCKET, INBOX_BUCKET):
            client.create_bucket(Bucket=bucket)
        yield running


def airflow_env(airflow_home: Path) -> dict[str, str]:
    """A private Airflow home with a SQLite DB; the project's dags and plugins; no examples; quiet logs."""
    from privacy_emulator.testing import local_airflow_env

    return local_airflow_env(airflow_home, REPO, archive_uri=ARCHIVE_URI,
                             input_uri=f"s3://{INBOX_BUCKET}/requests") | {"AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING"}


def connection_env(emulator, s3) -> dict[str, str]:
    from privacy_emulator.testing import privacy_connection, s3_connection

    return privacy_connection(emulator) | s3_connection(s3)


def migrate_airflow_db(env: dict[str, str], log: Path) -> None:
    """A fresh metadata DB with the API pool, as every way we start Airflow sets it up."""
    with open(log, "wb") as out:
        for command in (["airflow", "db", "migrate"], ["adobe_privacy.pools"]):
            subprocess.run(
                [sys.executable, "-m", *command], env={**os.environ, **env},
                stdout=out, stderr=subprocess.STDOUT, check=True,
            )


@dataclass
class DagTest:
    """One `airflow dags test` subprocess: its wall time, exit code and peak RSS (tasks included)."""

    seconds: float
    returncode: int
    maxrss_mb: float
    #: CPU seconds (user + system) of the process and the descendants it reaped: the work, whatever the load.
    cpu_seconds: float
    log: Path
    #: (epoch seconds, MB): the largest resident set of any process of the run, sampled every 0.2 s.
    rss_samples: list[tuple[float, float]] = field(default_factory=list)


def dags_test(stack: Stack, dag_id: str, logical_date: str, conf: dict[str, Any], *, name: str,
              extra_env: dict[str, str] | None = None, timeout: float | None = None) -> DagTest:
    """`airflow dags test dag_id logical_date -c conf` in the stack's Airflow home (DB migrated first).

    The peak RSS comes from `wait4` on the process: the maximum over it and every descendant it reaped,
    so it bounds the peak of any task, however Airflow runs them.
    """
    import json

    return airflow_measured(stack, ["dags", "test", dag_id, logical_date, "-c", json.dumps(conf)], name=name,
                            extra_env=extra_env, timeout=timeout)


def task_test(stack: Stack, dag_id: str, task_id: str, run_id: str, *, name: str) -> DagTest:
    """`airflow tasks test dag_id task_id run_id`: one task again, alone in a fresh process, on the run's state.

    What a worker's own process for that task holds at its peak (a `dags test` process carries every task).
    """
    return airflow_measured(stack, ["tasks", "test", dag_id, task_id, run_id], name=name,
                            extra_env={"AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO"})  # its log shows what it did


def airflow_measured(stack: Stack, arguments: list[str], *, name: str, extra_env: dict[str, str] | None = None,
                     timeout: float | None = None) -> DagTest:
    """An `airflow` command in the stack's Airflow home: wall, exit code, peak RSS and CPU from `wait4`."""
    import time

    env = {**os.environ, **stack.env, **(extra_env or {})}
    if not (stack.airflow_home / "airflow.db").exists():
        migrate_airflow_db(env, stack.airflow_home / "db-migrate.log")
    log = stack.airflow_home / f"{name}.log"
    command = [sys.executable, "-m", "airflow", *arguments]
    started = time.perf_counter()
    rss_samples: list[tuple[float, float]] = []
    with open(log, "wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = None if timeout is None else started + timeout
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            rss_samples.append((time.time(), largest_rss_mb(process.pid)))
            if deadline is not None and time.perf_counter() > deadline:
                os.killpg(process.pid, 15)
                pid, status, usage = os.wait4(process.pid, 0)
                break
            time.sleep(0.2)
    seconds = time.perf_counter() - started
    process.returncode = os.waitstatus_to_exitcode(status)
    return DagTest(seconds=seconds, returncode=process.returncode, maxrss_mb=usage.ru_maxrss / 1024,
                   cpu_seconds=usage.ru_utime + usage.ru_stime, log=log, rss_samples=rss_samples)


def largest_rss_mb(session_id: int) -> float:
    """The largest resident set (MB) among the processes of one session (a run and whatever it started)."""
    largest = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) != session_id:  # field 6 of stat: the session id
                continue
            rss_pages = int((entry / "statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # gone between the listing and the read
        largest = max(largest, rss_pages)
    return largest * os.sysconf("SC_PAGE_SIZE") / 2**20


#: Every try of every task instance of a DAG (earlier tries are in `task_instance_history`).
TASK_SPANS_SQL = ("SELECT task_id, start_date, end_date FROM task_instance WHERE dag_id = :dag UNION ALL "
                  "SELECT task_id, start_date, end_date FROM task_instance_history WHERE dag_id = :dag")


def task_memory(airflow_home: Path, dag_id: str, samples: list[tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Per task: (MB when its first instance started, largest MB while any of its instances ran).

    `dags test` runs every task in one process, so the largest figure includes what earlier tasks left
    allocated (an upper bound on the task's own peak) and the difference is what the task itself added.
    """
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
        rows = db.execute(
            f"SELECT task_id, (julianday(start_date) - 2440587.5) * 86400, (julianday(end_date) - 2440587.5) * 86400 "
            f"FROM ({TASK_SPANS_SQL}) WHERE start_date IS NOT NULL ORDER BY start_date", {"dag": dag_id},
        ).fetchall()
    memory: dict[str, tuple[float, float]] = {}
    for task_id, start, end in rows:
        during = [mb for at, mb in samples if start <= at <= (end or start)]
        before = [mb for at, mb in samples if at <= start]
        at_start = before[-1] if before else (during[0] if during else 0.0)
        first, peak = memory.get(task_id, (at_start, at_start))
        memory[task_id] = (first, max([peak, *during]))
    return memory


def task_seconds(airflow_home: Path, dag_id: str) -> dict[str, float]:
    """Seconds per task (mapped instances and tries summed) of the DAG's runs, from the run's own DB.

    Earlier tries of a retried task are in `task_instance_history`; both tables are read.
    """
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
        rows = db.execute(
            f"SELECT task_id, SUM((julianday(end_date) - julianday(start_date)) * 86400) FROM ({TASK_SPANS_SQL}) "
            "GROUP BY task_id ORDER BY MIN(start_date)", {"dag": dag_id},
        ).fetchall()
    return {task_id: round(seconds or 0.0, 1) for task_id, seconds in rows}


def run_id(airflow_home: Path, dag_id: str) -> str:
    """The run id of the DAG's latest run in the stack's DB."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
        row = db.execute("SELECT run_id FROM dag_run WHERE dag_id = ? ORDER BY id DESC LIMIT 1", (dag_id,)).fetchone()
    if row is None:
        raise RuntimeError(f"no run of {dag_id} in {airflow_home}")
    return str(row[0])


def task_tries(airflow_home: Path, dag_id: str) -> dict[str, int]:
    """Tries per task (mapped instances summed): more than one per instance means Airflow retried it."""
    import sqlite3
    from contextlib import closing

    with closing(sqlite3.connect(airflow_home / "airflow.db")) as db:
        rows = db.execute(
            "SELECT task_id, SUM(try_number), COUNT(*) FROM task_instance WHERE dag_id = ? GROUP BY task_id",
            (dag_id,),
        ).fetchall()
    return {task_id: int(tries or 0) - int(count) for task_id, tries, count in rows if (tries or 0) > count}


def run_report(stack: Stack, logical_date: str) -> dict[str, Any]:
    """The report.json the nightly run of `logical_date` wrote to the archive bucket."""
    import json

    client = stack.s3_client()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=ARCHIVE_BUCKET):
        for item in page.get("Contents", []):
            if item["Key"].endswith("report.json") and f"/runs/{logical_date}/" in item["Key"]:
                return json.loads(client.get_object(Bucket=ARCHIVE_BUCKET, Key=item["Key"])["Body"].read())
    raise RuntimeError("the DAG run wrote no report.json")


def route_calls(stats: dict[str, Any], route: str) -> int:
    """Calls the emulator counted on a route template, whatever their status."""
    return sum(stats["calls"].get(route, {}).values())


def process_cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds a live process has used so far (0 when it is gone or unknown)."""
    if pid is None:
        return 0.0
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            fields = stat.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def servers_cpu_seconds(stack: Stack) -> dict[str, float]:
    """CPU seconds the emulator and moto have used: the other side of every call, on the same cores."""
    return {"emulator": round(process_cpu_seconds(stack.emulator.pid), 1),
            "moto": round(process_cpu_seconds(stack.s3.pid), 1)}
