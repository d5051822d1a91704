"""No silent green run: which input alerts a run raises, and the look-back that takes late files in once."""

from __future__ import annotations

import random
from datetime import date, timedelta

import pytest
from privacy_pipeline.errors import ConfigurationError
from privacy_pipeline.input_alerts import (
    DEFAULT_LOOKBACK_DAYS,
    INBOX_EMPTY,
    INPUT_REJECTED,
    LATE_INPUT,
    MAX_LOOKBACK_DAYS,
    ListedInput,
    SourceOutcome,
    intake_alerts,
    lookback_partitions,
    parse_lookback_days,
    partition_root,
    rejects_by_reason,
    select_inputs,
)

RUN_DAY = date(2026, 11, 22)
ROOT = "s3://privacy-inbox/requests/2026-11-22/"


def listed(key: str, day: date, sha: str) -> ListedInput:
    return ListedInput(key=key, partition=day, sha256=sha)


# ---- alerts --------------------------------------------------------------------------------------
def test_an_empty_or_mistyped_prefix_alerts_inbox_empty_and_says_the_run_did_nothing():
    outcome = intake_alerts(input_uri="s3://privacy-inbox/requets/2026-11-22/", objects_listed=0, sources=[])
    assert outcome.kinds == {INBOX_EMPTY}
    assert outcome.alerts[0].items == ("s3://privacy-inbox/requets/2026-11-22/",)
    assert outcome.nothing_to_do and "no input under s3://privacy-inbox/requets" in outcome.nothing_to_do


def test_a_whole_file_reject_alerts_input_rejected_even_when_other_files_were_good():
    sources = [
        SourceOutcome("good.csv", rows_read=10, rows_rejected=1),
        SourceOutcome("scan.png", rows_read=0, rows_rejected=1, whole_file_rejected=True),
    ]
    outcome = intake_alerts(input_uri=ROOT, objects_listed=2, sources=sources, batches=1)
    assert outcome.kinds == {INPUT_REJECTED}
    assert outcome.alerts[0].items == ("scan.png",)
    assert outcome.nothing_to_do is None  # a batch went out: the run did something


def test_a_file_whose_every_row_was_rejected_is_unusable():
    sources = [SourceOutcome("a.csv", rows_read=5, rows_rejected=5), SourceOutcome("b.csv", 3, 0)]
    outcome = intake_alerts(input_uri=ROOT, objects_listed=2, sources=sources, batches=1)
    assert outcome.alerts[0].kind == INPUT_REJECTED and outcome.alerts[0].items == ("a.csv",)


def test_a_run_with_nothing_usable_alerts_and_says_it_did_nothing():
    sources = [SourceOutcome("a.csv", rows_read=5, rows_rejected=5)]
    outcome = intake_alerts(input_uri=ROOT, objects_listed=1, sources=sources)
    assert outcome.kinds == {INPUT_REJECTED}
    assert outcome.nothing_to_do == (
        "This run did nothing: 5 rows read, 5 rejected, no batch to submit (see rejects.csv)"
    )


def test_a_rerun_over_input_already_taken_in_is_not_an_alert_but_says_it_did_nothing():
    outcome = intake_alerts(input_uri=ROOT, objects_listed=2, sources=[], skipped_as_taken_in=2)
    assert outcome.alerts == ()
    assert "all 2 input file(s)" in outcome.nothing_to_do and "taken in by an earlier run" in outcome.nothing_to_do


def test_carried_batches_mean_the_run_did_something_even_with_an_empty_inbox():
    outcome = intake_alerts(input_uri=ROOT, objects_listed=0, sources=[], carried_batches=3)
    assert outcome.kinds == {INBOX_EMPTY}  # still worth an alert: today's partition is empty
    assert outcome.nothing_to_do is None


def test_late_files_alert_with_their_keys_and_days():
    late = [listed("requests/2026-11-20/late.csv", date(2026, 11, 20), "a" * 64)]
    outcome = intake_alerts(
        input_uri=ROOT, objects_listed=1, sources=[SourceOutcome("late.csv", 4, 0)], late=late, batches=1
    )
    assert outcome.kinds == {LATE_INPUT}
    assert outcome.alerts[0].items == ("requests/2026-11-20/late.csv",)
    assert "2026-11-20" in outcome.alerts[0].message


def test_a_good_day_raises_no_alert():
    outcome = intake_alerts(input_uri=ROOT, objects_listed=1, sources=[SourceOutcome("a.csv", 40, 3)], batches=2)
    assert outcome.alerts == () and outcome.nothing_to_do is None


# ---- look-back: exactly once by hash -------------------------------------------------------------
def test_lookback_partitions_are_the_past_days_newest_first():
    assert lookback_partitions(RUN_DAY, 3) == [date(2026, 11, 21), date(2026, 11, 20), date(2026, 11, 19)]
    assert lookback_partitions(RUN_DAY, 0) == []
    assert partition_root("s3://inbox/requests/", date(2026, 11, 21)) == "s3://inbox/requests/2026-11-21/"
    with pytest.raises(ValueError):
        lookback_partitions(RUN_DAY, MAX_LOOKBACK_DAYS + 1)


