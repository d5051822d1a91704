"""The nightly DAG on a bumpy road: 5xx, 429 and POSTs committed whose response is dropped.

The same input is run twice, first on a quiet emulator and then with faults on every API route, each
run with its own archive root (ledger) and a reset emulator. The final accounting must be the same
and Adobe must hold exactly one job per (userKey, action): retries may cost POSTs, never jobs.
"""

from __future__ import annotations

import pytest
from privacy_pipeline.report import check_accounting

from tests.dags.conftest import (
    FAST_LIFECYCLE,
    JOBS_ROUTE,
    assert_exactly_once,
    report_accounting,
    write_input,
)

#: The drop comes first: the emulator checks faults in order and counts each one's own calls, so the
#: drop's seeded draws (POST calls only) never depend on how the run's other calls interleave.
FAULTS = (
    {"route": JOBS_ROUTE, "kind": "drop_after_commit", "rate": 0.05},
    {"route": "*", "kind": "5xx", "rate": 0.20},
    {"route": "*", "kind": "429", "rate": 0.10, "retry_after": 1},
)


@pytest.mark.slow
def test_faults_cost_retries_not_jobs_and_the_accounting_matches_a_clean_run(nightly):
    source = nightly.tmp_path / "requests.csv"
    expected = write_input(source, rows=60, seed=21)

    clean = nightly.outputs(nightly.run("2026-04-01", input_uri=source)).report
    assert_exactly_once(nightly, expected.user_actions)

    nightly.use_fresh_archive("faulty")
    nightly.emulator.reset()
    nightly.emulator.configure(**FAST_LIFECYCLE)
    fault_ids = [nightly.emulator.add_fault(**fault) for fault in FAULTS]
    bumpy_run = nightly.run("2026-04-01", input_uri=source)
    fired = nightly.faults_fired()
    nightly.emulator.clear_faults()

    bumpy = nightly.outputs(bumpy_run).report
    check_accounting(bumpy)
    assert report_accounting(bumpy) == report_accounting(clean)
    assert_exactly_once(nightly, expected.user_actions)
    assert all(fired[fault_id] > 0 for fault_id in fault_ids), f"every fault kind must have fired: {fired}"
    post_statuses = nightly.emulator.stats()["calls"][JOBS_ROUTE]
    assert {"503", "429"} & set(post_statuses), f"POSTs were refused too: {post_statuses}"
    # The report counts every POST the run sent, across task retries (the ledger keeps them per run).
    assert bumpy["api_posts"] == sum(post_statuses.values()) > clean["api_posts"]
