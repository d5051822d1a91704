"""Persistence of Data Lifecycle work orders (``/data/core/hygiene/workorder``), mixed into ``Store``.

A work order keeps no identity value: only how many identities it held per namespace code, which is all
its responses and the quota need. Its status, like a job's, is a pure function of its creation time, the
emulator clock and its seeded ``stretch``/``outcome_draw`` (see ``workorders.workorder_status``).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Any

from privacy_emulator.records import RecordTable

WORKORDER_STAGES = ("received", "validated", "submitted", "ingested")
FINAL_WORKORDER_STATUSES = ("completed", "failed")
WORKORDER_STATUSES = (*WORKORDER_STAGES, *FINAL_WORKORDER_STATUSES)


@dataclass(frozen=True)
class WorkOrderTimeline:
    """How long a work order takes (``complete_after`` seconds, stretched) and how many end ``failed``."""

    complete_after: float
    failure_rate: float


@dataclass(frozen=True)
class WorkOrderRecord:
    workorder_id: str
    bundle_id: str
    org_id: str
    sandbox_name: str
    dataset_id: str
    display_name: str
    description: str
    created_by: str
    created_at: float
    edited_at: float | None
    identity_count: int
    namespaces: list[dict]  # [{"code": "email", "count": 2}], in request order
    target_services: list[str]
    stretch: float
    outcome_draw: float
    kind: str = "workorder"


# The SQL twin of workorders.workorder_status; both must agree (tests check list filters against detail).
WORKORDER_STATUS_SQL = """
CASE WHEN :now < created_at + :complete_after * stretch * 0.25 THEN 'received'
     WHEN :now < created_at + :complete_after * stretch * 0.5 THEN 'validated'
     WHEN :now < created_at + :complete_after * stretch * 0.75 THEN 'submitted'
     WHEN :now < created_at + :complete_after * stretch THEN 'ingested'
     WHEN outcome_draw < :failure_rate THEN 'failed'
     ELSE 'completed' END
"""

WORKORDERS: RecordTable[WorkOrderRecord] = RecordTable(
    "workorders", WorkOrderRecord, "workorder_id", frozenset({"namespaces", "target_services"})
)


@dataclass(frozen=True)
class WorkOrderQuery:
    """A validated ``GET /workorder`` query (``sandbox_name`` None means every sandbox)."""

    sandbox_name: str | None
    statuses: tuple[str, ...]
    created_from: float
    created_to: float
    search: str | None
    order_column: str
    descending: bool
    offset: int
    limit: int
    display_name: str | None = None
    workorder_id: str | None = None


class WorkOrderStoreMixin:
    """Work-order queries of ``Store`` (which provides ``_query`` and ``_transaction``)."""

    def _query(self, sql: str, params: dict | tuple = ()) -> list[sqlite3.Row]:  # pragma: no cover
        raise NotImplementedError

    def _transaction(self) -> Any:  # pragma: no cover
        raise NotImplementedError

    def insert_workorder(self, order: WorkOrderRecord) -> None:
        with self._transaction() as conn:
            conn.execute(WORKORDERS.insert_sql, WORKORDERS.values(order))

    def get_workorder(self, org_id: str, sandbox_name: str, workorder_id: str) -> WorkOrderRecord | None:
        rows = self._query(
            f"SELECT {WORKORDERS.columns} FROM workorders "  # noqa: S608
            "WHERE org_id = ? AND sandbox_name = ? AND workorder_id = ?",
            (org_id, sandbox_name, workorder_id),
        )
        return WORKORDERS.record(rows[0]) if rows else None

    def edit_workorder(
        self, workorder_id: str, display_name: str | None, description: str | None, edited_at: float
    ) -> None:
        with self._transaction() as conn:
            conn.execute(
                "UPDATE workorders SET display_name = coalesce(?, display_name), "
                "description = coalesce(?, description), edited_at = ? WHERE workorder_id = ?",
                (display_name, description, edited_at, workorder_id),
            )

    def list_workorders(
        self, org_id: str, query: WorkOrderQuery, now: float, timeline: WorkOrderTimeline
    ) -> tuple[int, list[WorkOrderRecord]]:
        where = ["org_id = :org_id", "created_at >= :created_from", "created_at < :created_to"]
        params: dict = {
            "org_id": org_id,
            "created_from": query.created_from,
            "created_to": query.created_to,
            "now": now,
            "complete_after": timeline.complete_after,
            "failure_rate": timeline.failure_rate,
            "limit": query.limit,
            "offset": query.offset,
        }
        if query.sandbox_name is not None:
            where.append("sandbox_name = :sandbox_name")
            params["sandbox_name"] = query.sandbox_name
        if query.statuses:
            names = [f":status{index}" for index in range(len(query.statuses))]
            where.append(f"({WORKORDER_STATUS_SQL}) IN ({', '.join(names)})")
            params.update({name[1:]: status for name, status in zip(names, query.statuses, strict=True)})
        if query.display_name is not None:
            where.append("lower(display_name) = :display_name")
            params["display_name"] = query.display_name.lower()
        if query.workorder_id is not None:
            where.append("workorder_id = :workorder_id")
            params["workorder_id"] = query.workorder_id
        if query.search:
            where.append(
                "(instr(lower(display_name), :search) > 0 OR instr(lower(description), :search) > 0)"
            )
            params["search"] = query.search.lower()
        condition = " AND ".join(where)
        direction = "DESC" if query.descending else "ASC"
        total = self._query(f"SELECT count(*) AS n FROM workorders WHERE {condition}", params)[0]["n"]  # noqa: S608
        rows = self._query(
            f"SELECT {WORKORDERS.columns} FROM workorders WHERE {condition} "  # noqa: S608
            f"ORDER BY {query.order_column} {direction}, seq {direction} LIMIT :limit OFFSET :offset",
            params,
        )
        return total, [WORKORDERS.record(row) for row in rows]

    def count_workorder_identities(self, org_id: str, created_from: float, created_to: float) -> int:
        rows = self._query(
            "SELECT coalesce(sum(identity_count), 0) AS n FROM workorders "
            "WHERE org_id = ? AND created_at >= ? AND created_at < ?",
            (org_id, created_from, created_to),
        )
        return rows[0]["n"]

    def workorder_totals(self) -> tuple[int, int]:
        """(work orders, identities in them) across every org, for the admin stats."""
        row = self._query("SELECT count(*) AS n, coalesce(sum(identity_count), 0) AS ids FROM workorders")[0]
        return row["n"], row["ids"]

    def workorders_finished_between(
        self, since: float, until: float, timeline: WorkOrderTimeline, max_stretch: float
    ) -> list[WorkOrderRecord]:
        """Work orders that reached completed or failed in (since, until], in end order."""
        return WORKORDERS.finished_between(self._query, since, until, timeline.complete_after, max_stretch)
