"""Measuring in fresh processes: wall time of the measured call and the process's peak RSS.

`run_probe("bench.b3_intake:intake_ours", path=...)` starts `python -m bench.probe`, which imports the
function, calls it with the keyword arguments, and prints its result (a JSON object) with the process's
peak RSS added. Each side of a comparison pays its own imports before its clock starts, and neither
inherits the other's heap.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench.report import REPO

#: git-ignored: generated inputs, logs, Airflow homes. Smoke runs use a subfolder (`BENCH_WORK_SUBDIR`, inherited
#: by probes), so a smoke test never deletes the servers' files of a full run going on beside it.
WORK_DIR = REPO / "bench" / "results" / os.environ.get("BENCH_WORK_SUBDIR", "")
PROBE_TIMEOUT_SECONDS = 1800


class ProbeFailed(RuntimeError):
    """A measured subprocess exited non-zero; the message carries its stderr tail."""


def work_dir(*parts: str) -> Path:
    path = WORK_DIR.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_probe(target: str, *, env: Mapping[str, str] | None = None, timeout_seconds: float = PROBE_TIMEOUT_SECONDS,
              **kwargs: Any) -> dict[str, Any]:
    """Call `module:function(**kwargs)` in a fresh interpreter; its JSON result plus `maxrss_mb`."""
    command = [sys.executable, "-m", "bench.probe", target, json.dumps(kwargs)]
    result = subprocess.run(
        command,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout_seconds,
        check=False,
    )
    if result.returncode != 0:
        raise ProbeFailed(f"{target} exited {result.returncode}:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    """This process's peak resident set so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    with open("/proc/self/statm", encoding="ascii") as statm:
        resident_pages = int(statm.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 1024**2


@contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """`with stopwatch() as clock: ...` then `clock["seconds"]`."""
    clock = {"seconds": float("nan")}
    started = time.perf_counter()
    try:
        yield clock
    finally:
        clock["seconds"] = time.perf_counter() - started


def median_of(repeats: int, measure: Callable[[], float]) -> float:
    return statistics.median(measure() for _ in range(repeats))


def interleaved_medians(repeats: int, measures: Mapping[str, Callable[[], float]]) -> dict[str, float]:
    """Median of each measure, taken in turns (A B A B ...) so that a load spike hits both sides."""
    samples: dict[str, list[float]] = {name: [] for name in measures}
    for _ in range(repeats):
        for name, measure in measures.items():
            samples[name].append(measure())
    return {name: statistics.median(values) for name, values in samples.items()}
