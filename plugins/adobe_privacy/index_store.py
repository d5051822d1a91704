"""The request index in the archive bucket: Parquet files written by each step, compacted, read with DuckDB.

    <root>/index/manifest.json                      which base generation is current, which deltas it folded
    <root>/index/base/<generation>/records.parquet  one row per request key, sorted by key (compacted)
    <root>/index/base/<generation>/open.parquet     the open ones only (what the deadline board reads)
    <root>/index/deltas/<ds>/<run>/<task>-<sha>.parquet   partial records written by one step

Every object is written through `PrivacyArchiveStore` (server-side encrypted). A delta's name is the
hash of its content, so a retried step overwrites its own delta; the records inside merge in any order
(`privacy_pipeline.index.merge`), so deltas never need a lock. Readers mirror the immutable files into a
local cache (keys and hashes only, no identity values) and query them with DuckDB: a key lookup reads
one row group of the sorted base, the board reads the small open file plus the deltas not folded yet.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from privacy_pipeline import index
from privacy_pipeline.layout import safe_segment

from adobe_privacy.storage import PrivacyArchiveStore

log = logging.getLogger(__name__)

COLUMNS = ("request_id", "regulation", "actions", "received_at", "due_date", "status", "closed_at", "updated_at",
           "record")
#: Row groups of the base: a lookup decodes one group of the sorted file (~16 MB of record JSON at 8192
#: rows), and the zone maps of a few thousand groups stay cheap to check (metadata is cached).
ROW_GROUP_ROWS = 8192
#: Keys per query of `lookup_many`.
LOOKUP_CHUNK = 5000
#: Rows fetched at a time while the touched records are merged.
MERGE_BATCH_ROWS = 2048
LISTING_TTL_SECONDS = 10.0
STAGING_REASON_PREFIX = "staged;"  # intake's carry marker for every staged batch: not a postponement


def _schema():
    import pyarrow as pa

    return pa.schema([
        ("request_id", pa.string()), ("regulation", pa.string()), ("actions", pa.string()),
        ("received_at", pa.string()), ("due_date", pa.date32()), ("status", pa.string()),
        ("closed_at", pa.string()), ("updated_at", pa.string()), ("record", pa.string()),
    ])


def records_table(records: Iterable[Mapping[str, Any]]):
    """Records (partial or derived) as an Arrow table of the index's columns, sorted by key."""
    import pyarrow as pa

    rows = sorted((index.summary_row(r) for r in records), key=lambda row: row["request_id"])
    return pa.Table.from_pylist(rows, schema=_schema())


def parquet_bytes(table) -> bytes:
    import pyarrow.parquet as pq

    buffer = io.BytesIO()
    pq.write_table(table, buffer, row_group_size=ROW_GROUP_ROWS, compression="zstd")
    return buffer.getvalue()


