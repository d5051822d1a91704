"""B5 DAG parse cost: importing each DAG file in a fresh interpreter, against an empty DAG file.

The DAG processor re-parses every file on every loop, so what a DAG file imports at module level is
paid again and again. Each sample is a fresh `python`, timing `runpy.run_path(file)` (which includes
`import airflow.sdk`, as both files start with it); samples alternate between the files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.measure import interleaved_medians, work_dir
from bench.report import REPO, BenchmarkRun, Result
from bench.stack import airflow_env

TARGET_RATIO = 1.2
EMPTY_DAG = '''\
from datetime import datetime

from airflow.sdk import dag


@dag(dag_id="bench_empty", schedule=None, start_date=datetime(2026, 1, 1))
def bench_empty():
    pass


bench_empty()
'''
_PROBE = (
    "import runpy, sys, time\n"
    "preload = sys.argv[2] == 'preloaded'\n"
    "if preload:\n"
    "    import airflow.sdk\n"
    "started = time.perf_counter()\n"
    "runpy.run_path(sys.argv[1])\n"
    "print(time.perf_counter() - started)\n"
)


def dag_files() -> list[Path]:
    return sorted(p for p in (REPO / "dags").glob("*.py") if not p.name.startswith("_"))


def parse_seconds(path: Path, env: dict[str, str], *, preloaded: bool = False) -> float:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, str(path), "preloaded" if preloaded else "cold"],
        env=env, capture_output=True, text=True, timeout=300, check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"parsing {path.name} failed:\n{result.stderr[-2000:]}")
    return float(result.stdout.strip().splitlines()[-1])


def import_error(path: Path, env: dict[str, str]) -> str | None:
    """The last line of the error when `path` does not import (it is then reported, not timed)."""
    try:
        parse_seconds(path, env)
    except RuntimeError as err:
        return str(err).strip().splitlines()[-1]
    return None


def run(smoke: bool = False) -> BenchmarkRun:
    repeats = 1 if smoke else 7
    home = work_dir("b5")
    empty = home / "empty_dag.py"
    empty.write_text(EMPTY_DAG, encoding="utf-8")
    env = {**os.environ, **airflow_env(home / "airflow")}
    (home / "airflow").mkdir(exist_ok=True)
    files = dag_files()
    bench = BenchmarkRun(
        "B5", "DAG parse cost", "python -m bench --only B5",
        notes=[
            f"Median of {repeats} fresh interpreters per file, interleaved; the clock covers "
            "`runpy.run_path(file)` (the file's imports included, interpreter start-up not).",
            "Reference: a DAG file with no tasks that imports only `airflow.sdk`.",
            "`preloaded` notes: the same with `airflow.sdk` imported before the clock starts, as in the "
            "DAG processor; that is the file's own cost.",
        ],
    )
    broken = {path: error for path in files if (error := import_error(path, env))}
    files = [path for path in files if path not in broken]
    for path, error in broken.items():
        bench.results.append(
            Result("B5", path.name, "does not import", "-", None, f"<= {TARGET_RATIO}x", False, notes=error)
        )
    measures = {"empty": lambda: parse_seconds(empty, env)}
    measures |= {p.name: (lambda p=p: parse_seconds(p, env)) for p in files}
    cold = interleaved_medians(repeats, measures)
    warm_measures = {"empty": lambda: parse_seconds(empty, env, preloaded=True)}
    warm_measures |= {p.name: (lambda p=p: parse_seconds(p, env, preloaded=True)) for p in files}
    warm = interleaved_medians(repeats, warm_measures)
    for path in files:
        ratio = cold[path.name] / cold["empty"]
        bench.results.append(
            Result(
                "B5", path.name, f"{cold[path.name]:.2f} s", f"{cold['empty']:.2f} s (empty DAG)",
                ratio, f"<= {TARGET_RATIO}x", ratio <= TARGET_RATIO,
                notes=f"preloaded: {warm[path.name] * 1000:.0f} ms vs {warm['empty'] * 1000:.0f} ms "
                      f"for the empty DAG",
            )
        )
    if not files and not broken:
        bench.notes.append("dags/ holds no DAG file yet.")
    (home / "raw.json").write_text(json.dumps({"cold": cold, "preloaded": warm}, indent=1))
    return bench
