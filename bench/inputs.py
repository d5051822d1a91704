"""Generated request files, cached by size and seed (generating a million rows takes a while)."""

from __future__ import annotations

from pathlib import Path

from bench.measure import work_dir

SEED = 11


def requests_csv(rows: int, *, seed: int = SEED, bad_fraction: float = 0.02) -> Path:
    """The sample generator's CSV with `rows` identity rows (about 1.8 rows per subject, ~2% bad)."""
    from privacy_pipeline.sample import generate_requests_csv

    path = work_dir("inputs") / f"requests-{rows}-s{seed}-b{bad_fraction}.csv"
    if not path.exists():
        partial = path.with_suffix(".partial")
        generate_requests_csv(partial, rows=rows, seed=seed, bad_fraction=bad_fraction)
        partial.rename(path)
    return path
