"""B3 intake throughput: our CSV -> validated, batched, serialised batches, against `pandas.read_csv`.

Both sides run in their own fresh interpreter, imports done before the clock starts, so each peak RSS
is that side's alone. Ours is what the intake task does on the CPU: `read_requests` (hash, parse,
validate, group into subjects, rejects), `plan_batches`, and `dump_batch` of every batch.
"""

from __future__ import annotations

from bench.inputs import requests_csv
from bench.measure import run_probe, stopwatch
from bench.report import BenchmarkRun, Result

TARGET_RATIO = 3.0
TARGET_1M_SECONDS = 15.0
DEFAULT_INCLUDE = ("aepDataLake", "profileService", "identity")


def intake_ours(path: str) -> dict:
    from privacy_pipeline.batching import dump_batch, plan_batches
    from privacy_pipeline.intake import InputSource, IntakeOptions, read_requests

    source = InputSource(name=path, open=lambda: open(path, "rb"))
    with stopwatch() as clock:
        result = read_requests([source], IntakeOptions(default_include=DEFAULT_INCLUDE))
        batches = plan_batches(result.subjects)
        staged_bytes = sum(len(dump_batch(batch)) for batch in batches)
    assert result.accounting_gap() == 0, "intake lost rows"
    return {
        "seconds": clock["seconds"], "rows": result.rows_read, "subjects": len(result.subjects),
        "rejects": len(result.rejects), "batches": len(batches), "staged_bytes": staged_bytes,
    }


def intake_raw(path: str) -> dict:
    import pandas as pd

    with stopwatch() as clock:
        frame = pd.read_csv(path)
    return {"seconds": clock["seconds"], "rows": len(frame)}


def run(smoke: bool = False) -> BenchmarkRun:
    sizes = [2_000] if smoke else [100_000, 1_000_000]
    bench = BenchmarkRun(
        "B3", "intake throughput and memory", "python -m bench --only B3",
        notes=[
            "Input: `privacy_pipeline.sample.generate_requests_csv` (seeded; ~1.8 identity rows per subject, "
            "~2% broken rows of 12 kinds).",
            "Ours: `read_requests` + `plan_batches` + `dump_batch` of every batch; reference: `pandas.read_csv(path)` "
            "with defaults. Each in a fresh interpreter; time excludes imports; RSS is the process peak "
            "(the interpreter and its imports included).",
        ],
    )
    for rows in sizes:
        path = str(requests_csv(rows))
        raw = run_probe("bench.b3_intake:intake_raw", path=path)
        ours = run_probe("bench.b3_intake:intake_ours", path=path)
        ratio = ours["seconds"] / raw["seconds"]
        size = f"{rows:,} rows"
        bench.results.append(
            Result(
                "B3", size, f"{ours['seconds']:.2f} s", f"{raw['seconds']:.2f} s (read_csv)", ratio,
                f"<= {TARGET_RATIO:g}x", ratio <= TARGET_RATIO,
                notes=f"{ours['subjects']:,} subjects, {ours['rejects']:,} rejects, {ours['batches']} batches",
            )
        )
        bench.results.append(
            Result(
                "B3", f"{size}, peak RSS", f"{ours['maxrss_mb']:.0f} MB", f"{raw['maxrss_mb']:.0f} MB",
                ours["maxrss_mb"] / raw["maxrss_mb"], "report", None,
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
    return bench
