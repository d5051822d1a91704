"""The event-driven wait's and reconcile's pure rules: seeded adversarial deliveries with an oracle.

However the journal delivers (duplicates, any order, events of other jobs, a dropped event, a gap),
a wait settles exactly the jobs that had a final event, sends every other job to the list endpoint by
its fallback time, and a replay of the same records gives the same answer.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from privacy_pipeline.events import (
    ConsumerState,
    Gap,
    JobEvent,
    JournalRecord,
    WaitState,
    plan_reconcile,
)

NOW = datetime(2026, 3, 2, 12, tzinfo=UTC)


def event(job: str, n: int, *, scope: str = "job", outcome: str = "complete") -> JobEvent:
    return JobEvent(event_id=f"e-{job}-{scope}-{n}", type=f"com.adobe.platform.gdpr.{scope}{outcome}", job_id=job,
                    scope=scope, outcome=outcome, message=None, time=None, position=f"p{n}")


def deliveries(seed: int, jobs: list[str], foreign: int) -> tuple[list[JournalRecord], dict[str, str], set[str]]:
    """Records of a seeded, hostile delivery; returns them, the final outcome per job that had an event, the dropped."""
    rng = random.Random(seed)
    dropped = set(rng.sample(jobs, k=len(jobs) // 5))
    truth = {job: rng.choice(["complete", "complete", "error"]) for job in jobs if job not in dropped}
    events = [event(job, i, outcome=outcome) for i, (job, outcome) in enumerate(sorted(truth.items()))]
    events += [event(job, 10_000 + i, scope="product") for i, job in enumerate(jobs)]  # progress, not final
    events += [event(f"other-{i}", 20_000 + i) for i in range(foreign)]  # another run's jobs
    events += rng.sample(events, k=len(events) // 3)  # duplicate delivery
    rng.shuffle(events)  # any order
    records, seq = [], 0
    while events:
        size = rng.randint(1, 9)
        seq += 1
        records.append(JournalRecord(seq=seq, since=None, last=None, recorded_at=NOW.isoformat(),
                                     events=tuple(events[:size])))
        events = events[size:]
    return records, truth, dropped


def fresh_state(jobs: list[str], fallback_at: float, end_at: float) -> WaitState:
    return WaitState(open=dict.fromkeys(jobs, "gdpr"), fallback_at=dict.fromkeys(jobs, fallback_at), settled={},
                     since_seq=0, end_at=end_at)


@pytest.mark.parametrize("seed", range(40))
def test_a_hostile_delivery_settles_exactly_the_jobs_with_a_final_event(seed):
    jobs = [f"job-{i:03d}" for i in range(60)]
    records, truth, dropped = deliveries(seed, jobs, foreign=7)
    state = fresh_state(jobs, fallback_at=100.0, end_at=1000.0)

    progress = state.progress()
    for record in records + records[: len(records) // 2]:  # some records read twice (a restarted trigger)
        progress.observe(record)

    assert progress.outcomes == truth
    assert progress.decide(50.0) is None  # before the fallback: wait on
    decision = progress.decide(150.0)
    assert decision["status"] == "fallback" and set(decision["timed_out_job_ids"]) == dropped
    assert progress.foreign_events > 0
    # A replay of the same records (the task after the trigger) gives the same answer.
    replay = state.progress()
    for record in records:
        replay.observe(record)
    assert replay.outcomes == progress.outcomes
    state.settle(progress.outcomes)
    assert set(state.open) == dropped and set(state.settled) == set(truth)
    assert set(state.settled.values()) <= {"complete", "error"}


def test_a_gap_makes_every_open_job_due_at_once():
    jobs = ["a", "b", "c"]
    state = fresh_state(jobs, fallback_at=10_000.0, end_at=20_000.0)
    progress = state.progress()
    progress.observe(JournalRecord(seq=1, since=None, last="p1", recorded_at=NOW.isoformat(), events=(event("a", 1),)))
    progress.observe(JournalRecord(seq=2, since="p1", last="p9", recorded_at=NOW.isoformat(),
                                   gap=Gap("expired", "p1", None, "seek=-P6DT23H")))
    decision = progress.decide(0.0)
    assert decision["status"] == "gap" and decision["timed_out_job_ids"] == ["b", "c"]
    assert decision["complete_job_ids"] == ["a"]


def test_postponed_jobs_never_wait_past_the_deadline_and_the_state_round_trips():
    state = fresh_state(["a", "b"], fallback_at=5.0, end_at=100.0)
    state.settle({"a": "complete", "zzz": "complete"})  # a job not waited on is ignored
    state.postpone(["b", "a"], until=500.0)
    assert state.open == {"b": "gdpr"} and state.fallback_at == {"b": 100.0} and state.settled == {"a": "complete"}
    assert WaitState.from_json(state.to_json()) == state


def records_with(*events: JobEvent, gap: Gap | None = None) -> list[JournalRecord]:
    return [JournalRecord(seq=1, since=None, last=None, recorded_at=NOW.isoformat(), events=events, gap=gap)]


def test_reconcile_sweeps_first_after_a_gap_daily_and_when_events_are_many():
    swept = ConsumerState(seq=3, last_sweep_at=(NOW - timedelta(hours=2)).isoformat())
    common = {"now": NOW, "sweep_every": timedelta(hours=24), "detail_reads_max": 2}

    assert plan_reconcile(["a"], [], ConsumerState(), **common).reason == "first run"
    plan = plan_reconcile(["a", "b"], records_with(event("a", 1), event("x", 2), event("b", 3, scope="product")),
                          swept, **common)
    assert (plan.sweep, plan.detail_job_ids) == (False, ("a",))  # another job's event, a product event: not read
    gap = Gap("expired", "p", None, "seek=-P6DT23H")
    assert plan_reconcile(["a"], records_with(gap=gap), swept, **common).reason == "gap"
    stale = ConsumerState(seq=3, last_sweep_at=(NOW - timedelta(hours=25)).isoformat())
    assert plan_reconcile(["a"], [], stale, **common).reason == "sweep due"
    many = records_with(*(event(job, i) for i, job in enumerate("abc")))
    assert plan_reconcile(list("abc"), many, swept, **common).reason == "many events"
    assert ConsumerState.from_json(swept.to_json()) == swept
