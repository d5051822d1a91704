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
        cwd=REPO, capture_output=True, text=True, timeout=900, check=False,
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
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
        parse_args(["--only", "B99"])
    assert "unknown benchmark" in capsys.readouterr().err


def test_report_round_trips_and_marks_missed_targets(tmp_path):
    runs = [
        BenchmarkRun("B3", "intake", "python -m bench --only B3", results=[
            Result("B3", "100,000 rows", "0.9 s", "0.1 s", 9.0, "<= 3x", False, notes="slow parse"),
            Result("B3", "100,000 rows, peak RSS", "300 MB", "200 MB", None, "report", None),
        ]),
    ]
    path = tmp_path / "BENCHMARKS.md"
    runs[0].machine = {"nproc": "2", "load average at start": "9.00 8.00 7.00", "commit": "abc1234"}
    path.write_text(render(runs, {"nproc": "2"}, smoke=False, registered=["B3", "B9"]), encoding="utf-8")
    text = path.read_text(encoding="utf-8")
    assert "| B3 | 100,000 rows | 0.9 s | 0.1 s | 9.00 | <= 3x | **no** | `python -m bench --only B3` |" in text
    # Every registered target has a row, measured or not, with the command that measures it.
    assert "| B9 | not measured yet |" in text and "`python -m bench --only B9` |" in text
    assert "load 9.00 8.00 7.00 at start, commit abc1234" in text
    assert "| n/a |" in text and "- 100,000 rows: slow parse" in text
    assert "Smoke run" not in text
    loaded = load_runs(path)
    assert list(loaded) == ["B3"]
    assert loaded["B3"].results == runs[0].results
    assert loaded["B3"].machine == runs[0].machine
    assert loaded["B3"].measured_at == runs[0].measured_at


def test_naive_extrapolation_charges_every_call_at_the_sample_rate():
    from bench.naive_client import NaiveRun, Workload, extrapolate

    sample = NaiveRun(posts=2, status_gets=100, downloads=50,
                      seconds_by_kind={"post": 0.4, "get": 6.0, "download": 5.0})
    full = Workload(subjects=16_000, posts=30, jobs=20_000, access_jobs=10_000)
    # 30 x 0.2 s + 20,000 x 0.06 s + 10,000 x 0.1 s + 1.5 s of intake
    assert extrapolate(sample, full, intake_seconds=1.5) == pytest.approx(6 + 1200 + 1000 + 1.5)


def test_b9_oracle_counts_open_final_and_old_jobs_from_the_job_table(tmp_path):
    import sqlite3

    from bench.b9_steady_state import COMPLETE_AFTER_DAYS, DAY, LOOKBACK_DAYS, Oracle

    db_path = tmp_path / "emulator.sqlite"
    with sqlite3.connect(db_path) as db:
        db.execute("CREATE TABLE jobs (job_id TEXT, kind TEXT, regulation TEXT, created_at REAL, stretch REAL)")
        now = 100 * DAY
        finish = COMPLETE_AFTER_DAYS * DAY
        db.executemany("INSERT INTO jobs VALUES (?, ?, ?, ?, ?)", [
            ("open-gdpr", "privacy", "gdpr", now - DAY, 1.0),                        # open, recent
            ("old-open", "privacy", "ccpa", now - (LOOKBACK_DAYS + 1) * DAY, 2.0),   # open, beyond look-back
            ("final-today", "privacy", "gdpr", now - finish + 3600, 1.0 - 7200 / finish),  # final an hour ago
            ("final-long-ago", "privacy", "gdpr", now - 90 * DAY, 1.0),
            ("hygiene", "hygiene", None, now - DAY, 1.0),                             # not a privacy job
        ])
    oracle = Oracle(db_path)
    assert oracle.open_by_regulation(now) == {"gdpr": 1, "ccpa": 1}
    assert oracle.open_beyond_lookback(now) == 1
    assert oracle.finished_between(now - DAY, now) == 1
