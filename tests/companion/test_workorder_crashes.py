"""A seeded crash fuzzer for work-order submission: kills at any ledger write, dropped answers, retries.

Each seed kills the submit task at randomly chosen ledger writes (before or after the write lands) while
the emulator drops a seeded share of POST answers after committing them; the task is retried until it
succeeds. Oracle: the emulator's own order count equals the plan, each order once, and the ledger
holds exactly those orders. A failing seed replays exactly (the emulator's fault draws are seeded too).
"""

from __future__ import annotations

import random
from contextlib import contextmanager
from unittest import mock

import pytest

from tests.companion.conftest import subject_rows
from tests.companion.test_workorders import (
    WORKORDER_ROUTE,
    ProcessDied,
    ledger_orders,
    orders_total,
    stage,
    submit,
)

MAX_TRIES = 40


@contextmanager
def dies_at_ledger_write(nth: int, *, after_write: bool):
    """The `nth` write under `ledger/` kills the task (none when the task writes fewer)."""
    from adobe_privacy.storage import PrivacyArchiveStore

    original = PrivacyArchiveStore.put_json
    seen = {"n": 0}

    def put_json(store, key, document):
        if "/ledger/" not in key:
            return original(store, key, document)
        seen["n"] += 1
        if seen["n"] != nth:
            return original(store, key, document)
        if after_write:
            original(store, key, document)
        raise ProcessDied(f"killed at ledger write #{nth}")

    with mock.patch.object(PrivacyArchiveStore, "put_json", put_json):
        yield seen


@pytest.mark.parametrize("seed", [3, 5, 8, 13])
def test_kills_and_dropped_answers_anywhere_never_duplicate_or_lose_an_order(companion, seed, monkeypatch):
    from adobe_privacy.exceptions import PrivacyOutcomeUnknownError
    from adobe_privacy.operators import workorders

    companion.emulator.configure(workorder_complete_after_seconds=20.0)
    companion.hygiene_uri = f"{companion.archive_uri}/hygiene"
    monkeypatch.setattr(workorders, "OUTCOME_RECHECK_WAITS", (0.0,))
    rng = random.Random(seed)
    rows = []
    for regulation in ("gdpr", "ccpa"):
        rows += subject_rows(3, action="delete", regulation=regulation, prefix=f"{regulation}-e")
        rows += subject_rows(2, action="delete", regulation=regulation, prefix=f"{regulation}-c",
                             namespace="crmId", id_type="custom")
        rows += subject_rows(2, action="delete", regulation=regulation, prefix=f"{regulation}-a",
                             namespace="accountId", id_type="custom")
    keys = stage(companion, rows)
    assert len(keys) == 2  # two batches (one per regulation), three orders each
    companion.emulator.add_fault(route=WORKORDER_ROUTE, kind="drop_after_commit", rate=0.3)

    kills = unknowns = 0
    for attempt in range(MAX_TRIES):
        # The first try always dies (a full submit writes the ledger 16 times); later ones may not.
        nth = rng.randint(1, 14 if attempt == 0 else 24)
        try:
            with dies_at_ledger_write(nth, after_write=rng.random() < 0.5):
                summary = submit(companion, keys)
        except ProcessDied:
            kills += 1
        except PrivacyOutcomeUnknownError:
            unknowns += 1
        else:
            break
    else:
        pytest.fail(f"seed {seed}: no try succeeded in {MAX_TRIES}")

    assert kills + unknowns > 0, "the seed exercised no crash at all"
    assert orders_total(companion) == 6, f"seed {seed}: {kills} kills, {unknowns} unknown outcomes"
    assert summary["submitted_batches"] == 2 and summary["jobs"] == 6
    orders = [order for batch in ledger_orders(companion).values() for order in batch]
    assert len({o["workorder_id"] for o in orders}) == len(orders) == 6
    assert {(o["namespace"], len(o["request_keys"])) for o in orders} == {("Email", 3), ("crmId", 2),
                                                                         ("accountId", 2)}
    documents = companion.ledger("batches", root=f"{companion.prefix}/hygiene")
    assert "@example.com" not in repr(documents), "the ledger holds request keys, never identity values"
    again = submit(companion, keys)
    assert again["api_posts"] == 0 and orders_total(companion) == 6
