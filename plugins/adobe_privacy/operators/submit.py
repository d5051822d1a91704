"""Submit step: each staged batch of a chunk to `POST /jobs`, exactly once (see `adobe_privacy.submission`)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from adobe_privacy.budget import BUDGET_TEMPLATE
from adobe_privacy.operators.base import ENCRYPTION_FIELDS, PrivacyBaseOperator, run_clock

if TYPE_CHECKING:
    from airflow.sdk import Context
    from privacy_pipeline.batching import Batch
    from privacy_pipeline.clock import Clock

    from adobe_privacy.budget import DailyJobBudget
    from adobe_privacy.submission import BatchSubmitter, JobsApi


class SubmitStepOperator(PrivacyBaseOperator):
    """
    What every submit step has: a chunk of staged batches, the daily budget, the run's clock, the held batches.

    :param batch_keys: S3 keys of the chunk's staged batches (templated).
    :param dry_run: count the batches, post nothing (templated).
    :param daily_job_budget: jobs per UTC day across every DAG (templated; default the Variable, else 20,000).
    :param as_of: the run's "now", ISO-8601 (templated; the DAGs pass the Variable `privacy_as_of`); empty: the wall clock.
    :param held: batches to hold back and postpone, batch id -> reason (templated; the approval gate's `held`).
    """

    def __init__(
        self,
        *,
        batch_keys: list[str],
        dry_run: bool = False,
        daily_job_budget: int | str | None = BUDGET_TEMPLATE,
        as_of: str | None = None,
        held: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.batch_keys = batch_keys
        self.dry_run = dry_run  # type: ignore[method-assign,assignment]  # shadows BaseOperator.dry_run()
        self.daily_job_budget = daily_job_budget
        self.as_of = as_of
        self.held = held

    def daily_budget(self, clock: Clock) -> DailyJobBudget:
        from privacy_pipeline.budget import parse_budget

        from adobe_privacy.budget import DailyJobBudget

        return DailyJobBudget(self.store, self.layout, parse_budget(self.daily_job_budget), clock)

    def submit_chunk(self, submitter: Any, context: Context, batches: Iterable[tuple[str, Batch]]) -> Any:
        """`submitter.submit_all` over the chunk, with this task's run, chunk index, dry run and held batches."""
        return submitter.submit_all(batches, run_id=context["run_id"], chunk=context["ti"].map_index or 0,
                                    dry_run=bool(self.dry_run), held=self.held or None)

    def staged_batches(self, seen: list[str] | None = None) -> Iterator[tuple[str, Batch]]:
        """The chunk's staged batches, loaded one at a time; their ids are appended to `seen`."""
        from privacy_pipeline.batching import load_batch

        for key in self.batch_keys:
            body = self.store.get_bytes(key)
            if body is None:
                raise RuntimeError(f"staged batch {key} is missing")
            batch = load_batch(body)
            if seen is not None:
                seen.append(batch.batch_id)
            yield key, batch


class SubmitPrivacyBatchesOperator(SubmitStepOperator):
    """
    Submit each staged batch of a chunk exactly once; postpone what Adobe or the daily budget refuses.

    Returns a small summary (XCom): job ids by regulation (for the wait), counts, and the list window.
    Its arguments are :class:`SubmitStepOperator`'s.
    """

    template_fields: Sequence[str] = ("batch_keys", "archive_uri", "dry_run", "daily_job_budget", "as_of", "held",
                                      *ENCRYPTION_FIELDS)
    ui_color = "#f2d0c4"
    #: The job API the batches go to (`adobe_privacy.submission`).
    jobs_api: ClassVar[str] = "privacy"

    def execute(self, context: Context) -> dict[str, Any]:
        submitter = self.submitter()
        batch_ids: list[str] = []
        summary = self.submit_chunk(submitter, context, self.staged_batches(batch_ids))
        if not bool(self.dry_run):
            # After the ledger: what it now says of each batch (submitted, postponed) goes to the index.
            entries = [entry.to_json() for entry in map(self.ledger.entry, batch_ids) if entry is not None]
            self.update_request_index(context, at=submitter.clock.now(), ledger_entries=entries)
        counts = summary.counts
        self.log.info("Chunk done: %d batches submitted (%d POSTs), %d postponed, %d jobs",
                      counts["submitted_batches"], counts["api_posts"], counts["postponed_batches"], counts["jobs"])
        return summary.as_xcom(submitter.clock.now())

    def submitter(self) -> BatchSubmitter:
        from adobe_privacy.submission import BatchSubmitter

        clock = run_clock(self.as_of)
        return BatchSubmitter(self.ledger, self.daily_budget(clock), self._jobs_api(), clock=clock,
                              open_index=self.jobs_api == "privacy")

    def _jobs_api(self) -> JobsApi:
        from adobe_privacy.submission import HygieneJobsApi, PrivacyJobsApi

        return (HygieneJobsApi if self.jobs_api == "hygiene" else PrivacyJobsApi)(self.hook)
