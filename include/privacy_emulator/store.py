"""SQLite persistence: jobs, work orders, tokens (hashed), consent records, id counters and the clock offset
survive a restart.

One connection in WAL mode guarded by a lock: the emulator serves from one event loop plus Starlette's
thread pool (streamed ZIPs), and SQLite connections must not be used by two threads at once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from privacy_emulator.records import RecordTable
from privacy_emulator.workorder_store import WorkOrderStoreMixin

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS tokens (
    token_hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, org_id TEXT NOT NULL, expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS jobs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    org_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    user_key TEXT NOT NULL,
    action TEXT NOT NULL,
    regulation TEXT,
    include_json TEXT NOT NULL,
    user_ids_json TEXT NOT NULL,
    options_json TEXT NOT NULL,
    sandbox_name TEXT,
    submitted_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    stretch REAL NOT NULL,
    outcome_draw REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_listing ON jobs (kind, org_id, regulation, created_at, job_id);
CREATE TABLE IF NOT EXISTS workorders (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    workorder_id TEXT NOT NULL UNIQUE,
    bundle_id TEXT NOT NULL,
    org_id TEXT NOT NULL,
    sandbox_name TEXT NOT NULL,
    dataset_id TEXT NOT NULL,
    display_name TEXT NOT NULL,
    description TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at REAL NOT NULL,
    edited_at REAL,
    identity_count INTEGER NOT NULL,
    namespaces_json TEXT NOT NULL,
    target_services_json TEXT NOT NULL,
    stretch REAL NOT NULL,
    outcome_draw REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS workorders_listing ON workorders (org_id, sandbox_name, created_at, workorder_id);
CREATE TABLE IF NOT EXISTS consent (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    org_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    opt_out_of_sale INTEGER NOT NULL,
    namespaces_json TEXT NOT NULL,
    value_count INTEGER NOT NULL
);
"""


@dataclass(frozen=True)
class JobRecord:
    """One stored job. ``stretch`` and ``outcome_draw`` are seeded per-job draws that fix its lifecycle."""

    job_id: str
    kind: str  # "privacy" or "hygiene"
    org_id: str
    request_id: str
    user_key: str
    action: str
    regulation: str | None
    include: list[str]
    user_ids: list[dict]
    options: dict
    sandbox_name: str | None
    submitted_by: str
    created_at: float
    stretch: float
    outcome_draw: float


@dataclass(frozen=True)
class Lifecycle:
    """The timing parameters the status of a job depends on (see ``lifecycle.py``)."""

    processing_after: float
    complete_after: float
    error_rate: float


# The SQL twin of lifecycle.job_status; both must agree (tests check list filters against detail).
STATUS_SQL = """
CASE WHEN :now < created_at + :processing_after * stretch THEN 'submitted'
     WHEN :now < created_at + :complete_after * stretch THEN 'processing'
     WHEN outcome_draw < :error_rate THEN 'error'
     ELSE 'complete' END
"""

JOBS: RecordTable[JobRecord] = RecordTable(
    "jobs", JobRecord, "job_id", frozenset({"include", "user_ids", "options"})
)


