"""Intake: pending request files -> validated `Subject`s and `Reject`s, every input row accounted for.

The caller (an Airflow task) hands over `InputSource`s that open byte streams (local files, S3 bodies);
this module does no I/O of its own beyond reading them. Each source is hashed (sha256 of the bytes as
stored, so a re-uploaded identical file is recognised), decompressed when gzip, parsed
(`formats`), validated (`validation`), and turned into frozen objects. The invariant

    rows_read == sum(len(s.rows) for s in subjects) + len(rejects)

always holds: a row is in exactly one subject or in rejects (duplicates are rejects; a file rejected
as a whole counts as one row, row 0).
"""

from __future__ import annotations

import gc
import hashlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, BinaryIO

import numpy as np

from privacy_pipeline import catalog
from privacy_pipeline.formats import FileRejected, ParsedSource, decompress, parse
from privacy_pipeline.models import Identity, Reject, Subject
from privacy_pipeline.validation import SUBJECT_FIELDS, ValidationOptions, Verdict, validate

_READ_CHUNK = 1 << 20
DUPLICATE_REASON = "exact duplicate of row"


@dataclass(frozen=True)
class InputSource:
    """One input file. `name` is its uri as shown in rejects and reports; `open` returns a fresh stream."""

    name: str
    open: Callable[[], BinaryIO]


@dataclass(frozen=True)
class IntakeOptions:
    default_include: tuple[str, ...]
    map_legacy_regulations: bool = False
    allowed_actions: tuple[str, ...] = catalog.JOB_ACTIONS
    max_identities: int = 9


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


@dataclass
class IntakeResult:
    subjects: list[Subject] = field(default_factory=list)
    rejects: list[Reject] = field(default_factory=list)
    rows_read: int = 0
    sources: list[SourceSummary] = field(default_factory=list)

    @property
    def rows_in_subjects(self) -> int:
        return sum(len(subject.rows) for subject in self.subjects)

    def accounting_gap(self) -> int:
        """Rows neither in a subject nor rejected (0 unless there is a bug); the callers assert on it."""
        return self.rows_read - self.rows_in_subjects - len(self.rejects)


def read_requests(sources: Iterable[InputSource], options: IntakeOptions) -> IntakeResult:
    """Read, validate and group every source. Never raises on bad input: bad input becomes rejects.

    A request_id accepted from an earlier source is rejected in a later one: keys must be unique in a
    run, since the ledger and Adobe's list endpoint find a subject again by its key.
    """
    result = IntakeResult()
    accepted_keys: dict[str, str] = {}
    for source in sources:
        with _gc_paused():
            subjects, rejects, summary = _read_source(source, options)
        subjects, clashes = _drop_clashing_keys(subjects, accepted_keys, source.name)
        rejects = sorted(rejects + clashes, key=lambda r: r.row)
        result.subjects.extend(subjects)
        result.rejects.extend(rejects)
        result.rows_read += summary.rows_read
        result.sources.append(
            SourceSummary(
                summary.name, summary.sha256, summary.rows_read, summary.format,
                rows_rejected=len(rejects), subjects=len(subjects), file_error=summary.file_error,
            )
        )
    return result


def split_opt_outs(subjects: Iterable[Subject]) -> tuple[list[Subject], list[Subject]]:
    """(subjects for POST /jobs, opt-out-of-sale subjects for POST /consent)."""
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


