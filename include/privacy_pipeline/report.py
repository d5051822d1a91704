"""The run report, its accounting invariants, and the rejects / jobs files.

`build_report` only adds up what the run's tasks recorded (intake.json, the submit tasks' XComs, the
jobs records); `check_accounting` then verifies that those independent counts agree, and raises
`AccountingError` naming every invariant that does not hold, so a run that lost or doubled
something fails loudly instead of reporting success.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, BinaryIO, TextIO

from privacy_pipeline.models import Reject

REJECT_COLUMNS = ("source", "row", "line", "request_id", "field", "reason")
#: intake.json's physical-line accounting: lines_read = the sum of the other three.
LINE_COUNTS = ("lines_read", "lines_header", "lines_blank", "lines_in_records")
#: Cells starting with these are formulas to a spreadsheet (OWASP "CSV injection").
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
ARCHIVED = ("archived", "already_archived")
#: Quarantine is final: a retried archive task finds the record and reports it quarantined again.
QUARANTINED = ("quarantined", "already_quarantined")
CONTENT_PENDING = "content_pending"


class AccountingError(Exception):
    """The report's counts do not add up; `problems` lists every broken invariant."""

    def __init__(self, problems: list[str]):
        super().__init__("report accounting failed:\n- " + "\n- ".join(problems))
        self.problems = problems


def build_report(
    *,
    intake: Mapping[str, Any],
    submissions: Sequence[Mapping[str, Any]],
    job_records: Iterable[Mapping[str, Any]],
    rejects_key: str,
    jobs_key: str,
    logical_date: str | None = None,
    run_id: str | None = None,
    deadlines: Mapping[str, Any] | None = None,
    api_posts: int | None = None,
) -> dict[str, Any]:
    """Assemble report.json from the run's records.

    :param intake: what intake recorded: rows_read, rows_rejected, rows_in_subjects, subjects,
        batches [{batch_id, subjects, jobs_expected}], carried [{batch_id, subjects[, jobs_expected]}].
    :param submissions: the submit tasks' summaries: submitted_subjects, postponed_subjects,
        dry_run_subjects, api_posts, jobs, batch_ids (and jobs_expected when the task knows it).
    :param job_records: one per job (jobs.jsonl): jobId, userKey, action, status, productResponses,
        and `archive` (ARCHIVED or QUARANTINED outcomes) for stored content.
    """
    records = list(job_records)
    jobs_by_status = Counter(str(r.get("status") or "unknown") for r in records)
    complete_access = [r for r in records if _is_complete_access(r)]
    archive_outcomes = Counter(r.get("archive") or CONTENT_PENDING for r in complete_access)
    stray_archives = sum(1 for r in records if r.get("archive") and not _is_complete_access(r))
    job_ids = Counter(str(r.get("jobId")) for r in records)

    report: dict[str, Any] = {
        "logical_date": logical_date,
        "run_id": run_id,
        # Physical lines (intake.json from `IntakeResult.line_counts()`); None when intake did not record them.
        **{name: _optional_int(intake.get(name)) for name in LINE_COUNTS},
        "rows_read": int(intake.get("rows_read", 0)),
        "rows_rejected": int(intake.get("rows_rejected", 0)),
        "rows_in_subjects": int(intake.get("rows_in_subjects", 0)),
        # Opt-out-of-sale rows in the shared inbox belong to privacy_opt_out: counted, not rejected.
        "rows_routed_to_opt_out": int(intake.get("rows_routed_to_opt_out", 0)),
        "subjects_routed_to_opt_out": int(intake.get("subjects_routed_to_opt_out", 0)),
        "subjects_intake": int(intake.get("subjects", 0)),
        "subjects_carried_in": sum(int(c.get("subjects", 0)) for c in intake.get("carried") or []),
        # Batches an earlier run staged or postponed (or submitted, then died before unlisting): this run
        # submits or recovers them, archives their jobs and counts them here, so a crashed night shows up.
        "batches_carried_in": len(intake.get("carried") or []),
        "subjects_submitted": _total(submissions, "submitted_subjects"),
        "subjects_postponed": _total(submissions, "postponed_subjects"),
        "subjects_dry_run": _total(submissions, "dry_run_subjects"),
        "batches_submitted": _total(submissions, "submitted_batches"),
        "batches_postponed": _total(submissions, "postponed_batches"),
        "batches_over_budget": _total(submissions, "over_budget_batches"),
        "batches_over_quota": _total(submissions, "over_quota_batches"),
        "subjects_over_quota": _total(submissions, "over_quota_subjects"),
        "subjects_over_budget": _total(submissions, "over_budget_subjects"),
        "jobs_expected": _jobs_expected(intake, submissions),
        "jobs_created": _total(submissions, "jobs"),
        "jobs_recorded": len(records),
        "duplicate_job_records": sorted(job_id for job_id, n in job_ids.items() if n > 1),
        # The ledger's per-run count when given (every try of every submit task); else the summaries'.
        "api_posts": _total(submissions, "api_posts") if api_posts is None else int(api_posts),
        "jobs_by_status": dict(sorted(jobs_by_status.items())),
        "complete_access_jobs": len(complete_access),
        "content_archived": sum(archive_outcomes[o] for o in ARCHIVED),
        "content_quarantined": sum(archive_outcomes[o] for o in QUARANTINED),
        "content_pending": archive_outcomes[CONTENT_PENDING],
        "content_other": sum(n for o, n in archive_outcomes.items() if o not in (*ARCHIVED, *QUARANTINED, CONTENT_PENDING)),
        "archive_on_other_jobs": stray_archives,
        "product_outcomes": product_outcomes(records),
        "rejects_key": rejects_key,
        "jobs_key": jobs_key,
    }
    if deadlines is not None:
        report["deadlines"] = dict(deadlines)
    return report


