"""Batching: subjects -> deterministic batches of one job shape, and their POST /jobs bodies.

A batch is what one `POST /jobs` sends: at most 1000 subjects (Adobe's limit per request), all with
the same regulation, include products, priority, expandIds and mergePolicyId (those are request-level
fields). Batches and their ids depend only on the subjects, never on file order or the clock, so a
rerun over the same input plans the same batches and the ledger recognises them.

Batches are planned and serialised from columns only (one code path), with Arrow doing the sorting and
the JSON assembly: a `SubjectTable` (what intake returns) as it is, any other sequence of `Subject`s
(a loaded or a retry batch, tests) after `subject_table` has put it in columns.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from json.encoder import encode_basestring
from typing import Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from privacy_pipeline import catalog
from privacy_pipeline.models import MAX_IDENTITIES_PER_SUBJECT, Coded, Identity, Subject, SubjectTable
from privacy_pipeline.validation import pack_codes

MAX_SUBJECTS_PER_REQUEST = 1000
BATCH_FORMAT_VERSION = 1

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class JobShape:
    """The request-level fields of POST /jobs: subjects of one shape can share a request."""

    regulation: str
    include: tuple[str, ...]
    priority: str = "normal"
    expand_ids: bool = False
    merge_policy_id: str | None = None

    @classmethod
    def of(cls, subject: Subject) -> JobShape:
        return cls(subject.regulation, subject.include, subject.priority, subject.expand_ids, subject.merge_policy_id)

    def sort_key(self) -> tuple:
        return (self.regulation, self.include, self.priority, self.expand_ids, self.merge_policy_id or "")


@dataclass(frozen=True, slots=True)
class Batch:
    batch_id: str
    shape: JobShape
    #: A tuple, or a `SubjectTable` view when planned from one (equal to the tuple of its subjects).
    subjects: Sequence[Subject]

    @property
    def jobs_expected(self) -> int:
        """Adobe creates one job per (subject, action)."""
        if isinstance(self.subjects, SubjectTable):
            return self.subjects.action_total()
        return sum(len(subject.actions) for subject in self.subjects)

    @property
    def rows_total(self) -> int:
        """Input rows behind this batch's subjects."""
        if isinstance(self.subjects, SubjectTable):
            return self.subjects.row_total()
        return sum(len(subject.rows) for subject in self.subjects)

    @property
    def user_actions(self) -> list[tuple[str, str]]:
        if isinstance(self.subjects, SubjectTable):
            table = self.subjects
            actions = table.field_values("actions")
            pairs = zip(table.keys().to_pylist(), table.field_codes("actions").tolist(), strict=True)
            return [(key, action) for key, code in pairs for action in actions[code]]
        return [(subject.key, action) for subject in self.subjects for action in subject.actions]


def batch_id_for(shape: JobShape, subjects: Sequence[Subject]) -> str:
    """`b-` + 20 hex digits of sha256 over the shape and the subjects' keys and actions."""
    members = "".join(f"\x00{subject.key}\x01{'|'.join(subject.actions)}" for subject in subjects)
    digest = _shape_digest(shape)
    digest.update(members.encode("utf-8", "surrogatepass"))
    return "b-" + digest.hexdigest()[:20]


def _shape_digest(shape: JobShape) -> Any:
    return hashlib.sha256(json.dumps(_shape_to_json(shape), sort_keys=True).encode())


def plan_batches(subjects: Iterable[Subject], max_subjects: int = MAX_SUBJECTS_PER_REQUEST) -> list[Batch]:
    """Group subjects by job shape and cut each group into batches of at most `max_subjects`.

    Shapes are ordered by their fields and subjects by key, so the plan does not depend on input order.

    :raises ValueError: `max_subjects` outside 1..1000, a subject Adobe would refuse (no action, an
        opt-out-of-sale action, no identity or more than 9), or a key used twice.
    """
    if not 1 <= max_subjects <= MAX_SUBJECTS_PER_REQUEST:
        raise ValueError(f"max_subjects must be between 1 and {MAX_SUBJECTS_PER_REQUEST}")
    return _plan_table(subjects if isinstance(subjects, SubjectTable) else subject_table(list(subjects)),
                       max_subjects)


