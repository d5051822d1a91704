"""Yearly request metrics as California's regulations ask for them (11 CCR §7102).

A business that handles the personal information of 10 million or more consumers publishes, for the
previous calendar year: the number of requests to know, to delete and to opt out that it received,
complied with in whole or in part, and denied, and the median or mean number of days it took to
respond. This module computes those figures for any date range from plain records (the request index
and the intake rejects); it reads and writes nothing but the bytes it is given and returns.

Definitions (one place; the README's auditor section quotes them):

- **request type**: `access` is a request to know, `delete` a request to delete, `opt_out_of_sale`
  a request to opt out. A subject asking for `access|delete` counts once under each.
- **received**: the request's `received_at` falls in the range (inclusive dates, UTC).
- **complied in whole**: closed, and every product outcome of that action is a success.
- **complied in part**: closed, and at least one product outcome is something other than success
  (a product that found no data counts as success: it is Adobe's answer, not a failure).
- **not completed**: closed without a compliant answer (Adobe errored and the resubmission cap was
  reached). Listed so the counts add up; it is not "denied".
- **denied**: rejected at intake (the row never reached Adobe); reasons are grouped.
- **open**: not closed yet.
- **days to respond**: `closed_at - received_at` in days (fractional), over closed requests.

`received = whole + part + not_completed + denied + open` for every type, checked by `check_metrics`.
"""

from __future__ import annotations

import csv
import io
import re
import statistics
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

#: Request types as the regulation names them, keyed by our action words.
REQUEST_TYPES: dict[str, str] = {"access": "know", "delete": "delete", "opt_out_of_sale": "opt_out"}
#: Product outcome statuses that count as a success (Adobe's product response `status`).
SUCCESS_OUTCOMES = frozenset({"complete", "success", "completed"})
#: Request statuses that mean closed without a compliant answer.
NOT_COMPLETED_STATUSES = frozenset({"error", "failed", "cancelled", "resubmit_cap_reached"})
METRIC_COLUMNS = ("request_type", "received", "complied_in_whole", "complied_in_part", "not_completed",
                  "denied", "open", "median_days_to_respond", "mean_days_to_respond", "responded")


@dataclass(frozen=True)
class RequestFacts:
    """What the metrics need of one request and one action (keys only, never identity values)."""

    request_key: str
    action: str
    received_at: datetime
    closed_at: datetime | None = None
    status: str = "open"
    product_outcomes: tuple[str, ...] = ()

    @property
    def request_type(self) -> str:
        return REQUEST_TYPES.get(self.action, self.action)


@dataclass(frozen=True)
class DeniedRow:
    """One request denied at intake: its action (as written, may be invalid), date and reason."""

    action: str
    received_at: datetime | None
    reason: str


@dataclass
class TypeMetrics:
    request_type: str
    received: int = 0
    complied_in_whole: int = 0
    complied_in_part: int = 0
    not_completed: int = 0
    denied: int = 0
    open: int = 0
    days: list[float] = field(default_factory=list)
    denied_reasons: Counter = field(default_factory=Counter)

    def row(self) -> dict[str, Any]:
        median = round(statistics.median(self.days), 1) if self.days else None
        mean = round(statistics.fmean(self.days), 1) if self.days else None
        return {
            "request_type": self.request_type,
            "received": self.received,
            "complied_in_whole": self.complied_in_whole,
            "complied_in_part": self.complied_in_part,
            "not_completed": self.not_completed,
            "denied": self.denied,
            "open": self.open,
            "median_days_to_respond": median,
            "mean_days_to_respond": mean,
            "responded": len(self.days),
        }


def _utc(value: datetime | date | str | None) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime(value.year, value.month, value.day, tzinfo=UTC)


def reason_group(reason: str) -> str:
    """A reject reason with its row numbers and quoted values folded, so alike reasons group together."""
    text = re.sub(r"\d+", "N", reason.strip())
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "…", text)
    return text[:120] or "(no reason)"


