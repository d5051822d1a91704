"""Intake: pending request files -> validated `Subject`s and `Reject`s, every input row accounted for.

The caller (an Airflow task) hands over `InputSource`s that open byte streams (local files, S3 bodies);
this module does no I/O of its own beyond reading them. Each source is hashed (sha256 of the bytes as
stored, so a re-uploaded identical file is recognised), decompressed when gzip, parsed
(`formats`), validated (`validation`), and turned into frozen objects. Two invariants always hold:

    rows_read == sum(len(s.rows) for s in subjects) + len(rejects)
    lines_read == lines_header + lines_blank + lines_in_records

A row (data record) is in exactly one subject or in rejects (duplicates are rejects; a file rejected
as a whole counts as one row, row 0, holding all its lines), and every physical line is the header,
blank, or part of exactly one record. A source whose lines do not add up, or that fails in any way
nobody planned for, becomes a whole-file reject naming the error's class and position (never its
message, which may quote a value); the other sources are read as usual.
"""

from __future__ import annotations

import gc
import hashlib
import traceback
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from privacy_pipeline import catalog
from privacy_pipeline.formats import FileRejected, ParsedSource, decompress, parse
from privacy_pipeline.lines import count_lines
from privacy_pipeline.models import (
    MAX_IDENTITIES_PER_SUBJECT,
    SUBJECT_ATTRIBUTES,
    SUBJECT_FIELDS,
    Coded,
    Identity,
    Reject,
    Subject,
    SubjectColumns,
    SubjectTable,
)
from privacy_pipeline.validation import ValidationOptions, Verdict, validate

DUPLICATE_REASON = "exact duplicate of row"


@dataclass(frozen=True)
class InputSource:
    """One input file. `name` is its uri as shown in rejects and reports; `open` returns a fresh stream."""

    name: str
    open: Callable[[], BinaryIO]


class LineAccountingError(AssertionError):
    """A source's physical lines do not add up to header + blank + record lines (a bug, never input)."""


@dataclass(frozen=True)
class IntakeOptions:
    """How a run reads its requests. Built from DAG params: checked at once, so a typo fails fast.

    :param default_include: products for rows that name none (the `include` param).
    :param regulations: the regulation catalogue, with any extras from the `privacy_extra_regulations`
        Variable (`catalog.with_extra_regulations`).
    :param now: the run's clock for the "received_at is not in the future" rule (None: wall clock).
    :raises ConfigurationError: an unknown product in `default_include`.
    """

    default_include: tuple[str, ...]
    map_legacy_regulations: bool = False
    allowed_actions: tuple[str, ...] = catalog.JOB_ACTIONS
    max_identities: int = MAX_IDENTITIES_PER_SUBJECT
    regulations: catalog.RegulationCatalog = catalog.BUILT_IN
    now: datetime | None = None

    def __post_init__(self) -> None:
        catalog.require_products(self.default_include, setting="include")


@dataclass(frozen=True)
class SourceSummary:
    name: str
    sha256: str
    rows_read: int
    format: str
    rows_rejected: int = 0
    subjects: int = 0
    #: Set when the whole file was rejected (missing header columns, corrupt gzip ...).
    file_error: str | None = None
    lines_read: int = 0
    lines_header: int = 0
    lines_blank: int = 0
    lines_in_records: int = 0


@dataclass
class IntakeResult:
    """What intake found. `subjects` is a `SubjectTable`: a sequence of `Subject`s built on access,
    whose columns `plan_batches` and `dump_batch` use directly."""

    subjects: SubjectTable = field(default_factory=SubjectTable.empty)
    rejects: list[Reject] = field(default_factory=list)
    rows_read: int = 0
    sources: list[SourceSummary] = field(default_factory=list)

    @property
    def rows_in_subjects(self) -> int:
        return self.subjects.row_total()

    @property
    def lines_read(self) -> int:
        return sum(s.lines_read for s in self.sources)

    def accounting_gap(self) -> int:
        """Rows neither in a subject nor rejected (0 unless there is a bug); the callers assert on it."""
        return self.rows_read - self.rows_in_subjects - len(self.rejects)

    def line_counts(self) -> dict[str, int]:
        """The physical-line accounting for intake.json and the report (`report.check_accounting`)."""
        return {
            "lines_read": self.lines_read,
            "lines_header": sum(s.lines_header for s in self.sources),
            "lines_blank": sum(s.lines_blank for s in self.sources),
            "lines_in_records": sum(s.lines_in_records for s in self.sources),
        }


