"""`python -m bench [--smoke] [--only B1,B3] [--output PATH]`: run the benchmarks, write BENCHMARKS.md."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

from bench.report import REPO, BenchmarkRun, load_runs, machine, render

BENCHMARKS = {
    "B1": "bench.b1_api_economy",
    "B2": "bench.b2_end_to_end",
    "B3": "bench.b3_intake",
    "B4": "bench.b4_archive",
    "B5": "bench.b5_dag_parse",
    "B6": "bench.b6_events",
    "B8": "bench.b8_faults",
    "B9": "bench.b9_steady_state",
    "P7": "bench.p7_index",
}
DEFAULT_OUTPUT = REPO / "BENCHMARKS.md"
SMOKE_OUTPUT = REPO / "bench" / "results" / "BENCHMARKS.smoke.md"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, fast: checks the suite still runs")
    parser.add_argument("--only", default="", help="comma-separated benchmarks to run, e.g. B3 or B1,B2")
    parser.add_argument(
        "--output", type=Path,
        help=f"where to write the table (default {DEFAULT_OUTPUT.name}; smoke runs: {SMOKE_OUTPUT})",
    )
    args = parser.parse_args(argv)
    args.selected = [name.strip().upper() for name in args.only.split(",") if name.strip()] or list(BENCHMARKS)
    unknown = set(args.selected) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s) {sorted(unknown)}; choose from {list(BENCHMARKS)}")
    args.output = args.output or (SMOKE_OUTPUT if args.smoke else DEFAULT_OUTPUT)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.smoke:  # before any benchmark module (and bench.measure) is imported
        os.environ.setdefault("BENCH_WORK_SUBDIR", "smoke")
    machine_info = machine()
    runs = {} if args.smoke else load_runs(args.output)
    failed = []
    for name in args.selected:
        print(f"[bench] {name} ...", flush=True)
        started = time.monotonic()
        try:
            run: BenchmarkRun = importlib.import_module(BENCHMARKS[name]).run(smoke=args.smoke)
        except Exception:  # one broken benchmark must not hide the others' figures
            traceback.print_exc()
            failed.append(name)
            continue
        run.machine = machine_info
        runs[name] = run
        for row in run.results:
            print(f"[bench]   {row.size}: ours {row.ours} | ref {row.reference} | ratio "
                  f"{'n/a' if row.ratio is None else f'{row.ratio:.2f}'} | target {row.target} | met {row.met}")
        print(f"[bench] {name} done in {time.monotonic() - started:.0f} s", flush=True)
    ordered = [runs[name] for name in BENCHMARKS if name in runs]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(render(ordered, machine_info, smoke=args.smoke, registered=list(BENCHMARKS)),
                           encoding="utf-8")
    print(f"[bench] wrote {args.output}")
    if failed:
        print(f"[bench] FAILED: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
