"""WorkOrderSubmitter and the approval gate's held batches, against an in-memory store and work-order API.

A held batch is postponed before any call to Adobe (no quota read, no list, no POST, no budget), with the
gate's reason on its pending marker, so the next run carries it; a held batch that is already submitted
stays submitted; the other batches of the chunk go as usual.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from adobe_privacy.budget import DailyJobBudget
from adobe_privacy.ledger import PrivacyLedger
from adobe_privacy.operators.workorders import WorkOrderSubmitter
from privacy_pipeline.batching import plan_batches
from privacy_pipeline.clock import Clock
from privacy_pipeline.layout import ArchiveLayout

from tests.operators.fakes import MemoryStore
from tests.pipeline.helpers import subject

AS_OF = datetime(2026, 3, 2, 3, 0, tzinfo=UTC)
REASON = "held by the approval gate: approval rejected by dpo at 2026-03-02T03:05:00+00:00; carried to the next run"


class Died(BaseException):
    """The worker died here (no `except Exception` on the way swallows it)."""


class FakeWorkOrderHook:
    """The three calls WorkOrderSubmitter makes, counted; orders are listed by display name."""

    def __init__(self) -> None:
        self.orders: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.die_after_post = False

    def create_workorder(self, payload: dict[str, Any]) -> dict[str, Any]:
        self.calls.append("POST /workorder")
        order = {"workorderId": f"DI-{len(self.orders) + 1:04d}", "displayName": payload["displayName"],
                 "status": "received"}
        self.orders.append(order)
        if self.die_after_post:
            raise Died("killed after Adobe created the order, before its id was recorded")
        return dict(order)

    def iter_workorders(self, *, search: str):
        self.calls.append("GET /workorder")
        return [dict(order) for order in self.orders if search in order["displayName"]]

    def get_hygiene_quota(self) -> dict[str, Any]:
        self.calls.append("GET /quota")
        return {"quotas": []}

    def posted_for(self, batch_id: str) -> int:
        return sum(1 for order in self.orders if f" {batch_id} " in order["displayName"])


def setup(subjects: int = 6, max_subjects: int = 2):
    store = MemoryStore()
    layout = ArchiveLayout(store.prefix)
    ledger = PrivacyLedger(store, layout)
    clock = Clock(AS_OF, monotonic=lambda: 0.0)
    hook = FakeWorkOrderHook()
    budget = DailyJobBudget(store, layout, 20_000, clock)
    submitter = WorkOrderSubmitter(ledger, budget, hook, clock=clock, sleep=lambda _s: None)  # type: ignore[arg-type]
    batches = plan_batches([subject(f"k{i}", actions=("delete",)) for i in range(subjects)], max_subjects=max_subjects)
    staged = [(f"root/hygiene/runs/x/batches/{b.batch_id}.json", b) for b in batches]
    for key, batch in staged:
        ledger.mark_pending(batch, key=key, reason="staged")
    return ledger, hook, submitter, staged


def test_a_held_batch_is_postponed_before_any_call_and_the_rest_of_the_chunk_goes():
    ledger, hook, submitter, staged = setup()
    first, rest = staged[0][1].batch_id, [b.batch_id for _k, b in staged[1:]]

    summary = submitter.submit_all(staged, run_id="r1", held={first: REASON}).as_xcom(AS_OF)

    assert hook.posted_for(first) == 0 and all(hook.posted_for(b) == 1 for b in rest)
    assert hook.calls.count("POST /workorder") == len(rest) and hook.calls.count("GET /quota") == len(rest), \
        "not even a quota read for the held batch"
    assert summary["batch_ids"] == rest and summary["postponed_batches"] == 1 and summary["postponed_subjects"] == 2
    assert summary["over_budget_batches"] == 0 and summary["over_quota_batches"] == 0, "held is neither"
    assert [m["batch_id"] for m in ledger.pending_markers()] == [first]
    assert ledger.pending_markers()[0]["reason"] == REASON, "the marker says why, for the next run"
    entry, orders = submitter.read(first)
    assert entry is not None and entry.state == "postponed" and orders == []
    assert set(ledger.open_markers()) == set(rest)


def test_a_held_batch_is_carried_and_goes_once_when_no_longer_held():
    ledger, hook, submitter, staged = setup()
    first = staged[0][1].batch_id
    submitter.submit_all(staged, run_id="r1", held={first: REASON})

    again = submitter.submit_all(staged, run_id="r2", held={}).as_xcom(AS_OF)

    assert all(hook.posted_for(b.batch_id) == 1 for _k, b in staged), "each batch's order exactly once"
    assert again["api_posts"] == 1 and again["postponed_batches"] == 0 and ledger.pending_markers() == []
    entry, orders = submitter.read(first)
    assert entry is not None and entry.state == "submitted" and len(orders) == 1


def test_a_held_batch_already_submitted_stays_submitted():
    ledger, hook, submitter, staged = setup()
    submitter.submit_all(staged, run_id="r1")
    calls = len(hook.calls)

    held = {batch.batch_id: REASON for _k, batch in staged}  # a late answer reaches a retry of the task
    summary = submitter.submit_all(staged, run_id="r1", held=held).as_xcom(AS_OF)

    assert len(hook.calls) == calls, "no call at all: the ledger says submitted"
    assert summary["postponed_batches"] == 0 and summary["submitted_batches"] == len(staged)
    assert ledger.pending_markers() == [] and set(ledger.open_markers()) == {b.batch_id for _k, b in staged}
    assert {submitter.read(b.batch_id)[0].state for _k, b in staged} == {"submitted"}  # type: ignore[union-attr]


def test_a_held_batch_with_an_intent_on_record_keeps_it_and_the_next_run_adopts_instead_of_posting():
    """An earlier attempt posted the order and died before recording its id; then the gate holds the batch."""
    ledger, hook, submitter, staged = setup(subjects=2)
    ((_key, batch),) = staged
    hook.die_after_post = True
    with pytest.raises(Died):
        submitter.submit_all(staged, run_id="r1")
    hook.die_after_post = False
    assert hook.posted_for(batch.batch_id) == 1 and submitter.read(batch.batch_id)[0].state == "intent"  # type: ignore[union-attr]
    calls = len(hook.calls)

    held = submitter.submit_all(staged, run_id="r1", held={batch.batch_id: REASON}).as_xcom(AS_OF)
    assert len(hook.calls) == calls and held["postponed_batches"] == 1
    assert submitter.read(batch.batch_id)[0].state == "intent", "the intent stays: it says an order may exist"  # type: ignore[union-attr]
    assert ledger.pending_markers()[0]["reason"] == REASON

    approved = submitter.submit_all(staged, run_id="r2").as_xcom(AS_OF)
    assert approved["api_posts"] == 0 and hook.posted_for(batch.batch_id) == 1, "adopted from the list, not resent"
    assert approved["submitted_batches"] == 1 and ledger.pending_markers() == []


def test_a_dry_run_counts_held_batches_like_the_others_and_touches_nothing():
    ledger, hook, submitter, staged = setup()
    summary = submitter.submit_all(staged, run_id="r1", dry_run=True,
                                   held={staged[0][1].batch_id: REASON}).as_xcom(AS_OF)
    assert hook.calls == [] and summary["dry_run_subjects"] == 6 and summary["postponed_batches"] == 0
    assert [m["reason"] for m in ledger.pending_markers()] == ["staged"] * len(staged)