def read_requests(sources: Iterable[InputSource], options: IntakeOptions) -> IntakeResult:
    """Read, validate and group every source. Never raises on bad input: bad input becomes rejects.

    A request_id accepted from an earlier source is rejected in a later one: keys must be unique in a
    run, since the ledger and Adobe's list endpoint find a subject again by its key.
    """
    result = IntakeResult()
    tables: list[SubjectTable] = []
    accepted_keys: list[tuple[str, pa.Array]] = []
    for source in sources:
        with _gc_paused():
            subjects, rejects, summary = _read_source(source, options)
        subjects, clashes = _drop_clashing_keys(subjects, accepted_keys, source.name)
        rejects = sorted(rejects + clashes, key=lambda r: r.row)
        tables.append(subjects)
        result.rejects.extend(rejects)
        result.rows_read += summary.rows_read
        result.sources.append(
            SourceSummary(
                summary.name, summary.sha256, summary.rows_read, summary.format,
                rows_rejected=len(rejects), subjects=len(subjects), file_error=summary.file_error,
                lines_read=summary.lines_read, lines_header=summary.lines_header,
                lines_blank=summary.lines_blank, lines_in_records=summary.lines_in_records,
            )
        )
    result.subjects = SubjectTable.concat(tables)
    return result


def split_opt_outs(subjects: Iterable[Subject]) -> tuple[Sequence[Subject], Sequence[Subject]]:
    """(subjects for POST /jobs, opt-out-of-sale subjects for POST /consent); tables stay tables."""
    if isinstance(subjects, SubjectTable):
        per_code = np.array([catalog.OPT_OUT_OF_SALE in actions for actions in subjects.field_values("actions")],
                            dtype=bool)
        opt_out = per_code[subjects.field_codes("actions")] if len(per_code) else np.zeros(len(subjects), bool)
        return subjects.take(np.flatnonzero(~opt_out)), subjects.take(np.flatnonzero(opt_out))
    jobs: list[Subject] = []
    opt_outs: list[Subject] = []
    for subject in subjects:
        (opt_outs if catalog.OPT_OUT_OF_SALE in subject.actions else jobs).append(subject)
    return jobs, opt_outs


def consent_payloads(subjects: Iterable[Subject], max_values_per_request: int = 1000) -> list[dict]:
    """POST /consent bodies for the opt-out-of-sale subjects, at most `max_values_per_request` values each.

    `entities` group unique values by standard namespace, in first-seen order. Subjects without the
    opt_out_of_sale action are not opt-outs and are skipped.

    :raises ValueError: an opt-out subject has a non-standard identity (Adobe accepts standard
        namespaces only; intake rejects those rows, so this means the caller built subjects by hand).
    """
    if max_values_per_request < 1:
        raise ValueError("max_values_per_request must be at least 1")
    payloads: list[dict] = []
    entities: dict[str, list[str]] = {}
    seen: set[tuple[str, str]] = set()
    for identity in _opt_out_identities(subjects):
        if (identity.namespace, identity.value) in seen:
            continue
        if len(seen) == max_values_per_request:
            payloads.append(_consent_body(entities))
            entities, seen = {}, set()
        seen.add((identity.namespace, identity.value))
        entities.setdefault(identity.namespace, []).append(identity.value)
    if entities:
        payloads.append(_consent_body(entities))
    return payloads


