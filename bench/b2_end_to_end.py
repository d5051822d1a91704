"""B2 end to end at Adobe's daily cap: the nightly DAG against a naive sequential client, 50 ms per call.

Both sides run against their own fresh emulator with the same settings: 50 ms latency on every route,
jobs complete within seconds, 64 KiB content ZIPs. Ours is `airflow dags test privacy_requests_nightly`
(a subprocess, as scripts/demo.py runs it; the DB migration is done before the clock starts) on a day
at the cap (about 16,000 subjects, 20,000 jobs, half of them access jobs). The naive client
(bench.naive_client) is sequential: at that size it would run for about half an hour, so it runs on a
sample of the same generator and its time is extrapolated per call (each kind of call at the sample's
mean time). Calls are counted by the emulator.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bench.inputs import requests_csv
from bench.measure import work_dir
from bench.naive_client import NaiveRun, extrapolate, run_naive, workload
from bench.report import BenchmarkRun, Result
from bench.stack import (
    ARCHIVE_BUCKET,
    dags_test,
    route_calls,
    run_id,
    run_report,
    running_stack,
    servers_cpu_seconds,
    task_memory,
    task_seconds,
    task_test,
    task_tries,
)

DAG_ID = "privacy_requests_nightly"
TARGET_WALL_RATIO = 10.0
TARGET_STATUS_RATIO = 100.0
TARGET_WORKER_SECONDS = 600.0
TARGET_TASK_RSS_MB = 1024.0
LATENCY_MS = 50
#: About 16,000 subjects after rejects and 19,000-odd jobs (~2 rows a subject): a day at Adobe's 20,000-job cap.
FULL_ROWS = 33_000
SAMPLE_ROWS = 1_100
SMOKE_ROWS = 72
#: The wait runs in the triggerer (deferred): it holds no worker slot, so it is not worker time.
TRIGGERER_TASKS = ("wait_for_jobs",)
#: The DAG's default products, so that both sides create the same jobs.
DEFAULT_PRODUCTS = ("aepDataLake", "profileService", "identity")
EMULATOR_SETTINGS = {
    "processing_after_seconds": 1,
    "complete_after_seconds": 3,
    "content_bytes": 65_536,
    "faults": [{"route": "*", "kind": "latency", "latency_ms": LATENCY_MS}],
}
#: Where the time went when the wall and worker-time targets were last missed; shown with a missed target.
#: A profile is a measurement of one commit: re-profile (same command) after changing the archive step.
PROFILE_NOTE = (
    "Where the time goes (2026-11-30, main at a90128a, this command on a quiet machine): of the 328 s wall, "
    "archive_results 179 s, write_report 123 s, the rest Airflow's task start-up and the small tasks. The "
    "processes on the 2 cores used 226 CPU s (ours, every task) + 56 (emulator) + 209 (moto) = 491 of the 656 "
    "the wall allows: on this machine the run is CPU-bound, and moto's share, the server side of every S3 put "
    "(two per evidence pack, 16,153 packs here, besides the archive's ZIPs and ledger records), is not ours: "
    "real S3 does it elsewhere. The naive client waits on one 50 ms call at a time and needs almost no CPU, so "
    "the ratio on a machine with cores to spare, or against real S3, is not measured here. Ours: the archive's "
    "one detail read, one download, one upload and three ledger round trips per access job (the intent put is "
    "the documented archive guarantee: kept), and the report's two puts per closed request (the evidence "
    "contract). Profiles of the same day (py-spy 0.4.1 `record`/`dump` on the `dags test` process): the "
    "archive threads' samples `hook.get_job` 29%, `ledger.put_job_record` 23%, download 16%, upload 11.5%, "
    "`ledger.job_record` 9%; the report's packs were written one after another (616 s) until one index query "
    "per 5,000 keys and 16 writers (149 s, then 123 s). Also not ours: `dags test` runs the mapped archive "
    "chunks one after another (an executor runs them side by side; the worker time is the same)."
)
#: The tasks that add the most memory (take_in_requests +311 MB, write_report +522 MB in the run of 2026-11-30):
#: each is run again alone in a fresh process after the DAG run, which is what a worker's process holds.
ALONE_TASKS = ("take_in_requests", "write_report")
LIST_ROUTE = "GET /data/core/privacy/jobs"
DETAIL_ROUTE = "GET /data/core/privacy/jobs/{jobId}"
POST_ROUTE = "POST /data/core/privacy/jobs"
CONTENT_ROUTE = "GET /data/core/privacy/jobs/{jobId}/content"


def run_ours(rows: int) -> dict:
    input_path = requests_csv(rows)
    with running_stack("b2-ours", EMULATOR_SETTINGS) as stack:
        logical_date = datetime.now(UTC).date().isoformat()
        test = dags_test(stack, DAG_ID, logical_date, {"input_uri": str(input_path), "poll_interval": 5},
                         name="dags-test")
        if test.returncode != 0:
            raise RuntimeError(f"the DAG run failed (exit {test.returncode}); see {test.log}")
        stats = stack.emulator.stats()
        servers_cpu = servers_cpu_seconds(stack)
        report = run_report(stack, logical_date)
        tasks = task_seconds(stack.airflow_home, DAG_ID)
        memory = task_memory(stack.airflow_home, DAG_ID, test.rss_samples)
        alone = {task: task_test(stack, DAG_ID, task, run_id(stack.airflow_home, DAG_ID), name=f"alone-{task}")
                 for task in ALONE_TASKS}
        retries = task_tries(stack.airflow_home, DAG_ID)
    worker = sum(seconds for task, seconds in tasks.items() if task not in TRIGGERER_TASKS)
    return {
        "seconds": test.seconds, "maxrss_mb": test.maxrss_mb, "cpu_seconds": test.cpu_seconds, "posts": route_calls(stats, POST_ROUTE),
        "lists": route_calls(stats, LIST_ROUTE), "details": route_calls(stats, DETAIL_ROUTE),
        "downloads": route_calls(stats, CONTENT_ROUTE), "jobs_total": stats["jobs_total"],
        "duplicates": stats["duplicate_user_actions"], "report": report, "task_seconds": tasks,
        "retries": retries, "worker_seconds": worker, "servers_cpu": servers_cpu,
        "task_memory_mb": memory,
        "alone": {task: {"maxrss_mb": run.maxrss_mb, "seconds": run.seconds, "returncode": run.returncode}
                  for task, run in alone.items()},
    }


def task_peaks(memory: dict[str, tuple[float, float]], alone: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Each task's peak: measured alone where it was run alone, else the shared process's largest while it ran.

    The shared figure bounds the task's own: at its peak the task's memory is resident, and whatever earlier
    tasks left in the process only adds to it.
    """
    peaks = {task: peak for task, (_start, peak) in memory.items()}
    peaks.update({task: run["maxrss_mb"] for task, run in alone.items() if run["returncode"] == 0})
    return peaks or {"dags test": 0.0}


