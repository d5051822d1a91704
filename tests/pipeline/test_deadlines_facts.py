"""Deadline facts recorded at intake: the same (key, regulation, received day) as the subjects, without identities."""

from __future__ import annotations

from datetime import UTC, datetime

from privacy_pipeline.batching import plan_batches
from privacy_pipeline.deadlines import deadline_facts, deadline_items, iter_deadline_facts

from .helpers import subject


def test_facts_hold_keys_and_received_days_only():
    subjects = [subject("a", received_at=datetime(2025, 6, 1, 23, 59, tzinfo=UTC)), subject("b", received_at=None),
                subject("c", received_at=datetime(2025, 6, 1, 1, 0, tzinfo=UTC))]
    (batch,) = plan_batches(subjects)
    facts = deadline_facts(batch)

    assert facts == {"regulation": "gdpr", "received": {"": ["b"], "2025-06-01": ["a", "c"]}}
    assert "@" not in str(facts), "no identity value"
    from_facts = deadline_items(iter_deadline_facts([facts]), [{"userKey": "a", "status": "complete"}])
    from_subjects = deadline_items(batch.subjects, [{"userKey": "a", "status": "complete"}])
    day = lambda item: (item[0], item[1], item[2].date() if isinstance(item[2], datetime) else item[2], item[3])  # noqa: E731
    assert sorted(map(day, from_facts)) == sorted(map(day, from_subjects))
