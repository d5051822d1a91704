"""Rebuild the request index from what an archive already holds (the ledger and every run's outputs).

Archives written before the index existed are indexed too; the result is the same however often it runs
(`privacy_pipeline.index.merge` is order-free and idempotent). `scripts/rebuild_index.py` is the command.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from privacy_pipeline import index

from adobe_privacy.index_store import STAGING_REASON_PREFIX, RequestIndex
from adobe_privacy.storage import PrivacyArchiveStore

log = logging.getLogger(__name__)



def archive_facts(store: PrivacyArchiveStore, *, max_workers: int = 8) -> list[dict[str, Any]]:
    """Partial records of every request the archive knows of: the ledger and every run's outputs."""
    from privacy_pipeline.layout import ArchiveLayout

    layout = ArchiveLayout(store.prefix)
    # Carry markers: ledger/pending/, and ledger/deferred/ of archives written before that name.
    carry_prefixes = [prefix.rsplit("/", 1)[-1] for prefix in layout.ledger_pending_prefixes]
    objects = _list_with_times(store, store.prefix)
    by_prefix: dict[str, list[str]] = {}
    for key in objects:
        rest = key[len(store.prefix) + 1:] if store.prefix else key
        parts = rest.split("/")
        if parts[0] == "ledger" and len(parts) == 3:
            by_prefix.setdefault(parts[1], []).append(key)
        elif parts[0] == "runs" and len(parts) >= 4:
            by_prefix.setdefault("runs", []).append(key)

    def get_json(key: str) -> Any:
        return store.get_json(key)

    with ThreadPoolExecutor(max_workers=max_workers) as pool:
        entries = [e for e in pool.map(get_json, by_prefix.get("batches", [])) if e]
        resubmits = [r for r in pool.map(get_json, by_prefix.get("resubmits", [])) if r]
        archived = [a for a in pool.map(get_json, by_prefix.get("jobs", [])) if a]
        open_markers = [m for m in pool.map(get_json, by_prefix.get("open", [])) if m]
        carry = [(k, m) for k, m in zip(
            [k for p in carry_prefixes for k in by_prefix.get(p, [])],
            pool.map(get_json, [k for p in carry_prefixes for k in by_prefix.get(p, [])]), strict=True) if m]
        runs = _runs(by_prefix.get("runs", []), layout, objects)
        run_docs = {run: dict(zip(("intake", "report", "reconcile"), pool.map(get_json, [
            f"{run}/intake.json", f"{run}/report.json", f"{run}/reconcile.json"]), strict=True)) for run in runs}
        batch_bodies = dict(zip(
            [k for files in runs.values() for k in files["batches"]],
            pool.map(store.get_bytes, [k for files in runs.values() for k in files["batches"]]), strict=True))
        jobs_bodies = dict(zip(
            [k for files in runs.values() for k in files["jobs"]],
            pool.map(store.get_bytes, [k for files in runs.values() for k in files["jobs"]]), strict=True))
        rejects_bodies = dict(zip(
            [files["rejects"] for files in runs.values() if files["rejects"]],
            pool.map(store.get_bytes, [files["rejects"] for files in runs.values() if files["rejects"]]), strict=True))

    facts: list[dict[str, Any]] = []
    job_owner: dict[str, tuple[str, str]] = {}
    batch_keys: dict[str, list[str]] = {}
    for entry in entries:
        for fact in index.from_ledger_entry(entry):
            facts.append(fact)
            batch_keys.setdefault(entry["batch_id"], []).append(fact["request_id"])
        for job in entry.get("jobs") or ():
            job_owner[job["job_id"]] = (job["user_key"], job["action"])
    for run, files in runs.items():
        docs = run_docs[run]
        sources = {s["name"]: s["sha256"] for s in (docs["intake"] or {}).get("sources", [])}
        keys: set[str] = set()
        for key in files["batches"]:
            for fact in index.from_staged_batch(batch_bodies[key], sources):
                facts.append(fact)
                keys.add(fact["request_id"])
                batch_keys.setdefault(fact["batches"][0]["batch_id"], []).append(fact["request_id"])
        for key in files["jobs"]:
            lines = [json.loads(line) for line in (jobs_bodies[key] or b"").splitlines() if line.strip()]
            for fact in index.from_job_records(lines, observed_at=objects[key]):
                facts.append(fact)
                keys.add(fact["request_id"])
        if files["rejects"]:
            text = (rejects_bodies[files["rejects"]] or b"").decode("utf-8", errors="replace")
            for fact in index.from_rejects(csv.DictReader(io.StringIO(text))):
                facts.append(fact)
                keys.add(fact["request_id"])
        dag_id = ("privacy_reconcile" if docs["reconcile"] is not None else "privacy_requests_nightly")
        run_id = (docs["report"] or {}).get("run_id") or run.rsplit("/", 1)[-1]
        facts.extend(index.touched_by(sorted(keys), dag_id=dag_id, run_id=run_id, dag_version=None,
                                      at=files["first_at"], root=run))
    for record in resubmits:
        owner = job_owner.get(record["job_id"])
        if owner:
            facts.append(index.from_resubmit(record, request_id=owner[0]))
    for record in archived:
        owner = job_owner.get(record.get("job_id"))
        if owner and record.get("content_key"):
            facts.append(index.new_record(owner[0], jobs=[{
                "job_id": record["job_id"], "action": owner[1], "content_key": record["content_key"],
                "content_sha256": record.get("sha256"), "content_size": record.get("size"),
                "quarantine_reason": record.get("reason"), "archived_at": record.get("archived_at")}]))
    for marker in open_markers:
        for job_id, final in (marker.get("final") or {}).items():
            if final == "gave_up" and job_id in job_owner:
                key, action = job_owner[job_id]
                facts.append(index.gave_up(job_id, request_id=key, action=action, at=objects.get(
                    layout.ledger_open(marker["batch_id"])) or datetime.now(UTC)))
    for key, marker in carry:
        reason = str(marker.get("reason") or "")
        if reason and not reason.startswith(STAGING_REASON_PREFIX):
            for request_id in dict.fromkeys(batch_keys.get(marker.get("batch_id"), [])):
                facts.append(index.new_record(request_id, postponements=[
                    {"batch_id": marker["batch_id"], "at": objects[key], "reason": reason}]))
    return facts