def _opt_out_identities(subjects: Iterable[Subject]) -> Iterator[Identity]:
    for subject in subjects:
        if catalog.OPT_OUT_OF_SALE not in subject.actions:
            continue
        for identity in subject.identities:
            if identity.type != catalog.DEFAULT_ID_TYPE:
                raise ValueError(f"opt-out subject {subject.key!r} has a {identity.type} identity; "
                                 "POST /consent takes standard namespaces only")
            yield identity


def _consent_body(entities: dict[str, list[str]]) -> dict:
    return {
        "optOutOfSale": True,
        "entities": [{"nameSpace": namespace, "values": values} for namespace, values in entities.items()],
    }


# ---------------------------------------------------------------------------------------- internals


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic GC while millions of acyclic objects are built.

    Each gen-0 pass would otherwise walk the growing heap of new tuples and dataclasses: building a
    million subjects takes about half the time without it. Nothing built here forms a cycle.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _read_source(source: InputSource, options: IntakeOptions) -> tuple[SubjectTable, list[Reject], SourceSummary]:
    stored, sha256 = _read_all(source)
    data = b""
    try:
        data = decompress(stored)
        parsed = parse(source.name, data)
        if parsed.line_gap():
            raise LineAccountingError(f"{parsed.line_gap()} line(s) unaccounted for")
        return _validated(source, options, parsed, sha256)
    except FileRejected as err:
        return _file_rejected(source.name, sha256, data, str(err), err.line)
    except (Exception, RecursionError) as err:  # noqa: BLE001 - one bad file must not stop the night
        return _file_rejected(source.name, sha256, data, _unexpected(err), None)


def _unexpected(err: BaseException) -> str:
    """What went wrong, without the message (which may quote a value): the class and where, when known."""
    where = [f"{key} {getattr(err, key)}" for key in ("lineno", "line_num", "pos") if isinstance(getattr(err, key, None), int)]
    frame = traceback.extract_tb(err.__traceback__)[-1] if err.__traceback__ else None
    at = f" in {frame.name}" if frame else ""
    return (f"could not be read: unexpected {type(err).__module__}.{type(err).__qualname__}{at}"
            + (f" ({', '.join(where)})" if where else "") + "; the whole file is rejected, nothing from it was used")


def _file_rejected(name: str, sha256: str, data: bytes, reason: str, line: int | None
                   ) -> tuple[SubjectTable, list[Reject], SourceSummary]:
    lines = count_lines(data)
    reject = Reject(name, 0, "", "file", reason, {}, line if line is not None else (1 if lines else None))
    summary = SourceSummary(name, sha256, 1, "unknown", file_error=reason, lines_read=lines, lines_in_records=lines)
    return SubjectTable.empty(), [reject], summary


def _validated(source: InputSource, options: IntakeOptions, parsed: ParsedSource, sha256: str
               ) -> tuple[SubjectTable, list[Reject], SourceSummary]:
    verdict = validate(
        parsed.frame,
        ValidationOptions(
            default_include=catalog.require_products(options.default_include, setting="include"),
            map_legacy_regulations=options.map_legacy_regulations,
            allowed_actions=tuple(a.lower() for a in options.allowed_actions),
            max_identities=options.max_identities,
            regulations=options.regulations,
            now=options.now,
        ),
        check_utf8=parsed.had_bad_utf8,
        failed_request_ids=[(bad.request_id, bad.row) for bad in parsed.bad_rows if bad.request_id],
    )
    in_subject = ~verdict.failed & ~verdict.duplicate
    subjects = _build_subjects(source.name, parsed, verdict, in_subject)
    rejects = [
        Reject(source.name, bad.row, bad.request_id, bad.field, bad.reason, bad.raw, parsed.line_of(bad.row))
        for bad in parsed.bad_rows
    ]
    rejects.extend(_row_rejects(source.name, parsed, verdict, in_subject))
    return subjects, rejects, SourceSummary(
        source.name, sha256, parsed.rows_read, parsed.format, lines_read=parsed.lines_read,
        lines_header=parsed.lines_header, lines_blank=parsed.lines_blank, lines_in_records=parsed.lines_in_records,
    )


