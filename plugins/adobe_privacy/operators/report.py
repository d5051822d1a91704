"""Report step: the run's `jobs.jsonl`, deadlines and `report.json`, failing loudly when counts do not add up."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from adobe_privacy.links import DeadlinesChartLink, RejectedRowsLink, RunFolderLink, RunReportLink
from adobe_privacy.notifiers import PrivacyAlertLogNotifier
from adobe_privacy.operators.base import (
    ENCRYPTION_FIELDS,
    PrivacyBaseOperator,
    materialize,
    run_clock,
    run_partition,
)

if TYPE_CHECKING:
    from airflow.sdk import BaseNotifier, Context
    from privacy_pipeline.layout import RunLayout


HEADLINE = ("rows_read", "rows_rejected", "subjects_submitted", "jobs_created", "api_posts", "content_archived")


class PrivacyRunReportOperator(PrivacyBaseOperator):
    """
    Write the run's `jobs.jsonl` (the archive parts, streamed), deadlines and `report.json`.

    The report is written before the accounting check, so a failed check still leaves the evidence.

    :param submissions: the submit tasks' summaries (templated; their XComArg).
    :param deadline_default_days: the legal window of a regulation without one (templated).
    :param overdue_notifier: fired with the overdue subjects' keys (default: log at ERROR).
    :param as_of: the run's "now", ISO-8601 (templated; the DAGs pass the Variable `privacy_as_of`); empty: the wall clock.
    """

    template_fields: Sequence[str] = ("archive_uri", "submissions", "deadline_default_days", "as_of",
                                      *ENCRYPTION_FIELDS)
    ui_color = "#d9c4f2"
    operator_extra_links = (RunFolderLink(), RunReportLink(), RejectedRowsLink(), DeadlinesChartLink())

    def __init__(
        self,
        *,
        submissions: list[dict[str, Any]] | Any,
        deadline_default_days: int = 30,
        overdue_notifier: BaseNotifier | None = None,
        as_of: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.submissions = submissions
        self.deadline_default_days = deadline_default_days
        self.overdue_notifier = overdue_notifier if overdue_notifier is not None else PrivacyAlertLogNotifier()
        self.as_of = as_of

    def execute(self, context: Context) -> dict[str, Any]:
        from privacy_pipeline.report import AccountingError, build_report, check_accounting

        from adobe_privacy.deadline_report import write_deadline_outputs

        run = self.run_layout(context)
        self.publish_run_links(context, run, report=run.report, rejects=run.rejects, deadlines=run.deadlines_html)
        intake = self.store.get_json(run.intake) or {}
        records = self._join_job_parts(run)
        deadlines = write_deadline_outputs(self.store, run, intake, records, context=context,
                                           today=run_clock(self.as_of).today(),
                                           default_days=int(self.deadline_default_days),
                                           notifier=self.overdue_notifier)
        batch_ids = [b["batch_id"] for b in [*intake.get("batches", []), *intake.get("carried", [])]]
        report = build_report(
            intake=intake,
            submissions=[s for s in materialize(self.submissions) if s],
            job_records=records,
            rejects_key=self.store.uri(run.rejects),
            jobs_key=self.store.uri(run.jobs),
            logical_date=run_partition(context),
            run_id=context["run_id"],
            deadlines=deadlines,
            api_posts=self.ledger.posts_of_run(batch_ids, context["run_id"]),
        )
        # No silent green run: what intake alerted on, and a run that did nothing, are in the report too.
        report["input_alerts"] = intake.get("alerts") or []
        report["nothing_to_do"] = intake.get("nothing_to_do")
        try:
            check_accounting(report)
        except AccountingError as err:
            report["accounting_errors"] = err.problems
            self.store.put_json(run.report, report)
            raise
        self.store.put_json(run.report, report)
        # The archive steps indexed the job records; the requests they closed get their evidence packs.
        requests_of_run = {str(r["userKey"]) for r in records if r.get("userKey")}
        del records  # ~20,000 job records at Adobe's cap: not held while the packs are written
        self.write_evidence_packs(requests_of_run, at=run_clock(self.as_of).now())
        headline = {name: report.get(name) for name in HEADLINE}
        self.log.info("Report written to %s: %s; jobs by status %s; deadlines: %d overdue, %d due within 7 days",
                      self.store.uri(run.report), headline, report["jobs_by_status"],
                      deadlines.get("overdue_count", 0), deadlines.get("due_within_7_days_count", 0))
        return {"report_key": run.report, **headline}

    def _join_job_parts(self, run: RunLayout) -> list[dict[str, Any]]:
        """Concatenate the archive tasks' parts into `jobs.jsonl` (part by part); return the records."""
        records: list[dict[str, Any]] = []
        with tempfile.SpooledTemporaryFile(max_size=16 * 1024**2) as jobs_file:
            for part in sorted(self.store.list_keys(run.jobs_parts_prefix) or []):
                body = self.store.get_bytes(part) or b""
                jobs_file.write(body)
                records.extend(json.loads(line) for line in body.splitlines() if line.strip())
            jobs_file.seek(0)
            self.store.put_fileobj(jobs_file, run.jobs, content_type="application/x-ndjson")
        return records
