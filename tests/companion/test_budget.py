"""The daily job budget: pure rules, then enforcement in the submit operator against moto and the emulator."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from privacy_pipeline.budget import BudgetDay, BudgetExhausted, budget_day, parse_budget

from tests.companion.conftest import JOBS_ROUTE, subject_rows


def test_reservations_are_idempotent_per_batch_and_capped():
    day = BudgetDay("2026-03-02").reserve("a", 600, limit=1000)
    assert day.reserve("a", 600, limit=1000) is day  # a retried task does not pay twice
    with pytest.raises(BudgetExhausted) as exhausted:
        day.reserve("b", 401, limit=1000)
    assert (exhausted.value.wanted, exhausted.value.remaining) == (401, 400)
    day = day.reserve("b", 400, limit=1000)
    assert day.remaining(1000) == 0 and day.release("a").remaining(1000) == 600
    assert BudgetDay.from_json(day.to_json(), "2026-03-02") == day


def test_budget_day_and_parsing():
    assert budget_day(datetime(2026, 3, 2, 23, 59, tzinfo=UTC)) == "2026-03-02"
    assert parse_budget("") == 20_000 and parse_budget(None) == 20_000 and parse_budget("150") == 150
    with pytest.raises(ValueError):
        parse_budget("-1")


def test_concurrent_reservations_never_overspend(companion):
    """Eight writers race on one day's document in moto: If-Match/If-None-Match keep the sum within the limit."""
    from adobe_privacy.budget import DailyBudgetExhaustedError, DailyJobBudget
    from adobe_privacy.storage import PrivacyArchiveStore
    from privacy_pipeline.layout import ArchiveLayout

    store = PrivacyArchiveStore(companion.archive_uri)
    budget = DailyJobBudget(store, ArchiveLayout(store.prefix), limit=1000)

    def reserve(i: int) -> bool:
        try:
            DailyJobBudget(PrivacyArchiveStore(companion.archive_uri), budget.layout, 1000).reserve(f"b{i}", 300)
            return True
        except DailyBudgetExhaustedError:
            return False

    with ThreadPoolExecutor(8) as pool:
        granted = sum(pool.map(reserve, range(8)))
    document = companion.ledger("budget")[budget_day()]
    assert granted == 3 and document["used"] == 900 and len(document["reservations"]) == 3


def test_batches_over_budget_are_postponed_unposted_and_carried(companion):
    """Budget 5 jobs: the first batch (3 jobs) goes out, the second (3) is postponed like back-pressure."""
    first = companion.write_csv("a.csv", subject_rows(3, prefix="a"))
    chunks = companion.take_in(first, run_id="run-a", max_subjects=3)
    (keys,) = chunks
    summary = companion.submit(keys, run_id="run-a", budget=5)
    assert summary["submitted_batches"] == 1 and summary["jobs"] == 3

    second = companion.write_csv("b.csv", subject_rows(3, prefix="b"))
    (keys_b,) = companion.take_in(second, run_id="run-b", max_subjects=3)
    posts_before = companion.calls(JOBS_ROUTE)
    summary = companion.submit(keys_b, run_id="run-b", budget=5)
    assert summary["submitted_batches"] == 0 and summary["over_budget_batches"] == 1
    assert summary["over_budget_subjects"] == 3 and summary["postponed_batches"] == 1
    assert companion.calls(JOBS_ROUTE) == posts_before  # nothing was sent
    (pending,) = companion.ledger("pending").values()
    assert "budget" in pending["reason"]
    assert companion.ledger("budget")[budget_day()]["used"] == 3

    # More budget (the Variable raised, or tomorrow): the next run carries the batch and posts it once.
    (carried_keys,) = companion.take_in(companion.write_csv("empty.csv", []), run_id="run-c")
    summary = companion.submit(carried_keys, run_id="run-c", budget=6)
    assert summary["submitted_batches"] == 1 and not companion.ledger("pending")
    assert set(companion.jobs_per_user_action().values()) == {1}
