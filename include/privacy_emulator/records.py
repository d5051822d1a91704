"""How a stored record (a frozen dataclass) maps to its SQLite table, for jobs and work orders alike.

One column per field without a default, named like the field; a field listed as JSON is stored as text in
``<field>_json``. Fields with a default (``WorkOrderRecord.kind``) are not stored.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

R = TypeVar("R")

Query = Callable[[str, dict], list[sqlite3.Row]]


@dataclass(frozen=True)
class RecordTable(Generic[R]):
    """The table ``name`` holding records of ``record_type``, keyed by ``id_column``.

    Every record has ``created_at`` and a seeded ``stretch``: it ends at
    ``created_at + complete_after * stretch`` (see :meth:`finished_between`)."""

    name: str
    record_type: type[R]
    id_column: str
    json_fields: frozenset[str]

    @property
    def fields(self) -> tuple[str, ...]:
        return tuple(
            field.name
            for field in dataclasses.fields(self.record_type)  # type: ignore[arg-type]
            if field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        )

    @property
    def columns(self) -> str:
        """The column list, in field order: ``"job_id, kind, ..., include_json, ..."``."""
        return ", ".join(f"{name}_json" if name in self.json_fields else name for name in self.fields)

    @property
    def insert_sql(self) -> str:
        placeholders = ", ".join("?" * len(self.fields))
        return f"INSERT INTO {self.name} ({self.columns}) VALUES ({placeholders})"  # noqa: S608

    def values(self, record: R) -> tuple[Any, ...]:
        """The row of ``record``, in the order of :attr:`columns`."""
        return tuple(
            json.dumps(getattr(record, name)) if name in self.json_fields else getattr(record, name)
            for name in self.fields
        )

    def record(self, row: sqlite3.Row) -> R:
        return self.record_type(
            **{
                name: json.loads(row[f"{name}_json"]) if name in self.json_fields else row[name]
                for name in self.fields
            }
        )

    def finished_between(
        self, query: Query, since: float, until: float, complete_after: float, max_stretch: float
    ) -> list[R]:
        """Records whose end lies in (since, until], in end order.

        ``created_at`` bounds the scan through the listing index: an end is
        ``created_at + complete_after * stretch`` with ``1 <= stretch <= max_stretch``."""
        rows = query(
            f"SELECT {self.columns} FROM {self.name} "  # noqa: S608
            "WHERE created_at > :low AND created_at <= :high "
            "AND created_at + :complete_after * stretch > :since "
            "AND created_at + :complete_after * stretch <= :until "
            f"ORDER BY created_at + :complete_after * stretch, {self.id_column}",
            {
                "low": since - complete_after * max_stretch - 1,
                "high": until,
                "since": since,
                "until": until,
                "complete_after": complete_after,
            },
        )
        return [self.record(row) for row in rows]