def _read_all(source: InputSource) -> tuple[bytes, str]:
    # One read into one buffer: no chunk list to join (a second copy of the whole input).
    with source.open() as stream:
        data = stream.read()
    return data, hashlib.sha256(data).hexdigest()


def _build_subjects(name: str, parsed: ParsedSource, verdict: Verdict, in_subject: np.ndarray) -> SubjectTable:
    """One subject per request_id (in order of first appearance), identities in row order: columns only."""
    accepted = np.flatnonzero(in_subject)
    if not len(accepted):
        return SubjectTable.empty()
    order = accepted[np.argsort(verdict.rid_code[accepted], kind="stable")]
    rid = verdict.rid_code[order]
    firsts_at = np.concatenate(([0], np.flatnonzero(np.diff(rid)) + 1))
    identity_starts = np.concatenate((firsts_at, [len(order)])).astype(np.int64)
    firsts = order[firsts_at]
    record = parsed.frame["_row"].to_numpy().astype(np.int64)
    if parsed.format == "csv":
        rows, row_starts = record[order], identity_starts
    else:  # JSON: several identities share one record row; each subject lists its rows once, sorted
        rows, row_starts = _distinct_rows_per_subject(record[order], identity_starts)
    fields = {
        attribute: Coded(*_dense(verdict.subject_values[name][0][firsts], verdict.subject_values[name][1]))
        for attribute, name in zip(SUBJECT_ATTRIBUTES, SUBJECT_FIELDS, strict=True)
    }
    return SubjectTable(SubjectColumns(
        keys=verdict.request_id.take(pa.array(firsts)),
        fields=fields,
        identity_starts=identity_starts,
        namespace=Coded(*_dense(verdict.namespace[0][order], verdict.namespace[1])),
        value=verdict.value.take(pa.array(order)),
        id_type=Coded(*_dense(verdict.id_type[0][order], verdict.id_type[1])),
        row_starts=row_starts,
        rows=rows,
        source_codes=np.zeros(len(firsts), dtype=np.int64),
        sources=(name,),
    ))