def subject_table(subjects: Sequence[Subject]) -> SubjectTable:
    """`subjects` as columns (the one form batching plans and serialises)."""
    from privacy_pipeline.models import SUBJECT_ATTRIBUTES, SubjectColumns

    identities = [identity for subject in subjects for identity in subject.identities]
    sources = _coded([subject.source for subject in subjects])
    return SubjectTable(SubjectColumns(
        keys=pa.array([subject.key for subject in subjects], pa.string()),
        fields={name: _coded([getattr(subject, name) for subject in subjects]) for name in SUBJECT_ATTRIBUTES},
        identity_starts=_starts([len(subject.identities) for subject in subjects]),
        namespace=_coded([identity.namespace for identity in identities]),
        value=pa.array([identity.value for identity in identities], pa.string()),
        id_type=_coded([identity.type for identity in identities]),
        row_starts=_starts([len(subject.rows) for subject in subjects]),
        rows=np.array([row for subject in subjects for row in subject.rows], dtype=np.int64),
        source_codes=sources.codes,
        sources=tuple(sources.values),
    ))


def _coded(values: Sequence[Any]) -> Coded:
    index: dict[Any, int] = {}
    codes = np.array([index.setdefault(value, len(index)) for value in values], dtype=np.int64)
    return Coded(codes, tuple(index))


def _starts(counts: Sequence[int]) -> np.ndarray:
    return np.concatenate([[0], np.cumsum(np.array(counts, dtype=np.int64))]).astype(np.int64)


_SHAPE_FIELDS = ("regulation", "include", "priority", "expand_ids", "merge_policy_id")


def _plan_table(table: SubjectTable, max_subjects: int) -> list[Batch]:
    """`plan_batches` on columns: one stable sort by (shape rank, key), then cuts every `max_subjects`.

    Arrow orders strings by their UTF-8 bytes, which is code-point order, as Python's `sorted` does.
    """
    if not len(table):
        return []
    _check_table_submittable(table)
    keys = table.keys()
    by_key = pc.sort_indices(keys).to_numpy()
    sorted_keys = keys.take(pa.array(by_key))
    if len(keys) > 1 and pc.any(pc.equal(sorted_keys.slice(1), sorted_keys.slice(0, len(keys) - 1))).as_py():
        raise ValueError("a subject key appears twice; keys must be unique within a run")
    codes = [table.field_codes(name) for name in _SHAPE_FIELDS]
    shape_ids, first_at, shape_of = np.unique(pack_codes(codes), return_index=True, return_inverse=True)
    appearance = np.argsort(first_at, kind="stable")  # group order before sorting: first appearance
    shapes = {
        int(shape_id): JobShape(*(table.field_values(name)[int(column[first_at[shape_id]])]
                                  for name, column in zip(_SHAPE_FIELDS, codes, strict=True)))
        for shape_id in appearance.tolist()
    }
    ranked = sorted(shapes, key=lambda shape_id: shapes[shape_id].sort_key())
    rank = np.empty(len(shape_ids), dtype=np.int64)
    rank[ranked] = np.arange(len(ranked))
    subject_rank = rank[shape_of.reshape(-1)]
    within_shape = np.argsort(subject_rank[by_key], kind="stable")  # keeps key order inside each shape
    order = by_key[within_shape]
    sorted_rank = subject_rank[order]
    sorted_keys = sorted_keys.take(pa.array(within_shape)).to_pylist()
    action_suffix = ["\x01" + "|".join(actions) for actions in table.field_values("actions")]
    sorted_actions = table.field_codes("actions")[order].tolist()

    batches: list[Batch] = []
    group_starts = np.flatnonzero(np.diff(sorted_rank, prepend=-1)).tolist()
    for group_start, group_end in zip(group_starts, [*group_starts[1:], len(order)], strict=True):
        shape = shapes[ranked[int(sorted_rank[group_start])]]
        shape_digest = _shape_digest(shape)
        for start in range(group_start, group_end, max_subjects):
            end = min(start + max_subjects, group_end)
            members = "".join(["\x00" + key + action_suffix[code]
                               for key, code in zip(sorted_keys[start:end], sorted_actions[start:end], strict=True)])
            digest = shape_digest.copy()
            digest.update(members.encode("utf-8", "surrogatepass"))
            batches.append(Batch("b-" + digest.hexdigest()[:20], shape, table.take(order[start:end])))
    return batches