class Store(WorkOrderStoreMixin):
    def __init__(self, path: Path | str) -> None:
        self.path = str(path)
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, params: dict | tuple = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    # -- clock ---------------------------------------------------------------------------------------
    def clock_offset(self) -> float:
        rows = self._query("SELECT value FROM meta WHERE key = 'clock_offset'")
        return float(rows[0]["value"]) if rows else 0.0

    def set_clock_offset(self, offset: float) -> float:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES ('clock_offset', ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (repr(offset),),
            )
        return offset

    def meta_value(self, key: str) -> str | None:
        rows = self._query("SELECT value FROM meta WHERE key = ?", (key,))
        return rows[0]["value"] if rows else None

    def set_meta_value(self, key: str, value: str) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def reserve_sequence(self, name: str, count: int) -> int:
        """Reserve ``count`` numbers of the persisted counter ``name``; returns the first.

        Counters are never reset (not even by ``reset``), so an id derived from (seed, counter) is unique
        for the life of the database and the same for the same history on a fresh one."""
        key = f"sequence:{name}"
        with self._transaction() as conn:
            rows = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchall()
            first = int(rows[0]["value"]) if rows else 0
            conn.execute(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, str(first + count)),
            )
        return first

    # -- tokens --------------------------------------------------------------------------------------
    def save_token(self, token_hash: str, client_id: str, org_id: str, expires_at: float) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO tokens (token_hash, client_id, org_id, expires_at) VALUES (?, ?, ?, ?)",
                (token_hash, client_id, org_id, expires_at),
            )

    def find_token(self, token_hash: str) -> sqlite3.Row | None:
        rows = self._query("SELECT * FROM tokens WHERE token_hash = ?", (token_hash,))
        return rows[0] if rows else None

    # -- jobs ----------------------------------------------------------------------------------------
    def insert_jobs(self, jobs: Iterable[JobRecord]) -> None:
        rows = [JOBS.values(job) for job in jobs]
        with self._transaction() as conn:
            conn.executemany(JOBS.insert_sql, rows)

    def get_job(self, kind: str, org_id: str, job_id: str) -> JobRecord | None:
        rows = self._query(
            f"SELECT {JOBS.columns} FROM jobs WHERE kind = ? AND org_id = ? AND job_id = ?",  # noqa: S608
            (kind, org_id, job_id),
        )
        return JOBS.record(rows[0]) if rows else None

    def list_jobs(
        self,
        *,
        kind: str,
        org_id: str,
        regulation: str | None,
        created_from: float,
        created_to: float,
        status: str | None,
        now: float,
        lifecycle: Lifecycle,
        offset: int,
        limit: int,
    ) -> tuple[int, list[JobRecord]]:
        """One page of jobs in stable (created_at, job_id) order, and the total across all pages."""
        where = [
            "kind = :kind",
            "org_id = :org_id",
            "created_at >= :created_from",
            "created_at < :created_to",
        ]
        params: dict = {
            "kind": kind,
            "org_id": org_id,
            "created_from": created_from,
            "created_to": created_to,
            "now": now,
            "processing_after": lifecycle.processing_after,
            "complete_after": lifecycle.complete_after,
            "error_rate": lifecycle.error_rate,
            "offset": offset,
            "limit": limit,
        }
        if regulation is not None:
            where.append("regulation = :regulation")
            params["regulation"] = regulation
        if status is not None:
            where.append(f"({STATUS_SQL}) = :status")
            params["status"] = status
        condition = " AND ".join(where)
        total = self._query(f"SELECT count(*) AS n FROM jobs WHERE {condition}", params)[0]["n"]  # noqa: S608
        rows = self._query(
            f"SELECT {JOBS.columns} FROM jobs WHERE {condition} "  # noqa: S608
            "ORDER BY created_at, job_id LIMIT :limit OFFSET :offset",
            params,
        )
        return total, [JOBS.record(row) for row in rows]

    def count_jobs_created(self, kind: str, org_id: str, created_from: float, created_to: float) -> int:
        rows = self._query(
            "SELECT count(*) AS n FROM jobs WHERE kind = ? AND org_id = ? AND created_at >= ? AND created_at < ?",
            (kind, org_id, created_from, created_to),
        )
        return rows[0]["n"]

    def count_identities_created(self, kind: str, org_id: str, created_from: float, created_to: float) -> int:
        rows = self._query(
            "SELECT coalesce(sum(json_array_length(user_ids_json)), 0) AS n FROM jobs "
            "WHERE kind = ? AND org_id = ? AND created_at >= ? AND created_at < ?",
            (kind, org_id, created_from, created_to),
        )
        return rows[0]["n"]

    def job_counts_per_user_action(self, kind: str) -> dict[str, int]:
        rows = self._query(
            "SELECT user_key, action, count(*) AS n FROM jobs WHERE kind = ? GROUP BY user_key, action "
            "ORDER BY user_key, action",
            (kind,),
        )
        return {f"{row['user_key']}|{row['action']}": row["n"] for row in rows}

    def count_jobs(self, kind: str) -> int:
        return self._query("SELECT count(*) AS n FROM jobs WHERE kind = ?", (kind,))[0]["n"]

    def jobs_finished_between(
        self, since: float, until: float, lifecycle: Lifecycle, max_stretch: float
    ) -> list[JobRecord]:
        """Jobs whose end (complete or error) lies in (since, until], in end order."""
        return JOBS.finished_between(self._query, since, until, lifecycle.complete_after, max_stretch)

    # -- consent -------------------------------------------------------------------------------------
    def insert_consent(
        self, org_id: str, created_at: float, opt_out_of_sale: bool, namespaces: list[str], value_count: int
    ) -> None:
        with self._transaction() as conn:
            conn.execute(
                "INSERT INTO consent (org_id, created_at, opt_out_of_sale, namespaces_json, value_count) "
                "VALUES (?, ?, ?, ?, ?)",
                (org_id, created_at, int(opt_out_of_sale), json.dumps(namespaces), value_count),
            )

    def consent_records(self) -> list[dict]:
        rows = self._query("SELECT * FROM consent ORDER BY id")
        return [
            {
                "created_at": row["created_at"],
                "optOutOfSale": bool(row["opt_out_of_sale"]),
                "namespaces": json.loads(row["namespaces_json"]),
                "value_count": row["value_count"],
            }
            for row in rows
        ]

    # -- admin ---------------------------------------------------------------------------------------
    def reset(self) -> None:
        """Drop jobs, work orders, consent records, the clock offset and the final-transition watermark.
        Issued tokens stay valid (they are credentials, not job state, and clients that cache a token across
        tests should not be broken by a reset); id counters go on, so no id is ever handed out twice."""
        with self._transaction() as conn:
            conn.execute("DELETE FROM jobs")
            conn.execute("DELETE FROM workorders")
            conn.execute("DELETE FROM consent")
            conn.execute("DELETE FROM meta WHERE key NOT LIKE 'sequence:%'")