def _dense(codes: np.ndarray, values: list[Any]) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Codes re-numbered to the values actually used (failed rows' values drop out)."""
    used = np.flatnonzero(np.bincount(codes, minlength=len(values)))
    renumber = np.zeros(len(values), dtype=np.int64)
    renumber[used] = np.arange(len(used))
    return renumber[codes], tuple(values[c] for c in used.tolist())


def _distinct_rows_per_subject(rows: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    subject_rows = [sorted(set(rows[a:b].tolist())) for a, b in zip(starts[:-1].tolist(), starts[1:].tolist(), strict=True)]
    flat = np.array([row for group in subject_rows for row in group], dtype=np.int64)
    return flat, np.concatenate(([0], np.cumsum([len(group) for group in subject_rows]))).astype(np.int64)


def _row_rejects(name: str, parsed: ParsedSource, verdict: Verdict, in_subject: np.ndarray) -> list[Reject]:
    """A reject for every data row (record) none of whose identity rows made it into a subject."""
    record = parsed.frame["_row"].to_numpy()
    accepted_records = set(record[in_subject].tolist()) if parsed.format != "csv" else set()
    candidates = np.flatnonzero(~in_subject)
    if not len(candidates):
        return []
    origins = _duplicate_origins(verdict, record, candidates)
    raw_rows = _raw_rows(parsed, candidates)
    request_ids = verdict.request_id.take(pa.array(candidates)).to_pylist()
    rejects: dict[int, Reject] = {}
    for index, raw, request_id in zip(candidates.tolist(), raw_rows, request_ids, strict=True):
        row = int(record[index])
        if row in accepted_records:
            continue  # JSON Lines: a repeated identity inside an accepted record
        if verdict.duplicate[index]:
            if row in rejects:
                continue  # the record's own failure (or its first duplicate) already explains it
            field_, reason = "*", f"{DUPLICATE_REASON} {origins[index]}"
        else:
            if row in rejects and not rejects[row].reason.startswith(DUPLICATE_REASON):
                continue  # first failure of a record wins
            field_, reason = verdict.field[index], verdict.reason[index]
        rejects[row] = Reject(name, row, request_id, field_, reason, raw, parsed.line_of(row))
    return list(rejects.values())


def _duplicate_origins(verdict: Verdict, record: np.ndarray, candidates: np.ndarray) -> dict[int, int]:
    """For each duplicate row index among `candidates`: the data row of the copy that was kept."""
    duplicates = candidates[verdict.duplicate[candidates]]
    if not len(duplicates):
        return {}

    def keys(indexes: np.ndarray) -> list[tuple]:
        codes = [verdict.rid_code, verdict.namespace[0], verdict.id_type[0],
                 *(verdict.subject_values[f][0] for f in SUBJECT_FIELDS)]
        values = verdict.value.take(pa.array(indexes)).to_pylist()
        return list(zip(values, *(column[indexes].tolist() for column in codes), strict=True))

    wanted = set(keys(duplicates))
    same_request = np.isin(verdict.rid_code, np.unique(verdict.rid_code[duplicates]))
    kept_rows = np.flatnonzero(same_request & ~verdict.duplicate)
    kept: dict[tuple, int] = {}
    for i, k in zip(kept_rows.tolist(), keys(kept_rows), strict=True):
        if k in wanted and k not in kept:
            kept[k] = int(record[i])
    return {i: kept.get(k, 0) for i, k in zip(duplicates.tolist(), keys(duplicates), strict=True)}


def _raw_rows(parsed: ParsedSource, indexes: np.ndarray) -> list[dict[str, str]]:
    """The rejected rows as they were read (CSV columns, or the JSON record text)."""
    if parsed.format == "csv":
        present = [c for c in parsed.columns if c in parsed.frame.columns]
        taken = pa.array(indexes)
        columns = [pa.array(parsed.frame[c]).take(taken).to_pylist() for c in present]
        return [dict(zip(present, cells, strict=True)) for cells in zip(*columns, strict=True)] if columns \
            else [{} for _ in range(len(indexes))]
    rows = parsed.frame["_row"].to_numpy()[indexes].tolist()
    return [{"json": parsed.record_text(row)} for row in rows]


def _drop_clashing_keys(
    subjects: SubjectTable, accepted_keys: list[tuple[str, pa.Array]], source_name: str
) -> tuple[SubjectTable, list[Reject]]:
    """Reject subjects whose key an earlier source had; `accepted_keys` is (source, its keys) so far."""
    keys = subjects.keys()
    earlier_keys = [known for _, known in accepted_keys]
    clashing = (pc.is_in(keys, value_set=pa.concat_arrays(earlier_keys)).to_numpy(zero_copy_only=False)
                if earlier_keys and len(keys) else np.zeros(len(keys), dtype=bool))
    if not clashing.any():  # the usual case: nothing per subject in Python
        accepted_keys.append((source_name, keys))
        return subjects, []
    rejects: list[Reject] = []
    for position in np.flatnonzero(clashing).tolist():
        subject = subjects[position]
        earlier = next(name for name, known in accepted_keys if pc.is_in(pa.array([subject.key], known.type),
                                                                          value_set=known)[0].as_py())
        reason = f"request_id already used by a request accepted from {earlier}"
        rejects.extend(
            Reject(source_name, row, subject.key, "request_id", reason, _subject_raw(subject), None)
            for row in subject.rows
        )
    kept = subjects.take(np.flatnonzero(~clashing))
    accepted_keys.append((source_name, kept.keys()))
    return kept, rejects


def _subject_raw(subject: Subject) -> dict[str, Any]:
    return {"request_id": subject.key, "action": "|".join(subject.actions), "regulation": subject.regulation}