def _check_table_submittable(table: SubjectTable) -> None:
    """`_check_submittable` on columns; the first offending subject raises the same error."""
    actions_ok = np.array([a in _JOB_ACTION_SETS for a in table.field_values("actions")], dtype=bool)
    include_ok = np.array([bool(i) for i in table.field_values("include")], dtype=bool)
    counts = table.identity_counts()
    ok = (actions_ok[table.field_codes("actions")] & include_ok[table.field_codes("include")]
          & (counts >= 1) & (counts <= MAX_IDENTITIES_PER_SUBJECT))
    if not ok.all():
        _check_submittable(table[int(np.flatnonzero(~ok)[0])])


_JOB_ACTION_SETS = frozenset({("access",), ("delete",), ("access", "delete"), ("delete", "access")})


def _check_submittable(subject: Subject) -> None:
    if subject.actions not in _JOB_ACTION_SETS:
        raise ValueError(f"subject actions {subject.actions} are not job actions ({', '.join(catalog.JOB_ACTIONS)})")
    if not 1 <= len(subject.identities) <= MAX_IDENTITIES_PER_SUBJECT:
        raise ValueError(f"a subject needs 1 to {MAX_IDENTITIES_PER_SUBJECT} identities, not {len(subject.identities)}")
    if not subject.include:
        raise ValueError("a subject needs at least one include product")


def batch_payload(batch: Batch, org_id: str) -> dict[str, Any]:
    """The Adobe POST /jobs body for `batch` (reference section 2.1)."""
    shape = batch.shape
    payload: dict[str, Any] = {
        "companyContexts": [{"namespace": "imsOrgID", "value": org_id}],
        "users": [subject.as_user() for subject in batch.subjects],
        "include": list(shape.include),
        "expandIds": shape.expand_ids,
        "priority": shape.priority,
        "regulation": shape.regulation,
    }
    if shape.merge_policy_id is not None:
        # Adobe's examples send an integer; keep anything else as the string we were given.
        merge = shape.merge_policy_id
        payload["mergePolicyId"] = int(merge) if merge.isascii() and merge.isdigit() else merge
    return payload


def chunk_evenly(items: Sequence[T], max_chunks: int) -> list[list[T]]:
    """Split `items` in order into at most `max_chunks` contiguous chunks whose sizes differ by <= 1.

    Keeps the number of mapped Airflow tasks under `max_map_length` (1024) whatever the input size.
    """
    if max_chunks < 1:
        raise ValueError("max_chunks must be at least 1")
    items = list(items)
    count = min(len(items), max_chunks)
    if count == 0:
        return []
    size, extra = divmod(len(items), count)
    chunks: list[list[T]] = []
    start = 0
    for index in range(count):
        end = start + size + (1 if index < extra else 0)
        chunks.append(items[start:end])
        start = end
    return chunks


# ---------------------------------------------------------------------------------- serialisation


def dump_batch(batch: Batch) -> bytes:
    """The staged batch as compact JSON bytes (holds identity values: store it encrypted, never log it).

    Subject fields the shape already fixes are not repeated; each subject is an array
    `[key, actions, [[namespace, value, type], ...], received_at, source index, rows]`.
    """
    table = batch.subjects if isinstance(batch.subjects, SubjectTable) else subject_table(batch.subjects)
    return _dump_table_batch(batch, table)


