"""The cross-run request index: one record per request key, merged from what every DAG step knows.

A step (or the rebuild over an existing archive) turns what it already holds into *partial* records
(`from_staged_batch`, `from_ledger_entry`, `from_job_records`, `from_resubmit`, `from_rejects`, `from_approval`,
`touched_by`); the index stores them as they come and `merge` folds them together. `merge` is
commutative, associative and idempotent (sets keyed by id, earliest/latest by time, states by rank),
so deltas can be written concurrently by any DAG, retried, replayed in any order or rebuilt from the
archive and still give the same record. Status, due date, reason and closed_at are derived from the
merged facts (`derive`), never stored as facts of their own.

Keys and hashes only: a staged batch carries identity values, and `from_staged_batch` drops them at
once; nothing here ever holds a namespace value.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from privacy_pipeline.catalog import DEFAULT_DEADLINE_DAYS, JOB_ACTIONS
from privacy_pipeline.deadlines import DUE_SOON_DAYS, due_date

INDEX_FORMAT_VERSION = 1
#: Request statuses. Open: received (staged, nothing posted yet), postponed (its batch was carried to a
#: later run), submitted / processing (Adobe has it), error (a job errored; reconcile resubmits it),
#: archiving (every job complete, access content not archived yet). Closed: complete, gave_up (a job
#: errored `max_attempts` times), rejected (intake refused every row of it).
OPEN_STATUSES = ("received", "postponed", "submitted", "processing", "error", "archiving")
CLOSED_STATUSES = ("complete", "gave_up", "rejected")
STATUSES = OPEN_STATUSES + CLOSED_STATUSES
#: DRP v0.9.4 exercise-status values for our statuses.
DRP_STATUS = {
    "received": "open", "postponed": "open", "submitted": "in_progress", "processing": "in_progress",
    "error": "in_progress", "archiving": "in_progress", "complete": "fulfilled", "gave_up": "denied",
    "rejected": "denied",
}
_BATCH_RANK = {"postponed": 0, "intent": 1, "submitted": 2}
_JOB_RANK = {"unknown": 0, "missing": 0, "submitted": 1, "processing": 2, "error": 3, "complete": 4, "gave_up": 5}
_LIST_KEYS = {  # list field -> the fields that identify one item of it
    "sources": ("sha256",), "batches": ("batch_id",), "jobs": ("job_id",), "postponements": ("batch_id", "at"),
    "resubmissions": ("job_id",), "rejections": ("source", "row", "field"), "runs": ("dag_id", "run_id"),
    "approvals": ("batch_id", "at"),
}
FACT_FIELDS = ("request_id", "regulation", "actions", "received_at", *_LIST_KEYS)
DERIVED_FIELDS = ("due_date", "status", "reason", "closed_at", "updated_at")


def new_record(request_id: str, **facts: Any) -> dict[str, Any]:
    """A partial record: `request_id` and whatever facts are given (every list field present)."""
    if not isinstance(request_id, str) or not request_id:
        raise ValueError("a request record needs a non-empty request_id")
    record: dict[str, Any] = {"request_id": request_id, "regulation": None, "actions": [], "received_at": None}
    record.update({name: [] for name in _LIST_KEYS})
    unknown = set(facts) - set(FACT_FIELDS)
    if unknown:
        raise ValueError(f"unknown record fields: {sorted(unknown)}")
    record.update(facts)
    return record


# ------------------------------------------------------------------------------------------- merging


def merge(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Fold two records of one request (partial or whole) into one; order never matters."""
    if a["request_id"] != b["request_id"]:
        raise ValueError(f"cannot merge records of {a['request_id']!r} and {b['request_id']!r}")
    merged = new_record(
        a["request_id"],
        regulation=_first(a.get("regulation"), b.get("regulation")),
        actions=sorted(set(a.get("actions") or ()) | set(b.get("actions") or ())),
        received_at=_earliest(a.get("received_at"), b.get("received_at")),
    )
    for name, id_fields in _LIST_KEYS.items():
        items: dict[tuple, dict[str, Any]] = {}
        for item in [*(a.get(name) or ()), *(b.get(name) or ())]:
            ident = tuple(item.get(f) for f in id_fields)
            items[ident] = _merge_item(name, items[ident], item) if ident in items else dict(item)
        merged[name] = [items[k] for k in sorted(items, key=_sort_key)]
    return merged


