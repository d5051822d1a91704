"""Legal deadlines: when each request must be answered, who is late, and a chart of what is open.

The due date is `received_at` + the regulation's response window (`catalog.REGULATION_DEADLINE_DAYS`;
which windows are Adobe-documented and which are our default is said there). Only keys leave this
module: identity values never appear in a summary, a chart or a page.
"""

from __future__ import annotations

import base64
import html
from collections import Counter
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from privacy_pipeline import status as job_status
from privacy_pipeline.catalog import DEFAULT_DEADLINE_DAYS, deadline_days

if TYPE_CHECKING:
    from privacy_pipeline.batching import Batch

#: Statuses that answer a request; everything else (submitted, processing, error, cancelled, postponed,
#: ...) leaves it open: a failed job answered nobody.
CLOSED_STATUSES = frozenset({job_status.COMPLETE})
DUE_SOON_DAYS = 7
#: Buckets of days to deadline, in chart order: (label, lowest days, highest days).
BUCKETS: tuple[tuple[str, int | None, int | None], ...] = (
    ("overdue", None, -1),
    ("0-7 days", 0, 7),
    ("8-14 days", 8, 14),
    ("15-30 days", 15, 30),
    ("31+ days", 31, None),
)
NO_DATE = "no received_at"


def due_date(regulation: str, received_at: datetime | date | None,
             default_days: int = DEFAULT_DEADLINE_DAYS) -> date | None:
    """The last day to answer: received day + the regulation's window (None without a received date)."""
    if received_at is None:
        return None
    received_day = received_at.date() if isinstance(received_at, datetime) else received_at
    return received_day + timedelta(days=deadline_days(regulation, default_days))


def bucket_of(days_left: int | None) -> str:
    if days_left is None:
        return NO_DATE
    for label, low, high in BUCKETS:
        if (low is None or days_left >= low) and (high is None or days_left <= high):
            return label
    raise AssertionError("buckets cover every integer")


def deadline_summary(
    items: Iterable[tuple[str, str, datetime | date | None, str]],
    today: date,
    *,
    default_days: int = DEFAULT_DEADLINE_DAYS,
    max_listed: int = 1000,
) -> dict[str, Any]:
    """Summarise (key, regulation, received_at, status) items as of `today`.

    Returns counts of open items by bucket and status, and the keys (never identities) of open items
    that are overdue or due within 7 days, earliest due first, at most `max_listed` of each (the
    counts are always complete).
    """
    overdue: list[tuple[date, str]] = []
    due_soon: list[tuple[date, str]] = []
    by_bucket: dict[str, Counter] = {label: Counter() for label, _, _ in BUCKETS}
    by_bucket[NO_DATE] = Counter()
    by_status: Counter = Counter()
    total = closed = 0
    for key, regulation, received_at, status in items:
        total += 1
        if status in CLOSED_STATUSES:
            closed += 1
            continue
        by_status[status] += 1
        due = due_date(regulation, received_at, default_days)
        days_left = (due - today).days if due else None
        by_bucket[bucket_of(days_left)][status] += 1
        if due is None or days_left is None:
            continue
        if days_left < 0:
            overdue.append((due, key))
        elif days_left <= DUE_SOON_DAYS:
            due_soon.append((due, key))
    overdue.sort()
    due_soon.sort()
    return {
        "today": today.isoformat(),
        "default_days": default_days,
        "subjects": total,
        "closed": closed,
        "open": total - closed,
        "overdue_count": len(overdue),
        "due_within_7_days_count": len(due_soon),
        "overdue": [{"key": key, "due": due.isoformat()} for due, key in overdue[:max_listed]],
        "due_within_7_days": [{"key": key, "due": due.isoformat()} for due, key in due_soon[:max_listed]],
        "open_by_status": dict(sorted(by_status.items())),
        "open_by_bucket": {label: dict(sorted(counts.items())) for label, counts in by_bucket.items()},
    }


