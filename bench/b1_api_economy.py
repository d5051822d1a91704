"""B1 API economy: POST /jobs calls, and list calls per poll cycle, against the theoretical minimum.

Jobs stay open (the emulator completes them after an hour), so every job counts as open. Calls are
counted by the emulator (`/_emulator/stats`), never by the client. The notes of BENCHMARKS.md are the
bullets below:

- POSTs: the DAG's code path without Airflow around it, `read_requests` -> `plan_batches` (1000 subjects,
  one job shape per request) -> `batch_payload` -> `PrivacyServiceHook.create_jobs`, one POST per batch;
  minimum = sum over job shapes of ceil(subjects/1000).
- List calls per poll cycle, every job open: the trigger's code (`PrivacyServiceAsyncHook.summarize_jobs`);
  minimum = sum over regulations of ceil(open jobs/1000). Naive = one GET per open job.
- The poll follows the DAG's wiring, read from the parsed DAG: one summarize over every job when the wait
  is one task for the run, one per submit chunk (`chunk_evenly(batch keys, max_chunks)`) when the wait
  task is mapped over the chunks. A wait mapped per submit chunk lists each regulation from the first page
  until it has seen its own jobs, so a cycle re-reads pages once per chunk (measured before 25e930a at
  100k subjects: 1,780 list calls per cycle against a minimum of 125); one run-level wait reads each page
  once.
"""

from __future__ import annotations

import asyncio
import math
from collections import Counter, defaultdict
from datetime import UTC, datetime

from bench.inputs import requests_csv
from bench.measure import run_probe
from bench.report import REPO, BenchmarkRun, Result, docstring_notes
from bench.stack import UNCAPPED, running_stack

PAGE_SIZE = 1000
SUBJECTS_PER_REQUEST = 1000
DAG_ID = "privacy_requests_nightly"
ROWS_PER_SUBJECT = 2.2  # the sample has about 1.8 rows a subject and ~2% bad rows; cut to size
POST_ROUTE = "POST /data/core/privacy/jobs"
LIST_ROUTE = "GET /data/core/privacy/jobs"


def _calls(emulator_url: str, route: str) -> int:
    import httpx

    stats = httpx.get(f"{emulator_url}/_emulator/stats", timeout=60).json()
    return sum(stats["calls"].get(route, {}).values())


def submit_and_poll(path: str, subjects: int, emulator_url: str) -> dict:
    """Probe: submit `subjects` subjects from `path`, then poll once in both ways; count the calls."""
    from adobe_privacy.hooks import PrivacyServiceAsyncHook, PrivacyServiceHook
    from privacy_pipeline.batching import batch_payload, chunk_evenly, plan_batches
    from privacy_pipeline.intake import InputSource, IntakeOptions, read_requests

    intake = read_requests(
        [InputSource(name=path, open=lambda: open(path, "rb"))], IntakeOptions(default_include=("aepDataLake",))
    )
    chosen = intake.subjects[:subjects]
    if len(chosen) < subjects:
        raise RuntimeError(f"{path} holds only {len(chosen)} valid subjects")
    hook = PrivacyServiceHook()
    posts_before = _calls(emulator_url, POST_ROUTE)
    jobs_of_batch: dict[str, tuple[str, list[str]]] = {}
    for batch in plan_batches(chosen, max_subjects=SUBJECTS_PER_REQUEST):
        created = hook.create_jobs(batch_payload(batch, hook.org_id))
        jobs_of_batch[batch.batch_id] = (batch.shape.regulation, [job.job_id for job in created])
    posts = _calls(emulator_url, POST_ROUTE) - posts_before

    today = datetime.now(UTC).date()
    async_hook = PrivacyServiceAsyncHook()

    def poll(groups: list[list[str]]) -> tuple[int, int]:
        """One poll cycle: a summarize per group of batches; (list calls, open jobs seen)."""
        before = _calls(emulator_url, LIST_ROUTE)
        open_jobs = 0
        for group in groups:
            wanted: dict[str, list[str]] = defaultdict(list)
            for batch_id in group:
                regulation, job_ids = jobs_of_batch[batch_id]
                wanted[regulation].extend(job_ids)
            summary = asyncio.run(async_hook.summarize_jobs(wanted, from_date=today, to_date=today))
            open_jobs += summary["open"]
        return _calls(emulator_url, LIST_ROUTE) - before, open_jobs

    batch_ids = list(jobs_of_batch)
    mapped_wait, max_chunks = _dag_wiring()
    groups = chunk_evenly(batch_ids, max_chunks) if mapped_wait else [batch_ids]
    lists, open_jobs = poll(groups)
    jobs_per_regulation = Counter()
    for regulation, job_ids in jobs_of_batch.values():
        jobs_per_regulation[regulation] += len(job_ids)
    shapes = Counter(
        (s.regulation, s.include, s.priority, s.expand_ids, s.merge_policy_id) for s in chosen
    )
    return {
        "subjects": len(chosen),
        "jobs": sum(jobs_per_regulation.values()),
        "posts": posts,
        "min_posts": sum(math.ceil(n / SUBJECTS_PER_REQUEST) for n in shapes.values()),
        "shapes": len(shapes),
        "lists": lists,
        "open": open_jobs,
        "wiring": f"one wait per submit chunk ({len(groups)} chunks)" if mapped_wait else "one wait for the run",
        "min_lists": sum(math.ceil(n / PAGE_SIZE) for n in jobs_per_regulation.values()),
        "regulations": len(jobs_per_regulation),
    }


