"""Value types shared by intake, batching, ledger and report. Frozen, so they can be keys and shared.

`SubjectTable` holds many subjects as columns (what intake returns and batching works on) and builds
`Subject` objects only for the callers that ask for them.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, overload

import numpy as np
import pyarrow as pa


@dataclass(frozen=True, slots=True)
class Identity:
    """One `userIDs[]` entry: canonical namespace code, the identity value and its qualifier."""

    namespace: str
    value: str
    type: str = "standard"

    def __repr__(self) -> str:
        # Identity values are personal data: keep them out of reprs, tracebacks and logs.
        return f"Identity(namespace={self.namespace!r}, type={self.type!r}, value=<redacted>)"

    def as_user_id(self) -> dict[str, str]:
        """The Adobe `userIDs[]` item."""
        return {"namespace": self.namespace, "value": self.value, "type": self.type}


@dataclass(frozen=True, slots=True)
class Subject:
    """One data subject (`users[]` item) and where it came from.

    `key` is the request_id, which becomes `users[].key` and is how the ledger finds the subject again.
    `rows` are the 1-based data rows of `source` that make up this subject (one per identity in CSV,
    one per line in JSON Lines).
    """

    key: str
    actions: tuple[str, ...]
    regulation: str
    include: tuple[str, ...]
    identities: tuple[Identity, ...]
    received_at: datetime | None = None
    priority: str = "normal"
    expand_ids: bool = False
    merge_policy_id: str | None = None
    source: str = ""
    rows: tuple[int, ...] = field(default=())

    def as_user(self) -> dict:
        """The Adobe `users[]` item for POST /jobs."""
        return {
            "key": self.key,
            "action": list(self.actions),
            "userIDs": [identity.as_user_id() for identity in self.identities],
        }


@dataclass(frozen=True, slots=True)
class Reject:
    """A rejected input row: where it is, which field failed and why, and the row as read.

    `row` is the 1-based data row (0 when the whole file is rejected); `line` the physical line of the
    file where the row starts, when known. `raw` holds the row's original columns (for rejects.csv,
    which is PII and lives only in the run's encrypted S3 prefix; never log it).
    """

    source: str
    row: int
    request_id: str
    field: str
    reason: str
    raw: dict[str, str] = field(default_factory=dict, repr=False)
    line: int | None = None


#: `Subject` attributes that are the same for every identity of a subject, in `Subject` order.
SUBJECT_ATTRIBUTES = ("actions", "regulation", "include", "received_at", "priority", "expand_ids", "merge_policy_id")
#: The same subject-level fields as the input names them (one column `action`, the model's `actions`).
SUBJECT_FIELDS = tuple("action" if name == "actions" else name for name in SUBJECT_ATTRIBUTES)
#: Adobe's limit of identities (`userIDs`) per subject.
MAX_IDENTITIES_PER_SUBJECT = 9


@dataclass(frozen=True)
class Coded:
    """A low-cardinality column: an integer code per item and the distinct value of each code.

    Codes and values correspond one to one (no value appears twice), so equal codes mean equal values.
    """

    codes: np.ndarray
    values: tuple[Any, ...]

    def take(self, positions: np.ndarray) -> Coded:
        return Coded(self.codes[positions], self.values)

    def __len__(self) -> int:
        return len(self.codes)


@dataclass(frozen=True)
class SubjectColumns:
    """The column store behind `SubjectTable`: subjects in intake order, their identities flattened.

    Identities of subject i are items `identity_starts[i]:identity_starts[i + 1]` of `namespace`,
    `value` and `id_type`; its data rows are `row_starts[i]:row_starts[i + 1]` of `rows`.
    """

    keys: pa.Array  # string, one per subject
    fields: dict[str, Coded]  # SUBJECT_ATTRIBUTES, one code per subject
    identity_starts: np.ndarray  # int64, subjects + 1
    namespace: Coded  # per identity
    value: pa.Array  # string, per identity
    id_type: Coded  # per identity
    row_starts: np.ndarray  # int64, subjects + 1
    rows: np.ndarray  # int64
    source_codes: np.ndarray  # per subject: index into `sources`
    sources: tuple[str, ...]
    #: Derived columns (e.g. batching's per-subject JSON), computed once per store on first use.
    cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def size(self) -> int:
        return len(self.keys)


class SubjectTable(Sequence[Subject]):
    """Subjects as columns, and a `Sequence[Subject]` whose items are built only when asked for.

    Intake returns one and batching works on its columns directly, so a million rows never become a
    million Python objects on the hot path. A table is a view (`positions`) over shared columns:
    slicing and `take` are cheap and never copy identities. Equal to any sequence of equal subjects.
    """

    __slots__ = ("columns", "positions")

    def __init__(self, columns: SubjectColumns, positions: np.ndarray | None = None):
        self.columns = columns
        self.positions = np.arange(columns.size, dtype=np.int64) if positions is None else positions

    @classmethod
    def empty(cls) -> SubjectTable:
        no_starts = np.zeros(1, dtype=np.int64)
        nothing = np.zeros(0, dtype=np.int64)
        return cls(SubjectColumns(
            keys=pa.array([], pa.string()), fields={name: Coded(nothing, ()) for name in SUBJECT_ATTRIBUTES},
            identity_starts=no_starts, namespace=Coded(nothing, ()), value=pa.array([], pa.string()),
            id_type=Coded(nothing, ()), row_starts=no_starts, rows=nothing, source_codes=nothing, sources=(),
        ))

    @classmethod
    def concat(cls, tables: Sequence[SubjectTable]) -> SubjectTable:
        """One table holding the subjects of `tables` in order (codes re-numbered over all of them)."""
        tables = [table.compact() for table in tables if len(table)]
        if not tables:
            return cls.empty()
        if len(tables) == 1:
            return tables[0]
        parts = [table.columns for table in tables]
        sources: dict[str, int] = {}
        source_codes = [
            np.array([sources.setdefault(name, len(sources)) for name in part.sources], dtype=np.int64)[part.source_codes]
            for part in parts
        ]
        return cls(SubjectColumns(
            keys=pa.concat_arrays([part.keys for part in parts]),
            fields={name: _concat_coded([part.fields[name] for part in parts]) for name in SUBJECT_ATTRIBUTES},
            identity_starts=_concat_starts([part.identity_starts for part in parts]),
            namespace=_concat_coded([part.namespace for part in parts]),
            value=pa.concat_arrays([part.value for part in parts]),
            id_type=_concat_coded([part.id_type for part in parts]),
            row_starts=_concat_starts([part.row_starts for part in parts]),
            rows=np.concatenate([part.rows for part in parts]),
            source_codes=np.concatenate(source_codes),
            sources=tuple(sources),
        ))

    # -------------------------------------------------------------------------------- Sequence

    def __len__(self) -> int:
        return len(self.positions)

    @overload
    def __getitem__(self, index: int) -> Subject: ...

    @overload
    def __getitem__(self, index: slice) -> SubjectTable: ...

    def __getitem__(self, index: int | slice) -> Subject | SubjectTable:
        if isinstance(index, slice):
            return SubjectTable(self.columns, self.positions[index])
        return self._build(self.positions[[index]])[0]

    def __iter__(self) -> Iterator[Subject]:
        for start in range(0, len(self.positions), _BUILD_CHUNK):
            yield from self._build(self.positions[start : start + _BUILD_CHUNK])

    def __eq__(self, other: object) -> bool:
        if isinstance(other, SubjectTable) and other.columns is self.columns:
            return np.array_equal(self.positions, other.positions)
        if isinstance(other, Sequence) and not isinstance(other, str | bytes):
            return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self))

    def __repr__(self) -> str:
        # Never the identities: they are personal data.
        return f"SubjectTable({len(self)} subjects)"

    # ------------------------------------------------------------------------------- columns

    def take(self, indexes: np.ndarray) -> SubjectTable:
        """The subjects at `indexes` (positions in this table), as a view on the same columns."""
        return SubjectTable(self.columns, self.positions[indexes])

    def compact(self) -> SubjectTable:
        """This view as a table of its own (columns holding only its subjects)."""
        columns = self.columns
        if len(self.positions) == columns.size and np.array_equal(self.positions, np.arange(columns.size)):
            return self
        identities = self.identity_indexes()
        row_positions = _ranges(columns.row_starts, self.positions)
        return SubjectTable(SubjectColumns(
            keys=columns.keys.take(pa.array(self.positions)),
            fields={name: coded.take(self.positions) for name, coded in columns.fields.items()},
            identity_starts=_starts_of(self.identity_counts()),
            namespace=columns.namespace.take(identities),
            value=columns.value.take(pa.array(identities)),
            id_type=columns.id_type.take(identities),
            row_starts=_starts_of(np.diff(columns.row_starts)[self.positions]),
            rows=columns.rows[row_positions],
            source_codes=columns.source_codes[self.positions],
            sources=columns.sources,
        ))

    def field_codes(self, name: str) -> np.ndarray:
        """Per subject of this view: the code of `name` (one of SUBJECT_ATTRIBUTES)."""
        return self.columns.fields[name].codes[self.positions]

    def field_values(self, name: str) -> tuple[Any, ...]:
        return self.columns.fields[name].values

    def keys(self) -> pa.Array:
        return self.columns.keys.take(pa.array(self.positions))

    def identity_counts(self) -> np.ndarray:
        return np.diff(self.columns.identity_starts)[self.positions]

    def row_counts(self) -> np.ndarray:
        return np.diff(self.columns.row_starts)[self.positions]

    def identity_indexes(self) -> np.ndarray:
        """Positions in the flat identity columns of this view's identities, subject by subject."""
        return _ranges(self.columns.identity_starts, self.positions)

    def row_total(self) -> int:
        return int(self.row_counts().sum())

    def action_total(self) -> int:
        """Jobs Adobe creates for these subjects: one per (subject, action)."""
        per_code = np.array([len(actions) for actions in self.field_values("actions")], dtype=np.int64)
        return int(per_code[self.field_codes("actions")].sum()) if len(self) else 0

    def _build(self, positions: np.ndarray) -> list[Subject]:
        columns = self.columns
        view = SubjectTable(columns, positions)
        keys = view.keys().to_pylist()
        fields = {name: [coded.values[c] for c in coded.codes[positions].tolist()]
                  for name, coded in columns.fields.items()}
        identities = view.identity_indexes()
        namespaces = [columns.namespace.values[c] for c in columns.namespace.codes[identities].tolist()]
        types = [columns.id_type.values[c] for c in columns.id_type.codes[identities].tolist()]
        values = columns.value.take(pa.array(identities)).to_pylist()
        identity_ends = np.cumsum(view.identity_counts()).tolist()
        row_starts = columns.row_starts[positions].tolist()
        row_ends = columns.row_starts[positions + 1].tolist()
        all_rows = columns.rows.tolist() if len(positions) > len(columns.rows) // 64 else None
        sources = [columns.sources[c] for c in columns.source_codes[positions].tolist()]
        subjects: list[Subject] = []
        start = 0
        for i, end in enumerate(identity_ends):
            row_start, row_end = row_starts[i], row_ends[i]
            rows = all_rows[row_start:row_end] if all_rows is not None else columns.rows[row_start:row_end].tolist()
            subjects.append(Subject(
                key=keys[i],
                actions=fields["actions"][i],
                regulation=fields["regulation"][i],
                include=fields["include"][i],
                identities=tuple(map(Identity, namespaces[start:end], values[start:end], types[start:end])),
                received_at=fields["received_at"][i],
                priority=fields["priority"][i],
                expand_ids=fields["expand_ids"][i],
                merge_policy_id=fields["merge_policy_id"][i],
                source=sources[i],
                rows=tuple(rows),
            ))
            start = end
        return subjects


