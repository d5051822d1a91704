"""The legal-deadline part of a run report: summary, chart (PNG + HTML) beside report.json, overdue alert."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adobe_privacy.notifiers import send_alert

if TYPE_CHECKING:
    from airflow.sdk import BaseNotifier
    from privacy_pipeline.deadlines import DeadlineFact
    from privacy_pipeline.layout import RunLayout
    from privacy_pipeline.models import Subject

    from adobe_privacy.storage import PrivacyArchiveStore


def iter_run_subjects(store: PrivacyArchiveStore, intake: dict[str, Any] | None) -> Iterator[Subject | DeadlineFact]:
    """Every subject a run staged or carried in, from the deadline facts intake recorded.

    Only a batch listed before intake recorded facts (an older pending marker) is read back whole.
    """
    from privacy_pipeline.batching import load_batch
    from privacy_pipeline.deadlines import iter_deadline_facts

    for item in [*((intake or {}).get("batches") or []), *((intake or {}).get("carried") or [])]:
        if item.get("deadline"):
            yield from iter_deadline_facts([item["deadline"]])
            continue
        body = store.get_bytes(item["key"])
        if body is not None:
            yield from load_batch(body).subjects


def write_deadline_outputs(store: PrivacyArchiveStore, run: RunLayout, intake: dict[str, Any] | None,
                           records: list[dict[str, Any]], *, today: date, default_days: int, context: Any,
                           notifier: BaseNotifier | None) -> dict[str, Any]:
    """Summarise the run's subjects by legal deadline, write deadlines.png/.html, alert on overdue ones."""
    from privacy_pipeline.deadlines import deadline_items, deadline_summary, render_deadline_chart

    items = deadline_items(iter_run_subjects(store, intake), records)
    summary = deadline_summary(items, today, default_days=default_days)
    with tempfile.TemporaryDirectory(prefix="privacy-deadlines-") as tmp:
        png, page = Path(tmp) / "deadlines.png", Path(tmp) / "deadlines.html"
        render_deadline_chart(summary, png, page)
        store.put_file(png, run.deadlines_png, content_type="image/png")
        store.put_file(page, run.deadlines_html, content_type="text/html; charset=utf-8")
    send_alert(notifier, context, kind="overdue_subjects", items=[item["key"] for item in summary["overdue"]])
    return {**summary, "chart_png": store.uri(run.deadlines_png), "chart_html": store.uri(run.deadlines_html)}