def memory_note(memory: dict[str, tuple[float, float]], alone: dict[str, dict[str, Any]]) -> str:
    """Which task the process's peak belongs to (every task runs in the one `dags test` process), and the
    peak of the heaviest tasks each alone in a process of its own."""
    if not memory:
        return "no resident-set samples (the run ended before the first)"
    tasks = ", ".join(f"{task} {start:.0f} -> {peak:.0f} MB (+{max(peak - start, 0):.0f})"
                      for task, (start, peak) in memory.items())
    own = ", ".join(f"{task} {run['maxrss_mb']:.0f} MB" if run["returncode"] == 0
                    else f"{task} failed alone (exit {run['returncode']}; log alone-{task}.log)"
                    for task, run in alone.items())
    return ("resident set of the `dags test` process, sampled every 0.2 s, at each task's start -> its largest "
            "while the task ran (+ what the task added; the rest is what earlier tasks left allocated in the same "
            f"process, which a worker's own process per task would not carry): {tasks}. Run again alone after "
            f"the DAG run (`airflow tasks test`, a fresh process on the run's state, wait4's peak): {own}")


def run_reference(sample_rows: int, full_rows: int) -> dict:
    """The naive client on the sample, and its time extrapolated per call to the full input."""
    with running_stack("b2-naive", EMULATOR_SETTINGS) as stack:
        naive: NaiveRun = run_naive(stack.emulator, requests_csv(sample_rows), DEFAULT_PRODUCTS,
                                    s3_client=stack.s3_client(), bucket=ARCHIVE_BUCKET)
        stats = stack.emulator.stats()
    sample_load, _ = workload(requests_csv(sample_rows), DEFAULT_PRODUCTS)
    full_load, intake_seconds = workload(requests_csv(full_rows), DEFAULT_PRODUCTS)
    return {
        "sample_seconds": naive.seconds, "sample_model_seconds": extrapolate(naive, sample_load, naive.intake_seconds),
        "seconds": extrapolate(naive, full_load, intake_seconds), "per_call": naive.per_call(),
        "sample": {"subjects": naive.subjects, "jobs": naive.jobs, "posts": route_calls(stats, POST_ROUTE),
                   "gets": route_calls(stats, DETAIL_ROUTE), "downloads": route_calls(stats, CONTENT_ROUTE),
                   "passes": naive.passes, "statuses": naive.statuses},
        "full": full_load.__dict__, "full_intake_seconds": intake_seconds,
    }


