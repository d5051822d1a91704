"""The nightly run over a partition as users fill it: several files, opt-out rows among the requests."""

from __future__ import annotations

import csv

from privacy_pipeline.report import check_accounting

from tests.dags.conftest import assert_exactly_once, write_input

HEADER = ["request_id", "action", "regulation", "namespace", "value", "type", "received_at", "include"]


def _append(path, rows):
    with path.open("a", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(rows)


def test_opt_out_rows_are_left_to_privacy_opt_out_not_rejected(nightly):
    """The inbox is shared with privacy_opt_out: its rows are counted as routed there, and add up."""
    source = nightly.tmp_path / "requests.csv"
    expected = write_input(source, rows=40, seed=11, bad_rows=[])
    _append(source, [
        ["oo-1", "opt_out_of_sale", "ccpa", "email", "oo1@example.com", "standard", "2026-03-01T00:00:00Z", ""],
        ["oo-1", "opt_out_of_sale", "ccpa", "ECID", "12345678901234567890", "standard", "2026-03-01T00:00:00Z", ""],
        ["oo-2", "opt_out_of_sale", "ccpa", "email", "oo2@example.com", "standard", "2026-03-01T00:00:00Z", ""],
    ])

    run = nightly.run("2026-04-01", input_uri=source)

    report = nightly.outputs(run).report
    check_accounting(report)
    assert report["rows_read"] == expected.rows_read + 3
    assert report["rows_rejected"] == 0
    assert report["rows_routed_to_opt_out"] == 3 and report["subjects_routed_to_opt_out"] == 2
    assert report["jobs_created"] == expected.jobs
    assert_exactly_once(nightly, expected.user_actions)


def test_a_request_id_reused_in_a_second_file_is_rejected_not_a_crash(nightly):
    """Two files dropped in one partition share a key: the run goes on, and the clash is a reject."""
    partition = nightly.tmp_path / "inbox"
    partition.mkdir()
    first = partition / "a.csv"
    expected = write_input(first, rows=30, seed=12, bad_rows=[])
    reused_key = sorted(key for key, _action in expected.user_actions)[0]
    second = partition / "b.csv"
    with second.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerow([reused_key, "delete", "gdpr", "email", "again@example.com", "standard",
                         "2026-03-01T00:00:00Z", ""])
        writer.writerow(["fresh-1", "access", "gdpr", "email", "fresh@example.com", "standard",
                         "2026-03-01T00:00:00Z", ""])

    run = nightly.run("2026-04-02", input_uri=partition)

    out = nightly.outputs(run)
    report = out.report
    check_accounting(report)
    assert report["rows_read"] == expected.rows_read + 2
    rejected = [row for row in out.rejects() if row["request_id"] == reused_key]
    assert rejected and all(row["source"].endswith("b.csv") for row in rejected), rejected
    assert_exactly_once(nightly, expected.user_actions | {("fresh-1", "access")})
