"""B9 Adobe calls and S3 reads per day in the steady state: 45 days at the cap, hourly reconcile.

A simulated steady state against the emulator: each day's requests go through the real nightly DAG
and earlier runs' open jobs through the real reconcile DAG (both `dag.test()` in one fresh process,
the deferrable wait's trigger inline), while the emulator's clock is moved forward, never slept on.
Jobs go processing after 1-2 days and complete after 25-50 days (seeded jitter), so after 45 days the
backlog is in its steady state and some jobs are beyond the list endpoint's look-back.

Every Adobe call is counted by the emulator (`/_emulator/stats`, per route); every S3 call by a
counting wrapper on botocore in the process that runs the tasks. The oracle is the emulator's own job
table and lifecycle (a job's final time is created_at + complete_after x its seeded stretch).
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import time
from collections import Counter
from contextlib import closing
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.measure import run_probe, work_dir
from bench.report import REPO, BenchmarkRun, Result

DAY = 86400.0
HOUR = 3600.0
#: Our reconcile lists a day inside Adobe's 45-day look-back (privacy_pipeline.reconcile.LIST_LOOKBACK_DAYS).
LOOKBACK_DAYS = 44
COMPLETE_AFTER_DAYS = 25
EMULATOR_SETTINGS = {
    "processing_after_seconds": 1 * DAY,
    "complete_after_seconds": COMPLETE_AFTER_DAYS * DAY,
    "jitter_ratio": 1.0,
    "error_rate": 0.0,
    "content_bytes": 4096,
}
#: 300 rows a day is about 165 subjects and 200 jobs: Adobe's cap (20,000 jobs a day) scaled by 1/100.
FULL = {"days": 45, "rows_per_day": 300, "step_days": 5, "reconciles_per_day": 24, "probe_day": 15}
SMOKE = {"days": 2, "rows_per_day": 12, "step_days": 2, "reconciles_per_day": 1, "probe_day": 0}
#: Where the calls come from (read in the code at 2026-11-30 and matched to the counts of the run that day);
#: shown with a missed target. Re-check after changing reconcile, the archive step or the ledger.
WHERE_NOTE = (
    "Where the calls come from (read in the code, matched to the counts; 2026-11-30, after the reconcile "
    "change of branch h-perf): `ReconcilePrivacyJobsOperator._job_states` lists a regulation only over the "
    "windows that can hold one of its open jobs (`_list_plan`: a batch's jobs were created between its "
    "intent and its submission, a day of clock skew either side) and stops paging a window once every "
    "open job it must hold was seen; detail reads are the archive's (`JobArchiver.archive_job` -> "
    "`hook.get_job`, one per complete access job to download) and the once-a-day read of jobs beyond the "
    "look-back (`checked` in the open marker); S3: `ledger.open_batches` lists the open markers and the "
    "entries (ETags) and reads only those whose ETag is not in the worker's `LedgerReadCache`. Not ours: "
    "Adobe's list spans at most 30 days (we use 29 + the day itself) and looks back 45 (we use 44), while "
    "open jobs live 25-50 days, so a regulation whose open jobs span more than 30 days costs two windows, "
    "at least one call each, however few its open jobs: at this scale (a few hundred open jobs per "
    "regulation) that floor is about twice the bound sum(ceil(open/1000)); at the cap (tens of thousands "
    "per regulation) it is one extra page per regulation, plus the pages' final jobs that share a window "
    "with open ones (the list has no 'open' filter: one status per call)."
)
ROUTES = {
    "posts": "POST /data/core/privacy/jobs",
    "lists": "GET /data/core/privacy/jobs",
    "details": "GET /data/core/privacy/jobs/{jobId}",
    "downloads": "GET /data/core/privacy/jobs/{jobId}/content",
}
S3_WRITES = ("PutObject", "CopyObject", "DeleteObject", "CompleteMultipartUpload")
S3_READS = ("GetObject", "HeadObject", "ListObjectsV2", "ListObjects", "GetObjectAttributes")
NIGHTLY, RECONCILE = "privacy_requests_nightly", "privacy_reconcile"
PROBE_TIMEOUT_SECONDS = 3 * 3600


def key_shape(key: str) -> str:
    """An S3 key with what varies per run, batch or job replaced: `<date>`, `<id>`, `<n>`."""
    import re

    def segment(part: str) -> str:
        part = re.sub(r"\d{4}-\d{2}-\d{2}([T ][\d:.+-]+Z?)?", "<date>", part)
        stem, dot, suffix = part.partition(".")
        if len(stem) >= 8 and re.search(r"\d", stem) and "<date>" not in stem:
            stem = re.sub(r"[0-9A-Za-z_-]*\d[0-9A-Za-z_-]*", "<id>", stem)
        return re.sub(r"\d+", "<n>", stem + dot + suffix)

    return "/".join(segment(part) for part in key.split("/"))


class S3Calls:
    """Counts every S3 API call botocore makes in this process (by operation), while not paused."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        #: reads by operation and key shape (ids, dates and numbers replaced): which objects a run reads.
        self.read_shapes: Counter[str] = Counter()
        #: every object key read (Get/Head) and written (Put/Copy/Delete), in call order.
        self.read_keys: list[str] = []
        self.written_keys: list[str] = []
        self.paused = False

    def install(self) -> None:
        from botocore.client import BaseClient

        original = BaseClient._make_api_call
        calls = self

        def counting(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            if not calls.paused and client.meta.service_model.service_name == "s3":
                calls.counts[operation_name] += 1
                if operation_name in S3_READS:
                    key = api_params.get("Key", api_params.get("Prefix", ""))
                    calls.read_shapes[f"{operation_name} {key_shape(str(key))}"] += 1
                    if "Key" in api_params:
                        calls.read_keys.append(str(api_params["Key"]))
                elif operation_name in S3_WRITES and "Key" in api_params:
                    calls.written_keys.append(str(api_params["Key"]))
            return original(client, operation_name, api_params)

        BaseClient._make_api_call = counting

    def reads(self) -> int:
        return sum(self.counts[name] for name in S3_READS)


class Oracle:
    """What the emulator's job table says, read-only: open jobs, jobs that became final, old open jobs."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self.complete_after = COMPLETE_AFTER_DAYS * DAY

    def _rows(self, sql: str, **params: float) -> list[tuple]:
        with closing(sqlite3.connect(f"file:{self.db_path}?mode=ro", uri=True)) as db:
            return db.execute(sql, {"c": self.complete_after, **params}).fetchall()

    def open_by_regulation(self, now: float) -> dict[str, int]:
        return dict(self._rows("SELECT regulation, COUNT(*) FROM jobs WHERE kind = 'privacy' AND "
                               "created_at + :c * stretch > :now GROUP BY regulation", now=now))

    def finished_between(self, start: float, end: float) -> int:
        return self._rows("SELECT COUNT(*) FROM jobs WHERE kind = 'privacy' AND created_at + :c * stretch > :a "
                          "AND created_at + :c * stretch <= :b", a=start, b=end)[0][0]

    def list_floor(self, now: float) -> int:
        """Fewest list calls that can show every open job within the look-back, given Adobe's windows.

        Per regulation, the windows our reconcile lists (`list_windows` from its oldest open job, at most
        30 days each, none before the look-back): ceil(open jobs created in the window / 1000) for each
        window holding one. Final jobs sharing those pages are not counted (the list cannot leave them out).
        """
        from privacy_pipeline.reconcile import list_windows

        created: dict[str, list[datetime]] = {}
        for regulation, at in self._rows("SELECT regulation, created_at FROM jobs WHERE kind = 'privacy' AND "
                                         "created_at + :c * stretch > :now", now=now):
            created.setdefault(regulation, []).append(datetime.fromtimestamp(at, UTC))
        moment = datetime.fromtimestamp(now, UTC)
        return sum(math.ceil(sum(1 for at in times if start <= at.date() <= end) / 1000)
                   for times in created.values() for start, end in list_windows(min(times), moment))

    def open_beyond_lookback(self, now: float) -> int:
        return self._rows("SELECT COUNT(*) FROM jobs WHERE kind = 'privacy' AND created_at + :c * stretch > :now "
                          "AND created_at < :edge", now=now, edge=now - LOOKBACK_DAYS * DAY)[0][0]


class Simulation:
    """Drives the two DAGs and the emulator's clock; one record per DAG run."""

    def __init__(self, stack: Any, inputs: Path) -> None:
        from airflow.dag_processing.dagbag import DagBag

        self.stack = stack
        self.inputs = inputs
        self.oracle = Oracle(stack.airflow_home.parent / "emulator.sqlite")
        self.s3 = S3Calls()
        self.s3.install()
        self.dags = {}
        for dag_id in (NIGHTLY, RECONCILE):
            bag = DagBag(dag_folder=str(REPO / "dags" / f"{dag_id}.py"))
            if bag.import_errors:
                raise RuntimeError(f"{dag_id}: {bag.import_errors}")
            self.dags[dag_id] = bag.get_dag(dag_id)
        self.records: list[dict[str, Any]] = []
        self.last_reconcile_at: float | None = None

    def now(self) -> float:
        import requests

        response = requests.get(f"{self.stack.emulator.base_url}/_emulator/clock", timeout=30)
        response.raise_for_status()
        return float(response.json()["now"])

    def advance(self, seconds: float) -> None:
        self.stack.emulator.advance_clock(seconds)

    def _calls(self) -> dict[str, int]:
        # A 401 is not counted: the process-wide token cache runs on the wall clock while the emulator's
        # clock jumps hours and days, so a run's first call can meet a token the emulator deems expired
        # (renewed and sent again at once); a deployment's clocks agree. Counted apart as `unauthorized`.
        calls = self.stack.emulator.stats()["calls"]
        counts = {name: sum(n for status, n in calls.get(route, {}).items() if str(status) != "401")
                  for name, route in ROUTES.items()}
        counts["unauthorized"] = sum(by_status.get("401", 0) for by_status in calls.values())
        return counts

    def run_dag(self, dag_id: str, day: int, hour: int, conf: dict[str, Any]) -> dict[str, Any]:
        now = self.now()
        moment = datetime.fromtimestamp(now, UTC)
        os.environ["AIRFLOW_VAR_PRIVACY_AS_OF"] = moment.isoformat()
        open_jobs = self.oracle.open_by_regulation(now)
        before, s3_before, s3_reads_before = self._calls(), Counter(self.s3.counts), self.s3.reads()
        shapes_before = Counter(self.s3.read_shapes)
        reads_from, writes_from = len(self.s3.read_keys), len(self.s3.written_keys)
        started = time.perf_counter()
        dag_run = self.dags[dag_id].test(logical_date=moment.replace(microsecond=0), run_conf=conf)
        seconds = time.perf_counter() - started
        if dag_run.state != "success":
            raise RuntimeError(f"{dag_id} on simulated day {day} hour {hour}: {dag_run.state}")
        after = self._calls()
        record: dict[str, Any] = {
            "dag": dag_id, "day": day, "hour": hour, "now": now, "seconds": round(seconds, 1),
            **{name: after[name] - before[name] for name in (*ROUTES, "unauthorized")},
            "s3_reads": self.s3.reads() - s3_reads_before,
            "s3_calls": dict(self.s3.counts - s3_before),
            "s3_read_shapes": dict(sorted((self.s3.read_shapes - shapes_before).items())),
            "s3_read_keys": self.s3.read_keys[reads_from:],
            "s3_written_keys": sorted(set(self.s3.written_keys[writes_from:])),
            "open_jobs": sum(open_jobs.values()),
            "list_bound": sum(math.ceil(count / 1000) for count in open_jobs.values()),
            "list_floor": self.oracle.list_floor(now),
        }
        if dag_id == RECONCILE:
            since = self.last_reconcile_at if self.last_reconcile_at is not None else now - DAY
            record["finished_since_last"] = self.oracle.finished_between(since, now)
            record["open_batches"] = self._reconcile_summary(dag_run).get("open_batches")
            self.last_reconcile_at = now
        self.records.append(record)
        with open(self.inputs.parent / "progress.log", "a", encoding="utf-8") as progress:
            progress.write(json.dumps(record) + "\n")
        return record

    def _reconcile_summary(self, dag_run: Any) -> dict[str, Any]:
        from privacy_pipeline.layout import ArchiveLayout

        from bench.stack import ARCHIVE_BUCKET

        key = ArchiveLayout("privacy").run(dag_run.logical_date.date().isoformat(), dag_run.run_id).reconcile
        self.s3.paused = True
        try:
            body = self.stack.s3_client().get_object(Bucket=ARCHIVE_BUCKET, Key=key)["Body"].read()
        finally:
            self.s3.paused = False
        return json.loads(body)

    def nightly(self, day: int, rows: int) -> dict[str, Any]:
        from privacy_pipeline.sample import generate_requests_csv

        path = self.inputs / f"day-{day:03d}.csv"
        generate_requests_csv(path, rows=rows, bad_fraction=0.0, seed=1000 + day,
                              received_until=datetime.fromtimestamp(self.now(), UTC))
        return self.run_dag(NIGHTLY, day, 2, {"input_uri": str(path), "poll_interval": 5, "wait_timeout": 10})

    def reconcile(self, day: int, hour: int) -> dict[str, Any]:
        return self.run_dag(RECONCILE, day, hour, {})


def simulate(days: int, rows_per_day: int, step_days: int, reconciles_per_day: int, probe_day: int) -> dict[str, Any]:
    """The whole simulation in this (fresh) process; its records and the measured day's totals."""
    from bench.stack import migrate_airflow_db, running_stack

    with running_stack("b9", EMULATOR_SETTINGS) as stack:
        os.environ.update(stack.env)
        migrate_airflow_db(dict(os.environ), stack.airflow_home / "db-migrate.log")
        inputs = stack.airflow_home.parent / "inputs"
        inputs.mkdir()
        sim = Simulation(stack, inputs)
        probes = []
        for day in range(0, days, step_days):  # warm-up: a nightly run of `step_days` days' volume, one reconcile
            sim.nightly(day, rows_per_day * step_days)
            sim.advance(HOUR)
            sim.reconcile(day, 3)
            if day <= probe_day < day + step_days:
                probes.append(sim.reconcile(day, 3))  # nothing changed since the run just before
            sim.advance(step_days * DAY - HOUR - (DAY if day + step_days >= days else 0))
        sim.advance(DAY - HOUR)
        # The warm-up reconciles once a step: catch up its backlog the hour before the measured day starts,
        # so that day's first run does not carry several days of finals (and their detail reads).
        sim.reconcile(days - 1, 23)
        sim.advance(HOUR)
        day_start = sim.now()
        measured = [sim.nightly(days, rows_per_day)]
        for hour in range(reconciles_per_day):
            sim.advance(DAY / reconciles_per_day)
            measured.append(sim.reconcile(days, hour))
        day_end = sim.now()
        probes.append(sim.reconcile(days, reconciles_per_day))
        finished = sim.oracle.finished_between(day_start, day_end)
        beyond = sim.oracle.open_beyond_lookback(day_end)
    return {"records": sim.records, "measured": measured, "probes": probes, "finished_in_day": finished,
            "open_beyond_lookback": beyond, "day_start": day_start, "day_end": day_end}


def unchanged_reads(records: list[dict[str, Any]], probe: dict[str, Any]) -> dict[str, Any]:
    """A probe run's S3 reads, less the reads of objects the run just before it wrote (read again once after
    a change, which is what the ETag cache is for): what the row compares is what did not change."""
    position = records.index(probe) if probe in records else 0
    before = records[position - 1] if position > 0 else {}
    written = set(before.get("s3_written_keys") or ())
    rewritten = sum(1 for key in probe.get("s3_read_keys") or () if key in written)
    return {**probe, "rewritten": rewritten, "unchanged": probe["s3_reads"] - rewritten}


def run(smoke: bool = False) -> BenchmarkRun:
    sizes = SMOKE if smoke else FULL
    jobs_per_day = round(sizes["rows_per_day"] / 1.8 * 1.2)
    bench = BenchmarkRun(
        "B9", "Adobe calls and S3 reads per day in the steady state", "python -m bench --only B9",
        notes=[
            f"SCALED: {sizes['rows_per_day']} rows (about {jobs_per_day} jobs) a day, Adobe's cap of 20,000 jobs "
            f"a day divided by {round(20_000 / jobs_per_day):,}; the call counts are per job, per batch and per "
            "page, so the ratios to the bounds hold at the cap (the list bound is rounded up per regulation, "
            "which is more lenient at this volume).",
            f"{sizes['days']} simulated days of warm-up (a nightly run of {sizes['step_days']} days' volume every "
            f"{sizes['step_days']} days, each followed by a reconcile), then one measured day: the nightly run "
            f"and {sizes['reconciles_per_day']} reconcile runs, one per {24 // sizes['reconciles_per_day']} h "
            "of the emulator clock (moved, never slept on). Jobs: processing after 1-2 days, complete after "
            f"{COMPLETE_AFTER_DAYS}-{2 * COMPLETE_AFTER_DAYS} days, no errors, 4 KiB ZIPs, no latency.",
            "Detail reads per day: `GET /jobs/{id}` over the measured day's runs; bound = jobs that became "
            f"final that day + open jobs created more than {LOOKBACK_DAYS} days before the day's end (the look-"
            "back our reconcile lists: Adobe's 45 days less one for clock skew), from the emulator's job table.",
            "List calls: per reconcile run, against sum over regulations of ceil(open jobs / 1000) at the run's "
            "start. S3 reads: GetObject/HeadObject/ListObjects* counted on botocore in the task process; the "
            "`unchanged` rows are a reconcile run right after another, when no batch changed.",
        ],
    )
    result = run_probe("bench.b9_steady_state:simulate", timeout_seconds=PROBE_TIMEOUT_SECONDS, **sizes)
    measured, probes = result["measured"], result["probes"]
    reconciles = [record for record in measured if record["dag"] == RECONCILE]
    details = sum(record["details"] for record in measured)
    bound = result["finished_in_day"] + result["open_beyond_lookback"]
    by_kind = {dag: sum(r["details"] for r in measured if r["dag"] == dag) for dag in (NIGHTLY, RECONCILE)}
    bench.results.append(
        Result("B9", f"day {sizes['days']}, detail reads per day", f"{details:,}",
               f"{bound:,} ({result['finished_in_day']:,} final that day + {result['open_beyond_lookback']:,} "
               "beyond look-back)", details / bound if details and bound else None, "<= bound", details <= bound,
               notes=f"nightly run {by_kind[NIGHTLY]:,} detail reads (its archive step), the "
                     f"{len(reconciles)} reconcile runs {by_kind[RECONCILE]:,}; open jobs at the day's start "
                     f"{measured[0]['open_jobs']:,}"),
    )
    worst = max(reconciles, key=lambda record: record["lists"] - record["list_bound"])
    over = sum(1 for record in reconciles if record["lists"] > record["list_bound"])
    bench.results.append(
        Result("B9", f"day {sizes['days']}, list calls per reconcile run", f"{worst['lists']} (worst run)",
               f"{worst['list_bound']} (sum of ceil(open/1000))", worst["lists"] / max(worst["list_bound"], 1),
               "<= bound", over == 0,
               notes=f"{over} of {len(reconciles)} runs over their bound; list calls per run "
                     f"{sorted({r['lists'] for r in reconciles})}; open jobs {worst['open_jobs']:,}; the windows' "
                     f"floor (open jobs per list window Adobe allows, ceil(n/1000) each; see 'Where the calls come from') "
                     f"{worst.get('list_floor')} in that run; 401 answers "
                     f"(an expired token met after a clock jump, renewed and sent again; not counted above) "
                     f"{sum(r.get('unauthorized', 0) for r in measured)}"),
    )
    early, late = (unchanged_reads(result["records"], probe) for probe in (probes[0], probes[-1]))
    bench.results.append(
        Result("B9", "S3 reads per reconcile run, nothing changed",
               f"{late['unchanged']:,} at {late['open_batches']:,} open batches (day {late['day']})",
               f"{early['unchanged']:,} at {early['open_batches']:,} open batches (day {early['day']})",
               late["unchanged"] / max(early["unchanged"], 1), "no growth with unchanged batches",
               late["unchanged"] <= early["unchanged"],
               notes=f"measured day's reconcile runs: S3 reads {[r['s3_reads'] for r in reconciles]}, jobs that "
                     f"became final since the run before {[r['finished_since_last'] for r in reconciles]}; "
                     f"unchanged runs' S3 calls {early['s3_calls']} then {late['s3_calls']}; all their reads "
                     f"{early['s3_reads']} then {late['s3_reads']}, of which objects the run just before wrote "
                     f"(read again once, their ETag changed) {early['rewritten']} then {late['rewritten']}; their "
                     f"reads by key shape {early.get('s3_read_shapes')} then {late.get('s3_read_shapes')}"),
    )
    if not all(row.met for row in bench.results):
        bench.notes.append(WHERE_NOTE)
    seconds = [r["seconds"] for r in reconciles]
    bench.notes.append(f"Reconcile run wall time on the measured day (dag.test in-process): {min(seconds):.0f}-"
                       f"{max(seconds):.0f} s; every run: bench/results/b9/records.json.")
    work_dir("b9").joinpath("records.json").write_text(json.dumps(result, indent=1))
    return bench

