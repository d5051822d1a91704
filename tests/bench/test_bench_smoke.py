"""The benchmark suite keeps running: each benchmark's smoke mode end to end, and the report format.

Smoke sizes are tiny, so these tests check that every benchmark still measures what it claims
(real servers, real subprocesses, real DAG run) and writes its rows, not how fast anything is.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.__main__ import BENCHMARKS, parse_args
from bench.report import BenchmarkRun, Result, load_runs, render

REPO = Path(__file__).resolve().parents[2]


def _smoke(benchmark: str, output: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--only", benchmark, "--output", str(output)],
        cwd=REPO, capture_output=True, text=True, timeout=300, check=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("benchmark", list(BENCHMARKS))
def test_smoke_run_writes_rows(benchmark, tmp_path):
    output = tmp_path / "BENCHMARKS.md"
    result = _smoke(benchmark, output)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    runs = load_runs(output)
    assert list(runs) == [benchmark]
    rows = runs[benchmark].results
    assert rows, f"{benchmark} measured nothing"
    for row in rows:
        assert row.ours and row.reference and row.target
        assert row.ratio is None or row.ratio > 0
    table = output.read_text(encoding="utf-8")
    assert "**Smoke run" in table and f"| {benchmark} |" in table
    assert f"python -m bench --only {benchmark}" in table


def test_only_selects_and_rejects_unknown_names(capsys):
    assert parse_args(["--only", "b3, B5"]).selected == ["B3", "B5"]
    assert parse_args([]).selected == list(BENCHMARKS)
    with pytest.raises(SystemExit):
        parse_args(["--only", "B9"])
    assert "unknown benchmark" in capsys.readouterr().err


def test_report_round_trips_and_marks_missed_targets(tmp_path):
    runs = [
        BenchmarkRun("B3", "intake", "python -m bench --only B3", results=[
            Result("B3", "100,000 rows", "0.9 s", "0.1 s", 9.0, "<= 3x", False, notes="slow parse"),
            Result("B3", "100,000 rows, peak RSS", "300 MB", "200 MB", None, "report", None),
        ]),
    ]
    path = tmp_path / "BENCHMARKS.md"
    path.write_text(render(runs, {"nproc": "2"}, smoke=False), encoding="utf-8")
    text = path.read_text(encoding="utf-8")
    assert "| B3 | 100,000 rows | 0.9 s | 0.1 s | 9.00 | <= 3x | **no** |" in text
    assert "| n/a |" in text and "- 100,000 rows: slow parse" in text
    assert "Smoke run" not in text
    loaded = load_runs(path)
    assert loaded["B3"].results == runs[0].results
    assert loaded["B3"].measured_at == runs[0].measured_at