def render_deadline_chart(summary: dict[str, Any], png_path: str | PathLike[str],
                          html_path: str | PathLike[str]) -> None:
    """A stacked bar chart of open subjects by days to deadline and status (PNG), and a small
    self-contained HTML page with the PNG inlined and the same numbers as a table."""
    import matplotlib

    matplotlib.use("Agg")  # no display; must happen before pyplot is imported
    import matplotlib.pyplot as plt

    buckets = list(summary["open_by_bucket"])
    statuses = sorted({s for counts in summary["open_by_bucket"].values() for s in counts})
    figure, axes = plt.subplots(figsize=(8, 4.5), dpi=100)
    try:
        bottoms = [0] * len(buckets)
        for status in statuses:
            heights = [summary["open_by_bucket"][b].get(status, 0) for b in buckets]
            axes.bar(buckets, heights, bottom=bottoms, label=status)
            bottoms = [a + b for a, b in zip(bottoms, heights, strict=True)]
        axes.set_title(f"Open privacy requests by days to legal deadline ({summary['today']})")
        axes.set_ylabel("subjects")
        if statuses:
            axes.legend(title="status")
        figure.tight_layout()
        figure.savefig(png_path, format="png")
    finally:
        plt.close(figure)
    Path(html_path).write_text(_deadline_page(summary, Path(png_path).read_bytes(), buckets, statuses),
                               encoding="utf-8")


def _deadline_page(summary: dict[str, Any], png: bytes, buckets: list[str], statuses: list[str]) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(s)}</th>" for s in statuses)
    body = "".join(
        "<tr><th>{}</th>{}<td>{}</td></tr>".format(
            esc(bucket),
            "".join(f"<td>{summary['open_by_bucket'][bucket].get(s, 0)}</td>" for s in statuses),
            sum(summary["open_by_bucket"][bucket].values()),
        )
        for bucket in buckets
    )
    overdue = "".join(f"<li>{esc(item['key'])} (due {esc(item['due'])})</li>" for item in summary["overdue"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Privacy request deadlines {esc(summary['today'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:.2em .6em;text-align:right}}</style></head>
<body><h1>Privacy request deadlines, {esc(summary['today'])}</h1>
<p>{summary['open']} open of {summary['subjects']} subjects; {summary['overdue_count']} overdue,
{summary['due_within_7_days_count']} due within 7 days.</p>
<img alt="Open subjects by days to deadline and status" src="data:image/png;base64,{base64.b64encode(png).decode()}">
<table><tr><th>days to deadline</th>{head}<th>total</th></tr>{body}</table>
<h2>Overdue</h2><ul>{overdue or '<li>none</li>'}</ul>
</body></html>
"""


subject_status = job_status.subject_status


def deadline_items(subjects: Iterable[Any], job_records: Iterable[dict[str, Any]],
                   unsubmitted_status: str = "postponed") -> list[tuple[str, str, Any, str]]:
    """(key, regulation, received_at, status) per subject, for `deadline_summary`.

    `subjects` have `.key`, `.regulation`, `.received_at`; a subject without a job record was not
    submitted (postponed by back-pressure or the budget, or a dry run) and is open under `unsubmitted_status`.
    """
    by_key: dict[str, list[str]] = {}
    for record in job_records:
        # A privacy job answers one key; a work order answers every key it covers (`requestKeys`).
        for key in record.get("requestKeys") or [record.get("userKey")]:
            by_key.setdefault(str(key), []).append(str(record.get("status") or "unknown"))
    return [
        (subject.key, subject.regulation, subject.received_at,
         subject_status(by_key[subject.key]) if subject.key in by_key else unsubmitted_status)
        for subject in subjects
    ]


class DeadlineFact(NamedTuple):
    """What the deadline report needs of one subject: its request key, regulation and received day."""

    key: str
    regulation: str
    received_at: date | None


def deadline_facts(batch: Batch) -> dict[str, Any]:
    """A batch's deadline facts, recorded at intake so the report never reloads staged batches.

    `{"regulation", "received": {day or "": [request keys]}}`: keys only, never identity values.
    """
    from privacy_pipeline.models import SubjectTable

    subjects = batch.subjects
    pairs: Iterable[tuple[str, Any]]
    if isinstance(subjects, SubjectTable):
        values = subjects.field_values("received_at")
        pairs = zip(subjects.keys().to_pylist(), (values[c] for c in subjects.field_codes("received_at").tolist()),
                    strict=True)
    else:
        pairs = ((subject.key, subject.received_at) for subject in subjects)
    received: dict[str, list[str]] = {}
    for key, moment in pairs:
        day = (moment.date() if isinstance(moment, datetime) else moment).isoformat() if moment else ""
        received.setdefault(day, []).append(key)
    return {"regulation": batch.shape.regulation, "received": dict(sorted(received.items()))}


def iter_deadline_facts(facts: Iterable[dict[str, Any]]) -> Iterable[DeadlineFact]:
    """The subjects of recorded deadline facts (see `deadline_facts`)."""
    for item in facts:
        for day, keys in item["received"].items():
            received = date.fromisoformat(day) if day else None
            for key in keys:
                yield DeadlineFact(key, item["regulation"], received)