def rebuild(store: PrivacyArchiveStore, *, cache_dir: str | Path | None = None) -> dict[str, Any]:
    """Index everything the archive holds (written before or after the index existed), then compact."""
    facts = archive_facts(store)
    request_index = RequestIndex(store, cache_dir=cache_dir)
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True, default=str).encode()).hexdigest()
    request_index.write_delta(facts, ds="rebuild", run_id=digest[:16], name="archive")
    summary = request_index.compact()
    return {"facts": len(facts), **summary}


def _list_with_times(store: PrivacyArchiveStore, prefix: str) -> dict[str, str]:
    """Every key under `prefix` with its LastModified (ISO, UTC): when we observed what it says."""
    paginator = store.client.get_paginator("list_objects_v2")
    found: dict[str, str] = {}
    for page in paginator.paginate(Bucket=store.bucket, Prefix=prefix.rstrip("/") + "/" if prefix else ""):
        for item in page.get("Contents", []):
            found[item["Key"]] = item["LastModified"].astimezone(UTC).isoformat()
    return found


def _runs(keys: Iterable[str], layout, times: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Run folder -> its staged batches, job files (jobs.jsonl, else the parts), rejects.csv, and when the
    run wrote its first object (when it touched its requests)."""
    runs: dict[str, dict[str, Any]] = {}
    for key in keys:
        head, _, rest = key.partition("/runs/") if layout.root else ("", "", key.removeprefix("runs/"))
        ds, run, *tail = rest.split("/")
        folder = "/".join(p for p in (head, "runs", ds, run) if p)
        files = runs.setdefault(folder, {"batches": [], "jobs": [], "parts": [], "rejects": None, "first_at": None})
        name = "/".join(tail)
        if name.startswith("batches/") and name.endswith(".json"):
            files["batches"].append(key)
        elif name == "jobs.jsonl":
            files["jobs"].append(key)
        elif name.startswith("jobs/part-") and name.endswith(".jsonl"):
            files["parts"].append(key)
        elif name == "rejects.csv":
            files["rejects"] = key
        files["first_at"] = min(filter(None, (files["first_at"], times.get(key))), default=None)
    for files in runs.values():
        if not files["jobs"]:
            files["jobs"] = sorted(files["parts"])
    return runs