class RequestIndex:
    """The index under one archive root: write deltas, compact, rebuild from the archive, query."""

    def __init__(self, store: PrivacyArchiveStore, *, cache_dir: str | Path | None = None,
                 serve_stale: bool = False) -> None:
        """`serve_stale`: while a newer listing is being merged (seconds at Adobe's cap), keep answering
        from the previous one instead of making the caller wait (the console; never the steps)."""
        self.store = store
        self.cache_dir = Path(cache_dir or Path(tempfile.gettempdir()) / "privacy-index-cache")
        self.serve_stale = serve_stale
        self._listing: tuple[float, dict[str, Any], list[str]] | None = None
        self._lock = threading.Lock()
        self._snapshot: IndexSnapshot | None = None
        self._snapshot_lock = threading.Lock()
        self._refreshing: threading.Thread | None = None

    # -- keys ----------------------------------------------------------------------------------------
    @property
    def manifest_key(self) -> str:
        return self.store.key("index", "manifest.json")

    @property
    def deltas_prefix(self) -> str:
        return self.store.key("index", "deltas")

    def delta_key(self, ds: str, run_id: str, name: str, digest: str) -> str:
        return self.store.key("index", "deltas", ds, safe_segment(run_id), f"{safe_segment(name)}-{digest[:20]}.parquet")

    # -- writes --------------------------------------------------------------------------------------
    def write_delta(self, records: Iterable[Mapping[str, Any]], *, ds: str, run_id: str, name: str) -> str | None:
        """Write partial records as one delta file; None when there is nothing to write."""
        records = list(records)
        if not records:
            return None
        body = parquet_bytes(records_table(records))
        key = self.delta_key(ds, run_id, name, hashlib.sha256(body).hexdigest())
        self.store.put_bytes(key, body, content_type="application/vnd.apache.parquet")
        self._listing = None
        return key

    def compact(self) -> dict[str, Any]:
        """Fold every delta into a new base generation; returns counts. Safe to run again after a crash."""
        manifest, deltas = self._current(refresh=True)
        snapshot = self._open_snapshot(manifest, deltas)
        snapshot.ensure_base()
        con = snapshot.con
        generation = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(4)
        records_key = self.store.key("index", "base", generation, "records.parquet")
        open_key = self.store.key("index", "base", generation, "open.parquet")
        keys_key = self.store.key("index", "base", generation, "keys.parquet")
        with tempfile.TemporaryDirectory(prefix="privacy-index-") as tmp:
            con.register("merged_rows", snapshot.merged_table)
            statuses = ", ".join(f"'{s}'" for s in index.OPEN_STATUSES)
            out, out_open, out_keys = Path(tmp) / "records.parquet", Path(tmp) / "open.parquet", Path(tmp) / "keys.parquet"
            con.execute(f"""COPY (SELECT {', '.join(COLUMNS)} FROM base WHERE request_id NOT IN
                                  (SELECT request_id FROM merged_rows)
                                  UNION ALL SELECT {', '.join(COLUMNS)} FROM merged_rows ORDER BY request_id)
                            TO '{out}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS})""")
            con.execute(f"""COPY (SELECT * FROM read_parquet('{out}') WHERE status IN ({statuses}) ORDER BY request_id)
                            TO '{out_open}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS})""")
            con.execute(f"""COPY (SELECT request_id FROM read_parquet('{out}'))
                            TO '{out_keys}' (FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS * 16})""")
            total, still_open = con.execute(
                f"SELECT count(*), count(*) FILTER (WHERE status IN ({statuses})) FROM read_parquet('{out}')"
            ).fetchone()
            self.store.put_file(out, records_key, content_type="application/vnd.apache.parquet")
            self.store.put_file(out_open, open_key, content_type="application/vnd.apache.parquet")
            self.store.put_file(out_keys, keys_key, content_type="application/vnd.apache.parquet")
        snapshot.close()
        previous = [manifest.get(name) for name in ("records", "open", "keys")]
        self.store.put_json(self.manifest_key, {
            "version": index.INDEX_FORMAT_VERSION, "generation": generation, "records": records_key,
            "open": open_key, "keys": keys_key, "folded": deltas, "records_count": total, "open_count": still_open,
            "compacted_at": datetime.now(UTC).isoformat(),
        })
        # Only after the manifest no longer needs them: the folded deltas and the previous generation.
        for key in [*deltas, *(k for k in previous if k)]:
            self.store.delete(key)
        self._listing = None
        log.info("Index compacted: %d records (%d open), %d deltas folded", total, still_open, len(deltas))
        return {"records": total, "open": still_open, "deltas_folded": len(deltas), "generation": generation}

    # -- reads ---------------------------------------------------------------------------------------
    def lookup(self, request_id: str) -> dict[str, Any] | None:
        """The whole record of one request key, or None."""
        snapshot = self.snapshot()
        if request_id in snapshot.merged:  # touched since the last compaction: merged once per listing
            return snapshot.merged[request_id]
        cursor = snapshot.cursor(need_base=True, merged=False)
        try:
            rows = cursor.execute("SELECT record FROM base WHERE request_id = $k", {"k": request_id}).fetchall()
        finally:
            cursor.close()
        return index.merge_all(json.loads(row[0]) for row in rows).get(request_id)

    def lookup_many(self, request_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The whole records of many request keys at once (one query of the base per 5,000 keys)."""
        snapshot = self.snapshot()
        wanted = sorted(set(request_ids))
        found = {key: snapshot.merged[key] for key in wanted if key in snapshot.merged}
        rest = [key for key in wanted if key not in found]
        for start in range(0, len(rest), LOOKUP_CHUNK):
            cursor = snapshot.cursor(need_base=True, merged=False)
            try:
                rows = cursor.execute("SELECT request_id, record FROM base WHERE request_id IN (SELECT unnest($keys))",
                                      {"keys": rest[start:start + LOOKUP_CHUNK]}).fetchall()
            finally:
                cursor.close()
            parts: dict[str, list[dict[str, Any]]] = {}
            for key, record in rows:
                parts.setdefault(key, []).append(json.loads(record))
            for key, records in parts.items():
                merged = index.merge_all(records).get(key)
                if merged is not None:
                    found[key] = merged
        return found

    def query(self, *, prefix: str | None = None, regulation: str | None = None, action: str | None = None,
              status: str | None = None, open_only: bool = False, as_of: date | None = None,
              limit: int = 100, offset: int = 0) -> dict[str, Any]:
        """Requests matching the filters, most urgent first (overdue first, then by due date, then key).

        Returns `{"total", "items": [summary rows with days_left], "by_bucket": {bucket: {status: n}}}`.
        """
        as_of = as_of or datetime.now(UTC).date()
        con = self.snapshot().cursor(need_base=not open_only)
        try:
            source = "open_base" if open_only else "base"
            where: list[str] = ["TRUE"]
            params: dict[str, Any] = {"today": as_of}
            if prefix:
                # The range lets the sorted base skip every row group outside the prefix (zone maps).
                where.append("request_id >= $prefix AND starts_with(request_id, $prefix)")
                params["prefix"] = prefix
                upper = _prefix_end(prefix)
                if upper is not None:
                    where.append("request_id < $prefix_end")
                    params["prefix_end"] = upper
            for name, value in (("regulation", regulation), ("status", status)):
                if value:
                    where.append(f"{name} = ${name}")
                    params[name] = value
            if action:
                where.append("list_contains(string_split(actions, '|'), $action)")
                params["action"] = action
            if open_only:
                where.append("status IN ({})".format(", ".join(f"'{s}'" for s in index.OPEN_STATUSES)))
            cte = f"""WITH current AS (
                SELECT request_id, regulation, actions, received_at, due_date, status, closed_at FROM {source}
                  WHERE {' AND '.join(where)} AND request_id NOT IN (SELECT request_id FROM merged_rows)
                UNION ALL SELECT request_id, regulation, actions, received_at, due_date, status, closed_at
                  FROM merged_rows WHERE {' AND '.join(where)})"""
            bucket = """CASE WHEN due_date IS NULL THEN 'no due date' WHEN due_date < $today THEN 'overdue'
                        WHEN due_date - $today <= 7 THEN '0-7 days' WHEN due_date - $today <= 14 THEN '8-14 days'
                        WHEN due_date - $today <= 30 THEN '15-30 days' ELSE '31+ days' END"""
            counts = con.execute(f"{cte} SELECT {bucket} AS bucket, status, count(*) FROM current GROUP BY ALL",
                                 params).fetchall()
            rows = con.execute(
                f"""{cte} SELECT request_id, regulation, actions, received_at, due_date, status, closed_at,
                        due_date - $today AS days_left FROM current
                    ORDER BY due_date ASC NULLS LAST, request_id LIMIT {int(limit)} OFFSET {int(offset)}""",
                params).fetchall()
        finally:
            con.close()
        names = ("request_id", "regulation", "actions", "received_at", "due_date", "status", "closed_at", "days_left")
        items = []
        for row in rows:
            item = dict(zip(names, row, strict=True))
            item["actions"] = [a for a in (item["actions"] or "").split("|") if a]
            item["due_date"] = item["due_date"].isoformat() if item["due_date"] else None
            items.append(item)
        by_bucket: dict[str, dict[str, int]] = {}
        for bucket_name, row_status, count in counts:
            by_bucket.setdefault(bucket_name, {})[row_status] = int(count)
        return {"total": sum(sum(v.values()) for v in by_bucket.values()), "items": items, "by_bucket": by_bucket}

    def deadline_alerts(self, today: date, *, due_soon_days: int = index.DUE_SOON_DAYS) -> dict[str, list[dict[str, str]]]:
        """Overdue and due-soon keys over every open request in the index (`privacy_pipeline.index.deadline_alerts`).

        Only rows due by `today + due_soon_days` leave DuckDB; the rule itself is the pure function's.
        """
        con = self.snapshot().cursor()
        try:
            rows = con.execute("""SELECT request_id, status, due_date FROM (
                                    SELECT request_id, status, due_date FROM open_base
                                      WHERE request_id NOT IN (SELECT request_id FROM merged_rows)
                                    UNION ALL SELECT request_id, status, due_date FROM merged_rows)
                                  WHERE due_date <= $last""", {"last": today + timedelta(days=due_soon_days)}).fetchall()
        finally:
            con.close()
        return index.deadline_alerts(({"request_id": k, "status": s, "due_date": d} for k, s, d in rows), today,
                                     due_soon_days=due_soon_days)

    def snapshot(self) -> IndexSnapshot:
        """The current files as one DuckDB connection, and the records the deltas touch, merged.

        Built once per listing (the files are immutable; the listing is refreshed every few seconds).
        """
        manifest, deltas = self._current()
        ident = (manifest.get("records"), manifest.get("open"), tuple(deltas))
        with self._snapshot_lock:
            current = self._snapshot
            if current is not None and current.ident == ident:
                return current
            if current is not None and self.serve_stale:
                if self._refreshing is None or not self._refreshing.is_alive():
                    self._refreshing = threading.Thread(target=self._refresh, args=(manifest, deltas),
                                                        name="privacy-index-refresh", daemon=True)
                    self._refreshing.start()
                return current
            self._snapshot = self._open_snapshot(manifest, deltas)
            return self._snapshot

    def _refresh(self, manifest: Mapping[str, Any], deltas: Sequence[str]) -> None:
        """Merge a newer listing in the background; the previous snapshot stays for queries still using it."""
        try:
            fresh = self._open_snapshot(manifest, deltas)
        except Exception:
            log.exception("Refreshing the request index failed; still answering from the previous listing")
            return
        with self._snapshot_lock:
            self._snapshot = fresh

    def _open_snapshot(self, manifest: Mapping[str, Any], deltas: Sequence[str]) -> IndexSnapshot:
        import duckdb

        with ThreadPoolExecutor(max_workers=8) as pool:
            delta_files = list(pool.map(self._local, deltas))
        con = duckdb.connect()
        con.execute("SET parquet_metadata_cache = true")
        # A table, not a registered relation: registrations are per connection, and every query runs on
        # a cursor of its own, which would not see one (a lookup before the first compaction failed so).
        con.register("empty_index_rows", records_table([]))
        con.execute("CREATE TABLE empty_index AS SELECT * FROM empty_index_rows")
        con.unregister("empty_index_rows")
        _view(con, "open_base", [self._local(manifest["open"])] if manifest.get("open") else [])
        _view(con, "deltas", delta_files)
        base = manifest.get("records")
        snapshot = IndexSnapshot((manifest.get("records"), manifest.get("open"), tuple(deltas)), con,
                                 base_loader=(lambda: [self._local(base)]) if base else (lambda: []))
        if manifest.get("keys"):  # the base's key column alone: what probing for touched keys needs
            con.execute(f"CREATE VIEW base_keys AS SELECT request_id FROM read_parquet('{self._local(manifest['keys'])}')")
        else:
            snapshot.ensure_base()
            con.execute("CREATE VIEW base_keys AS SELECT request_id FROM base")
        snapshot.merge_touched()
        return snapshot

    # -- internals -----------------------------------------------------------------------------------
    def _current(self, *, refresh: bool = False) -> tuple[dict[str, Any], list[str]]:
        """(manifest, delta keys not folded into the base), cached for a few seconds."""
        with self._lock:
            now = time.monotonic()
            if refresh or self._listing is None or now - self._listing[0] > LISTING_TTL_SECONDS:
                manifest = self.store.get_json(self.manifest_key) or {}
                folded = set(manifest.get("folded") or ())
                deltas = sorted(k for k in self.store.list_keys(self.deltas_prefix) or []
                                if k.endswith(".parquet") and k not in folded)
                self._listing = (now, manifest, deltas)
            return self._listing[1], list(self._listing[2])

    def _local(self, key: str) -> Path:
        """The cached copy of an immutable index object (downloaded once)."""
        path = self.cache_dir / self.store.bucket / key
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.with_name(path.name + f".{os.getpid()}.{threading.get_ident()}.part")
            self.store.client.download_file(self.store.bucket, key, str(partial))
            partial.replace(path)
        return path



def _prefix_end(prefix: str) -> str | None:
    """The smallest string above every string starting with `prefix` (None when there is none)."""
    stripped = prefix.rstrip(chr(0x10FFFF))
    if not stripped:
        return None
    following = ord(stripped[-1]) + 1
    if 0xD800 <= following <= 0xDFFF:  # surrogates are not characters: the next one is U+E000
        following = 0xE000
    return stripped[:-1] + chr(following)


def _view(con, name: str, files: Sequence[Path]) -> None:
    if files:
        listed = ", ".join(f"'{f}'" for f in files)
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet([{listed}])")
    else:
        con.execute(f"CREATE VIEW {name} AS SELECT * FROM empty_index")


class IndexSnapshot:
    """One listing of the index: a DuckDB connection over its files and the touched records merged.

    `cursor()` gives each query its own connection to the same database, with the merged records as the
    table `merged_rows` (what the base and the open file hold for those keys is superseded by them). The
    big base file is fetched only when a query needs it (a lookup, a query over closed requests): the
    board and the deadline alerts need only the open file, the deltas and the base's key column.
    """

    def __init__(self, ident: tuple, con, *, base_loader) -> None:
        self.ident = ident
        self.con = con
        self._base_loader = base_loader
        self._base_ready = False
        self._lock = threading.Lock()
        self.merged: dict[str, dict[str, Any]] = {}
        self.merged_table = records_table([])

    def ensure_base(self) -> None:
        with self._lock:
            if not self._base_ready:
                _view(self.con, "base", self._base_loader())
                self._base_ready = True

    def merge_touched(self) -> None:
        """Whole records of every key the deltas touch: their base row merged with every delta row.

        Cheap at scale: a touched key already in the base is nearly always open, so its record comes
        from the small open file; the base is probed on its key column only, and the few closed records
        touched again are read one by one (each a pruned point read of the sorted base).
        """
        con = self.con
        con.execute("CREATE OR REPLACE TEMP TABLE touched AS SELECT DISTINCT request_id FROM deltas")
        # Key columns first (narrow reads); whole records only for the keys found (`= ANY` prunes by key).
        open_keys = [r[0] for r in con.execute("SELECT request_id FROM open_base "
                                               "WHERE request_id IN (SELECT request_id FROM touched)").fetchall()]
        in_base = {r[0] for r in con.execute("SELECT request_id FROM base_keys "
                                             "WHERE request_id IN (SELECT request_id FROM touched)").fetchall()}
        closed = sorted(in_base - set(open_keys))
        if closed:
            self.ensure_base()

        def records() -> Iterator[dict[str, Any]]:
            # Streamed, each query read to its end before the next: a night at Adobe's cap touches ~16,000
            # requests, and their JSON text and parsed records need not all be held at once.
            queries: list[tuple[str, dict[str, Any]]] = [("SELECT record FROM deltas", {})]
            if open_keys:
                queries.append(("SELECT record FROM open_base WHERE request_id = ANY($k)", {"k": open_keys}))
            queries += [("SELECT record FROM base WHERE request_id = $k", {"k": key}) for key in closed]
            for sql, params in queries:
                result = con.execute(sql, params) if params else con.execute(sql)
                while batch := result.fetchmany(MERGE_BATCH_ROWS):
                    yield from (json.loads(row[0]) for row in batch)

        self.merged = index.merge_all(records())
        self.merged_table = records_table(self.merged.values())

    def cursor(self, *, need_base: bool = False, merged: bool = True):
        if need_base:
            self.ensure_base()
        cursor = self.con.cursor()
        if merged:
            cursor.register("merged_rows", self.merged_table)
        return cursor

    def close(self) -> None:
        self.con.close()


# --------------------------------------------------------------------------------- what steps call


def run_stamp(context: Any) -> dict[str, Any]:
    """Who is writing, from a task's context: dag_id, run_id, the run's partition day, task, map index, DAG version."""
    from adobe_privacy.operators.base import run_partition  # the one rule for the day a run files under

    ti = context["ti"]
    version = getattr(ti, "dag_version_id", None)
    return {"dag_id": ti.dag_id, "run_id": ti.run_id, "ds": run_partition(context), "task_id": ti.task_id,
            "map_index": ti.map_index if ti.map_index is not None else -1,
            "dag_version": str(version) if version else None}


def update_index(
    store: PrivacyArchiveStore,
    *,
    dag_id: str,
    run_id: str,
    ds: str,
    task_id: str,
    map_index: int = -1,
    dag_version: str | None = None,
    at: datetime | None = None,
    staged_batches: Iterable[bytes] = (),
    sources: Mapping[str, str] | None = None,
    ledger_entries: Iterable[Mapping[str, Any]] = (),
    job_records: Iterable[Mapping[str, Any]] = (),
    resubmits: Iterable[tuple[str, Mapping[str, Any]]] = (),
    gave_up: Iterable[tuple[str, str, str]] = (),
    rejects: Iterable[Mapping[str, Any] | Any] = (),
    approvals: Iterable[tuple[Iterable[str], Mapping[str, Any]]] = (),
) -> str | None:
    """Record what one step did in the request index (one delta file); returns its key.

    Pass only what the step already holds: staged batch bytes (+ `sources` name -> sha256), ledger
    entries as JSON dicts, jobs.jsonl records, `(request_id, resubmit record)` pairs, `(request_id,
    job_id, action)` for jobs given up on, rejects.csv rows, `(request_ids, {batch_id, decision, by, at,
    reasons})` for an approval gate's answer. Every key touched is also stamped with this
    run (dag_id, run_id, dag_version).
    """
    at = at or datetime.now(UTC)
    facts: list[dict[str, Any]] = []
    for data in staged_batches:
        facts.extend(index.from_staged_batch(data, sources))
    for entry in ledger_entries:
        facts.extend(index.from_ledger_entry(entry))
    facts.extend(index.from_job_records(job_records, observed_at=at))
    facts.extend(index.from_resubmit(record, request_id=key) for key, record in resubmits)
    facts.extend(index.gave_up(job_id, request_id=key, action=action, at=at) for key, job_id, action in gave_up)
    facts.extend(index.from_rejects(rejects))
    for request_ids, answer in approvals:
        facts.extend(index.from_approval(request_ids, **answer))
    keys = sorted({fact["request_id"] for fact in facts})
    from privacy_pipeline.layout import ArchiveLayout

    root = ArchiveLayout(store.prefix).run(ds, run_id).root
    facts.extend(index.touched_by(keys, dag_id=dag_id, run_id=run_id, dag_version=dag_version, at=at,
                                  task_id=task_id, root=root))
    name = task_id if map_index is None or int(map_index) < 0 else f"{task_id}-{int(map_index)}"
    return RequestIndex(store).write_delta(facts, ds=ds, run_id=run_id, name=name)
