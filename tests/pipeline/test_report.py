"""Report: counts, accounting invariants (each one breakable), rejects.csv safety, jobs.jsonl."""

from __future__ import annotations

import csv
import io
import json

import pytest
from privacy_pipeline.models import Reject
from privacy_pipeline.report import (
    AccountingError,
    build_report,
    check_accounting,
    jobs_jsonl,
    write_rejects_csv,
)

INTAKE = {
    "rows_read": 10, "rows_rejected": 3, "rows_in_subjects": 7, "subjects": 3,
    "batches": [{"batch_id": "b-1", "subjects": 2, "jobs_expected": 3},
                {"batch_id": "b-2", "subjects": 1, "jobs_expected": 1}],
    "carried": [],
}
SUBMISSIONS = [
    {"batch_ids": ["b-1"], "submitted_subjects": 2, "postponed_subjects": 0, "api_posts": 1, "jobs": 3},
    {"batch_ids": [], "submitted_subjects": 0, "postponed_subjects": 1, "api_posts": 0, "jobs": 0},
]


def analytics(code):
    return {"product": "Analytics", "status": "complete", "responseMsgCode": code}


RECORDS = [
    {"jobId": "j1", "userKey": "a", "action": "access", "status": "complete", "archive": "archived",
     "productResponses": [analytics("PRVCY-6000-200")]},
    {"jobId": "j2", "userKey": "a", "action": "delete", "status": "error",
     "productResponses": [analytics("PRVCY-1022-400")]},
    {"jobId": "j3", "userKey": "b", "action": "access", "status": "complete", "archive": "quarantined",
     "productResponses": [analytics("PRVCY-6000-200"), {"product": "Profile", "status": "processing"}]},
]


def report(intake=INTAKE, submissions=SUBMISSIONS, records=RECORDS, **kwargs):
    return build_report(intake=intake, submissions=submissions, job_records=records,
                        rejects_key="s3://b/r/rejects.csv", jobs_key="s3://b/r/jobs.jsonl", **kwargs)


def test_a_consistent_run_adds_up():
    r = report(deadlines={"overdue_count": 0})
    check_accounting(r)
    assert r["jobs_expected"] == r["jobs_created"] == 3
    assert (r["subjects_submitted"], r["subjects_postponed"], r["api_posts"]) == (2, 1, 1)
    assert r["jobs_by_status"] == {"complete": 2, "error": 1}
    assert (r["content_archived"], r["content_quarantined"], r["content_pending"]) == (1, 1, 0)
    assert r["product_outcomes"] == {"Analytics": {"PRVCY-1022-400": 1, "PRVCY-6000-200": 2},
                                     "Profile": {"processing": 1}}
    assert r["rejects_key"].endswith("rejects.csv") and r["deadlines"] == {"overdue_count": 0}
    json.dumps(r)


@pytest.mark.parametrize(
    ("change", "broken"),
    [
        (lambda i, s, r: i.update(rows_rejected=2), "rows"),
        (lambda i, s, r: s[1].update(postponed_subjects=0), "subjects"),
        (lambda i, s, r: s[0].update(jobs=2), "jobs"),
        (lambda i, s, r: r.pop(), "job records"),
        (lambda i, s, r: r.append(dict(r[0])), "job records"),
        (lambda i, s, r: r[0].update(archive="shredded"), "content"),
        (lambda i, s, r: r[1].update(archive="archived"), "content"),
    ],
)
def test_each_broken_invariant_raises_and_is_named(change, broken):
    intake, submissions, records = dict(INTAKE), [dict(s) for s in SUBMISSIONS], [dict(r) for r in RECORDS]
    change(intake, submissions, records)
    with pytest.raises(AccountingError) as raised:
        check_accounting(report(intake, submissions, records))
    assert any(problem.startswith(broken) for problem in raised.value.problems), raised.value.problems


def test_every_broken_invariant_is_listed_at_once():
    r = report(dict(INTAKE, rows_read=99), [dict(SUBMISSIONS[0], jobs=5), SUBMISSIONS[1]])
    with pytest.raises(AccountingError) as raised:
        check_accounting(r)
    names = {p.split(":")[0] for p in raised.value.problems}
    assert {"rows", "jobs", "job records"} <= names


def test_pending_content_counts_and_unknown_expectations_skip_only_that_check():
    records = [dict(RECORDS[0], archive=None), *RECORDS[1:]]
    r = report(records=records)
    assert r["content_pending"] == 1
    check_accounting(r)
    carried = dict(INTAKE, carried=[{"batch_id": "b-old", "subjects": 1}], subjects=2)
    r = report(carried, [dict(SUBMISSIONS[0], batch_ids=["b-old", "b-1"])])
    assert r["jobs_expected"] is None


def test_rejects_csv_neutralises_formulas_and_keeps_the_original_columns():
    rejects = [
        Reject("in.csv", 2, "=HYPERLINK(\"x\")", "value", "not a valid email address",
               {"request_id": "=HYPERLINK(\"x\")", "value": "+1-555", "extra": "@SUM(A1)"}, line=3),
        Reject("in.jsonl", 4, "k", "*", "line is not valid JSON", {"json": "-2+3"}, line=None),
        Reject("in.csv", 5, "r", "value", "\tTab", {"value": "\rcr", "action": "safe"}, line=6),
    ]
    buffer = io.BytesIO()
    assert write_rejects_csv(rejects, buffer) == 3
    assert not buffer.closed
    rows = list(csv.reader(io.StringIO(buffer.getvalue().decode("utf-8"))))
    assert rows[0] == ["source", "row", "line", "request_id", "field", "reason", "value", "extra", "json", "action"]
    assert rows[1][:4] == ["in.csv", "2", "3", "'=HYPERLINK(\"x\")"]
    assert rows[1][6:8] == ["'+1-555", "'@SUM(A1)"]
    assert rows[2][2] == "" and rows[2][8] == "'-2+3"
    assert rows[3][5] == "'\tTab" and rows[3][6] == "'\rcr" and rows[3][9] == "safe"
    for row in rows[1:]:
        assert not any(cell[:1] in ("=", "+", "-", "@", "\t", "\r") for cell in row)


def test_rejects_csv_to_a_text_file():
    text = io.StringIO()
    write_rejects_csv([Reject("a.csv", 0, "", "file", "header is missing", {})], text)
    assert text.getvalue().splitlines()[1] == "a.csv,0,,,file,header is missing"


def test_jobs_jsonl_streams_one_line_per_record():
    lines = list(jobs_jsonl(RECORDS))
    assert len(lines) == 3 and all(line.endswith(b"\n") for line in lines)
    assert [json.loads(line) for line in lines] == RECORDS