def run(smoke: bool = False) -> BenchmarkRun:
    full_rows, sample_rows = (SMOKE_ROWS, SMOKE_ROWS) if smoke else (FULL_ROWS, SAMPLE_ROWS)
    bench = BenchmarkRun(
        "B2", "end to end at Adobe's daily cap, 50 ms per call", "python -m bench --only B2",
        notes=[
            f"Emulator: {LATENCY_MS} ms added to every call, jobs processing after 1 s and complete after 3 s "
            "(+ up to 20% seeded jitter), 64 KiB ZIPs. Each side gets its own fresh emulator and moto S3.",
            "Ours: `airflow dags test` wall time, poll_interval 5 s (the param's minimum), triggers inline; "
            "the Airflow DB migration is not timed. It also stages batches, keeps the ledger, inspects "
            "and uploads every ZIP to S3 (moto). Worker time = the sum of the task instances' durations "
            "(every try, mapped instances summed) without the deferred wait, which runs in the triggerer; "
            "peak RSS of a task: the heaviest tasks are run again, each alone in a fresh process "
            "(`airflow tasks test` on the run's state, wait4's ru_maxrss); every other task's is bounded by "
            "the `dags test` process's largest resident set while it ran (sampled every 0.2 s).",
            f"Naive (bench.naive_client): sequential POST per 1000 subjects, GET per job until final, "
            f"download + S3 upload per access job. EXTRAPOLATED: it runs on a {sample_rows:,}-row sample of "
            "the same generator; the full-size figure is the full input's POSTs, jobs (one GET each, a lower "
            "bound) and access jobs, each at the sample's mean seconds per call, plus its intake, timed on "
            "the full file.",
        ],
    )
    reference = run_reference(sample_rows, full_rows)
    ours = run_ours(full_rows)
    full = reference["full"]
    size = f"{full['subjects']:,} subjects, {ours['jobs_total']:,} jobs"
    per_call = ", ".join(f"{kind} {seconds * 1000:.0f} ms" for kind, seconds in reference["per_call"].items())
    sample = reference["sample"]
    wall_ratio = reference["seconds"] / ours["seconds"]
    bench.results.append(
        Result("B2", f"{size}, wall", f"{ours['seconds']:.0f} s",
               f"{reference['seconds']:.0f} s (naive, extrapolated)", wall_ratio, f">= {TARGET_WALL_RATIO:g}x less",
               wall_ratio >= TARGET_WALL_RATIO,
               notes=f"ours {ours['posts']} POSTs, {ours['lists']} list calls, {ours['details']} detail GETs, "
                     f"{ours['downloads']} downloads, {ours['duplicates']} duplicate user actions; report "
                     f"jobs_by_status {json.dumps(ours['report'].get('jobs_by_status', {}), sort_keys=True)}. "
                     f"Naive sample: {sample['subjects']:,} subjects, {sample['jobs']:,} jobs, {sample['posts']} "
                     f"POSTs, {sample['gets']:,} GETs in {sample['passes']} passes, {sample['downloads']:,} "
                     f"downloads in {reference['sample_seconds']:.0f} s (per-call model on the sample: "
                     f"{reference['sample_model_seconds']:.0f} s); per call {per_call}; full input "
                     f"{full['posts']} POSTs, {full['jobs']:,} jobs, {full['access_jobs']:,} access jobs."),
    )
    tasks = ", ".join(f"{task} {sec:g} s" for task, sec in ours["task_seconds"].items())
    bench.results.append(
        Result("B2", f"{size}, worker time", f"{ours['worker_seconds']:.0f} s", f"{TARGET_WORKER_SECONDS:.0f} s budget",
               ours["worker_seconds"] / TARGET_WORKER_SECONDS, f"<= {TARGET_WORKER_SECONDS / 60:.0f} min",
               ours["worker_seconds"] <= TARGET_WORKER_SECONDS,
               notes=f"per task (tries summed): {tasks}; Airflow retries {ours['retries'] or 'none'}; CPU "
                     f"seconds of the whole `airflow dags test` process (every task, the inline trigger, "
                     f"Airflow's own loop): {ours['cpu_seconds']:.0f} s, the work whatever the machine's load; "
                     f"the servers on the same cores: {ours['servers_cpu']}"),
    )
    peak_task, peak_mb = max(task_peaks(ours["task_memory_mb"], ours["alone"]).items(), key=lambda item: item[1])
    bench.results.append(
        Result("B2", f"{size}, peak RSS of a task", f"{peak_mb:.0f} MB ({peak_task})", f"{TARGET_TASK_RSS_MB:.0f} MB budget",
               peak_mb / TARGET_TASK_RSS_MB, "<= 1 GB", peak_mb <= TARGET_TASK_RSS_MB,
               notes=memory_note(ours["task_memory_mb"], ours["alone"]) + f"; the whole `dags test` process: "
                     f"{ours['maxrss_mb']:.0f} MB")
    )
    status_ratio = full["jobs"] / max(ours["lists"], 1)
    bench.results.append(
        Result("B2", f"{size}, status calls", str(ours["lists"]), f"{full['jobs']:,} (naive, >= 1 GET per job)",
               status_ratio, f">= {TARGET_STATUS_RATIO:g}x fewer", status_ratio >= TARGET_STATUS_RATIO)
    )
    if not all(row.met for row in bench.results[:2]):
        bench.notes.append(PROFILE_NOTE)
    reads = ours["lists"] + ours["details"]
    bench.results.append(
        Result("B2", f"{size}, all job reads", f"{reads:,}", f"{full['jobs']:,} (naive, >= 1 GET per job)",
               full["jobs"] / reads, "report", None,
               notes="ours = list calls + GET /jobs/{id} detail reads (the archive step reads each job's detail)")
    )
    work_dir("b2").joinpath("raw.json").write_text(json.dumps({"ours": ours, "naive": reference}, indent=1, default=str))
    return bench
