"""Results, the machine they were measured on, and BENCHMARKS.md.

BENCHMARKS.md carries its own rows as JSON in a trailing HTML comment, so `--only B3` replaces the B3
rows and keeps the others (each benchmark remembers when it was last measured).
"""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
_RESULTS_MARKER = re.compile(r"<!-- bench-results\n(.*?)\n-->", re.DOTALL)


@dataclass
class Result:
    """One row of the table. `ratio` is oriented so that the target reads naturally (see `target`)."""

    benchmark: str
    size: str
    ours: str
    reference: str
    ratio: float | None
    target: str
    met: bool | None
    notes: str = ""


@dataclass
class BenchmarkRun:
    """The rows of one benchmark, how to reproduce them, and when they were measured."""

    benchmark: str
    title: str
    command: str
    results: list[Result] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    measured_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    #: `machine()` when this benchmark ran (rows of one file may come from different `--only` runs).
    machine: dict[str, str] = field(default_factory=dict)


def docstring_notes(doc: str | None, **values: object) -> list[str]:
    """A benchmark's notes in BENCHMARKS.md: the bullets ("- ") that end its module docstring, each on one
    line, `{name}` filled from `values` (what this run measured on: a smoke run's sizes are not the full ones).

    The docstring says once what the benchmark measures and how; the table's notes are the same words."""
    return [" ".join(note.split()).format(**values) for note in (doc or "").split("\n- ")[1:]]


def machine() -> dict[str, str]:
    """What the numbers were measured on (and how busy it was when the run started)."""
    load = os.getloadavg()
    return {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "nproc": str(os.cpu_count()),
        "memory": f"{_mem_total_gib():.1f} GiB",
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "load average at start": f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
        "commit": _git_commit(),
    }


def _mem_total_gib() -> float:
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024**2
    return float("nan")


def _git_commit() -> str:
    result = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or "unknown"


def load_runs(path: Path) -> dict[str, BenchmarkRun]:
    """The runs recorded in an earlier BENCHMARKS.md (empty when there is none or it has no data)."""
    if not path.exists():
        return {}
    found = _RESULTS_MARKER.search(path.read_text(encoding="utf-8"))
    if not found:
        return {}
    runs = {}
    for data in json.loads(found.group(1)):
        results = [Result(**row) for row in data.pop("results")]
        runs[data["benchmark"]] = BenchmarkRun(**data, results=results)
    return runs


def _machine_line(info: dict[str, str]) -> str:
    if not info:
        return "machine not recorded"
    return (f"{info.get('nproc', '?')} CPUs, {info.get('memory', '?')}, load {info.get('load average at start', '?')} "
            f"at start, commit {info.get('commit', '?')}")


def render(runs: list[BenchmarkRun], machine_info: dict[str, str], *, smoke: bool,
           registered: list[str] | None = None) -> str:
    """The whole file: one table with every target (met or not) and its command, then notes and data.

    A registered benchmark with no rows yet gets a row saying so, so the table always lists every target.
    """
    lines = ["# Benchmarks", ""]
    if smoke:
        lines += ["**Smoke run: tiny sizes, the figures say nothing about performance.**", ""]
    lines += [
        "Written by `python -m bench` (`make bench`). Each figure is measured side by side with its",
        "reference in the same run, and the ratio is what the target is about: the machine is shared,",
        "so absolute times move with the neighbours' load while ratios move much less.",
        "",
        "## Machine",
        "",
        *[f"- {name}: {value}" for name, value in machine_info.items()],
        "",
        "Each benchmark's own machine line (load, commit) is under its notes: `--only` keeps the other rows.",
        "",
        "## Results",
        "",
        "| benchmark | size | ours | reference | ratio | target | met? | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    measured = {run.benchmark for run in runs}
    for run in runs:
        for row in run.results:
            ratio = "n/a" if row.ratio is None else f"{row.ratio:.2f}"
            met = {True: "yes", False: "**no**", None: "-"}[row.met]
            lines.append(
                f"| {row.benchmark} | {row.size} | {row.ours} | {row.reference} | {ratio} | {row.target} | {met} "
                f"| `{run.command}` |"
            )
    for name in registered or []:
        if name not in measured:
            lines.append(f"| {name} | not measured yet | - | - | n/a | see its module | - "
                         f"| `python -m bench --only {name}` |")
    lines += ["", "## Benchmarks, notes and how to reproduce them", ""]
    for run in runs:
        lines += [f"### {run.benchmark}: {run.title}", "",
                  f"Measured {run.measured_at} ({_machine_line(run.machine)}). Reproduce: `{run.command}`", ""]
        lines += [f"- {note}" for note in run.notes]
        lines += [f"- {row.size}: {row.notes}" for row in run.results if row.notes]
        lines.append("")
    payload = json.dumps([asdict(run) for run in runs], indent=1)
    lines += [f"<!-- bench-results\n{payload}\n-->", ""]
    return "\n".join(lines)