def merge_all(records: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Records (partial or whole, any order) -> one derived record per request_id."""
    folded: dict[str, dict[str, Any]] = {}
    for record in records:
        key = record["request_id"]
        folded[key] = merge(folded[key], record) if key in folded else merge(record, record)
    return {key: derive(record) for key, record in folded.items()}


def _merge_item(name: str, a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    if name == "sources":
        return {**_pick_fields(a, b), "rows": sorted(set(a.get("rows") or ()) | set(b.get("rows") or ()))}
    if name == "batches":
        return _merge_batch(a, b)
    if name == "jobs":
        return _merge_job(a, b)
    if name == "runs":
        merged = _pick_fields(a, b)
        merged["at"] = _earliest(a.get("at"), b.get("at"))
        merged["tasks"] = sorted(set(a.get("tasks") or ()) | set(b.get("tasks") or ()))
        return merged
    return _pick_fields(a, b)


def _merge_batch(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged = _pick_fields(a, b)
    ranked = _greater(a, b, lambda item: (_BATCH_RANK.get(item.get("state") or "", -1),))
    merged["state"] = ranked.get("state")
    merged["reason"] = ranked.get("reason")
    merged["posted_at"] = _earliest(a.get("posted_at"), b.get("posted_at"))
    merged["submitted_at"] = _earliest(a.get("submitted_at"), b.get("submitted_at"))
    merged["attempts"] = max(int(a.get("attempts") or 0), int(b.get("attempts") or 0))
    return merged


def _merge_job(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    merged = _pick_fields(a, b)
    history = {(h["status"], h["at"]) for h in [*(a.get("history") or ()), *(b.get("history") or ())]}
    merged["history"] = [{"status": s, "at": at} for s, at in sorted(history, key=lambda h: (h[1] or "", h[0]))]
    latest = _greater(a, b, lambda item: (item.get("observed_at") or "", _JOB_RANK.get(str(item.get("status")), 0)),
                      lambda item: (item.get("status"), item.get("products"), item.get("observed_at")))
    merged["status"] = latest.get("status")
    merged["observed_at"] = latest.get("observed_at")
    merged["products"] = latest.get("products") or []
    if any((item.get("status") == "gave_up") for item in (a, b)):
        merged["status"] = "gave_up"
    return merged


def _greater(a: Mapping[str, Any], b: Mapping[str, Any], rank: Any, tie: Any = None) -> Mapping[str, Any]:
    """The higher-ranked of two items; on a tie the one whose (tie part as) JSON is larger: never order-dependent."""
    ra, rb = rank(a), rank(b)
    if ra != rb:
        return a if ra > rb else b
    ta, tb = (tie(a), tie(b)) if tie else (a, b)
    if ta == tb:
        return a
    return a if _json(ta) > _json(tb) else b


def _pick_fields(a: Mapping[str, Any], b: Mapping[str, Any]) -> dict[str, Any]:
    """Field by field: the value both agree on, or the only one given, else the smaller (deterministic)."""
    merged = {}
    for name in {*a, *b}:
        merged[name] = _first(a.get(name), b.get(name))
    return merged


def _first(a: Any, b: Any) -> Any:
    if a is None or a == [] or a == "":
        return b
    if b is None or b == [] or b == "" or a == b:
        return a
    return min(a, b, key=_json)


def _earliest(a: str | None, b: str | None) -> str | None:
    return min((v for v in (a, b) if v), default=None)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _sort_key(ident: tuple) -> tuple:
    return tuple("" if v is None else str(v) for v in ident)


# ------------------------------------------------------------------------------------------- deriving


def derive(record: Mapping[str, Any], *, default_days: int = DEFAULT_DEADLINE_DAYS) -> dict[str, Any]:
    """`record` with its derived fields: due_date, status, reason, closed_at, updated_at."""
    out = {name: record[name] for name in FACT_FIELDS if name in record}
    for name in _LIST_KEYS:
        out.setdefault(name, [])
    received = _parse_time(out.get("received_at"))
    due = due_date(out["regulation"], received, default_days) if out.get("regulation") and received else None
    status, reason, closed_at = _status(out)
    times = [out.get("received_at"), closed_at]
    times += [item.get("at") for name in ("postponements", "resubmissions", "runs") for item in out[name]]
    times += [job.get("observed_at") for job in out["jobs"]]
    times += [b.get(t) for b in out["batches"] for t in ("posted_at", "submitted_at")]
    out.update({
        "due_date": due.isoformat() if due else None,
        "status": status,
        "reason": reason,
        "closed_at": closed_at,
        "updated_at": max((t for t in times if t), default=None),
    })
    return out


def latest_jobs(record: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Per action, the job that answers it now: the highest attempt (a resubmission replaces its job)."""
    latest: dict[str, dict[str, Any]] = {}
    for job in record.get("jobs") or ():
        current = latest.get(job.get("action"))
        if current is None or (int(job.get("attempt") or 1), job["job_id"]) > (int(current.get("attempt") or 1),
                                                                             current["job_id"]):
            latest[job.get("action")] = job
    return latest


def _status(record: Mapping[str, Any]) -> tuple[str, str | None, str | None]:
    """(status, reason, closed_at) from the facts."""
    jobs = latest_jobs(record)
    actions = record.get("actions") or sorted(jobs)
    if not record["batches"] and not jobs:
        if record["rejections"]:
            first = record["rejections"][0]
            run_times = [run.get("at") for run in record["runs"] if run.get("at")]
            return "rejected", f"{first.get('field')}: {first.get('reason')}", min(run_times, default=None)
        return "received", None, None
    if not jobs or any(action not in jobs for action in actions):
        postponed = sorted(record["postponements"], key=lambda p: p.get("at") or "")
        if postponed or any(b.get("state") == "postponed" for b in record["batches"]):
            reason = postponed[-1].get("reason") if postponed else next(
                (b.get("reason") for b in record["batches"] if b.get("state") == "postponed"), None)
            return "postponed", reason, None
        return "received", None, None
    statuses = {job.get("status") for job in jobs.values()}
    if "gave_up" in statuses:
        gave_up = [j for j in jobs.values() if j.get("status") == "gave_up"]
        return "gave_up", f"job {gave_up[0]['job_id']} errored on every attempt", _closed_time(jobs.values())
    for status in ("error", "submitted", "processing", "missing", "unknown"):
        if status in statuses:
            errored = [j for j in jobs.values() if j.get("status") == "error"]
            reason = f"job {errored[0]['job_id']} errored; resubmitted by reconcile" if errored else None
            return ("submitted" if status in ("missing", "unknown") else status), reason, None
    access = jobs.get("access")
    if access is not None and not access.get("content_key"):
        return "archiving", "access content not archived yet", None
    reason = f"content quarantined: {access.get('quarantine_reason')}" if access and access.get(
        "quarantine_reason") else None
    return "complete", reason, _closed_time(jobs.values())


def _closed_time(jobs: Iterable[Mapping[str, Any]]) -> str | None:
    times = []
    for job in jobs:
        final = [h["at"] for h in job.get("history") or () if h["status"] in ("complete", "gave_up") and h["at"]]
        times.append(min(final, default=None) or job.get("archived_at") or job.get("observed_at"))
        if job.get("archived_at"):
            times.append(job["archived_at"])
    return max((t for t in times if t), default=None)


def is_open(record: Mapping[str, Any]) -> bool:
    return record.get("status") in OPEN_STATUSES


# ------------------------------------------------------------------------------------ what steps know


def touched_by(request_ids: Iterable[str], *, dag_id: str, run_id: str, dag_version: str | None,
               at: datetime | str, task_id: str | None = None, root: str | None = None,
               ) -> Iterator[dict[str, Any]]:
    """Partial records saying that a DAG run (and which version of the DAG) touched these requests.

    `root` is the run's folder in the archive (its report.json and jobs.jsonl are evidence).
    """
    run = {"dag_id": dag_id, "run_id": run_id, "dag_version": dag_version, "at": _iso(at),
           "tasks": [task_id] if task_id else []}
    if root:
        run["root"] = root
    for request_id in request_ids:
        yield new_record(request_id, runs=[dict(run)])


def from_staged_batch(data: bytes | str | Mapping[str, Any], sources: Mapping[str, str] | None = None,
                      ) -> Iterator[dict[str, Any]]:
    """Partial records from a staged batch document (`batching.dump_batch`), identity values dropped.

    `sources` maps an input name to its sha256 (intake.json's `sources`); a name not in it keeps no hash.
    Given the staged bytes, the batch's `payload_sha256` is their sha256 (what each POST body is built from).
    """
    payload_sha256 = None
    if isinstance(data, bytes | str):
        raw = data.encode("utf-8") if isinstance(data, str) else data
        payload_sha256 = hashlib.sha256(raw).hexdigest()
        document = json.loads(raw)
    else:
        document = data
    regulation = document["shape"]["regulation"]
    names = document.get("sources") or []
    batch = {"batch_id": document["batch_id"], "state": None, "payload_sha256": payload_sha256}
    for key, actions, _identities, received, source, rows in document["subjects"]:
        name = names[source] if isinstance(source, int) and source < len(names) else None
        facts: dict[str, Any] = {"regulation": regulation, "actions": sorted(actions), "batches": [dict(batch)],
                                 "received_at": _iso(received) if received else None}
        if name is not None:
            facts["sources"] = [{"name": name, "sha256": (sources or {}).get(name), "rows": sorted(rows)}]
        yield new_record(key, **facts)


def from_ledger_entry(entry: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Partial records from a ledger entry (`LedgerEntry.to_json()`): batch state, payload hash, job ids.

    Read through `LedgerEntry.from_json`, so entries of older archives (state `deferred`) read as today's.
    The payload hash comes from the staged batch (`from_staged_batch`), or from entries that carry one.
    """
    from privacy_pipeline.ledger import LedgerEntry

    payload_sha256 = entry.get("payload_sha256")
    entry = LedgerEntry.from_json(entry).to_json()
    attempt = _retry_attempt(entry["batch_id"])
    batch = {
        "batch_id": entry["batch_id"], "payload_sha256": payload_sha256, "state": entry.get("state"),
        "posted_at": entry.get("intent_at") if entry.get("state") != "postponed" else None,
        "submitted_at": entry.get("submitted_at"), "attempts": int(entry.get("attempts") or 0),
        "reason": entry.get("reason"), "attempt": attempt,
    }
    jobs_by_key: dict[str, list[dict[str, Any]]] = {}
    for job in entry.get("jobs") or ():
        jobs_by_key.setdefault(job["user_key"], []).append({
            "job_id": job["job_id"], "action": job["action"], "batch_id": entry["batch_id"], "attempt": attempt,
            "status": "submitted", "observed_at": entry.get("submitted_at"),
            "history": [{"status": "submitted", "at": entry.get("submitted_at")}] if entry.get("submitted_at")
            else [],
        })
    postponed = entry.get("state") == "postponed"
    actions: dict[str, set[str]] = {}
    for key, action in entry.get("user_actions") or ():
        actions.setdefault(key, set()).add(action)
    for key, wanted in actions.items():
        facts: dict[str, Any] = {"regulation": entry.get("regulation"), "batches": [dict(batch)],
                                 "actions": sorted(wanted), "jobs": jobs_by_key.get(key, [])}
        if postponed:
            facts["postponements"] = [{"batch_id": entry["batch_id"], "at": entry.get("intent_at"),
                                       "reason": entry.get("reason")}]
        yield new_record(key, **facts)


def from_job_records(records: Iterable[Mapping[str, Any]], *, observed_at: datetime | str,
                     attempt_of: Mapping[str, int] | None = None) -> Iterator[dict[str, Any]]:
    """Partial records from jobs.jsonl lines: status, per-product outcome codes, content key + sha256."""
    seen = _iso(observed_at)
    for line in records:
        batch_id = line.get("batchId")
        job = {
            "job_id": str(line["jobId"]), "action": line.get("action"), "batch_id": batch_id,
            "attempt": (attempt_of or {}).get(str(line["jobId"])) or (_retry_attempt(batch_id) if batch_id else 1),
            "status": str(line.get("status") or "unknown"), "observed_at": seen,
            "history": [{"status": str(line.get("status") or "unknown"), "at": seen}],
            "products": [{"product": p.get("product"), "status": p.get("status"), "code": p.get("responseMsgCode"),
                          "message": p.get("message")} for p in line.get("productResponses") or ()],
        }
        if line.get("contentKey"):
            job.update({"content_key": line["contentKey"], "content_sha256": line.get("sha256"),
                        "content_size": line.get("size"), "quarantine_reason": line.get("quarantineReason"),
                        "archived_at": line.get("archivedAt") or seen})
        yield new_record(str(line["userKey"]), regulation=line.get("regulation"),
                         actions=[line["action"]] if line.get("action") else [], jobs=[job])


def from_resubmit(record: Mapping[str, Any], *, request_id: str) -> dict[str, Any]:
    """A partial record from a resubmit record (`ledger/resubmits/<job_id>.json`)."""
    return new_record(request_id, resubmissions=[{
        "job_id": record["job_id"], "action": record.get("action"), "batch_id": record.get("batch_id"),
        "retry_batch_id": record.get("retry_batch_id"), "at": record.get("staged_at"),
    }])


def gave_up(job_id: str, *, request_id: str, action: str, at: datetime | str) -> dict[str, Any]:
    """A partial record: reconcile stopped resubmitting this job (attempt cap reached)."""
    when = _iso(at)
    return new_record(request_id, jobs=[{"job_id": job_id, "action": action, "status": "gave_up",
                                         "observed_at": when, "history": [{"status": "gave_up", "at": when}]}])


def from_approval(request_ids: Iterable[str], *, batch_id: str, decision: str, by: str | None,
                  at: datetime | str | None, reasons: Iterable[str] = ()) -> Iterator[dict[str, Any]]:
    """Partial records: the approval gate's answer for a batch's destructive work (who, when, why asked).

    `decision` is Approve, Reject or timed_out (`privacy_pipeline.approval`); `by` the approver's name
    (None on a timeout). One item per (batch, time): a batch rejected tonight and approved tomorrow keeps both.
    """
    item = {"batch_id": batch_id, "decision": decision, "by": by, "at": _iso(at) if at else None,
            "reasons": list(reasons)}
    for request_id in request_ids:
        yield new_record(request_id, approvals=[dict(item)])


#: What a rejected row's `action` cell may say for the index to keep it (the request type a denial counts under).
DENIED_ACTIONS = frozenset({*JOB_ACTIONS, "opt_out_of_sale"})


def from_rejects(rows: Iterable[Mapping[str, Any] | Any]) -> Iterator[dict[str, Any]]:
    """Partial records from rejects.csv rows or `models.Reject`s: the key, place, field and reason, plus the
    row's action and receipt day when they are what such cells may be (for the yearly metrics' denials);
    never any other cell of the row."""
    for item in rows:
        if isinstance(item, Mapping):
            row, cells = item, item
        else:
            row = {name: getattr(item, name, None) for name in ("request_id", "source", "row", "line", "field", "reason")}
            cells = getattr(item, "raw", None) or {}
        request_id = str(row.get("request_id") or "").strip()
        if not request_id or request_id.startswith("'"):  # no key, or a key neutralised as a formula
            continue
        yield new_record(request_id, rejections=[{
            "source": row.get("source"), "row": _int(row.get("row")), "line": _int(row.get("line")),
            "field": row.get("field"), "reason": row.get("reason"),
            "action": _denied_action(cells.get("action")), "received_at": _receipt_day(cells.get("received_at")),
        }])


def _denied_action(cell: Any) -> str | None:
    """`access`, `delete`, `access|delete` … as written, only when every part is a known action."""
    parts = [part.strip().lower() for part in str(cell or "").split("|")]
    return "|".join(parts) if parts and all(part in DENIED_ACTIONS for part in parts) else None


def _receipt_day(cell: Any) -> str | None:
    """The ISO day of a `received_at` cell when it is a date of this century, else None."""
    moment = _parse_time(str(cell or "").strip().replace("Z", "+00:00")[:32])
    return moment.date().isoformat() if moment and 2000 <= moment.year <= 2099 else None


# ---------------------------------------------------------------------------------------- deadlines


def deadline_alerts(records: Iterable[Mapping[str, Any]], today: date, *,
                    due_soon_days: int = DUE_SOON_DAYS) -> dict[str, list[dict[str, str]]]:
    """Open requests past their due date, and those due within `due_soon_days`, as of `today`.

    Takes derived records (or rows with request_id, status, due_date); returns keys only, earliest due
    first: `{"overdue": [{"request_id", "due_date"}], "due_soon": [...]}`.
    """
    overdue, due_soon = [], []
    for record in records:
        if record.get("status") not in OPEN_STATUSES or not record.get("due_date"):
            continue
        due = _as_date(record["due_date"])
        days_left = (due - today).days
        item = (due.isoformat(), record["request_id"])
        if days_left < 0:
            overdue.append(item)
        elif days_left <= due_soon_days:
            due_soon.append(item)
    return {name: [{"request_id": key, "due_date": due} for due, key in sorted(items)]
            for name, items in (("overdue", overdue), ("due_soon", due_soon))}


def days_to_deadline(record: Mapping[str, Any], today: date) -> int | None:
    return (_as_date(record["due_date"]) - today).days if record.get("due_date") else None


# ------------------------------------------------------------------------------------------ helpers


def _retry_attempt(batch_id: str) -> int:
    from privacy_pipeline.reconcile import retry_attempt

    return retry_attempt(batch_id)


def _iso(value: datetime | date | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(UTC).isoformat()
    return value.isoformat()


def _parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def _as_date(value: str | date) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def summary_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """The scalar columns the index stores beside the whole record (what queries filter and sort on)."""
    return {
        "request_id": record["request_id"],
        "regulation": record.get("regulation"),
        "actions": "|".join(record.get("actions") or ()),
        "received_at": record.get("received_at"),
        "due_date": _as_date(record["due_date"]) if record.get("due_date") else None,
        "status": record.get("status"),
        "closed_at": record.get("closed_at"),
        "updated_at": record.get("updated_at"),
        "record": json.dumps(record, sort_keys=True, separators=(",", ":"), default=str),
    }


def rows_to_records(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Stored rows (with their `record` JSON) back to records."""
    return [json.loads(row["record"]) for row in rows]
