"""Intake step: read, validate, batch and stage a run's requests; list them until they are submitted."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterable, Sequence
from contextlib import closing
from typing import IO, TYPE_CHECKING, Any

from adobe_privacy.operators.base import ENCRYPTION_FIELDS, PrivacyBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


InputObject = tuple[str, Callable[[], IO[bytes]]]


class PrivacyIntakeOperator(PrivacyBaseOperator):
    """
    Take in a run's requests: read, validate, batch, stage; return chunks of staged batch keys (the XCom).

    Inputs already taken in (by content hash) are skipped; batches pending from earlier runs are carried
    in. Idempotent per run: a retry returns what `intake.json` recorded. See the README ("Operations").

    :param input_uri: a local path or an `s3://` prefix (templated).
    :param default_include: products for rows that name none (templated).
    :param map_legacy_regulations: map legacy regulation values instead of rejecting them (templated).
    :param allowed_actions: actions this DAG takes in; default access, delete and opt-out (routed away).
    :param max_subjects: subjects per batch (Adobe's cap is 1000; templated).
    :param max_chunks: chunks of batch keys at most (mapped submit tasks).
    :param min_batches_per_chunk: batches a chunk holds at least, when there are enough.
    :param dry_run: validate and batch, mark nothing as taken in and list nothing (templated).
    """

    template_fields: Sequence[str] = ("input_uri", "archive_uri", "default_include", "map_legacy_regulations",
                                      "dry_run", "max_subjects", *ENCRYPTION_FIELDS)
    ui_color = "#e8f2c4"

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

    def execute(self, context: Context) -> list[list[str]]:
        from privacy_pipeline import catalog
        from privacy_pipeline.batching import chunk_evenly, dump_batch, plan_batches
        from privacy_pipeline.deadlines import deadline_facts
        from privacy_pipeline.intake import InputSource, IntakeOptions, read_requests, split_opt_outs

        from adobe_privacy.storage import iter_input_objects

        run = self.run_layout(context)
        recorded = self.store.get_json(run.intake)
        if recorded is not None:
            self.log.info("Intake of this run was recorded already; reusing %s", run.intake)
            self._mark_taken_in(recorded["sources"], run.root)  # the first try may have died before it did
            return recorded["chunks"]

        # The shared inbox also carries opt-out-of-sale rows: they are privacy_opt_out's, so they are
        # counted as routed there, not rejected (unless this DAG names its own allowed actions).
        options = IntakeOptions(
            default_include=tuple(self.default_include),
            map_legacy_regulations=bool(self.map_legacy_regulations),
            allowed_actions=tuple(self.allowed_actions or (*catalog.JOB_ACTIONS, catalog.OPT_OUT_OF_SALE)),
        )
        fresh, skipped = self._new_inputs(iter_input_objects(self.input_uri, aws_conn_id=self.aws_conn_id))
        # One read over every new file, so a request_id reused across two files is a reject, not a crash.
        result = read_requests([InputSource(name=name, open=opener) for name, opener in fresh],  # type: ignore[arg-type]
                               options)
        sources = [{"name": s.name, "sha256": s.sha256, "rows_read": s.rows_read, "format": s.format}
                   for s in result.sources]
        subjects, opt_outs = split_opt_outs(result.subjects)
        staged: list[dict[str, Any]] = []
        for batch in plan_batches(subjects, max_subjects=int(self.max_subjects)):
            key = run.batch(batch.batch_id)
            self.store.put_bytes(key, dump_batch(batch), content_type="application/json")
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
        self.store.put_json(run.intake, {
            "chunks": chunks,
            "sources": sources,
            "skipped_sources": skipped,
            "batches": staged,
            "carried": carried,
            "rows_read": result.rows_read,
            "rows_rejected": len(result.rejects),
            "rows_in_subjects": subjects.row_total(),  # type: ignore[attr-defined]
            "subjects": len(subjects),
            "rows_routed_to_opt_out": opt_outs.row_total(),  # type: ignore[attr-defined]
            "subjects_routed_to_opt_out": len(opt_outs),
            "rejects_key": run.rejects,
        })
        # Only now are the inputs marked taken: a crash before this line re-reads them next time.
        self._mark_taken_in(sources, run.root)
        self.log.info(
            "Intake: %d rows read, %d rejected, %d subjects in %d batches (+%d carried), %d opt-out subjects "
            "left to privacy_opt_out, %d inputs skipped",
            result.rows_read, len(result.rejects), len(subjects), len(staged), len(carried), len(opt_outs),
            len(skipped),
        )
        return chunks

    def _new_inputs(self, objects: Iterable[InputObject]) -> tuple[list[InputObject], list[dict[str, str]]]:
        """Split input objects into those not taken in yet and those an earlier run took in (by sha256)."""
        fresh, skipped = [], []
        for name, opener in objects:
            digest = hashlib.sha256()  # of the stored bytes, as intake's own SourceSummary.sha256
            with closing(opener()) as stream:
                while chunk := stream.read(8 * 1024**2):
                    digest.update(chunk)
            sha256 = digest.hexdigest()
            if self.ledger.input_taken(sha256) is not None:
                self.log.info("Input %s (sha256 %s) was taken in by an earlier run; skipping", name, sha256)
                skipped.append({"name": name, "sha256": sha256})
            else:
                fresh.append((name, opener))
        return fresh, skipped

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