def _dump_table_batch(batch: Batch, table: SubjectTable) -> bytes:
    """`dump_batch` from columns: the same bytes, with each subject's JSON made once per table by Arrow."""
    head, tail = _subject_json(table)
    positions = pa.array(table.positions)
    codes = table.columns.source_codes[table.positions]
    used, first_at, local = np.unique(codes, return_index=True, return_inverse=True)
    appearance = np.argsort(first_at, kind="stable")
    number = np.empty(len(used), dtype=np.int64)
    number[appearance] = np.arange(len(used))
    source_numbers = pc.cast(pa.array(number[local.reshape(-1)]), pa.large_string())
    records = _join(head.take(positions), ",", source_numbers, ",", tail.take(positions))
    body = _join_lists(np.array([0, len(records)], dtype=np.int64), records)
    document = {
        "version": BATCH_FORMAT_VERSION,
        "batch_id": batch.batch_id,
        "shape": _shape_to_json(batch.shape),
        "sources": [table.columns.sources[c] for c in used[appearance].tolist()],
    }
    opening = json.dumps(document, ensure_ascii=False, separators=(",", ":"))[:-1]
    return f'{opening},"subjects":[{body[0].as_py()}]}}'.encode()


def _subject_json(table: SubjectTable) -> tuple[pa.Array, pa.Array]:
    """Per subject of the table's columns: its JSON array up to the source index, and after it.

    Built once per column store (cached on it) for all subjects, since a plan dumps every batch.
    """
    columns = table.columns
    cached = columns.cache.get("subject_json")
    if cached is not None:
        return cached
    # One identity is `["<namespace>","<value>","<type>"]`: the text around the value depends only on the
    # (namespace, type) pair, so it is made once per pair and joined with each value's escaped body.
    pair_codes = pa.array(columns.namespace.codes * len(columns.id_type.values) + columns.id_type.codes)
    before = [f"[{_json_text(namespace)},\"" for namespace in columns.namespace.values
              for _ in columns.id_type.values]
    after = [f"\",{_json_text(id_type)}]" for _ in columns.namespace.values for id_type in columns.id_type.values]
    identities = _join(pa.array(before, pa.large_string()).take(pair_codes), _json_string_bodies(columns.value),
                       pa.array(after, pa.large_string()).take(pair_codes))
    identity_lists = _join_lists(columns.identity_starts, identities)
    received = columns.fields["received_at"]
    received_json = _received_json(received.values).take(pa.array(received.codes)) if len(received.values) \
        else pa.array([], pa.large_string())
    actions = columns.fields["actions"]
    actions_json = pa.array([f'",{_json_text(list(value))},[' for value in actions.values],
                            pa.large_string()).take(pa.array(actions.codes))
    head = _join('["', _json_string_bodies(columns.keys), actions_json, identity_lists, "],", received_json)
    row_text = pc.cast(pa.array(columns.rows), pa.large_string())
    row_lists = _join_lists(columns.row_starts, row_text)
    tail = _join("[", row_lists, "]]")
    columns.cache["subject_json"] = (head, tail)
    return head, tail


def _received_json(values: Sequence[datetime | None]) -> pa.Array:
    """Each distinct received_at as JSON: `"<isoformat()>"`, or `null` for None.

    Intake's values are whole-second UTC datetimes: Arrow formats those in one call. Anything else (a
    sub-second time, another offset, a naive time, a year Arrow would not pad as `isoformat` does) goes
    through `isoformat` one by one, which is the definition.
    """
    present = [value for value in values if value is not None]
    if present and all(value.tzinfo is UTC for value in present):
        stamps = pa.array(present, pa.timestamp("us", tz="UTC"))
        micros = stamps.cast(pa.int64()).to_numpy()
        years = pc.year(stamps).to_numpy()
        if not (micros % 1_000_000).any() and ((years >= 1000) & (years <= 9999)).all():
            text = pc.strftime(stamps.cast(pa.timestamp("s", tz="UTC")), format='"%Y-%m-%dT%H:%M:%S+00:00"')
            formatted = iter(text.to_pylist())
            return pa.array([next(formatted) if value is not None else "null" for value in values],
                            pa.large_string())
    return pa.array([f'"{value.isoformat()}"' if value else "null" for value in values], pa.large_string())


def _join(*parts: str | pa.Array) -> pa.Array:
    """Element-wise concatenation of Arrow string arrays and constant strings."""
    pieces = [pa.scalar(p, pa.large_string()) if isinstance(p, str) else p.cast(pa.large_string()) for p in parts]
    return pc.binary_join_element_wise(*pieces, pa.scalar("", pa.large_string()))


