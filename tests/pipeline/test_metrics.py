"""Yearly request metrics against a fixture computed by hand (11 CCR §7102 figures)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime

import pytest
from privacy_pipeline.metrics import DeniedRow, RequestFacts, metrics_csv, metrics_page, request_metrics


def at(day: str, hour: int = 0) -> datetime:
    return datetime.fromisoformat(day).replace(hour=hour, tzinfo=UTC)


# Hand computation, range 2026-01-01 .. 2026-12-31:
# know (access): k1 whole, 10 days; k2 part (one product not success), 20 days; k3 open;
#   k4 received 2025-12-31: outside the range; k5 not completed (error), 30 days.
#   received 4 (k1 k2 k3 k5) + 1 denied row = 5; days 10, 20, 30 -> median 20.0, mean 20.0
# delete: d1 whole 5 days, d2 whole 6 days ("success" counts as success), d3 open
#   + denied 2 rows (one `access|delete` counts for know AND delete) -> received 3 + 2 = 5
#   days 5, 6 -> median 5.5, mean 5.5
# opt_out: o1 closed "complete" without products (the 202) 0.5 days -> whole; denied 0
REQUESTS = [
    RequestFacts("k1", "access", at("2026-02-01"), at("2026-02-11"), "complete", ("complete", "complete")),
    RequestFacts("k2", "access", at("2026-03-01"), at("2026-03-21"), "complete", ("complete", "error")),
    RequestFacts("k3", "access", at("2026-12-30"), None, "processing", ()),
    RequestFacts("k4", "access", at("2025-12-31"), at("2026-01-05"), "complete", ("complete",)),
    RequestFacts("k5", "access", at("2026-05-01"), at("2026-05-31"), "error", ("error",)),
    RequestFacts("d1", "delete", at("2026-04-01"), at("2026-04-06"), "complete", ("complete",)),
    RequestFacts("d2", "delete", at("2026-04-02"), at("2026-04-08"), "complete", ("success", "complete")),
    RequestFacts("d3", "delete", at("2026-11-30"), None, "submitted", ()),
    RequestFacts("o1", "opt_out_of_sale", at("2026-06-01"), at("2026-06-01", 12), "complete", ()),
]
DENIED = [
    DeniedRow("access|delete", at("2026-07-01"), "received_at is not an ISO-8601 date or date-time"),
    DeniedRow("delete", at("2026-07-02"), "exact duplicate of row 739"),
    DeniedRow("delete", at("2027-01-02"), "exact duplicate of row 12"),  # outside the range
]


def test_metrics_match_the_hand_computed_fixture():
    result = request_metrics(REQUESTS, DENIED, start=date(2026, 1, 1), end=date(2026, 12, 31))
    rows = {row["request_type"]: row for row in result["rows"]}
    assert rows["know"] == {
        "request_type": "know", "received": 5, "complied_in_whole": 1, "complied_in_part": 1,
        "not_completed": 1, "denied": 1, "open": 1, "median_days_to_respond": 20.0,
        "mean_days_to_respond": 20.0, "responded": 3,
    }
    assert rows["delete"] == {
        "request_type": "delete", "received": 5, "complied_in_whole": 2, "complied_in_part": 0,
        "not_completed": 0, "denied": 2, "open": 1, "median_days_to_respond": 5.5,
        "mean_days_to_respond": 5.5, "responded": 2,
    }
    assert rows["opt_out"]["received"] == 1 and rows["opt_out"]["complied_in_whole"] == 1
    assert rows["opt_out"]["median_days_to_respond"] == 0.5
    # Row numbers fold so alike reasons group; the range excludes 2027's duplicate.
    assert result["denied_reasons"]["delete"] == {
        "received_at is not an ISO-N date or date-time": 1, "exact duplicate of row N": 1}


def test_csv_and_page_carry_the_same_numbers():
    result = request_metrics(REQUESTS, DENIED, start=date(2026, 1, 1), end=date(2026, 12, 31))
    rows = list(csv.DictReader(io.StringIO(metrics_csv(result).decode())))
    assert [r["request_type"] for r in rows] == ["know", "delete", "opt_out"]
    assert rows[1]["denied"] == "2" and rows[0]["median_days_to_respond"] == "20.0"
    page = metrics_page(result).decode()
    assert "<svg" in page and "exact duplicate of row N" in page and "k1" not in page


def test_an_empty_range_reports_zeros_not_an_error():
    result = request_metrics(REQUESTS, DENIED, start=date(2030, 1, 1), end=date(2030, 12, 31))
    assert all(row["received"] == 0 and row["median_days_to_respond"] is None for row in result["rows"])
    assert "<svg" in metrics_page(result).decode()


@pytest.mark.parametrize("closed", [None, at("2026-02-02")])
def test_counts_always_add_up(closed):
    facts = [RequestFacts(f"r{i}", "access", at("2026-02-01"), closed, "complete", ("complete",) * (i % 3))
             for i in range(50)]
    row = request_metrics(facts, [], start=date(2026, 1, 1), end=date(2026, 12, 31))["rows"][0]
    assert row["received"] == 50