def product_outcomes(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """responseMsgCode counts per product (a product still working counts under its status)."""
    outcomes: dict[str, Counter] = defaultdict(Counter)
    for record in records:
        for response in record.get("productResponses") or []:
            code = response.get("responseMsgCode") or response.get("status") or "unknown"
            outcomes[str(response.get("product") or "unknown")][str(code)] += 1
    return {product: dict(sorted(counts.items())) for product, counts in sorted(outcomes.items())}


def check_accounting(report: Mapping[str, Any]) -> None:
    """Raise `AccountingError` listing every invariant of `report` that does not hold."""
    problems: list[str] = []

    def expect(name: str, left: int, right: int, detail: str) -> None:
        if left != right:
            problems.append(f"{name}: {detail} ({left} != {right})")

    r = report
    if r.get("lines_read") is not None:
        expect("lines", r["lines_read"], sum(int(r.get(name) or 0) for name in LINE_COUNTS[1:]),
               "lines_read must equal header + blank lines + lines in data records (rows)")
    expect("rows", r["rows_read"], r["rows_in_subjects"] + r["rows_rejected"] + r.get("rows_routed_to_opt_out", 0),
           "rows_read must equal rows in subjects + rows_rejected + rows routed to opt-out")
    expect("subjects", r["subjects_intake"] + r["subjects_carried_in"],
           r["subjects_submitted"] + r["subjects_postponed"] + r["subjects_dry_run"],
           "subjects taken in (+ carried in) must equal submitted + postponed + dry-run")
    if r["jobs_expected"] is not None:
        expect("jobs", r["jobs_created"], r["jobs_expected"],
               "jobs_created must equal the sum of subjects x actions over submitted batches")
    expect("job records", r["jobs_recorded"], r["jobs_created"], "every created job needs exactly one record")
    if r["duplicate_job_records"]:
        problems.append(f"job records: {len(r['duplicate_job_records'])} job id(s) recorded more than once")
    expect("statuses", sum(r["jobs_by_status"].values()), r["jobs_recorded"],
           "every job must be in exactly one status")
    expect("content", r["content_archived"] + r["content_quarantined"] + r["content_pending"],
           r["complete_access_jobs"],
           "archived + quarantined + not yet archivable must equal complete access jobs")
    if r["content_other"]:
        problems.append(f"content: {r['content_other']} complete access job(s) with an unknown archive outcome")
    if r["archive_on_other_jobs"]:
        problems.append(f"content: {r['archive_on_other_jobs']} archive outcome(s) on jobs that are not "
                        "complete access jobs")
    if problems:
        raise AccountingError(problems)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _is_complete_access(record: Mapping[str, Any]) -> bool:
    return record.get("status") == "complete" and record.get("action") == "access"


def _total(items: Sequence[Mapping[str, Any]], key: str) -> int:
    return sum(int(item.get(key) or 0) for item in items)


def _jobs_expected(intake: Mapping[str, Any], submissions: Sequence[Mapping[str, Any]]) -> int | None:
    """Σ subjects x actions over the batches submitted; None when a submitted batch's count is unknown."""
    if submissions and all("jobs_expected" in s for s in submissions):
        return _total(submissions, "jobs_expected")
    known = {b["batch_id"]: b.get("jobs_expected") for b in [*(intake.get("batches") or []),
                                                              *(intake.get("carried") or [])]}
    expected = 0
    for submission in submissions:
        for batch_id in submission.get("batch_ids") or []:
            count = known.get(batch_id)
            if count is None:
                return None
            expected += int(count)
    return expected


# ------------------------------------------------------------------------------------------ files


def write_rejects_csv(rejects: Iterable[Reject], fileobj: BinaryIO | TextIO) -> int:
    """Write rejects.csv (UTF-8) to a binary or text file; returns the number of rows written.

    Columns: source,row,line,request_id,field,reason, then the rejected rows' own columns in
    first-seen order. Every cell a spreadsheet would take for a formula gets a leading `'`.
    """
    rejects = list(rejects)
    extra: dict[str, None] = {}
    for reject in rejects:
        extra.update(dict.fromkeys(k for k in reject.raw if k not in REJECT_COLUMNS))
    header = [*REJECT_COLUMNS, *extra]
    text: Any = fileobj if isinstance(fileobj, io.TextIOBase) else io.TextIOWrapper(fileobj, "utf-8", newline="")
    try:
        writer = csv.writer(text)  # RFC 4180 CRLF: cells holding a bare \r or \n get quoted
        writer.writerow([neutralise_formula(cell) for cell in header])  # input column names are input too
        for reject in rejects:
            cells = [reject.source, reject.row, "" if reject.line is None else reject.line, reject.request_id,
                     reject.field, reject.reason, *(reject.raw.get(k, "") for k in extra)]
            writer.writerow([neutralise_formula(cell) for cell in cells])
        text.flush()
    finally:
        if text is not fileobj:
            text.detach()  # leave the caller's binary file open
    return len(rejects)


def neutralise_formula(cell: Any) -> str:
    """`cell` as text, prefixed with `'` when a spreadsheet would evaluate it."""
    value = "" if cell is None else str(cell)
    if isinstance(cell, int | float) and not isinstance(cell, bool):
        return value  # our own row numbers, never formulas
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def jobs_jsonl(records: Iterable[Mapping[str, Any]]) -> Iterator[bytes]:
    """One JSON line per job record (streamed; join or write the parts)."""
    for record in records:
        yield json.dumps(record, ensure_ascii=False, separators=(",", ":"), default=str).encode("utf-8") + b"\n"


def merge_submissions(submissions: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One wait for a whole run: every submit task's job ids by regulation, and the widest window.

    Polling the list endpoint once per regulation for the whole run (not once per submit chunk) is
    what keeps waiting at about one call per 1000 open jobs per poll.
    """
    jobs_by_regulation: dict[str, list[str]] = defaultdict(list)
    from_dates, to_dates = [], []
    for submission in submissions:
        if not submission:
            continue
        for regulation, job_ids in (submission.get("jobs_by_regulation") or {}).items():
            jobs_by_regulation[regulation].extend(job_ids)
        if submission.get("jobs"):
            from_dates.append(submission["from_date"])
            to_dates.append(submission["to_date"])
    return {
        "jobs_by_regulation": {reg: sorted(set(ids)) for reg, ids in sorted(jobs_by_regulation.items())},
        "from_date": min(from_dates) if from_dates else None,
        "to_date": max(to_dates) if to_dates else None,
    }
