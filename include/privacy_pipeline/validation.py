"""Vectorised validation of identity rows (the frame `formats.parse` builds).

Low-cardinality columns (action, regulation, type, namespace, include, received_at ...) are factorized:
each distinct value is checked once in Python and the verdict is mapped back to every row through the
codes. High-cardinality columns (request_id, value) use pandas string operations over the column.
Subject-level rules (duplicates, conflicts, too many identities, a failed sibling row) work on integer
codes with numpy. Python loops only ever run over distinct values or over the rejected rows.

Rules, first failure wins per row, in this order: bad UTF-8, then each column in contract order
(request_id, action, regulation, type, namespace, value incl. email syntax, received_at, include,
priority, expand_ids, merge_policy_id). Then, on the rows that passed: exact duplicates (the first copy
is kept), and per request_id: conflicting subject fields, more than `max_identities` identities, or a
sibling row that was rejected. A request is all or nothing because a later resubmission of its
missing rows under the same key could not be told apart from a duplicate submission.

Look-alike keys and impossible receipt dates: see `values`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from privacy_pipeline import catalog
from privacy_pipeline.formats import BAD_UTF8, FRAME_COLUMNS
from privacy_pipeline.models import SUBJECT_FIELDS
from privacy_pipeline.values import mixed_scripts, normalise_key, parse_received_at

#: Pragmatic address syntax (WHATWG's "valid e-mail address", plus a dot in the domain): Adobe only
#: needs something a product could match, and RFC 5322 edge cases would only hide typos.
EMAIL_PATTERN = (
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+"
)
_EMAIL_RE = re.compile(EMAIL_PATTERN)
MAX_EMAIL_LENGTH = 254

#: The columns whose values make up the job shape and subject: rows of one request must agree on them.

_CONTROL = "[\x00-\x1f\x7f]"
#: In an identity value a tab is odd but harmless; NUL, line breaks and the rest are not identities.
_VALUE_CONTROL = "[\x00-\x08\x0a-\x1f\x7f]"

_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})


@dataclass(frozen=True)
class ValidationOptions:
    default_include: tuple[str, ...]
    map_legacy_regulations: bool
    allowed_actions: tuple[str, ...]
    max_identities: int
    regulations: catalog.RegulationCatalog = dataclass_field(default_factory=lambda: catalog.BUILT_IN)
    #: The run's clock for the "not in the future" rule (None: the wall clock).
    now: datetime | None = None


@dataclass
class Verdict:
    """Per identity row: whether it failed (field and reason), and the normalised values of the rest."""

    failed: np.ndarray  # bool
    field: np.ndarray  # object: str where failed
    reason: np.ndarray  # object: str where failed
    duplicate: np.ndarray  # bool: an exact copy of an earlier accepted row (dropped, not failed)
    request_id: pa.Array  # string: stripped
    rid_code: np.ndarray  # int: request_id code, in order of first appearance
    namespace: tuple[np.ndarray, list[str]]  # canonical: (codes per row, value per code)
    value: pa.Array  # string: stripped
    id_type: tuple[np.ndarray, list[str]]  # canonical: (codes per row, value per code)
    #: For each of SUBJECT_FIELDS: (codes per row, canonical value per code).
    subject_values: dict[str, tuple[np.ndarray, list[Any]]]


class _Failures:
    """First-failure-wins bookkeeping over all rows."""

    def __init__(self, size: int):
        self.failed = np.zeros(size, dtype=bool)
        self.field = np.full(size, None, dtype=object)
        self.reason = np.full(size, None, dtype=object)

    def add(self, field: str, mask: np.ndarray, reasons: str | np.ndarray) -> None:
        new = mask & ~self.failed
        if not new.any():
            return
        self.field[new] = field
        self.reason[new] = reasons if isinstance(reasons, str) else reasons[new]
        self.failed |= new

    def add_coded(self, field: str, raw_codes: np.ndarray, errors: np.ndarray) -> None:
        """`add` for a factorized column: `errors` per distinct value (None where it is fine)."""
        has_error = np.array([e is not None for e in errors], dtype=bool)
        if not has_error.any():
            return
        new = has_error[raw_codes] & ~self.failed
        if not new.any():
            return
        self.field[new] = field
        self.reason[new] = errors[raw_codes[new]]
        self.failed |= new


@dataclass
class _Column:
    """A factorized column checked value by value: canonical codes, values and errors per row."""

    codes: np.ndarray
    values: list[Any]
    errors: np.ndarray  # object per distinct raw value: None or the reason



def _check_distinct(column: pd.Series | _Absent, resolve: Callable[[str], Any]) -> tuple[np.ndarray, _Column]:
    """Run `resolve` (returns a canonical value or raises ValueError) once per distinct raw value."""
    return _check_distinct_batch(column, lambda uniques: [_attempt(resolve, u) for u in uniques])


def _attempt(resolve: Callable[[str], Any], raw: str) -> tuple[Any, str | None]:
    try:
        return resolve(raw), None
    except ValueError as err:
        return None, str(err)


def _check_distinct_batch(
    column: pd.Series | _Absent, resolve_all: Callable[[list[str]], list[tuple[Any, str | None]]]
) -> tuple[np.ndarray, _Column]:
    """Resolve all distinct raw values at once into (canonical value, error or None).

    Returns the raw codes per row and the per-distinct verdicts, with canonical codes that merge raw
    spellings of the same value (" GDPR" and "gdpr").
    """
    raw_codes, uniques = factorize(column)
    results = resolve_all(uniques)
    canonical_index: dict[Hashable, int] = {}
    canonical_values: list[Any] = []
    remap = np.zeros(len(results), dtype=np.int64)
    for i, (value, _) in enumerate(results):
        if value not in canonical_index:
            canonical_index[value] = len(canonical_values)
            canonical_values.append(value)
        remap[i] = canonical_index[value]
    errors = np.array([error for _, error in results], dtype=object)
    return raw_codes, _Column(remap[raw_codes], canonical_values, errors)


def factorize(column: pd.Series | pa.Array | _Absent) -> tuple[np.ndarray, list[str]]:
    """(int64 code per item, distinct values in order of first appearance), like `pd.factorize`.

    Arrow's hash-based dictionary encoding: several times faster than pandas on string columns.
    """
    if isinstance(column, _Absent):
        return np.zeros(len(column), dtype=np.int64), [""] if len(column) else []
    codes, uniques = factorize_array(column if isinstance(column, pa.Array) else _arrow(column))
    return codes, uniques.to_pylist()


def factorize_array(array: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """`factorize` keeping the distinct values as an Arrow array (no Python strings made)."""
    encoded = array.dictionary_encode()
    return encoded.indices.to_numpy().astype(np.int64), encoded.dictionary


def factorize_runs(array: pa.Array) -> tuple[np.ndarray, pa.Array]:
    """`factorize_array` for a column whose equal values mostly come in runs (a request's rows).

    Only the first item of each run is hashed; the codes are the same, since a value's first
    appearance always starts a run.
    """
    size = len(array)
    if size < 2:
        return factorize_array(array)
    starts = np.ones(size, dtype=bool)
    starts[1:] = pc.not_equal(array.slice(1), array.slice(0, size - 1)).to_numpy(zero_copy_only=False)
    head_codes, uniques = factorize_array(array.filter(pa.array(starts)))
    return head_codes[np.cumsum(starts) - 1], uniques


def _arrow(column: pd.Series) -> pa.Array:
    """The Arrow array behind a string Series (no copy for Arrow-backed strings)."""
    array = pa.array(column)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array


# ------------------------------------------------------------------------ value-by-value resolvers


def resolve_actions(raw: str, allowed: Sequence[str]) -> tuple[str, ...]:
    order = (*catalog.JOB_ACTIONS, catalog.OPT_OUT_OF_SALE)
    parts = [p.strip().lower() for p in raw.split("|")]
    if not raw.strip() or any(not p for p in parts):
        raise ValueError("action is empty" if not raw.strip() else f"action {catalog.shown(raw)} has an empty entry")
    unknown = [p for p in parts if p not in allowed]
    if unknown:
        raise ValueError(f"action {catalog.shown(unknown[0])} is not allowed here; expected one of {', '.join(allowed)}")
    if len(set(parts)) != len(parts):
        raise ValueError(f"action {catalog.shown(raw)} repeats a value")
    if catalog.OPT_OUT_OF_SALE in parts and len(parts) > 1:
        raise ValueError("opt_out_of_sale goes to POST /consent and cannot be combined with access/delete")
    return tuple(sorted(parts, key=lambda p: order.index(p) if p in order else len(order)))


def resolve_regulation(raw: str, map_legacy: bool, regulations: catalog.RegulationCatalog = catalog.BUILT_IN) -> str:
    if not raw.strip():
        raise ValueError("regulation is empty")
    return regulations.resolve(raw, map_legacy=map_legacy)


def resolve_id_type(raw: str) -> str:
    if not raw.strip():
        return catalog.DEFAULT_ID_TYPE
    try:
        return catalog.resolve_id_type(raw)
    except KeyError:
        raise ValueError(
            f"unknown identity type {catalog.shown(raw)}; expected one of {', '.join(catalog.ID_TYPES.values())}"
        ) from None


def resolve_include(raw: str, default: tuple[str, ...]) -> tuple[str, ...]:
    if not raw.strip():
        if not default:
            raise ValueError("include is empty and the run has no default products")
        return default
    products: list[str] = []
    for part in raw.split("|"):
        if not part.strip():
            raise ValueError(f"include {catalog.shown(raw)} has an empty entry")
        try:
            product = catalog.resolve_product(part)
        except KeyError:
            raise ValueError(f"unknown product {catalog.shown(part)} in include") from None
        if product not in products:
            products.append(product)
    return tuple(sorted(products, key=str.lower))


def resolve_priority(raw: str) -> str:
    value = raw.strip().lower() or "normal"
    if value not in catalog.PRIORITIES:
        raise ValueError(f"priority {catalog.shown(raw)} is not one of {', '.join(catalog.PRIORITIES)}")
    return value


def resolve_expand_ids(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expand_ids {catalog.shown(raw)} is not true or false")


def resolve_merge_policy_id(raw: str) -> str | None:
    value = raw.strip()
    if value and any(c.isspace() for c in value):
        raise ValueError("merge_policy_id contains whitespace")
    return value or None


# ---------------------------------------------------------------------------------------- validate


def validate(frame: pd.DataFrame, options: ValidationOptions, *, check_utf8: bool = False,
             failed_request_ids: Sequence[tuple[str, int]] = ()) -> Verdict:
    """Check every identity row of `frame`.

    :param check_utf8: the source had undecodable bytes (now U+FFFD): reject the rows that hold them.
    :param failed_request_ids: (request_id, row) of rows rejected before this step (malformed lines):
        their requests are rejected too.
    """
    size = len(frame)
    failures = _Failures(size)
    if check_utf8:
        for column in FRAME_COLUMNS:
            if column not in frame:
                continue
            mask = frame[column].str.contains(BAD_UTF8, regex=False).to_numpy(dtype=bool)
            failures.add(column, mask, "invalid UTF-8 bytes in this field")

    request_id = _request_ids(frame["request_id"], failures)
    rid_empty = (request_id == "").to_numpy(dtype=bool)
    failures.add("request_id", rid_empty, "request_id is empty")

    subject_values: dict[str, tuple[np.ndarray, list[Any]]] = {}
    resolvers: dict[str, Callable[[str], Any]] = {
        "action": lambda raw: resolve_actions(raw, options.allowed_actions),
        "regulation": lambda raw: resolve_regulation(raw, options.map_legacy_regulations, options.regulations),
    }
    for name, resolve in resolvers.items():
        raw_codes, column = _check_distinct(_column(frame, name), resolve)
        failures.add_coded(name, raw_codes, column.errors)
        subject_values[name] = (column.codes, column.values)

    raw_type_codes, types = _check_distinct(_column(frame, "type"), resolve_id_type)
    failures.add_coded("type", raw_type_codes, types.errors)
    id_type = (types.codes, types.values)

    namespace = _check_namespaces(_column(frame, "namespace"), id_type, failures)
    value = _check_values(frame["value"], namespace, id_type, failures)

    received_codes, received = _check_distinct_batch(_column(frame, "received_at"),
                                                     lambda uniques: parse_received_at(uniques, options.now))
    failures.add_coded("received_at", received_codes, received.errors)
    subject_values["received_at"] = (received.codes, received.values)

    shape_resolvers: dict[str, Callable[[str], Any]] = {
        "include": lambda raw: resolve_include(raw, options.default_include),
        "priority": resolve_priority,
        "expand_ids": resolve_expand_ids,
        "merge_policy_id": resolve_merge_policy_id,
    }
    for name, resolve in shape_resolvers.items():
        raw_codes, column = _check_distinct(_column(frame, name), resolve)
        failures.add_coded(name, raw_codes, column.errors)
        subject_values[name] = (column.codes, column.values)

    record = frame["_row"].to_numpy()
    _spread_record_failures(record, failures)

    request_ids = _arrow(request_id)
    rid_code, rid_uniques = factorize_runs(request_ids)
    duplicate = _find_duplicates(failures, rid_code, namespace[0], value, id_type[0], subject_values)
    _subject_rules(
        failures, duplicate, rid_code, rid_uniques, rid_empty, record, subject_values, options,
        failed_request_ids,
    )
    return Verdict(
        failures.failed, failures.field, failures.reason, duplicate, request_ids, rid_code,
        namespace, value, id_type, subject_values,
    )


def _request_ids(column: pd.Series, failures: _Failures) -> pd.Series:
    """Stripped keys; non-ASCII ones normalised (`normalise_key`), look-alikes and control characters failed."""
    stripped = column.str.strip()
    array = _arrow(stripped)
    failures.add("request_id", _matching(array, _CONTROL, _has_control), "request_id holds control characters")
    # The tail of a row broken by a quoted line break, read again on its own, starts with a key fragment
    # like `12"`: a quote never belongs in a key.
    failures.add("request_id", _matching(array, '"', _has_quote),
                 "request_id holds a quote character (the rest of a row broken by a quote?)")
    unusual = np.flatnonzero(~pc.string_is_ascii(array).to_numpy(zero_copy_only=False))
    if not len(unusual):
        return stripped
    values = stripped.to_numpy(dtype=object, copy=True)
    mixed = np.zeros(len(values), dtype=bool)
    reasons = np.full(len(values), None, dtype=object)
    for index in unusual.tolist():
        values[index] = normalise_key(values[index])
        scripts = mixed_scripts(values[index])
        if scripts:
            mixed[index] = True
            reasons[index] = (f"request_id mixes {' and '.join(s.title() for s in scripts)} letters: a look-alike "
                              "of another key; write it in one script")
    failures.add("request_id", mixed, reasons)
    return pd.Series(pd.array(values, dtype=stripped.dtype), index=stripped.index)


def _matching(array: pa.Array, pattern: str, probe: Callable[[np.ndarray], bool]) -> np.ndarray:
    """Per item: whether it matches the regex `pattern`. Skipped (all False) when `probe`, one
    vectorised pass over the array's bytes, says no item can match: the usual case."""
    if len(array) and array.null_count == 0 and pa.types.is_string(array.type) and array.buffers()[2]:
        offsets = np.frombuffer(array.buffers()[1], dtype=np.int32, count=len(array) + 1, offset=array.offset * 4)
        data = np.frombuffer(array.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
        if not len(data) or not probe(data):
            return np.zeros(len(array), dtype=bool)
    return pc.match_substring_regex(array, pattern).to_numpy(zero_copy_only=False)


def _has_control(data: np.ndarray) -> bool:
    return bool(data.min() < 0x20 or (data == 0x7F).any())


def _has_quote(data: np.ndarray) -> bool:
    return bool((data == 0x22).any())


class _Absent:
    """An optional column the source did not have: "" on every row, factorized without hashing."""

    def __init__(self, size: int):
        self.size = size

    def __len__(self) -> int:
        return self.size


def _column(frame: pd.DataFrame, name: str) -> pd.Series | _Absent:
    """A frame column; an optional column the source did not have reads as "" on every row."""
    if name in frame:
        return frame[name]
    return _Absent(len(frame))


def _check_namespaces(column: pd.Series, id_type: tuple[np.ndarray, list[str]],
                      failures: _Failures) -> tuple[np.ndarray, list[str]]:
    """Canonical namespace per row: standard ones from the catalogue, numeric for `namespaceId`."""
    raw_codes, uniques = factorize(column)
    stripped = [u.strip() for u in uniques]
    standard = [catalog.STANDARD_NAMESPACES.get(s.lower()) for s in stripped]
    canonical = [ns.code if ns else s for ns, s in zip(standard, stripped, strict=True)]
    is_standard = np.array([ns is not None for ns in standard], dtype=bool)
    is_empty = np.array([not s for s in stripped], dtype=bool)
    is_numeric = np.array([s.isascii() and s.isdigit() for s in stripped], dtype=bool)
    type_codes, type_values = id_type
    failures.add("namespace", is_empty[raw_codes], "namespace is empty")
    unknown_standard = _code_is(type_codes, type_values, catalog.DEFAULT_ID_TYPE) & ~is_standard[raw_codes]
    failures.add(
        "namespace",
        unknown_standard,
        np.array([f"unknown standard namespace {catalog.shown(s)}; use type custom for an org namespace" for s in stripped],
                 dtype=object)[raw_codes],
    )
    failures.add("namespace", _code_is(type_codes, type_values, "namespaceId") & ~is_numeric[raw_codes],
                 "type namespaceId needs a numeric namespace")
    # Raw spellings of one namespace ("email", " Email") share one canonical code.
    canonical_codes, canonical_values = factorize(pa.array(canonical, pa.string()))
    return canonical_codes[raw_codes], canonical_values


def _code_is(codes: np.ndarray, values: list[Any], wanted: Any) -> np.ndarray:
    """Per row: whether its coded value equals `wanted`."""
    return np.array([value == wanted for value in values], dtype=bool)[codes] if len(values) else np.zeros(len(codes), bool)


def _check_values(column: pd.Series, namespace: tuple[np.ndarray, list[str]],
                  id_type: tuple[np.ndarray, list[str]], failures: _Failures) -> pa.Array:
    """Stripped identity values; empty values and malformed email addresses fail."""
    stripped = column.str.strip()
    failures.add("value", (stripped == "").to_numpy(dtype=bool), "value is empty")
    failures.add("value", _matching(_arrow(stripped), _VALUE_CONTROL, _has_control),
                 "value holds control characters (a NUL, a line break ...): not an identity")
    is_email = (_code_is(*namespace, catalog.EMAIL_NAMESPACE) & _code_is(*id_type, catalog.DEFAULT_ID_TYPE)
                & ~failures.failed)
    if is_email.any():
        emails = stripped[is_email]
        valid = emails.str.fullmatch(EMAIL_PATTERN) & (emails.str.len() <= MAX_EMAIL_LENGTH)
        bad = np.zeros(len(stripped), dtype=bool)
        bad[np.flatnonzero(is_email)[~valid.to_numpy(dtype=bool)]] = True
        failures.add("value", bad, "not a valid email address")
    return _arrow(stripped)


def _spread_record_failures(record: np.ndarray, failures: _Failures) -> None:
    """A JSON Lines record with several identities fails as a whole when one of them fails."""
    if len(record) == 0 or not failures.failed.any():
        return
    positions = pd.Series(np.arange(len(record)))
    rows = pd.Series(record)
    if not rows.duplicated().any():
        return  # one row per record (CSV)
    first_failure = positions[failures.failed].groupby(rows[failures.failed].to_numpy()).first()
    source = rows.map(first_failure)
    spread = source.notna().to_numpy() & ~failures.failed
    if spread.any():
        origin = source[spread].astype(np.int64).to_numpy()
        failures.field[spread] = failures.field[origin]
        failures.reason[spread] = failures.reason[origin]
        failures.failed |= spread


def _find_duplicates(failures: _Failures, rid_code: np.ndarray, namespace: np.ndarray, value: pa.Array,
                     id_type: np.ndarray, subject_values: dict[str, tuple[np.ndarray, list[Any]]]) -> np.ndarray:
    """Rows equal (after normalisation) to an earlier accepted row: the first copy is kept.

    The integer codes are packed into one key; a stable sort by (key, value) puts equal rows next to
    each other in row order, so every row equal to its predecessor there is a later copy.
    """
    duplicate = np.zeros(len(rid_code), dtype=bool)
    if np.count_nonzero(~failures.failed) < 2:
        return duplicate
    key = pack_codes([rid_code, namespace, id_type, *(subject_values[name][0] for name in SUBJECT_FIELDS)])
    # Failed rows get keys of their own (negative, distinct), so they never pair with anything.
    failed = np.flatnonzero(failures.failed)
    key[failed] = -1 - np.arange(len(failed))
    # Arrow's sort_indices is stable: among equal rows the earliest comes first.
    positions = pc.sort_indices(
        pa.table({"key": key, "value": value}), sort_keys=[("key", "ascending"), ("value", "ascending")]
    ).to_numpy()
    sorted_key = key[positions]
    sorted_value = value.take(pa.array(positions))
    size = len(positions)
    same = np.zeros(size, dtype=bool)
    same[1:] = (sorted_key[1:] == sorted_key[:-1]) & pc.equal(
        sorted_value.slice(1), sorted_value.slice(0, size - 1)
    ).to_numpy(zero_copy_only=False)
    duplicate[positions[same]] = True
    return duplicate


def pack_codes(columns: Sequence[np.ndarray]) -> np.ndarray:
    """One int64 per row that is equal exactly when every code column is equal.

    Codes are non-negative and dense: they are packed bit-wise while they fit in 63 bits, and
    re-numbered (factorized) whenever the next column would overflow.
    """
    key = np.zeros(len(columns[0]) if columns else 0, dtype=np.int64)
    span = 1
    for column in columns:
        column = column.astype(np.int64, copy=False)
        width = int(column.max()) + 1 if len(column) else 1
        if span * width >= 1 << 62:
            key, uniques = pd.factorize(key)
            key = key.astype(np.int64)
            span = max(len(uniques), 1)
        key = key * width + column
        span *= width
    return key


def _subject_rules(failures: _Failures, duplicate: np.ndarray, rid_code: np.ndarray, rid_uniques: pa.Array,
                   rid_empty: np.ndarray, record: np.ndarray,
                   subject_values: dict[str, tuple[np.ndarray, list[Any]]], options: ValidationOptions,
                   failed_request_ids: Sequence[tuple[str, int]]) -> None:
    """Reject whole requests: conflicting fields, too many identities, or a rejected sibling row."""
    count = len(rid_uniques)
    live = np.flatnonzero(~failures.failed & ~duplicate)
    reasons: dict[int, tuple[str, str]] = {}

    if len(live):
        live_rid = rid_code[live]
        first_index = np.zeros(count, dtype=np.int64)
        unique_rids, first_at = np.unique(live_rid, return_index=True)
        first_index[unique_rids] = live[first_at]
        conflicts: dict[int, list[str]] = {}
        for name in SUBJECT_FIELDS:
            codes = subject_values[name][0]
            mismatch = codes[live] != codes[first_index[live_rid]]
            for rid in np.unique(live_rid[mismatch]).tolist():
                conflicts.setdefault(rid, []).append(name)
        for rid, names in conflicts.items():
            reasons[rid] = (names[0], f"rows of this request disagree on {', '.join(names)}")

        identities = np.bincount(live_rid, minlength=count)
        for rid in np.flatnonzero(identities > options.max_identities).tolist():
            reasons.setdefault(rid, ("request_id", (
                f"request has {int(identities[rid])} identities; Adobe allows at most "
                f"{options.max_identities} per subject")))

    for rid, row, field in _failed_siblings(failures, rid_code, rid_uniques, rid_empty, record,
                                            failed_request_ids):
        reasons.setdefault(rid, ("request_id", f"another row of this request (row {row}) was rejected ({field})"))

    if not reasons:
        return
    rejected = np.zeros(count, dtype=bool)
    rejected[list(reasons)] = True
    mask = rejected[rid_code] & ~failures.failed & ~duplicate
    rows = np.flatnonzero(mask)
    failures.field[rows] = [reasons[r][0] for r in rid_code[rows].tolist()]
    failures.reason[rows] = [reasons[r][1] for r in rid_code[rows].tolist()]
    failures.failed |= mask


def _failed_siblings(failures: _Failures, rid_code: np.ndarray, rid_uniques: pa.Array, rid_empty: np.ndarray,
                     record: np.ndarray, failed_request_ids: Sequence[tuple[str, int]]):
    """(rid code, row, field) of the first failed row of each request that has one."""
    failed = np.flatnonzero(failures.failed & ~rid_empty)
    seen: set[int] = set()
    for index in failed.tolist():
        rid = int(rid_code[index])
        if rid not in seen:
            seen.add(rid)
            yield rid, int(record[index]), failures.field[index]
    if failed_request_ids:
        # Only the few wanted ids are hashed; the column of known ids is scanned once.
        wanted = pa.array(sorted({rid for rid, _ in failed_request_ids}), pa.string())
        known = np.flatnonzero(pc.is_in(rid_uniques, value_set=wanted).to_numpy(zero_copy_only=False))
        code_of = dict(zip(rid_uniques.take(pa.array(known)).to_pylist(), known.tolist(), strict=True))
        for rid_text, row in failed_request_ids:
            code = code_of.get(rid_text, -1)
            if code >= 0 and code not in seen:
                seen.add(code)
                yield code, row, "malformed line"