def test_a_file_already_taken_in_is_skipped_wherever_it_lies():
    items = [listed("d20/a.csv", date(2026, 11, 20), "h1"), listed("d22/b.csv", RUN_DAY, "h2")]
    selection = select_inputs(items, taken_in={"h1"})
    assert [i.key for i in selection.fresh] == ["d22/b.csv"]
    assert [i.key for i in selection.already_taken] == ["d20/a.csv"]
    assert selection.late(RUN_DAY) == ()


def test_the_same_bytes_dropped_twice_are_taken_once_from_the_oldest_partition():
    items = [
        listed("d22/copy.csv", RUN_DAY, "h1"),
        listed("d21/orig.csv", date(2026, 11, 21), "h1"),
        listed("d21/orig.csv", date(2026, 11, 21), "h1"),  # listed twice (two look-back windows overlap)
    ]
    selection = select_inputs(items, taken_in=())
    assert [i.key for i in selection.fresh] == ["d21/orig.csv"]
    assert [i.key for i in selection.duplicates] == ["d22/copy.csv"]
    assert [i.key for i in selection.late(RUN_DAY)] == ["d21/orig.csv"]


@pytest.mark.parametrize("seed", range(40))
def test_select_inputs_against_an_oracle_over_consecutive_nights(seed):
    """Files land on random days (some late, some copies); every night looks back N days and records what
    it took in. Oracle: every distinct content that landed within reach is taken exactly once, by one
    night, never before it landed, and nothing is taken twice across nights."""
    rng = random.Random(seed)
    lookback = rng.randint(0, 4)
    start = date(2026, 11, 1)
    contents = [f"h{n}" for n in range(rng.randint(1, 12))]
    arrivals: list[tuple[date, ListedInput]] = []  # (day it became visible, object)
    for n in range(rng.randint(1, 20)):
        sha = rng.choice(contents)
        partition = start + timedelta(days=rng.randint(0, 9))
        landed = partition + timedelta(days=rng.choice([0, 0, 0, 1, 2, 6]))  # mostly on time, some late
        arrivals.append((landed, listed(f"{partition}/f{n}.csv", partition, sha)))

    taken: dict[str, date] = {}
    for offset in range(16):
        night = start + timedelta(days=offset)
        reach = {night, *lookback_partitions(night, lookback)}
        visible = [obj for landed, obj in arrivals if landed <= night and obj.partition in reach]
        selection = select_inputs(visible, taken_in=taken.keys())
        for item in selection.fresh:
            assert item.sha256 not in taken, "a content hash was taken in twice"
            taken[item.sha256] = night
        assert len({i.sha256 for i in selection.fresh}) == len(selection.fresh)

    for landed, obj in arrivals:
        within_reach = landed <= obj.partition + timedelta(days=lookback) and landed <= start + timedelta(days=15)
        if within_reach:
            assert obj.sha256 in taken, f"{obj} landed on {landed} within reach and was never taken in"
            assert taken[obj.sha256] <= max(landed, obj.partition)


# ---- settings and log lines ----------------------------------------------------------------------
@pytest.mark.parametrize(("value", "days"), [(None, DEFAULT_LOOKBACK_DAYS), ("", DEFAULT_LOOKBACK_DAYS), ("0", 0), (7, 7)])
def test_lookback_setting_parses(value, days):
    assert parse_lookback_days(value) == days


@pytest.mark.parametrize("value", ["three", "-1", "1.5", 32, True, "3 days"])
def test_a_malformed_lookback_setting_is_a_configuration_error_naming_the_setting(value):
    with pytest.raises(ConfigurationError, match="privacy_input_lookback_days"):
        parse_lookback_days(value)


def test_rejects_by_reason_counts_rules_not_rows_and_never_needs_values():
    rejects = [
        {"field": "request_id", "reason": "another row of this request (row 51) was rejected (received_at)",
         "value": "alice@example.com"},
        {"field": "request_id", "reason": "another row of this request (row 7) was rejected (received_at)"},
        {"field": "value", "reason": "value is empty"},
        {"field": "*", "reason": "exact duplicate of row 739"},
        {"field": "value", "reason": "value is empty"},
        {"field": "value", "reason": "value is empty"},
    ]
    assert rejects_by_reason(rejects) == [
        ("value", "value is empty", 3),
        ("request_id", "another row of this request (row N) was rejected (received_at)", 2),
        ("*", "exact duplicate of row N", 1),
    ]
    assert "alice" not in repr(rejects_by_reason(rejects))
    assert len(rejects_by_reason(rejects, limit=1)) == 1


def test_rejects_by_reason_reads_intakes_reject_objects_too():
    from privacy_pipeline.models import Reject

    rejects = [
        Reject(source="a.csv", row=3, request_id="r1", field="regulation", reason="unknown regulation 'gdrp'",
               raw={"value": "bob@example.com"}),
        Reject(source="b.png", row=0, request_id="", field="*", reason="not UTF-8 text"),
    ]
    assert rejects_by_reason(rejects) == [("*", "not UTF-8 text", 1), ("regulation", "unknown regulation 'gdrp'", 1)]
