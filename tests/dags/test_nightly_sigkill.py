"""Black box: real `airflow dags test` runs of the nightly DAG SIGKILLed at random points, then rerun.

Each round runs the nightly DAG in a process group of its own (`crash_runner.py`) and kills the whole
group at a seeded random S3 write, before or after it: between any two ledger writes, mid-archive,
before the report. The next round is the next night (the next logical date) on the same input and
the same archive, as an operator who reruns after a crash would do, until a round finishes. Adobe's
emulator has 10% 5xx and 5% POSTs whose response is dropped after commit. Then `privacy_reconcile`
runs once, as it does hourly. The oracle is what was posted and stored, never what our code says:

- Adobe holds exactly one job per (request key, action) of the input: none twice, none missing;
- every complete access job's ZIP is stored exactly once in the archive, and recorded;
- no spool folder with personal data is left in the workers' temp folder;
- every job appears in some report's jobs file (the night's work is visible somewhere).

`PRIVACY_CRASH_SEEDS` (comma-separated) runs more seeds; CI runs one (about 4 minutes).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.dags.conftest import FAST_LIFECYCLE, JOBS_ROUTE, REPO, list_keys, write_input

RUNNER = Path(__file__).with_name("crash_runner.py")
SEEDS = [int(s) for s in os.environ.get("PRIVACY_CRASH_SEEDS", "11").split(",")]
FAULTS = (
    {"route": JOBS_ROUTE, "kind": "drop_after_commit", "rate": 0.05},
    {"route": "*", "kind": "5xx", "rate": 0.10},
)
MAX_ROUNDS = 6
#: A clean run of this input makes over a hundred S3 writes (ledger, index, evidence, outputs); kills are drawn below.
WRITES_PER_RUN = 160
#: RequestIndex's default cache folder under the worker's temp dir (adobe_privacy.index_store).
INDEX_CACHE = "privacy-index-cache"
#: Reconcile's ledger read cache under the same temp dir (adobe_privacy.ledger.LedgerReadCache).
LEDGER_CACHE = f"privacy-ledger-cache-{os.getuid()}"


def _dags_test(dag_id: str, day: date, conf: dict, env: dict[str, str], *, crash_at: int = 0,
               after: bool = False, log: Path) -> int:
    run_env = {**env, "CRASH_AT_WRITE": str(crash_at), "CRASH_AFTER": "1" if after else "0",
               "CRASH_LOG": str(log)}
    with open(log.with_suffix(".out"), "a") as out:
        process = subprocess.run(
            [sys.executable, str(RUNNER), "dags", "test", dag_id, day.isoformat(), "-c", json.dumps(conf)],
            env=run_env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, timeout=600,
            cwd=REPO,
        )
    return process.returncode


@pytest.mark.slow
@pytest.mark.parametrize("seed", SEEDS)
def test_sigkill_at_random_points_loses_nothing_and_duplicates_nothing(seed, nightly, tmp_path):
    rng = random.Random(seed)
    source = tmp_path / "requests.csv"
    expected = write_input(source, rows=40, seed=seed, bad_rows=[])
    nightly.emulator.configure(**{**FAST_LIFECYCLE, "seed": seed})
    for fault in FAULTS:
        nightly.emulator.add_fault(**fault)
    spool = tmp_path / "worker-tmp"
    spool.mkdir()
    env = {**os.environ, "TMPDIR": str(spool), "PYTHONUNBUFFERED": "1"}
    conf = {"input_uri": str(source), "poll_interval": 5, "wait_timeout": 300}

    day, kills, finished = date(2026, 6, 1), [], False
    for round_no in range(MAX_ROUNDS):
        last = round_no == MAX_ROUNDS - 1
        crash_at = 0 if last else rng.randint(1, WRITES_PER_RUN)
        after = rng.random() < 0.5
        code = _dags_test("privacy_requests_nightly", day, conf, env, crash_at=crash_at, after=after,
                          log=tmp_path / f"round-{round_no}.log")
        kills.append((day.isoformat(), crash_at, after, code))
        day += timedelta(days=1)
        if code == 0:
            finished = True
            break
        assert code == -9 or code == 137 or crash_at, f"round {round_no} failed without being killed: {code}"
    assert finished, f"no round finished: {kills}"
    assert any(code != 0 for *_rest, code in kills) or len(kills) == 1

    nightly.emulator.clear_faults()
    nightly.emulator.advance_clock(3600)
    assert _dags_test("privacy_reconcile", day, {}, env, log=tmp_path / "reconcile.log") == 0, kills

    # Adobe: one job per (key, action), none missing.
    per_pair = nightly.jobs_per_user_action()
    doubled = {pair: n for pair, n in per_pair.items() if n > 1}
    assert doubled == {}, f"jobs created twice after kills {kills}"
    assert set(per_pair) == set(expected.user_actions), f"jobs missing after kills {kills}"

    # The archive: every complete access job's ZIP stored once; nothing left on the worker's disk.
    keys = list_keys(nightly.s3, nightly.bucket, nightly.archive_prefix + "/")
    zips = Counter(Path(key).stem for key in keys if key.endswith(".zip") and "/quarantine/" not in key)
    adobe_jobs = _emulator_jobs(nightly, source)
    assert len(adobe_jobs) == len(expected.user_actions)
    access_jobs = {job_id for job_id, job in adobe_jobs.items()
                   if job.get("action") == "access" and job.get("status") == "complete"}
    assert {job: n for job, n in zips.items() if n > 1} == {}, f"ZIPs stored twice after kills {kills}"
    assert set(zips) == access_jobs, f"complete access ZIPs not archived after kills {kills}"
    # The request index's local cache (adobe_privacy.index_store) and reconcile's ledger read cache
    # (adobe_privacy.ledger) may stay: index files and ledger documents, keys and hashes only. They are
    # checked for identity values instead.
    leftovers = [p.name for p in spool.iterdir()
                 if p.name.startswith("privacy-") and p.name not in (INDEX_CACHE, LEDGER_CACHE)]
    assert leftovers == [], f"spool folders left behind: {leftovers}"
    _assert_no_identity_value_in(spool / INDEX_CACHE, source)
    _assert_no_identity_value_in(spool / LEDGER_CACHE, source)

    # Every job the emulator holds is in some run's jobs file (nightly or reconcile).
    reported = set()
    for key in keys:
        if key.endswith(".jsonl") and "/runs/" in key:
            body = nightly.s3.get_object(Bucket=nightly.bucket, Key=key)["Body"].read()
            reported |= {json.loads(line)["jobId"] for line in body.splitlines() if line.strip()}
    assert set(adobe_jobs) - reported == set(), f"jobs in no report after kills {kills}"


def _assert_no_identity_value_in(cache: Path, source: Path) -> None:
    """Every file cached on the worker (index Parquet, ledger JSON), searched for each identity value of the input."""
    import csv

    import pyarrow.parquet as pq

    if not cache.exists():
        return
    with source.open(newline="", encoding="utf-8") as handle:
        values = {row["value"] for row in csv.DictReader(handle) if len(row["value"]) >= 4}
    assert values
    for path in cache.rglob("*"):
        if path.suffix == ".parquet":
            text = json.dumps(pq.read_table(path).to_pylist(), default=str)
        elif path.is_file():
            text = path.read_text(encoding="utf-8", errors="replace")
        else:
            continue
        found = sorted(value for value in values if value in text)
        assert found == [], f"identity values in the cache file {path.name}: {len(found)}"


def _emulator_jobs(nightly, source: Path) -> dict[str, dict]:
    """Every job Adobe (the emulator) holds for the input's regulations, read through Adobe's list endpoint."""
    import csv

    import httpx

    with source.open(newline="", encoding="utf-8") as handle:
        regulations = {row["regulation"] for row in csv.DictReader(handle)}
    jobs: dict[str, dict] = {}
    headers = nightly.emulator.headers()
    for regulation in sorted(regulations):
        for page in range(0, 1000):
            answer = httpx.get(f"{nightly.emulator.base_url}/data/core/privacy/jobs",
                               params={"regulation": regulation, "size": 100, "page": page},
                               headers=headers, timeout=30)
            answer.raise_for_status()
            listed = answer.json().get("jobDetails") or []
            new = {job["jobId"]: job for job in listed if job["jobId"] not in jobs}
            jobs.update(new)
            if len(listed) < 100 or not new:
                break
    return jobs