def _read_source(source: InputSource, options: IntakeOptions) -> tuple[list[Subject], list[Reject], SourceSummary]:
    stored, sha256 = _read_all(source)
    try:
        parsed = parse(source.name, decompress(stored))
    except FileRejected as err:
        reject = Reject(source.name, 0, "", "file", str(err), {}, None)
        return [], [reject], SourceSummary(source.name, sha256, 1, "unknown", file_error=str(err))

    verdict = validate(
        parsed.frame,
        ValidationOptions(
            default_include=tuple(catalog.resolve_product(p) for p in options.default_include),
            map_legacy_regulations=options.map_legacy_regulations,
            allowed_actions=tuple(a.lower() for a in options.allowed_actions),
            max_identities=options.max_identities,
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
    return subjects, rejects, SourceSummary(source.name, sha256, parsed.rows_read, parsed.format)


def _read_all(source: InputSource) -> tuple[bytes, str]:
    digest = hashlib.sha256()
    chunks: list[bytes] = []
    with source.open() as stream:
        while chunk := stream.read(_READ_CHUNK):
            digest.update(chunk)
            chunks.append(chunk)
    return b"".join(chunks), digest.hexdigest()


def _build_subjects(name: str, parsed: ParsedSource, verdict: Verdict, in_subject: np.ndarray) -> list[Subject]:
    """One `Subject` per request_id, identities in row order. The only per-subject Python loop."""
    accepted = np.flatnonzero(in_subject)
    if not len(accepted):
        return []
    order = accepted[np.argsort(verdict.rid_code[accepted], kind="stable")]
    rid = verdict.rid_code[order]
    bounds = np.flatnonzero(np.diff(rid)) + 1
    starts = np.concatenate(([0], bounds)).tolist()
    ends = np.concatenate((bounds, [len(order)])).tolist()
    firsts = order[starts]

    keys = verdict.request_id[firsts].tolist()
    fields = {
        name_: [values[c] for c in codes[firsts].tolist()]
        for name_, (codes, values) in verdict.subject_values.items()
        if name_ in SUBJECT_FIELDS
    }
    namespaces = verdict.namespace[order].tolist()
    values = verdict.value[order].tolist()
    types = verdict.id_type[order].tolist()
    rows = parsed.frame["_row"].to_numpy()[order].tolist()
    one_row_per_record = parsed.format == "csv"

    subjects: list[Subject] = []
    for i, (start, end) in enumerate(zip(starts, ends, strict=True)):
        record_rows = rows[start:end]
        subjects.append(
            Subject(
                key=keys[i],
                actions=fields["action"][i],
                regulation=fields["regulation"][i],
                include=fields["include"][i],
                identities=tuple(map(Identity, namespaces[start:end], values[start:end], types[start:end])),
                received_at=fields["received_at"][i],
                priority=fields["priority"][i],
                expand_ids=fields["expand_ids"][i],
                merge_policy_id=fields["merge_policy_id"][i],
                source=name,
                rows=tuple(record_rows) if one_row_per_record else tuple(sorted(set(record_rows))),
            )
        )
    return subjects


def _row_rejects(name: str, parsed: ParsedSource, verdict: Verdict, in_subject: np.ndarray) -> list[Reject]:
    """A reject for every data row (record) none of whose identity rows made it into a subject."""
    record = parsed.frame["_row"].to_numpy()
    accepted_records = set(record[in_subject].tolist()) if parsed.format != "csv" else set()
    candidates = np.flatnonzero(~in_subject)
    if not len(candidates):
        return []
    origins = _duplicate_origins(verdict, record, candidates)
    raw_rows = _raw_rows(parsed, candidates)
    rejects: dict[int, Reject] = {}
    for index, raw in zip(candidates.tolist(), raw_rows, strict=True):
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
        rejects[row] = Reject(name, row, str(verdict.request_id[index]), field_, reason, raw, parsed.line_of(row))
    return list(rejects.values())


def _duplicate_origins(verdict: Verdict, record: np.ndarray, candidates: np.ndarray) -> dict[int, int]:
    """For each duplicate row index among `candidates`: the data row of the copy that was kept."""
    duplicates = candidates[verdict.duplicate[candidates]]
    if not len(duplicates):
        return {}

    def key(i: int) -> tuple:
        return (int(verdict.rid_code[i]), verdict.namespace[i], verdict.value[i], verdict.id_type[i],
                *(int(verdict.subject_values[f][0][i]) for f in SUBJECT_FIELDS))

    wanted = {key(i) for i in duplicates.tolist()}
    same_request = np.isin(verdict.rid_code, np.unique(verdict.rid_code[duplicates]))
    kept: dict[tuple, int] = {}
    for i in np.flatnonzero(same_request & ~verdict.duplicate).tolist():
        k = key(i)
        if k in wanted and k not in kept:
            kept[k] = int(record[i])
    return {i: kept.get(key(i), 0) for i in duplicates.tolist()}


def _raw_rows(parsed: ParsedSource, indexes: np.ndarray) -> list[dict[str, str]]:
    """The rejected rows as they were read (CSV columns, or the JSON record text)."""
    if parsed.format == "csv":
        present = [c for c in parsed.columns if c in parsed.frame.columns]
        return parsed.frame.iloc[indexes][present].to_dict("records")
    rows = parsed.frame["_row"].to_numpy()[indexes].tolist()
    return [{"json": parsed.record_text(row)} for row in rows]


def _drop_clashing_keys(
    subjects: Sequence[Subject], accepted_keys: dict[str, str], source_name: str
) -> tuple[list[Subject], list[Reject]]:
    keys = [subject.key for subject in subjects]
    if accepted_keys.keys().isdisjoint(keys):  # the usual case, at C speed
        accepted_keys.update(dict.fromkeys(keys, source_name))
        return list(subjects), []
    kept: list[Subject] = []
    rejects: list[Reject] = []
    for subject in subjects:
        earlier = accepted_keys.get(subject.key)
        if earlier is None:
            accepted_keys[subject.key] = source_name
            kept.append(subject)
            continue
        reason = f"request_id already used by a request accepted from {earlier}"
        rejects.extend(
            Reject(source_name, row, subject.key, "request_id", reason, _subject_raw(subject), None)
            for row in subject.rows
        )
    return kept, rejects


def _subject_raw(subject: Subject) -> dict[str, Any]:
    return {"request_id": subject.key, "action": "|".join(subject.actions), "regulation": subject.regulation}