def _join_lists(starts: np.ndarray, texts: pa.Array) -> pa.Array:
    """For each i: texts[starts[i]:starts[i + 1]] joined with commas."""
    lists = pa.LargeListArray.from_arrays(pa.array(starts, pa.int64()), texts.cast(pa.large_string()))
    return pc.binary_join(lists, pa.scalar(",", pa.large_string()))


def _json_string_bodies(array: pa.Array) -> pa.Array:
    """Each string as the inside of a JSON string literal, exactly as `json.dumps(..., ensure_ascii=False)`
    writes it between its quotes.

    Only quotes, backslashes and control characters need escaping: those few strings go through
    Python's own encoder, the rest are used as they are.
    """
    array = array.cast(pa.large_string())
    needs_escape = _needs_escape(array)
    if needs_escape is None:
        return array
    escaped = [encode_basestring(text)[1:-1] for text in array.filter(needs_escape).to_pylist()]
    return pc.replace_with_mask(array, needs_escape, pa.array(escaped, pa.large_string()))


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _needs_escape(array: pa.Array) -> pa.Array | None:
    """Which strings hold a `"`, a `\\` or a control character (None when none does, the usual case).

    One scan of the UTF-8 bytes: those characters are single bytes below 0x80 that never occur inside a
    multi-byte sequence, so a byte match is a character match. Only matched bytes are mapped back to
    their strings.
    """
    if len(array) == 0:
        return None
    offsets_buffer, data_buffer = array.buffers()[1:3]
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64)[array.offset:array.offset + len(array) + 1]
    if data_buffer is None or offsets[-1] == offsets[0]:
        return None
    data = np.frombuffer(data_buffer, dtype=np.uint8)[offsets[0]:offsets[-1]]
    special = np.flatnonzero((data < 0x20) | (data == 0x22) | (data == 0x5C))
    if not len(special):
        return None
    owners = np.searchsorted(offsets, special + offsets[0], side="right") - 1
    mask = np.zeros(len(array), dtype=bool)
    mask[owners] = True
    if array.null_count:
        mask &= array.is_valid().to_numpy(zero_copy_only=False)
    return pa.array(mask)


def load_batch(data: bytes | str) -> Batch:
    """Inverse of `dump_batch`; `ValueError` when the document is not a batch or its id does not match."""
    document = json.loads(data)
    if not isinstance(document, dict) or document.get("version") != BATCH_FORMAT_VERSION:
        raise ValueError("not a staged batch document (or an unknown version)")
    shape = _shape_from_json(document["shape"])
    sources = document["sources"]
    subjects = tuple(
        Subject(
            key=key,
            actions=tuple(actions),
            regulation=shape.regulation,
            include=shape.include,
            identities=tuple(Identity(*identity) for identity in identities),
            received_at=datetime.fromisoformat(received) if received else None,
            priority=shape.priority,
            expand_ids=shape.expand_ids,
            merge_policy_id=shape.merge_policy_id,
            source=sources[source],
            rows=tuple(rows),
        )
        for key, actions, identities, received, source, rows in document["subjects"]
    )
    batch = Batch(document["batch_id"], shape, subjects)
    # A retry batch (privacy_pipeline.reconcile) is `<content id>.r<attempt>`: the content part must match.
    if batch_id_for(shape, subjects) != batch.batch_id.partition(".")[0]:
        raise ValueError(f"batch {batch.batch_id} does not match its content")
    return batch


def _shape_to_json(shape: JobShape) -> dict[str, Any]:
    return {
        "regulation": shape.regulation,
        "include": list(shape.include),
        "priority": shape.priority,
        "expand_ids": shape.expand_ids,
        "merge_policy_id": shape.merge_policy_id,
    }


def _shape_from_json(item: dict[str, Any]) -> JobShape:
    return JobShape(
        item["regulation"], tuple(item["include"]), item["priority"], item["expand_ids"], item["merge_policy_id"]
    )