def _dag_wiring() -> tuple[bool, int]:
    """(is the nightly DAG's wait task mapped over submit chunks?, the intake's max_chunks default)."""
    import inspect

    from adobe_privacy.operators import PrivacyIntakeOperator
    from adobe_privacy.sensors import PrivacyJobsSensor
    from airflow.dag_processing.dagbag import DagBag
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    dag = DagBag(dag_folder=str(REPO / "dags" / f"{DAG_ID}.py")).dags[DAG_ID]
    waits = [
        task for task in dag.tasks
        if issubclass(task.operator_class if isinstance(task, MappedOperator) else type(task), PrivacyJobsSensor)
    ]
    if not waits:
        raise RuntimeError(f"{DAG_ID} has no PrivacyJobsSensor task")
    max_chunks = inspect.signature(PrivacyIntakeOperator.__init__).parameters["max_chunks"].default
    return any(isinstance(task, MappedOperator) for task in waits), max_chunks


def run(smoke: bool = False) -> BenchmarkRun:
    sizes = [300] if smoke else [10_000, 100_000]
    bench = BenchmarkRun(
        "B1", "API economy", "python -m bench --only B1",
        notes=docstring_notes(__doc__),
    )
    settings = {"processing_after_seconds": 3600, "complete_after_seconds": 3600, "daily_job_cap": UNCAPPED}
    for subjects in sizes:
        path = requests_csv(int(subjects * ROWS_PER_SUBJECT))
        with running_stack("b1", settings) as stack:
            counts = run_probe(
                "bench.b1_api_economy:submit_and_poll", env=stack.env,
                path=str(path), subjects=subjects, emulator_url=stack.emulator.base_url,
            )
        if counts["open"] != counts["jobs"]:
            raise RuntimeError(f"the poll saw {counts['open']} open jobs of {counts['jobs']}")
        size = f"{subjects:,} subjects"
        bench.results.append(
            Result("B1", f"{size}, POST /jobs", str(counts["posts"]), f"{counts['min_posts']} (minimum)",
                   counts["posts"] / counts["min_posts"], "= minimum (1.00)",
                   counts["posts"] == counts["min_posts"],
                   notes=f"{counts['jobs']:,} jobs, {counts['shapes']} job shapes, "
                         f"{counts['regulations']} regulations; wait wiring: {counts['wiring']}")
        )
        bench.results.append(
            Result("B1", f"{size}, list calls per poll", str(counts["lists"]),
                   f"{counts['min_lists']} (minimum); naive {counts['jobs']:,} GETs",
                   counts["lists"] / counts["min_lists"], "= minimum (1.00)", counts["lists"] == counts["min_lists"])
        )
    return bench
