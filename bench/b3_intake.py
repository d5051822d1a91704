"""B3 intake throughput: our CSV -> validated, batched, serialised batches, against `pandas.read_csv`.

Both sides run in their own fresh interpreter, imports done before the clock starts, so each peak RSS
is that side's alone. Ours is what the intake task does on the CPU: `read_requests` (hash, parse,
validate, group into subjects, rejects, and the physical-line accounting), `plan_batches`, and
`dump_batch` of every batch. The run fails if a row or a line is unaccounted for.
"""

from __future__ import annotations

import statistics
import time

from bench.inputs import requests_csv
from bench.measure import run_probe, stopwatch
from bench.report import BenchmarkRun, Result

TARGET_RATIO = 3.0
TARGET_RSS_RATIO = 2.0
TARGET_1M_SECONDS = 15.0
DEFAULT_INCLUDE = ("aepDataLake", "profileService", "identity")


def intake_ours(path: str) -> dict:
    from privacy_pipeline.batching import dump_batch, plan_batches
    from privacy_pipeline.intake import InputSource, IntakeOptions, read_requests

    source = InputSource(name=path, open=lambda: open(path, "rb"))
    cpu_started = time.process_time()
    with stopwatch() as clock:
        with stopwatch() as reading:
            result = read_requests([source], IntakeOptions(default_include=DEFAULT_INCLUDE))
        with stopwatch() as planning:
            batches = plan_batches(result.subjects)
        with stopwatch() as dumping:
            staged_bytes = sum(len(dump_batch(batch)) for batch in batches)
    cpu_seconds = time.process_time() - cpu_started
    if result.accounting_gap() != 0:
        raise RuntimeError("intake lost rows")
    lines = result.line_counts()
    if lines["lines_read"] != lines["lines_header"] + lines["lines_blank"] + lines["lines_in_records"]:
        raise RuntimeError(f"intake lost lines: {lines}")
    return {
        "seconds": clock["seconds"], "cpu_seconds": cpu_seconds, "rows": result.rows_read,
        "subjects": len(result.subjects), "rejects": len(result.rejects), "batches": len(batches),
        "lines_read": lines["lines_read"],
        "staged_bytes": staged_bytes, "phases": {
            "read_requests": reading["seconds"], "plan_batches": planning["seconds"], "dump_batch": dumping["seconds"],
        },
    }


def intake_raw(path: str) -> dict:
    import pandas as pd

    cpu_started = time.process_time()
    with stopwatch() as clock:
        frame = pd.read_csv(path)
    return {"seconds": clock["seconds"], "cpu_seconds": time.process_time() - cpu_started, "rows": len(frame)}


def _measure_pair(path: str, repeats: int) -> tuple[dict, dict]:
    """Reference and ours in turns; the sample with the median wall time of each side."""
    raws, ours = [], []
    for _ in range(repeats):
        raws.append(run_probe("bench.b3_intake:intake_raw", path=path))
        ours.append(run_probe("bench.b3_intake:intake_ours", path=path))
    return _median_sample(raws), _median_sample(ours)


def _median_sample(samples: list[dict]) -> dict:
    middle = statistics.median_low(sample["seconds"] for sample in samples)
    return next(sample for sample in samples if sample["seconds"] == middle)


def run(smoke: bool = False) -> BenchmarkRun:
    sizes = [2_000] if smoke else [100_000, 1_000_000]
    bench = BenchmarkRun(
        "B3", "intake throughput and memory", "python -m bench --only B3",
        notes=[
            "Input: `privacy_pipeline.sample.generate_requests_csv` (seeded; ~1.8 identity rows per subject, "
            "~2% broken rows of 12 kinds).",
            "Ours: `read_requests` (physical-line accounting included; the CSV is parsed in blocks on every "
            "core) + `plan_batches` + `dump_batch` of every batch; reference: `pandas.read_csv(path)` "
            "with defaults. Each in a fresh interpreter; time excludes imports; RSS is the process peak "
            "(the interpreter and its imports included). 100k: median of 3 interleaved pairs; 1M: one pair.",
            "CPU seconds are in the notes: on a shared 2-core machine they show the work done when the "
            "wall clock mostly shows the neighbours.",
        ],
    )
    for rows in sizes:
        path = str(requests_csv(rows))
        raw, ours = _measure_pair(path, repeats=1 if smoke or rows >= 1_000_000 else 3)
        ratio = ours["seconds"] / raw["seconds"]
        size = f"{rows:,} rows"
        phases = ", ".join(f"{name} {seconds:.2f} s" for name, seconds in ours["phases"].items())
        bench.results.append(
            Result(
                "B3", size, f"{ours['seconds']:.2f} s", f"{raw['seconds']:.2f} s (read_csv)", ratio,
                f"<= {TARGET_RATIO:g}x", ratio <= TARGET_RATIO,
                notes=f"{ours['subjects']:,} subjects, {ours['rejects']:,} rejects, {ours['batches']} batches; "
                      f"{phases}; CPU {ours['cpu_seconds']:.2f} s vs {raw['cpu_seconds']:.2f} s "
                      f"({ours['cpu_seconds'] / raw['cpu_seconds']:.1f}x)",
            )
        )
        rss_ratio = ours["maxrss_mb"] / raw["maxrss_mb"]
        bench.results.append(
            Result(
                "B3", f"{size}, peak RSS", f"{ours['maxrss_mb']:.0f} MB", f"{raw['maxrss_mb']:.0f} MB",
                rss_ratio, f"<= {TARGET_RSS_RATIO:g}x", rss_ratio <= TARGET_RSS_RATIO,
            )
        )
        if rows >= 1_000_000:
            bench.results.append(
                Result(
                    "B3", f"{size}, wall", f"{ours['seconds']:.2f} s", f"{TARGET_1M_SECONDS:g} s budget",
                    ours["seconds"] / TARGET_1M_SECONDS, f"<= {TARGET_1M_SECONDS:g} s",
                    ours["seconds"] <= TARGET_1M_SECONDS,
                )
            )
    if not all(row.met for row in bench.results):
        bench.notes.append(
            "Where the time goes (cProfile of `intake_ours` at 1M rows, 2026-11-30, after the batching JSON "
            "change): `read_requests` is about 3.4 of 4.7 CPU s, and alone 4-7x `read_csv`: the CSV parse "
            "(`csv_format._parse_body`, blocks on both cores, ~2.3 s wall with its thread waits), validation "
            "(`validation.validate` ~2.6 s: factorizing 8 columns 0.6 s, the distinct-value checks 0.7 s, value "
            "rules 0.4 s, subject rules 0.4 s, duplicates 0.25 s) and subjects 0.25 s; `plan_batches` ~0.3 s and "
            "`dump_batch` ~0.7 s (its subject JSON 0.82 -> 0.42 CPU s by the byte-scan escaping check, the "
            "identity text built per (namespace, type) and Arrow's date formatting). Ours, all of it: the "
            "reference only splits fields, while intake also validates every value, groups subjects, keeps the "
            "line accounting and writes the staged JSON; the remaining gap is in intake and validation, not "
            "in batching."
        )
    return bench
