"""Ledger: intent -> submitted transitions, JSON round trip, job recovery from the list endpoint."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from privacy_pipeline.batching import plan_batches
from privacy_pipeline.ledger import JobRef, LedgerEntry, parse_adobe_date, recover_jobs

from .helpers import subject

INTENT = datetime(2025, 6, 1, 10, 5, 40, tzinfo=UTC)


@pytest.fixture
def batch():
    return plan_batches([subject("a", actions=("access", "delete")), subject("b")])[0]


@pytest.fixture
def entry(batch):
    return LedgerEntry.intent_for(batch, now=INTENT, batch_key="runs/x/batches/b.json")


def listed(key, action, created, job_id):
    return {"jobId": job_id, "userKey": key, "action": action, "status": "processing", "createdDate": created}


def test_intent_records_pairs_and_round_trips_through_json(entry, batch):
    assert entry.state == "intent" and entry.attempts == 1
    assert entry.user_actions == [("a", "access"), ("a", "delete"), ("b", "access")]
    assert entry.missing == entry.user_actions
    restored = LedgerEntry.from_json(json.dumps(entry.to_json()))
    assert restored == entry


def test_jobs_from_the_post_response_complete_the_entry(entry):
    response_jobs = [
        {"jobId": "j1", "customer": {"user": {"key": "a", "action": ["access"]}}},
        {"jobId": "j2", "customer": {"user": {"key": "a", "action": ["delete"]}}},
    ]
    partial = entry.with_jobs(response_jobs, now=INTENT)
    assert partial.state == "intent" and partial.missing == [("b", "access")]
    done = partial.with_jobs([JobRef("j3", "b", "access")], now=INTENT + timedelta(seconds=3))
    assert done.state == "submitted" and not done.missing
    assert done.submitted_at == INTENT + timedelta(seconds=3)
    assert LedgerEntry.from_json(done.to_json()) == done
    with pytest.raises(ValueError, match="did not send"):
        entry.with_jobs([JobRef("jx", "zzz", "access")], now=INTENT)


def test_recovery_matches_key_action_and_minute_margin(entry):
    jobs = [
        listed("a", "access", "06/01/2025 10:04 AM GMT", "j-a-access"),     # one minute early: clock skew, ours
        listed("a", "delete", "06/01/2025 10:03 AM GMT", "j-old"),          # two minutes early: an older job
        listed("a", "delete", "06/01/2025 10:07 AM GMT", "j-a-delete"),
        listed("b", "delete", "06/01/2025 10:06 AM GMT", "j-other-action"),
        listed("c", "access", "06/01/2025 10:06 AM GMT", "j-other-key"),
    ]
    found, missing = recover_jobs(entry, jobs)
    assert sorted(found, key=lambda j: j.job_id) == [JobRef("j-a-access", "a", "access"),
                                                     JobRef("j-a-delete", "a", "delete")]
    assert missing == [("b", "access")]
    recovered = entry.with_recovered(found, missing, now=INTENT)
    assert recovered.state == "intent" and recovered.missing == [("b", "access")]


def test_recovery_keeps_the_earliest_of_duplicate_jobs_and_says_so(entry):
    jobs = [
        listed("b", "access", "06/01/2025 10:09 AM GMT", "j-late"),
        listed("b", "access", "06/01/2025 10:06 AM GMT", "j-early"),
        listed("a", "access", "06/01/2025 10:06 AM GMT", "j1"),
        listed("a", "delete", "06/01/2025 10:06 AM GMT", "j2"),
    ]
    recovery = recover_jobs(entry, jobs)
    found, missing = recovery
    assert JobRef("j-early", "b", "access") in found and not missing
    assert recovery.duplicates == ["j-late"]
    assert entry.with_recovered(found, missing, now=INTENT).state == "submitted"


def test_recovery_ignores_unreadable_dates_and_pairs_already_known(entry):
    known = entry.with_jobs([JobRef("j1", "a", "access")], now=INTENT)
    jobs = [listed("a", "access", "06/01/2025 10:30 AM GMT", "j-again"), listed("b", "access", "garbage", "j?")]
    found, missing = recover_jobs(known, jobs)
    assert found == [] and missing == [("a", "delete"), ("b", "access")]


def test_adobe_dates_parse_in_12_hour_gmt():
    assert parse_adobe_date("04/12/2024 04:08 PM GMT") == datetime(2024, 4, 12, 16, 8, tzinfo=UTC)
    assert parse_adobe_date("04/12/2024 12:01 AM GMT") == datetime(2024, 4, 12, 0, 1, tzinfo=UTC)
    assert parse_adobe_date("2024-04-12T16:08:00Z") == datetime(2024, 4, 12, 16, 8, tzinfo=UTC)
    assert parse_adobe_date("13/45/2024") is None and parse_adobe_date(None) is None


def test_postponed_and_resumed_attempts(batch):
    postponed = LedgerEntry.postponed_for(batch, now=INTENT, reason="429")
    assert postponed.state == "postponed" and postponed.attempts == 0
    resumed = LedgerEntry.intent_for(batch, now=INTENT + timedelta(days=1), previous=postponed)
    assert resumed.attempts == 1 and resumed.state == "intent"
    assert resumed.with_attempt(now=INTENT + timedelta(days=2)).attempts == 2
    with pytest.raises(ValueError):
        LedgerEntry.from_json({**postponed.to_json(), "state": "lost"})


def test_entries_written_with_the_old_deferred_state_read_as_postponed(batch):
    old = {**LedgerEntry.postponed_for(batch, now=INTENT, reason="429").to_json(), "state": "deferred",
           "payload_sha256": "ab" * 32}
    assert LedgerEntry.from_json(old).state == "postponed"


def test_posts_are_counted_per_run_and_survive_json():
    from privacy_pipeline.ledger import LedgerEntry as Entry

    entry = Entry(batch_id="b-1", regulation="gdpr", user_actions=[("k", "access")],
                  state="intent").with_post("run-a").with_post("run-a").with_post("run-b")
    assert entry.posts == {"run-a": 2, "run-b": 1}
    assert Entry.from_json(entry.to_json()).posts == {"run-a": 2, "run-b": 1}
