"""B8 faults cost little time: a nightly run with 10% 503s and 5% dropped POSTs against a clean one.

The oracle is the emulator: every `userKey|action` the input asks for must exist exactly once
(`/_emulator/stats` jobs_per_user_action), none missing, none duplicated. The notes of BENCHMARKS.md are
the bullets below:

- Two `airflow dags test privacy_requests_nightly` runs of the same {rows}-row input, each on a fresh
  emulator (50 ms per call, jobs complete after 3 s) and moto S3, with the DAG's own retry settings (3
  retries, a task retry waits 2 minutes, doubling): clean, then with the emulator's own faults, in this
  order: {faults}. The drop is Adobe's gateway case: the jobs are created, the response is lost.
- Duplicates / missing: of the `userKey|action` pairs the input asks for (our intake and batching of the
  file), how many the emulator holds more than once / not at all (`/_emulator/stats`).
- A faulty run is stopped after {factor}x the clean run's time (then reported as such).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import requests

from bench.inputs import requests_csv
from bench.measure import work_dir
from bench.naive_client import expected_user_actions
from bench.report import BenchmarkRun, Result, docstring_notes
from bench.stack import dags_test, route_calls, run_report, running_stack, task_seconds, task_tries

DAG_ID = "privacy_requests_nightly"
TARGET_WALL_RATIO = 2.0
LATENCY_MS = 50
#: About 2,000 subjects and 2,100 jobs in 30-odd POSTs: the "one-minute run" of the issue.
FULL_ROWS = 3_600
SMOKE_ROWS = 72
DEFAULT_PRODUCTS = ("aepDataLake", "profileService", "identity")
POST_ROUTE = "POST /data/core/privacy/jobs"
BASE_SETTINGS: dict[str, Any] = {
    "processing_after_seconds": 1,
    "complete_after_seconds": 3,
    "content_bytes": 16_384,
    "faults": [{"route": "*", "kind": "latency", "latency_ms": LATENCY_MS}],
}
#: The drop comes first: the emulator checks faults in order, so its seeded draws count POSTs only.
FAULTS = (
    {"route": POST_ROUTE, "kind": "drop_after_commit", "rate": 0.05},
    {"route": "*", "kind": "5xx", "status": 503, "rate": 0.10},
)
#: A faulty run still going after this many clean runs' time is stopped and reported as such.
FAULTY_TIMEOUT_FACTOR = 6


def nightly_run(name: str, rows: int, faults: tuple[dict[str, Any], ...], timeout: float | None) -> dict[str, Any]:
    """One nightly run on a fresh stack; what it cost and what Adobe holds afterwards."""
    input_path = requests_csv(rows)
    with running_stack(f"b8-{name}", BASE_SETTINGS) as stack:
        for fault in faults:
            stack.emulator.add_fault(**fault)
        logical_date = datetime.now(UTC).date().isoformat()
        test = dags_test(stack, DAG_ID, logical_date, {"input_uri": str(input_path), "poll_interval": 5},
                         name=f"dags-test-{name}", timeout=timeout)
        listed = requests.get(f"{stack.emulator.base_url}/_emulator/faults", timeout=30)
        listed.raise_for_status()
        fired = {fault["kind"]: fault["fired"] for fault in listed.json()}
        stack.emulator.clear_faults()
        stats = stack.emulator.stats()
        try:
            report = run_report(stack, logical_date)
        except RuntimeError:
            report = {}
        tasks = task_seconds(stack.airflow_home, DAG_ID)
        retries = task_tries(stack.airflow_home, DAG_ID)
    expected = expected_user_actions(input_path, DEFAULT_PRODUCTS)
    per_pair = stats["jobs_per_user_action"]
    return {
        "seconds": test.seconds, "cpu_seconds": test.cpu_seconds, "returncode": test.returncode, "timed_out": timeout is not None and test.returncode < 0,
        "log": str(test.log), "expected_jobs": len(expected),
        "duplicates": sum(1 for pair in expected if per_pair.get(pair, 0) > 1),
        "missing": sum(1 for pair in expected if pair not in per_pair),
        "unexpected": sum(1 for pair in per_pair if pair not in expected),
        "jobs_total": stats["jobs_total"], "post_statuses": stats["calls"].get(POST_ROUTE, {}),
        "posts": route_calls(stats, POST_ROUTE), "fired": fired, "tasks": tasks, "retries": retries,
        "jobs_by_status": report.get("jobs_by_status", {}),
    }


def run(smoke: bool = False) -> BenchmarkRun:
    rows = SMOKE_ROWS if smoke else FULL_ROWS
    bench = BenchmarkRun(
        "B8", "faults cost little time", "python -m bench --only B8",
        notes=docstring_notes(__doc__, rows=f"{rows:,}", factor=FAULTY_TIMEOUT_FACTOR, faults="; ".join(
            f"{f['kind']} {f['rate']:.0%} on {f['route']}" for f in FAULTS)),
    )
    clean = nightly_run("clean", rows, (), None)
    if clean["returncode"] != 0:
        raise RuntimeError(f"the clean run failed (exit {clean['returncode']}); see {clean['log']}")
    faulty = nightly_run("faulty", rows, FAULTS, max(FAULTY_TIMEOUT_FACTOR * clean["seconds"], 60.0 if smoke else 600.0))
    size = f"{clean['expected_jobs']:,} jobs"
    ratio = faulty["seconds"] / clean["seconds"]
    ended = "" if faulty["returncode"] == 0 else (" (stopped)" if faulty["timed_out"] else f" (failed, exit {faulty['returncode']})")
    tasks = ", ".join(f"{task} {sec:g} s" for task, sec in faulty["tasks"].items())
    bench.results.append(
        Result("B8", f"{size}, 10% 503 + 5% dropped POSTs, wall", f"{faulty['seconds']:.0f} s{ended}",
               f"{clean['seconds']:.0f} s (clean run)", ratio, f"<= {TARGET_WALL_RATIO:g}x",
               faulty["returncode"] == 0 and ratio <= TARGET_WALL_RATIO,
               notes=f"CPU seconds of the run's process: faulty {faulty['cpu_seconds']:.0f} s, clean "
                     f"{clean['cpu_seconds']:.0f} s; faults fired {faulty['fired']}; POST statuses {json.dumps(faulty['post_statuses'], sort_keys=True)} "
                     f"({faulty['posts']} POSTs vs {clean['posts']} clean); Airflow retries "
                     f"{faulty['retries'] or 'none'}; faulty run per task (tries summed): {tasks}; "
                     f"jobs_by_status faulty {json.dumps(faulty['jobs_by_status'], sort_keys=True)}, clean "
                     f"{json.dumps(clean['jobs_by_status'], sort_keys=True)}"),
    )
    wrong = faulty["duplicates"] + faulty["missing"] + faulty["unexpected"]
    # A run that did not finish may not have posted everything yet: its missing jobs prove nothing.
    met = False if faulty["duplicates"] or faulty["unexpected"] else (wrong == 0 if faulty["returncode"] == 0 else None)
    bench.results.append(
        Result("B8", f"{size}, duplicate / missing jobs under faults",
               f"{faulty['duplicates']} / {faulty['missing']}", "0 / 0", None, "0 and 0", met,
               notes=f"{faulty['unexpected']} jobs for pairs the input does not ask for; clean run "
                     f"{clean['duplicates']} / {clean['missing']}"
                     + ("" if faulty["returncode"] == 0 else "; the faulty run did not finish, missing not judged")),
    )
    work_dir("b8").joinpath("raw.json").write_text(json.dumps({"clean": clean, "faulty": faulty}, indent=1))
    return bench