#: Subjects built per step when a table is iterated: bounds the temporary lists, not the result.
_BUILD_CHUNK = 65_536


def _ranges(starts: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Concatenated `arange(starts[p], starts[p + 1])` for each p in `positions`, vectorised."""
    lengths = starts[positions + 1] - starts[positions]
    total = int(lengths.sum())
    if not total:
        return np.zeros(0, dtype=np.int64)
    offsets = np.repeat(starts[positions] - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return np.arange(total, dtype=np.int64) + offsets


def _starts_of(counts: np.ndarray) -> np.ndarray:
    return np.concatenate(([0], np.cumsum(counts))).astype(np.int64)


def _concat_starts(parts: list[np.ndarray]) -> np.ndarray:
    return _starts_of(np.concatenate([np.diff(starts) for starts in parts]))


def _concat_coded(parts: list[Coded]) -> Coded:
    """Merge coded columns: equal values from different parts share one code."""
    index: dict[Any, int] = {}
    values: list[Any] = []
    codes = []
    for part in parts:
        remap = np.zeros(len(part.values), dtype=np.int64)
        for i, value in enumerate(part.values):
            key = (type(value), value)
            if key not in index:
                index[key] = len(values)
                values.append(value)
            remap[i] = index[key]
        codes.append(remap[part.codes] if len(part.values) else part.codes.astype(np.int64))
    return Coded(np.concatenate(codes), tuple(values))