def request_metrics(
    requests: Iterable[RequestFacts],
    denied: Iterable[DeniedRow],
    *,
    start: date,
    end: date,
) -> dict[str, Any]:
    """The metrics of every request received between `start` and `end` (inclusive, UTC days)."""
    by_type: dict[str, TypeMetrics] = {name: TypeMetrics(name) for name in REQUEST_TYPES.values()}

    def in_range(moment: datetime | None) -> bool:
        return moment is not None and start <= moment.date() <= end

    for facts in requests:
        received = _utc(facts.received_at)
        if received is None or not in_range(received):
            continue
        metrics = by_type.setdefault(facts.request_type, TypeMetrics(facts.request_type))
        metrics.received += 1
        closed = _utc(facts.closed_at)
        if closed is None:
            metrics.open += 1
            continue
        metrics.days.append((closed - received).total_seconds() / 86400)
        if facts.status in NOT_COMPLETED_STATUSES:
            metrics.not_completed += 1
        elif facts.product_outcomes and all(o in SUCCESS_OUTCOMES for o in facts.product_outcomes):
            metrics.complied_in_whole += 1
        elif not facts.product_outcomes and facts.status in SUCCESS_OUTCOMES:
            metrics.complied_in_whole += 1  # opt-out: Adobe's 202 is the whole answer, no products
        else:
            metrics.complied_in_part += 1
    for row in denied:
        moment = _utc(row.received_at)
        if not in_range(moment):
            continue
        for action in (row.action or "unknown").split("|"):
            name = REQUEST_TYPES.get(action.strip(), "unknown")
            metrics = by_type.setdefault(name, TypeMetrics(name))
            metrics.received += 1
            metrics.denied += 1
            metrics.denied_reasons[reason_group(row.reason)] += 1
    result = {
        "start": start.isoformat(),
        "end": end.isoformat(),
        "rows": [m.row() for m in by_type.values()],
        "denied_reasons": {m.request_type: dict(m.denied_reasons.most_common()) for m in by_type.values()
                           if m.denied_reasons},
    }
    check_metrics(result)
    return result


def check_metrics(result: Mapping[str, Any]) -> None:
    """Raise ValueError when a type's counts do not add up to what it received."""
    for row in result["rows"]:
        parts = sum(row[k] for k in ("complied_in_whole", "complied_in_part", "not_completed", "denied", "open"))
        if parts != row["received"]:
            raise ValueError(f"metrics for {row['request_type']} do not add up: {parts} != {row['received']}")


def metrics_csv(result: Mapping[str, Any]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=METRIC_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in result["rows"]:
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


def metrics_page(result: Mapping[str, Any]) -> bytes:
    """A small self-contained HTML page: the table, a bar chart (inline SVG) and the denial reasons."""
    import html

    esc = html.escape
    rows = result["rows"]
    series = ("complied_in_whole", "complied_in_part", "not_completed", "denied", "open")
    colours = ("#2e7d32", "#9ccc65", "#ef6c00", "#c62828", "#90a4ae")
    top = max([r["received"] for r in rows] + [1])
    bar_w, gap, height = 60, 40, 200
    bars = []
    for i, row in enumerate(rows):
        x, y = 50 + i * (bar_w + gap), height + 10
        for name, colour in zip(series, colours, strict=True):
            h = height * row[name] / top
            y -= h
            if h:
                bars.append(f'<rect x="{x}" y="{y:.1f}" width="{bar_w}" height="{h:.1f}" fill="{colour}">'
                            f"<title>{esc(name)}: {row[name]}</title></rect>")
        bars.append(f'<text x="{x + bar_w / 2}" y="{height + 28}" text-anchor="middle">'
                    f"{esc(row['request_type'])}</text>")
    legend = "".join(f'<span style="color:{c}">&#9632;</span> {esc(n)} ' for n, c in zip(series, colours, strict=True))
    width = 50 + len(rows) * (bar_w + gap)
    head = "".join(f"<th>{esc(c)}</th>" for c in METRIC_COLUMNS)
    body = "".join("<tr>" + "".join(f"<td>{esc(str('' if r[c] is None else r[c]))}</td>" for c in METRIC_COLUMNS)
                   + "</tr>" for r in rows)
    reasons = "".join(
        f"<h3>{esc(kind)}</h3><ul>" + "".join(f"<li>{n} × {esc(reason)}</li>" for reason, n in grouped.items())
        + "</ul>" for kind, grouped in result["denied_reasons"].items()
    )
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Privacy request metrics {esc(result['start'])} to {esc(result['end'])}</title>
<style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #999;padding:.2em .6em;text-align:right}}</style></head>
<body><h1>Privacy request metrics, {esc(result['start'])} to {esc(result['end'])}</h1>
<p>Per request type, as 11 CCR §7102 asks: received, complied with in whole or in part, denied, and the
median and mean days to respond. Denied means rejected at intake, before anything reached Adobe.</p>
<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height + 40}" role="img"
 aria-label="requests by outcome and type">{''.join(bars)}</svg>
<p>{legend}</p>
<table><tr>{head}</tr>{body}</table>
<h2>Denial reasons</h2>{reasons or '<p>none</p>'}
</body></html>
"""
    return page.encode("utf-8")
