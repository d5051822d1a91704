"""Every sensor of the provider: waits for Privacy Service jobs (deferrable) and for Data Hygiene jobs."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, Context, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowSensorTimeout
from privacy_pipeline.events import DEFAULT_REGISTRATION_ID

from adobe_privacy.exceptions import PrivacyServiceError
from adobe_privacy.links import PrivacyServiceJobsLink
from adobe_privacy.protocol import DEFAULT_CONN_ID
from adobe_privacy.protocol.jobs import FAILED_STATUSES, MISSING_STATUS, TERMINAL_STATUSES
from adobe_privacy.triggers import MAX_INLINE_JOB_IDS, PrivacyJobsTrigger, bounded_summary

if TYPE_CHECKING:
    # The hook module imports requests and aiohttp (through the HTTP provider): built at run time,
    # never imported while a DAG file is parsed.
    from adobe_privacy.hooks import PrivacyServiceHook

EVENT_STATUSES = ("success", "timeout", "error")
WAIT_EVENT_STATUSES = ("events", "fallback", "gap", "error")
#: The event-driven wait's fallback to the list endpoint, in seconds: a Variable, rendered at run time.
EVENT_FALLBACK_SECONDS = "{{ var.value.get('privacy_event_fallback_seconds', 7200) }}"
# The trigger reports its own timeout at ``end_at``; Airflow's deferral timeout is only a backstop.
DEFERRAL_TIMEOUT_GRACE = timedelta(minutes=10)


def validate_jobs_event(event: Any) -> dict[str, Any]:
    """Check an event from :class:`PrivacyJobsTrigger`; anything unexpected fails loudly."""
    if not isinstance(event, Mapping) or event.get("status") not in EVENT_STATUSES:
        raise AirflowException(f"PrivacyJobsSensor resumed with an invalid event: {event!r}")
    if event["status"] == "error":
        if not isinstance(event.get("message"), str):
            raise AirflowException(f"PrivacyJobsSensor resumed with an invalid error event: {event!r}")
        return dict(event)
    counts, open_jobs, error_ids = event.get("counts"), event.get("open"), event.get("error_job_ids")
    if not isinstance(event.get("error_count", 0), int):
        raise AirflowException(f"PrivacyJobsSensor resumed with a malformed error count: {event!r}")
    if not (isinstance(counts, Mapping) and isinstance(open_jobs, int) and isinstance(error_ids, list)):
        raise AirflowException(
            f"PrivacyJobsSensor resumed with a malformed {event['status']} event: {event!r}"
        )
    if event["status"] == "success" and open_jobs != 0:
        raise AirflowException(f"PrivacyJobsSensor resumed with a success event but {open_jobs} open jobs")
    return dict(event)


class PrivacyJobsSensor(BaseSensorOperator):
    """
    Wait until none of the given Privacy Service jobs is open; return a summary (XCom).

    Pokes once; if jobs are still open it defers to :class:`PrivacyJobsTrigger` (by default), which
    waits in the triggerer instead of a worker slot, polling the LIST endpoint. Returns
    ``{"status": "success"|"timeout", "counts": {status: n}, "open": n, "error_job_ids": [...]}``.
    Errored jobs do not fail the sensor: they are reported for the caller to resubmit.

    :param jobs_by_regulation: ``{regulation: [job ids]}`` (templated; typically the submit task's XComArg).
    :param from_date: first day of the submission window, ``YYYY-MM-DD`` (templated).
    :param to_date: last day of the submission window (templated).
    :param adobe_privacy_conn_id: the ``adobe_privacy_service`` connection.
    :param deferrable: wait in the triggerer (default) or in this worker slot (poke/reschedule mode).
    :param fail_on_timeout: fail when jobs are still open at ``timeout``; by default report them instead.
    :param max_poll_interval: cap on the trigger's growing poll interval, in seconds.
    """

    template_fields: Sequence[str] = ("jobs_by_regulation", "from_date", "to_date")
    template_fields_renderers = {"jobs_by_regulation": "json"}
    operator_extra_links = (PrivacyServiceJobsLink(),)

    def __init__(
        self,
        *,
        jobs_by_regulation: dict[str, list[str]] | Any | None,
        from_date: str | None = None,
        to_date: str | None = None,
        adobe_privacy_conn_id: str = DEFAULT_CONN_ID,
        deferrable: bool = True,
        fail_on_timeout: bool = False,
        max_poll_interval: float = 3600.0,
        **kwargs: Any,
    ) -> None:
        # Privacy jobs take hours to days: polling every minute only burns API quota.
        kwargs.setdefault("poke_interval", 900)
        super().__init__(**kwargs)
        self.jobs_by_regulation = jobs_by_regulation or {}
        self.from_date = from_date
        self.to_date = to_date
        self.adobe_privacy_conn_id = adobe_privacy_conn_id
        self.deferrable = deferrable
        self.fail_on_timeout = fail_on_timeout
        self.max_poll_interval = max_poll_interval
        #: Set when the ids are too many for the trigger's kwargs: the batches whose ledger entries hold them.
        self.ledger_ref: dict[str, Any] | None = None

    @cached_property
    def hook(self) -> PrivacyServiceHook:
        from adobe_privacy.hooks import PrivacyServiceHook

        return PrivacyServiceHook(self.adobe_privacy_conn_id)

    def _summarize(self) -> dict[str, Any]:
        return bounded_summary(self.hook.summarize_jobs(
            self.jobs_by_regulation, from_date=self.from_date, to_date=self.to_date
        ))

    def _no_jobs(self) -> dict[str, Any] | None:
        """The result when there is nothing to wait for, else None."""
        if any(self.jobs_by_regulation.values()):
            return None
        self.log.info("No jobs to wait for")
        return {"status": "success", "counts": {}, "open": 0, "error_count": 0, "error_job_ids": []}

    def poke(self, context: Context) -> PokeReturnValue:
        summary = self._summarize()
        self.log.info("%d jobs open; counts %s", summary["open"], summary["counts"])
        return PokeReturnValue(summary["open"] == 0, {"status": "success", **summary})

    def publish_link(self, context: Context) -> None:
        """The org's jobs in Adobe's Privacy Service UI (the connection extra `privacy_ui_url`, else Adobe's)."""
        from adobe_privacy.links import publish_privacy_ui_link

        if "ti" in context:  # a direct `execute()` call without a task instance (a unit test) publishes nothing
            extra = self.hook.get_connection(self.adobe_privacy_conn_id).extra_dejson
            publish_privacy_ui_link(context, extra.get("privacy_ui_url"), self.adobe_privacy_conn_id, self.log)

    def execute(self, context: Context) -> Any:
        self.publish_link(context)
        nothing = self._no_jobs()
        if nothing is not None:
            return nothing
        if not self.deferrable:
            return self._execute_in_worker(context)
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        end_at = datetime.now(UTC) + timedelta(seconds=self.timeout)
        self.defer(
            trigger=PrivacyJobsTrigger(
                jobs_by_regulation=None if self.ledger_ref else self.jobs_by_regulation,
                ledger_ref=self.ledger_ref,
                from_date=self.from_date,
                to_date=self.to_date,
                adobe_privacy_conn_id=self.adobe_privacy_conn_id,
                poll_interval=self.poke_interval,
                max_poll_interval=self.max_poll_interval,
                end_at=end_at.isoformat(),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout) + DEFERRAL_TIMEOUT_GRACE,
        )

    def _execute_in_worker(self, context: Context) -> Any:
        try:
            return super().execute(context)
        except AirflowSensorTimeout:
            if self.fail_on_timeout:
                raise
            return self._timed_out({"status": "timeout", **self._summarize()})

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume from the trigger: validate the event, fail on error, report success or timeout."""
        event = validate_jobs_event(event)
        if event["status"] == "error":
            raise PrivacyServiceError(f"Waiting for privacy jobs failed: {event['message']}")
        if event["status"] == "timeout":
            if self.fail_on_timeout:
                raise AirflowSensorTimeout(f"{event['open']} privacy jobs still open at the timeout")
            return self._timed_out(event)
        self.log.info(
            "All jobs finished: counts %s, %d errored", event["counts"],
            event.get("error_count", len(event["error_job_ids"])),
        )
        return event

    def _timed_out(self, summary: dict[str, Any]) -> dict[str, Any]:
        self.log.warning("%d privacy jobs still open at the timeout; reporting them", summary["open"])
        return summary


class PrivacyRunJobsSensor(PrivacyJobsSensor):
    """
    Wait for every job a run submitted, with one sensor (and so one trigger) for the whole run.

    Takes the submit tasks' summaries, not job ids: they are merged at run time, so the list endpoint is
    polled once per regulation per cycle for the run instead of once per submit chunk.

    When the connection has ``journal_url`` (Adobe I/O Events), the wait is event-driven: it reads the
    recorded position, asks the list endpoint once (the first poke), then waits in
    :class:`~adobe_privacy.event_triggers.PrivacyJournalEventsTrigger` on the events the recorder writes
    to the ledger. A job with a final event is done (the archive's detail read confirms it); a job with
    none after ``event_fallback_seconds`` (or every open job after a journal gap) is asked about on the
    list endpoint, once, and waited for again if still open. The open jobs and their fallback times go
    to the ledger (``ledger/events/<registration>/waits/``), never into the trigger's kwargs. Without
    ``journal_url`` it polls the list endpoint as before.

    :param submissions: the submit tasks' summaries (templated; their XComArg).
    :param poll_interval: seconds between polls (templated; becomes `poke_interval`); with events, between
        two listings of the recorded journal.
    :param wait_timeout: seconds to wait (templated; becomes `timeout`).
    :param archive_uri: the archive root whose ledger holds the run's jobs (templated): the trigger reads
        the ids there when they are too many for its kwargs.
    :param aws_conn_id: the Amazon connection for S3.
    :param event_fallback_seconds: with events, seconds after which a job with no final event is asked
        about on the list endpoint (templated; default: the Variable ``privacy_event_fallback_seconds``, else 7200).
    :param registration_id: the event registration whose recorded journal is read.
    :param sse: encryption of the wait state it writes, ``AES256`` or ``aws:kms`` (templated; ``privacy_sse``).
    :param kms_key_id: the KMS key for ``aws:kms`` (templated).
    """

    template_fields: Sequence[str] = ("submissions", "poll_interval", "wait_timeout", "archive_uri",
                                      "event_fallback_seconds", "sse", "kms_key_id")

    def __init__(
        self,
        *,
        submissions: list[dict[str, Any]] | Any,
        poll_interval: float = 900,
        wait_timeout: float = 6 * 3600,
        archive_uri: str | None = None,
        aws_conn_id: str | None = "aws_default",
        event_fallback_seconds: float | str = EVENT_FALLBACK_SECONDS,
        registration_id: str = DEFAULT_REGISTRATION_ID,
        sse: str = "AES256",
        kms_key_id: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(jobs_by_regulation=None, **kwargs)
        self.sse = sse
        self.kms_key_id = kms_key_id
        self.submissions = submissions
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self.archive_uri = archive_uri
        self.aws_conn_id = aws_conn_id
        self.event_fallback_seconds = event_fallback_seconds
        self.registration_id = registration_id

    def _load_window(self) -> list[dict[str, Any]]:
        from adobe_privacy.operators.base import materialize

        submissions = [s for s in materialize(self.submissions) if s]
        window = _merged_window(submissions)
        self.jobs_by_regulation = window["jobs_by_regulation"]
        self.from_date, self.to_date = window["from_date"], window["to_date"]
        self.poke_interval = float(self.poll_interval)
        self.timeout = float(self.wait_timeout)
        return submissions

    def execute(self, context: Context) -> Any:
        submissions = self._load_window()
        if self._events_enabled():
            self.publish_link(context)
            return self._no_jobs() or self._wait_on_events(context)
        if sum(len(ids) for ids in self.jobs_by_regulation.values()) > MAX_INLINE_JOB_IDS:
            if not self.archive_uri:
                raise AirflowException(f"more than {MAX_INLINE_JOB_IDS} jobs to wait for: set archive_uri")
            self.ledger_ref = {"archive_uri": self.archive_uri, "aws_conn_id": self.aws_conn_id,
                               "batch_ids": sorted({b for s in submissions for b in s.get("batch_ids") or []})}
        return super().execute(context)

    # -- event-driven wait ----------------------------------------------------------------------------
    def _events_enabled(self) -> bool:
        """Deferrable, with an archive root, and the connection has `journal_url`."""
        from airflow.sdk.exceptions import AirflowNotFoundException

        if not (self.deferrable and self.archive_uri):
            return False
        try:
            return bool(self.hook.settings.journal_url)
        except AirflowNotFoundException:
            return False  # no connection: the list endpoint's first call says so, as it always did

    def _journal(self):
        from adobe_privacy.event_triggers import recorded_journal

        return recorded_journal(str(self.archive_uri), self.aws_conn_id, self.registration_id,
                                sse=self.sse, kms_key_id=self.kms_key_id or None)

    def _fallback_seconds(self) -> float:
        from privacy_pipeline.errors import ConfigurationError

        try:
            seconds = float(self.event_fallback_seconds)
        except (TypeError, ValueError):
            seconds = -1.0
        if seconds <= 0:
            raise ConfigurationError("event_fallback_seconds", self.event_fallback_seconds,
                                     hint="seconds (> 0) after which a job with no event is asked about")
        return seconds

    def _wait_on_events(self, context: Context) -> Any:
        from privacy_pipeline.events import WaitState

        fallback = self._fallback_seconds()
        journal = self._journal()
        # Read before the first poke: the final event of a job still open at the poke is recorded later.
        position, _ = journal.read_position()
        statuses = self._list_statuses(self.jobs_by_regulation)
        now = time.time()
        state = WaitState(open={job: regulation for regulation, ids in self.jobs_by_regulation.items() for job in ids},
                          fallback_at={}, settled={}, since_seq=position.seq, end_at=now + self.timeout)
        state.settle({job: status for job, status in statuses.items() if status in TERMINAL_STATUSES})
        state.postpone(list(state.open), now + fallback)
        self.log.info("Waiting on events for %d open jobs (%d final at the first poke), from record %d",
                      len(state.open), len(state.settled), state.since_seq)
        return self._defer_on_events(context, state, journal)

    def _defer_on_events(self, context: Context, state: Any, journal: Any) -> Any:
        from adobe_privacy.event_triggers import PrivacyJournalEventsTrigger

        if not state.open:
            return self._events_summary(state, "success")
        remaining = state.end_at - time.time()
        if remaining <= 0:
            if self.fail_on_timeout:
                raise AirflowSensorTimeout(f"{len(state.open)} privacy jobs still open at the timeout")
            return self._timed_out(self._events_summary(state, "timeout"))
        state.rounds += 1
        ti = context["ti"]
        key = journal.keys.wait(f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{state.rounds:04d}")
        journal.archive.put_json(key, state.to_json())
        self.defer(
            trigger=PrivacyJournalEventsTrigger(
                job_ids=None, wait_key=key, archive_uri=str(self.archive_uri), since_seq=state.since_seq,
                registration_id=self.registration_id, aws_conn_id=self.aws_conn_id, poll_interval=self.poke_interval,
            ),
            method_name="execute_complete_events",
            timeout=timedelta(seconds=remaining) + DEFERRAL_TIMEOUT_GRACE,
        )

    def execute_complete_events(self, context: Context, event: dict[str, Any] | None = None) -> Any:
        """Resume from the events trigger: settle the jobs with final events, ask the list about the due ones."""
        from privacy_pipeline.events import WaitState

        wait_key = event.get("wait_key") if isinstance(event, Mapping) else None
        if not isinstance(event, Mapping) or event.get("status") not in WAIT_EVENT_STATUSES:
            raise AirflowException(f"PrivacyRunJobsSensor resumed with an invalid event: {event!r}")
        if event["status"] == "error":
            raise PrivacyServiceError(f"Waiting for privacy job events failed: {event.get('message')}")
        if not isinstance(wait_key, str) or not isinstance(event.get("last_seq"), int):
            raise AirflowException(f"PrivacyRunJobsSensor resumed with a malformed events event: {event!r}")
        self._load_window()
        fallback = self._fallback_seconds()
        journal = self._journal()
        document = journal.archive.get_json(wait_key)
        if document is None:
            raise AirflowException(f"the wait's state {wait_key} is not in the ledger")
        state = WaitState.from_json(document)
        last_seq = int(event["last_seq"])
        # The event's id lists are capped: replay the same records for the whole picture.
        progress = state.progress()
        for seq in journal.record_seqs(state.since_seq):
            record = journal.get_record(seq) if seq <= last_seq else None
            if record is not None:
                progress.observe(record)
        now = time.time()
        due = progress.due(now)
        # Events are hints: a final event settles the wait; the archive's detail read says what is stored.
        state.settle(progress.outcomes)
        state.since_seq = max(state.since_seq, last_seq)
        self.log.info("Events (%s): %d jobs had a final event, %d due for the list endpoint, %d open",
                      event["status"], len(progress.outcomes), len(due), len(state.open))
        if due:
            asked: dict[str, list[str]] = {}
            for job in due:
                asked.setdefault(state.open[job], []).append(job)
            statuses = self._list_statuses(asked)
            state.settle({job: status for job, status in statuses.items() if status in TERMINAL_STATUSES})
            state.postpone([job for job in due if job in state.open], now + fallback)
            self.log.info("List endpoint: %d of %d due jobs final", len(due) - sum(j in state.open for j in due),
                          len(due))
        return self._defer_on_events(context, state, journal)

    def _list_statuses(self, jobs_by_regulation: Mapping[str, list[str]]) -> dict[str, str]:
        """Job id -> status from the list endpoint over the run's window (stops once all are seen)."""
        from adobe_privacy.protocol import SummaryBuilder

        builder = SummaryBuilder(jobs_by_regulation)
        for regulation, ids in sorted(jobs_by_regulation.items()):
            if not ids:
                continue
            for job in self.hook.iter_jobs(regulation, from_date=self.from_date, to_date=self.to_date):
                builder.observe(regulation, [job])
                if builder.all_seen(regulation):
                    break
        return {job: builder.status.get(job, MISSING_STATUS) for ids in jobs_by_regulation.values() for job in ids}

    @staticmethod
    def _events_summary(state: Any, status: str) -> dict[str, Any]:
        counts = Counter(state.settled.values())
        if state.open:
            counts["open"] = len(state.open)
        error_ids = sorted(job for job, value in state.settled.items() if value in FAILED_STATUSES)
        return bounded_summary({"status": status, "counts": dict(sorted(counts.items())), "open": len(state.open),
                                "error_count": len(error_ids), "error_job_ids": error_ids, "waited_on": "events"})


class HygieneJobsSensor(BaseSensorOperator):
    """
    Wait for a run's Data Hygiene jobs, polling the hygiene list endpoint (one call per 1000 jobs).

    Runs in `reschedule` mode: between pokes it holds no worker slot. Jobs still open at the timeout
    are reported, not failed (like the privacy sensor).

    :param submissions: the hygiene submit tasks' summaries (templated; their XComArg).
    :param poll_interval: seconds between pokes (templated).
    :param wait_timeout: seconds to wait (templated).
    :param adobe_privacy_conn_id: the `adobe_privacy_service` connection.
    """

    template_fields: Sequence[str] = ("submissions", "poll_interval", "wait_timeout")

    def __init__(
        self,
        *,
        submissions: list[dict[str, Any]] | Any,
        poll_interval: float = 900,
        wait_timeout: float = 6 * 3600,
        adobe_privacy_conn_id: str = DEFAULT_CONN_ID,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("mode", "reschedule")
        super().__init__(**kwargs)
        self.submissions = submissions
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self.adobe_privacy_conn_id = adobe_privacy_conn_id

    @cached_property
    def hook(self) -> PrivacyServiceHook:
        from adobe_privacy.hooks import PrivacyServiceHook

        return PrivacyServiceHook(self.adobe_privacy_conn_id)

    def _summary(self) -> dict[str, Any]:
        from adobe_privacy.protocol import SummaryBuilder

        window = _merged_window(self.submissions)
        job_ids = [job_id for ids in window["jobs_by_regulation"].values() for job_id in ids]
        builder = SummaryBuilder({"hygiene": job_ids})
        if job_ids:
            for job in self.hook.iter_hygiene_jobs(from_date=window["from_date"], to_date=window["to_date"]):
                builder.observe("hygiene", [job])
                if builder.all_seen("hygiene"):
                    break
        return bounded_summary(builder.build().as_dict())

    def poke(self, context: Context) -> PokeReturnValue:
        summary = self._summary()
        self.log.info("%d hygiene jobs open; counts %s", summary["open"], summary["counts"])
        return PokeReturnValue(summary["open"] == 0, {"status": "success", **summary})

    def execute(self, context: Context) -> Any:
        self.poke_interval = float(self.poll_interval)
        self.timeout = float(self.wait_timeout)
        try:
            return super().execute(context)
        except AirflowSensorTimeout:
            summary = {"status": "timeout", **self._summary()}
            self.log.warning("%d hygiene jobs still open at the timeout; reporting them", summary["open"])
            return summary


def _merged_window(submissions: Any) -> dict[str, Any]:
    """Job ids by regulation and the widest list window over the submit tasks' summaries."""
    from privacy_pipeline.report import merge_submissions

    from adobe_privacy.operators.base import materialize

    return merge_submissions(materialize(submissions))


class HygieneDeletesSensor(BaseSensorOperator):
    """
    Wait for a run's record deletes: work orders (default) or alpha hygiene jobs, deferred like the privacy wait.

    Pokes once; while anything is open it defers to :class:`~adobe_privacy.triggers.WorkOrdersTrigger`
    (or :class:`~adobe_privacy.triggers.HygieneJobsTrigger`), which polls the hygiene list in the
    triggerer, not a worker slot. Work orders take up to 30 days: at the timeout the open ones are
    reported (``status: timeout``), not failed; their batches stay in the ledger's open index for a later
    follow-up. Returns ``{"status", "counts", "open", "error_job_ids", "api"}``.

    :param submissions: the hygiene submit tasks' summaries (templated; their XComArg).
    :param api: `workorder` or `jobs` (templated; the DAG passes the Variable `privacy_hygiene_api`).
    :param poll_interval: seconds before the second poll (templated).
    :param wait_timeout: seconds to wait (templated).
    :param adobe_privacy_conn_id: the `adobe_privacy_service` connection.
    :param max_poll_interval: cap on the trigger's growing poll interval, in seconds.
    :param fail_on_timeout: fail when anything is still open at the timeout; by default report it.
    """

    template_fields: Sequence[str] = ("submissions", "api", "poll_interval", "wait_timeout")

    def __init__(
        self,
        *,
        submissions: list[dict[str, Any]] | Any,
        api: str = "{{ var.value.get('privacy_hygiene_api', 'workorder') }}",
        poll_interval: float = 900,
        wait_timeout: float = 6 * 3600,
        adobe_privacy_conn_id: str = DEFAULT_CONN_ID,
        max_poll_interval: float = 6 * 3600.0,
        fail_on_timeout: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.submissions = submissions
        self.api = api
        self.poll_interval = poll_interval
        self.wait_timeout = wait_timeout
        self.adobe_privacy_conn_id = adobe_privacy_conn_id
        self.max_poll_interval = max_poll_interval
        self.fail_on_timeout = fail_on_timeout

    @cached_property
    def hook(self) -> PrivacyServiceHook:
        from adobe_privacy.hooks import PrivacyServiceHook

        return PrivacyServiceHook(self.adobe_privacy_conn_id)

    @cached_property
    def _window(self) -> tuple[str, list[str], str | None, str | None]:
        from adobe_privacy.operators.base import materialize
        from adobe_privacy.operators.hygiene import hygiene_api

        # The API the submit tasks used wins over the setting (a Variable changed mid-run cannot split a run).
        used = {s["api"] for s in materialize(self.submissions) if s and s.get("api")}
        if len(used) > 1:
            raise AirflowException(f"submit tasks of one run used different hygiene APIs: {sorted(used)}")
        window = _merged_window(self.submissions)
        ids = sorted({job_id for ids in window["jobs_by_regulation"].values() for job_id in ids})
        return hygiene_api(used.pop() if used else self.api), ids, window["from_date"], window["to_date"]

    def _summarize(self) -> dict[str, Any]:
        api, ids, from_date, to_date = self._window
        if api == "workorder":
            return self.hook.summarize_workorders(ids, from_date=from_date, to_date=to_date)
        return self.hook.summarize_hygiene_jobs(ids, from_date=from_date, to_date=to_date)

    def poke(self, context: Context) -> PokeReturnValue:
        summary = self._summarize()
        self.log.info("%d record deletes open (%s); counts %s", summary["open"], self._window[0], summary["counts"])
        return PokeReturnValue(summary["open"] == 0, {"status": "success", "api": self._window[0], **summary})

    def execute(self, context: Context) -> Any:
        from airflow.sdk.exceptions import AirflowFailException
        from privacy_pipeline.errors import ConfigurationError

        from adobe_privacy.triggers import HygieneJobsTrigger, WorkOrdersTrigger

        try:
            api, ids, from_date, to_date = self._window
        except ConfigurationError as err:
            raise AirflowFailException(str(err)) from err  # a wrong setting: no retries
        if not ids:
            self.log.info("No record deletes to wait for")
            return {"status": "success", "api": api, "counts": {}, "open": 0, "error_job_ids": []}
        first = self.poke(context)
        if first.is_done:
            return first.xcom_value
        timeout = float(self.wait_timeout)
        trigger_class = WorkOrdersTrigger if api == "workorder" else HygieneJobsTrigger
        self.defer(
            trigger=trigger_class(
                job_ids=ids,
                from_date=from_date,
                to_date=to_date,
                adobe_privacy_conn_id=self.adobe_privacy_conn_id,
                poll_interval=float(self.poll_interval),
                max_poll_interval=max(float(self.poll_interval), float(self.max_poll_interval)),
                end_at=(datetime.now(UTC) + timedelta(seconds=timeout)).isoformat(),
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=timeout) + DEFERRAL_TIMEOUT_GRACE,
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume from the trigger: validate the event, fail on error, report success or timeout."""
        event = validate_jobs_event(event)
        api = self._window[0]
        if event["status"] == "error":
            raise PrivacyServiceError(f"Waiting for record deletes ({api}) failed: {event['message']}")
        if event["status"] == "timeout":
            if self.fail_on_timeout:
                raise AirflowSensorTimeout(f"{event['open']} record deletes ({api}) still open at the timeout")
            self.log.warning("%d record deletes (%s) still open at the timeout; reporting them, their batches "
                             "stay in the open index", event["open"], api)
        else:
            self.log.info("All record deletes finished (%s): counts %s", api, event["counts"])
        return {**event, "api": api}
