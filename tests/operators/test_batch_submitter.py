"""BatchSubmitter against an in-memory store and job API: the exactly-once protocol's edge cases in milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from adobe_privacy.budget import DailyJobBudget
from adobe_privacy.exceptions import PrivacyOutcomeUnknownError
from adobe_privacy.ledger import PrivacyLedger
from adobe_privacy.submission import IN_FLIGHT_SECONDS, OUTCOME_RECHECK_WAITS, BatchSubmitter
from privacy_pipeline.batching import plan_batches
from privacy_pipeline.clock import Clock
from privacy_pipeline.layout import ArchiveLayout

from tests.operators.fakes import FakeJobsApi, MemoryStore
from tests.pipeline.helpers import subject

AS_OF = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)


class Died(BaseException):
    """The worker died here."""


def setup(faults=None, budget: int = 20_000, subjects: int = 6, max_subjects: int = 2):
    store = MemoryStore()
    layout = ArchiveLayout(store.prefix)
    ledger = PrivacyLedger(store, layout)
    clock = Clock(AS_OF, monotonic=lambda: 0.0)  # time stands still: exact timestamps
    api = FakeJobsApi(clock, faults)
    waits: list[float] = []
    submitter = BatchSubmitter(ledger, DailyJobBudget(store, layout, budget, clock), api, clock=clock,
                               sleep=waits.append)
    batches = plan_batches([subject(f"k{i}", actions=("access", "delete")) for i in range(subjects)],
                           max_subjects=max_subjects)
    staged = [(f"root/runs/x/batches/{b.batch_id}.json", b) for b in batches]
    for key, batch in staged:
        ledger.mark_pending(batch, key=key, reason="staged")
    return store, ledger, api, submitter, staged, waits


def wanted_pairs(staged) -> set[tuple[str, str]]:
    return {pair for _key, batch in staged for pair in batch.user_actions}


def test_each_batch_is_posted_once_and_a_second_run_posts_nothing():
    store, ledger, api, submitter, staged, _ = setup()
    summary = submitter.submit_all(staged, run_id="r1")
    again = submitter.submit_all(staged, run_id="r2")

    assert api.posts == len(staged) and summary.counts["api_posts"] == len(staged) and again.counts["api_posts"] == 0
    assert set(api.jobs_per_pair().values()) == {1} and set(api.jobs_per_pair()) == wanted_pairs(staged)
    assert ledger.pending_markers() == [] and set(ledger.open_markers()) == {b.batch_id for _, b in staged}
    entry = ledger.require_entry(staged[0][1].batch_id)
    assert entry.intent_at == AS_OF and entry.posts == {"r1": 1}, "ledger times come from the injected clock"


def test_a_dropped_response_is_recovered_from_the_list_inside_the_task_without_a_resend():
    _, ledger, api, submitter, staged, waits = setup(faults=["drop"])
    summary = submitter.submit_all(staged, run_id="r1")

    assert api.posts == len(staged), "the dropped POST's jobs were found in the list: nothing resent"
    assert set(api.jobs_per_pair().values()) == {1} and summary.counts["submitted_batches"] == len(staged)
    assert waits == [OUTCOME_RECHECK_WAITS[0]]


def test_a_503_is_resent_in_the_task_only_after_the_list_shows_the_jobs_are_not_there():
    _, ledger, api, submitter, staged, waits = setup(faults=["503", "503"])
    summary = submitter.submit_all(staged, run_id="r1")

    assert api.posts == len(staged) + 2 and summary.counts["api_posts"] == len(staged) + 2
    assert set(api.jobs_per_pair().values()) == {1}
    assert waits == list(OUTCOME_RECHECK_WAITS[:2])
    assert ledger.require_entry(staged[0][1].batch_id).posts == {"r1": 3}, "every POST counted for the report"


def test_a_timed_out_post_is_rechecked_only_after_it_cannot_still_be_running():
    """The list cannot tell "not created" from "not committed yet": a resend must not race the original."""
    _, ledger, api, submitter, staged, waits = setup(faults=["timeout"])
    submitter.submit_all(staged, run_id="r1")

    assert waits == [IN_FLIGHT_SECONDS] and IN_FLIGHT_SECONDS > 60, "Adobe's gateway runs a request 60 s at most"
    assert api.posts == len(staged) and set(api.jobs_per_pair().values()) == {1}


def test_an_outcome_that_stays_unknown_fails_the_task_with_the_intent_kept_for_the_retry():
    faults = ["503"] * (len(OUTCOME_RECHECK_WAITS) + 1)
    _, ledger, api, submitter, staged, _ = setup(faults=faults)
    with pytest.raises(PrivacyOutcomeUnknownError):
        submitter.submit_all(staged, run_id="r1")
    assert ledger.require_entry(staged[0][1].batch_id).state == "intent"
    assert len(ledger.pending_markers()) == len(staged), "every batch still findable by the next run"

    submitter.submit_all(staged, run_id="r1")  # the task retry
    assert set(api.jobs_per_pair().values()) == {1} and set(api.jobs_per_pair()) == wanted_pairs(staged)


def test_budget_refusal_postpones_the_rest_of_the_chunk_without_a_post():
    _, ledger, api, submitter, staged, _ = setup(budget=5)  # 4 jobs per batch: the second does not fit
    summary = submitter.submit_all(staged, run_id="r1")

    assert summary.counts["submitted_batches"] == 1 and summary.counts["postponed_batches"] == len(staged) - 1
    assert summary.counts["over_budget_batches"] == len(staged) - 1 and api.posts == 1
    assert [m["batch_id"] for m in ledger.pending_markers()] == sorted(b.batch_id for _, b in staged[1:])
    assert {ledger.require_entry(b.batch_id).state for _, b in staged[1:]} == {"postponed"}


def test_a_crash_between_the_open_marker_and_the_pending_delete_leaves_the_batch_findable():
    store, ledger, api, submitter, staged, _ = setup()
    original = ledger.clear_pending

    def dies(batch_id: str) -> None:
        raise Died(batch_id)

    ledger.clear_pending = dies  # type: ignore[method-assign]
    with pytest.raises(Died):
        submitter.submit_all(staged, run_id="r1")
    first = staged[0][1].batch_id
    assert first in ledger.open_markers() and first in {m["batch_id"] for m in ledger.pending_markers()}

    ledger.clear_pending = original  # type: ignore[method-assign]
    submitter.submit_all(staged, run_id="r2")
    assert set(api.jobs_per_pair().values()) == {1} and ledger.pending_markers() == []


def test_markers_under_the_old_deferred_name_are_read_and_cleared():
    store, ledger, api, submitter, staged, _ = setup()
    key, batch = staged[0]
    store.delete(ledger.layout.ledger_pending(batch.batch_id))
    store.put_json(ledger.layout.ledger_pending_legacy(batch.batch_id), {"batch_id": batch.batch_id, "key": key})
    assert batch.batch_id in {m["batch_id"] for m in ledger.pending_markers()}

    submitter.submit_all(staged, run_id="r1")
    assert ledger.pending_markers() == []
