"""Intake step: read, validate, batch and stage a run's requests; list them until they are submitted."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import date
from typing import IO, TYPE_CHECKING, Any

from adobe_privacy.links import RejectedRowsLink, RunFolderLink
from adobe_privacy.notifiers import PrivacyAlertLogNotifier, send_alert
from adobe_privacy.operators.base import (
    ENCRYPTION_FIELDS,
    PrivacyBaseOperator,
    log_rejects,
    run_clock,
    run_partition,
)

if TYPE_CHECKING:
    from airflow.sdk import BaseNotifier, Context
    from privacy_pipeline.input_alerts import InputSelection, IntakeOutcome, ListedInput
    from privacy_pipeline.intake import IntakeOptions


Opener = Callable[[], IO[bytes]]


class PrivacyIntakeOperator(PrivacyBaseOperator):
    """
    Take in a run's requests: read, validate, batch, stage; return chunks of staged batch keys (the XCom).

    Each input is taken in exactly once, by content hash: a file an earlier run took in is skipped, and
    the same bytes twice are read once. With `lookback_root`, files that landed in the past
    `lookback_days` partitions after their night are taken in too (`late_input`). Batches pending from
    earlier runs are carried in. A run with nothing to take in, or nothing usable, alerts
    (`privacy_pipeline.input_alerts`) and says so at WARNING. Idempotent per run: a retry returns what
    `intake.json` recorded. See the README ("Operations").

    :param input_uri: a local path or an `s3://` prefix (templated).
    :param default_include: products for rows that name none (templated).
    :param map_legacy_regulations: map legacy regulation values instead of rejecting them (templated).
    :param allowed_actions: actions this DAG takes in; default access, delete and opt-out (routed away).
    :param max_subjects: subjects per batch (Adobe's cap is 1000; templated).
    :param max_chunks: chunks of batch keys at most (mapped submit tasks).
    :param min_batches_per_chunk: batches a chunk holds at least, when there are enough.
    :param dry_run: validate and batch, mark nothing as taken in and list nothing (templated).
    :param as_of: the run's "now", ISO-8601 (templated; the DAGs pass the Variable `privacy_as_of`); empty: the wall clock.
    :param extra_regulations: regulation codes beyond Adobe's built-in ones, `{code: window_days}` or its
        JSON (templated; the DAGs pass the Variable `privacy_extra_regulations`).
    :param lookback_root: the inbox root whose `<root>/<YYYY-MM-DD>/` partitions the look-back reads
        (templated); empty: no look-back (an explicit `input_uri`).
    :param lookback_days: past partitions to look through (templated; the Variable
        `privacy_input_lookback_days`, default 3).
    :param api_pool: the pool the DAG's API tasks run in, checked first (a missing pool leaves them
        "scheduled" for ever); None: not checked.
    :param alert_notifier: fired per input alert kind (default: log at ERROR).
    """

    template_fields: Sequence[str] = ("input_uri", "archive_uri", "default_include", "map_legacy_regulations",
                                      "dry_run", "max_subjects", "as_of", "extra_regulations", "lookback_root",
                                      "lookback_days", *ENCRYPTION_FIELDS)
    ui_color = "#e8f2c4"
    operator_extra_links = (RunFolderLink(), RejectedRowsLink())

    def __init__(
        self,
        *,
        input_uri: str,
        default_include: list[str],
        map_legacy_regulations: bool = False,
        allowed_actions: Sequence[str] | None = None,
        max_subjects: int = 1000,
        max_chunks: int = 16,
        min_batches_per_chunk: int = 8,
        dry_run: bool = False,
        as_of: str | None = None,
        extra_regulations: str | dict[str, int] | None = None,
        lookback_root: str | None = None,
        lookback_days: int | str | None = None,
        api_pool: str | None = None,
        alert_notifier: BaseNotifier | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.input_uri = input_uri
        self.default_include = default_include
        self.map_legacy_regulations = map_legacy_regulations
        self.allowed_actions = allowed_actions
        self.max_subjects = max_subjects
        self.max_chunks = max_chunks
        self.min_batches_per_chunk = min_batches_per_chunk
        self.dry_run = dry_run  # type: ignore[method-assign,assignment]  # shadows BaseOperator.dry_run()
        self.as_of = as_of
        self.extra_regulations = extra_regulations
        self.lookback_root = lookback_root
        self.lookback_days = lookback_days
        self.api_pool = api_pool
        self.alert_notifier = alert_notifier if alert_notifier is not None else PrivacyAlertLogNotifier()

    def execute(self, context: Context) -> list[list[str]]:
        from privacy_pipeline.batching import chunk_evenly, dump_batch, plan_batches
        from privacy_pipeline.deadlines import deadline_facts
        from privacy_pipeline.input_alerts import SourceOutcome, intake_alerts, parse_lookback_days
        from privacy_pipeline.intake import InputSource, read_requests, split_opt_outs

        from adobe_privacy.pools import check_pool

        run = self.run_layout(context)
        self.publish_run_links(context, run, rejects=run.rejects)
        if self.api_pool:
            check_pool(self.api_pool)  # a ConfigurationError: fails at once, with how to create it
        # Every setting is checked before any input is read: a typo fails at once, never after retries.
        clock = run_clock(self.as_of)
        options = self._options(clock.now())
        lookback_days = parse_lookback_days(self.lookback_days) if self.lookback_root else 0
        recorded = self.store.get_json(run.intake)
        if recorded is not None:
            self.log.info("Intake of this run was recorded already; reusing %s", run.intake)
            self._mark_taken_in(recorded["sources"], run.root)  # the first try may have died before it did
            self._index_recorded(context, recorded, run.rejects, clock.now())  # ... or before this
            self._alert(context, recorded.get("alerts") or [], recorded.get("nothing_to_do"))
            return recorded["chunks"]

        run_date = date.fromisoformat(run_partition(context))
        openers: dict[str, Opener] = {}
        own_objects, selection = self._select_inputs(run_date, lookback_days, openers)
        late = selection.late(run_date)
        # One read over every new file, so a request_id reused across two files is a reject, not a crash.
        result = read_requests([InputSource(name=item.key, open=openers[item.key])  # type: ignore[arg-type]
                                for item in selection.fresh], options)
        partitions = {item.key: item.partition.isoformat() for item in selection.fresh}
        sources = [{"name": s.name, "sha256": s.sha256, "rows_read": s.rows_read, "lines_read": s.lines_read,
                    "rows_rejected": s.rows_rejected, "format": s.format, "partition": partitions.get(s.name),
                    **({"file_error": s.file_error} if s.file_error else {})}
                   for s in result.sources]
        subjects, opt_outs = split_opt_outs(result.subjects)
        staged: list[dict[str, Any]] = []
        bodies: list[bytes] = []  # for the request index (the subjects are in memory already)
        for batch in plan_batches(subjects, max_subjects=int(self.max_subjects)):
            key = run.batch(batch.batch_id)
            bodies.append(dump_batch(batch))
            self.store.put_bytes(key, bodies[-1], content_type="application/json")
            staged.append({"batch_id": batch.batch_id, "key": key, "regulation": batch.shape.regulation,
                           "subjects": len(batch.subjects), "rows": batch.rows_total,
                           "jobs_expected": batch.jobs_expected, "deadline": deadline_facts(batch)})
        carried = self.ledger.pending_markers(exclude={b["batch_id"] for b in staged})
        self._write_rejects(result.rejects, run.rejects)

        keys = [b["key"] for b in staged] + [c["key"] for c in carried]
        # Enough chunks to submit in parallel, few enough that task overhead does not dominate.
        wanted = min(self.max_chunks, -(-len(keys) // self.min_batches_per_chunk))
        chunks = chunk_evenly(keys, wanted) if keys else []
        if not bool(self.dry_run):
            # Before intake.json (a retry that reuses it finds them) and before the inputs are marked
            # taken in: if this run's submit fails for good, the next run carries these batches.
            for item in staged:
                self.ledger.mark_pending(item, reason="staged; carried by a later run unless this run submits it")
        own_taken = [item for item in selection.already_taken if item.partition == run_date]
        outcome = intake_alerts(
            input_uri=self.input_uri, objects_listed=own_objects,
            sources=[SourceOutcome(s.name, s.rows_read, s.rows_rejected, whole_file_rejected=bool(s.file_error))
                     for s in result.sources],
            skipped_as_taken_in=len(own_taken), late=late, batches=len(staged), carried_batches=len(carried),
        )
        alerts = _alerts_json(outcome)
        self.store.put_json(run.intake, {
            "chunks": chunks,
            "sources": sources,
            "skipped_sources": _skipped(own_taken, selection),
            "batches": staged,
            "carried": carried,
            "rows_read": result.rows_read,
            **result.line_counts(),
            "rows_rejected": len(result.rejects),
            "rows_in_subjects": subjects.row_total(),  # type: ignore[attr-defined]
            "subjects": len(subjects),
            "rows_routed_to_opt_out": opt_outs.row_total(),  # type: ignore[attr-defined]
            "subjects_routed_to_opt_out": len(opt_outs),
            "rejects_key": run.rejects,
            "lookback_days": lookback_days,
            "late_sources": [item.key for item in late],
            "alerts": alerts,
            "nothing_to_do": outcome.nothing_to_do,
        })
        # Only now are the inputs marked taken: a crash before this line re-reads them next time.
        self._mark_taken_in(sources, run.root)
        if not bool(self.dry_run):  # a rehearsal leaves no trace in the index either
            self.update_request_index(context, at=clock.now(), staged_batches=bodies,
                                      sources={s["name"]: s["sha256"] for s in sources}, rejects=result.rejects)
        self.log.info(
            "Intake: %d lines, %d rows read, %d rejected, %d subjects in %d batches (+%d carried), %d opt-out "
            "subjects left to privacy_opt_out, %d inputs skipped, %d late inputs taken in",
            result.lines_read, result.rows_read, len(result.rejects), len(subjects), len(staged), len(carried),
            len(opt_outs), len(own_taken) + len(selection.duplicates), len(late),
        )
        log_rejects(self.log, result.rejects, self.store.uri(run.rejects))
        self._alert(context, alerts, outcome.nothing_to_do)
        return chunks

    def _index_recorded(self, context: Context, recorded: dict[str, Any], rejects_key: str, at: Any) -> None:
        """Index what an earlier try of this run recorded (the same facts: the index merges them once)."""
        import csv
        import io

        if bool(self.dry_run):
            return
        bodies = [body for body in (self.store.get_bytes(b["key"]) for b in recorded.get("batches") or []) if body]
        text = (self.store.get_bytes(rejects_key) or b"").decode("utf-8", errors="replace")
        self.update_request_index(context, at=at, staged_batches=bodies, rejects=list(csv.DictReader(io.StringIO(text))),
                                  sources={s["name"]: s["sha256"] for s in recorded.get("sources") or []})

    # -- settings -------------------------------------------------------------------------------------
    def _options(self, now: Any) -> IntakeOptions:
        """How this run reads its requests; raises ConfigurationError for a setting that can never work."""
        from privacy_pipeline import catalog
        from privacy_pipeline.intake import IntakeOptions

        # The shared inbox also carries opt-out-of-sale rows: they are privacy_opt_out's, so they are
        # counted as routed there, not rejected (unless this DAG names its own allowed actions).
        return IntakeOptions(
            default_include=tuple(self.default_include),
            map_legacy_regulations=bool(self.map_legacy_regulations),
            allowed_actions=tuple(self.allowed_actions or (*catalog.JOB_ACTIONS, catalog.OPT_OUT_OF_SALE)),
            regulations=catalog.with_extra_regulations(self.extra_regulations or None),
            now=now,
        )

    # -- which inputs -----------------------------------------------------------------------------------
    def _select_inputs(self, run_date: date, lookback_days: int,
                       openers: dict[str, Opener]) -> tuple[int, InputSelection]:
        """(objects listed under the run's own input, what to take in): the run's partition and the
        look-back's, each new content hash once (`input_alerts.select_inputs`)."""
        from privacy_pipeline.input_alerts import lookback_partitions, partition_root, select_inputs

        listed = self._list(self.input_uri, run_date, openers)
        own_objects = len(listed)
        for day in lookback_partitions(run_date, lookback_days):
            uri = partition_root(str(self.lookback_root), day)
            if uri.rstrip("/") != str(self.input_uri).rstrip("/"):
                listed += self._list(uri, day, openers)
        taken = {sha for sha in {item.sha256 for item in listed} if self.ledger.input_taken(sha) is not None}
        selection = select_inputs(listed, taken)
        for item in selection.already_taken:
            if item.partition == run_date:
                self.log.info("Input %s (sha256 %s) was taken in by an earlier run; skipping", item.key, item.sha256)
        for item in selection.duplicates:
            self.log.info("Input %s (sha256 %s) has the same content as an input of this run; skipping",
                          item.key, item.sha256)
        return own_objects, selection

    def _list(self, uri: str, day: date, openers: dict[str, Opener]) -> list[ListedInput]:
        """Every input object under `uri` with its content hash (a missing local path lists nothing)."""
        from privacy_pipeline.input_alerts import ListedInput

        from adobe_privacy.storage import iter_input_objects

        found = []
        try:
            for name, opener in iter_input_objects(uri, aws_conn_id=self.aws_conn_id):
                digest = hashlib.sha256()  # of the stored bytes, as intake's own SourceSummary.sha256
                with closing(opener()) as stream:
                    while chunk := stream.read(8 * 1024**2):
                        digest.update(chunk)
                openers[name] = opener
                found.append(ListedInput(key=name, partition=day, sha256=digest.hexdigest()))
        except FileNotFoundError:
            return []  # an empty inbox: intake_alerts says so
        return found

    # -- telling people -------------------------------------------------------------------------------
    def _alert(self, context: Context, alerts: list[dict[str, Any]], nothing_to_do: str | None) -> None:
        """Send each input alert through the notifier; a run that does nothing says so at WARNING.

        Airflow 3.3 gives a task no way to set its run's note (the Task Execution API only reads it), so
        the WARNING, the alert and `intake.json` / `report.json` carry it.
        """
        for alert in alerts:
            self.log.warning("Input alert %s: %s", alert["kind"], alert["message"])
            send_alert(self.alert_notifier, context, kind=alert["kind"], items=alert["items"])
        if nothing_to_do:
            self.log.warning("%s", nothing_to_do)

    def _write_rejects(self, rejects: Any, key: str) -> None:
        from privacy_pipeline.report import write_rejects_csv

        with tempfile.SpooledTemporaryFile(max_size=8 * 1024**2) as buffer:
            write_rejects_csv(rejects, buffer)  # type: ignore[arg-type]
            buffer.seek(0)
            self.store.put_fileobj(buffer, key, content_type="text/csv")

    def _mark_taken_in(self, sources: list[dict[str, Any]], run_root: str) -> None:
        """Record each input's content hash so later runs skip the same file (idempotent; not on a dry run)."""
        if bool(self.dry_run):
            return
        for source in sources:
            self.ledger.mark_input(source, run_root)


def _alerts_json(outcome: IntakeOutcome) -> list[dict[str, Any]]:
    return [{"kind": a.kind, "count": a.count, "items": list(a.items), "message": a.message} for a in outcome.alerts]


def _skipped(own_taken: list[ListedInput], selection: InputSelection) -> list[dict[str, str]]:
    """Inputs listed and not read: the run's own taken in by an earlier run, and same-content copies."""
    return ([{"name": i.key, "sha256": i.sha256, "reason": "taken in by an earlier run"} for i in own_taken]
            + [{"name": i.key, "sha256": i.sha256, "reason": "same content as an input of this run"}
               for i in selection.duplicates])
