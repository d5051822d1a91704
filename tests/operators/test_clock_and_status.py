"""One clock and one job-status vocabulary: wall clock by default, `as_of` for rehearsals; `cancelled` is final."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from privacy_pipeline import status
from privacy_pipeline.clock import Clock, clock_from_setting
from privacy_pipeline.deadlines import deadline_items
from privacy_pipeline.errors import ConfigurationError
from privacy_pipeline.reconcile import JobState, decide

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


def test_an_as_of_clock_starts_there_and_moves_at_the_wall_clock_pace():
    ticks = iter([100.0, 100.0, 160.0])
    clock = Clock(NOW, monotonic=lambda: next(ticks))
    assert clock.now() == NOW
    assert clock.now() == NOW + timedelta(seconds=60)


def test_settings_empty_is_the_wall_clock_and_a_typo_is_a_configuration_error():
    assert clock_from_setting("").is_wall_clock and clock_from_setting(None).is_wall_clock
    assert clock_from_setting("2026-03-02").as_of == datetime(2026, 3, 2, tzinfo=UTC)
    assert clock_from_setting("2026-03-02T12:00:00Z").as_of == NOW
    with pytest.raises(ConfigurationError, match="as_of"):
        clock_from_setting("yesterday")


@pytest.mark.parametrize("adobe_status", ["cancelled", "CANCELLED", "error", "complete"])
def test_wait_reconcile_and_deadlines_agree_on_final_statuses(adobe_status):
    """The wait counts `cancelled` as failed and final; reconcile closes it; the deadline report keeps it open."""
    from adobe_privacy.protocol import FAILED_STATUSES, TERMINAL_STATUSES

    normalized = status.normalize(adobe_status)
    assert (normalized in TERMINAL_STATUSES) == status.is_final(normalized)
    assert (normalized in FAILED_STATUSES) == status.is_failed(normalized)
    job = JobState("j", "k", "delete", normalized, created=NOW - timedelta(days=60))
    decision = decide(job, archived=False, attempt=1, now=NOW)
    assert decision in {"final", "resubmit"}, "a final job is never left open nor called stuck"
    assert decision == ("resubmit" if normalized == status.ERROR else "final")


def test_a_cancelled_request_is_not_answered_for_the_deadline_report():
    class Subject:
        key, regulation, received_at = "k", "gdpr", NOW

    ((_key, _reg, _received, subject_status),) = deadline_items([Subject()], [{"userKey": "k", "status": "cancelled"}])
    assert subject_status == "cancelled" and subject_status not in {"complete"}
