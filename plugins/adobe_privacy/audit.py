"""What an auditor gets: evidence packs per request and request metrics, read from the request index.

    <root>/evidence/<request key>/pack.json   the request's whole trail (keys and hashes only)
    <root>/evidence/<request key>/pack.html   the same for people: a self-contained page
    <root>/metrics/<from>_<to>/metrics.csv    11 CCR §7102 figures per request type
    <root>/metrics/<from>_<to>/metrics.html   the same with a chart and the denial reasons

Every object goes through `PrivacyArchiveStore` (server-side encrypted). The rules (what a pack holds,
how metrics count) are pure and live in `privacy_pipeline.evidence` and `privacy_pipeline.metrics`;
this module only reads the index and writes the results. `python -m adobe_privacy.audit --help`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

from privacy_pipeline import evidence, metrics
from privacy_pipeline.index import CLOSED_STATUSES, latest_jobs
from privacy_pipeline.layout import safe_segment

from adobe_privacy.index_store import RequestIndex
from adobe_privacy.storage import PrivacyArchiveStore, pooled

log = logging.getLogger(__name__)
#: Evidence packs written at once (each is two small S3 puts).
PACK_WRITERS = 16
#: Requests looked up and packed per round.
PACK_ROUND = 2000


def evidence_keys(store: PrivacyArchiveStore, request_id: str) -> tuple[str, str]:
    folder = store.key("evidence", safe_segment(request_id))
    return f"{folder}/pack.json", f"{folder}/pack.html"


def write_evidence_pack(store: PrivacyArchiveStore, record: Mapping[str, Any], *, at: datetime) -> str:
    """Write one request's pack (JSON + page); returns the JSON's URI. Rewriting it is harmless."""
    pack = evidence.evidence_pack(record, generated_at=at, archive_uri=store.uri(store.key()))
    json_key, html_key = evidence_keys(store, record["request_id"])
    store.put_bytes(json_key, evidence.evidence_json(pack), content_type="application/json")
    store.put_bytes(html_key, evidence.evidence_page(pack), content_type="text/html; charset=utf-8")
    return store.uri(json_key)


def write_closed_packs(store: PrivacyArchiveStore, request_index: RequestIndex, request_ids: Iterable[str], *,
                       at: datetime) -> int:
    """A pack for each of these requests that is closed now (what a step calls after updating the index)."""
    keys = sorted(set(request_ids))
    written = 0
    # Two small puts per pack: written side by side (a night at Adobe's cap closes ~16,000 requests), a round
    # of keys at a time, so the records held at once do not grow with the night.
    writer = pooled(store, PACK_WRITERS)
    with ThreadPoolExecutor(max_workers=PACK_WRITERS, thread_name_prefix="evidence-pack") as pool:
        for start in range(0, len(keys), PACK_ROUND):
            records = request_index.lookup_many(keys[start:start + PACK_ROUND])
            closed = [record for _key, record in sorted(records.items()) if record.get("status") in CLOSED_STATUSES]
            for _uri in pool.map(lambda record: write_evidence_pack(writer, record, at=at), closed):
                pass
            written += len(closed)
    return written


def records_received(request_index: RequestIndex, start: date, end: date) -> Iterator[dict[str, Any]]:
    """Every derived record whose request was received between `start` and `end` (UTC days), or rejected then."""
    summary = request_index.query(limit=0)
    total = summary["total"]
    page = 1000
    for offset in range(0, total, page):
        for item in request_index.query(limit=page, offset=offset)["items"]:
            moment = item.get("received_at") or item.get("closed_at")
            day = _day(moment)
            if day is None or start <= day <= end:
                record = request_index.lookup(item["request_id"])
                if record is not None:
                    yield record


def metric_facts(records: Iterable[Mapping[str, Any]]) -> tuple[list[metrics.RequestFacts], list[metrics.DeniedRow]]:
    """Index records -> the facts the metrics count (one per request and action; denials apart)."""
    facts: list[metrics.RequestFacts] = []
    denied: list[metrics.DeniedRow] = []
    for record in records:
        received = _time(record.get("received_at"))
        if record.get("status") == "rejected":
            rejections = record.get("rejections") or [{}]
            first = rejections[0]
            # The type a denial counts under: the request's action as its rejected rows wrote it, when valid.
            action = next((r["action"] for r in rejections if r.get("action")), None)
            day = next((r["received_at"] for r in rejections if r.get("received_at")), None)
            denied.append(metrics.DeniedRow(action or "|".join(record.get("actions") or ()) or "unknown",
                                            received or _time(day) or _time(record.get("closed_at")),
                                            f"{first.get('field')}: {first.get('reason')}"))
            continue
        if received is None:
            continue
        jobs = latest_jobs(record)
        closed = _time(record.get("closed_at")) if record.get("status") in CLOSED_STATUSES else None
        status = "resubmit_cap_reached" if record.get("status") == "gave_up" else str(record.get("status"))
        for action in record.get("actions") or ():
            job = jobs.get(action) or {}
            outcomes = tuple(str(p.get("status")) for p in job.get("products") or ())
            facts.append(metrics.RequestFacts(record["request_id"], action, received, closed, status, outcomes))
    return facts, denied


def write_metrics(store: PrivacyArchiveStore, request_index: RequestIndex, start: date, end: date) -> dict[str, Any]:
    """Compute the metrics of a date range from the index and write them; returns the result and URIs."""
    facts, denied = metric_facts(records_received(request_index, start, end))
    result = metrics.request_metrics(facts, denied, start=start, end=end)
    folder = store.key("metrics", f"{start.isoformat()}_{end.isoformat()}")
    store.put_bytes(f"{folder}/metrics.csv", metrics.metrics_csv(result), content_type="text/csv")
    store.put_bytes(f"{folder}/metrics.html", metrics.metrics_page(result), content_type="text/html; charset=utf-8")
    return {**result, "csv": store.uri(f"{folder}/metrics.csv"), "page": store.uri(f"{folder}/metrics.html")}


def write_packs(store: PrivacyArchiveStore, request_index: RequestIndex, start: date, end: date, *,
                at: datetime) -> int:
    """A pack for every request received in the range, open or closed (what an audit asks for)."""
    written = 0
    for record in records_received(request_index, start, end):
        write_evidence_pack(store, record, at=at)
        written += 1
    return written


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _day(value: Any) -> date | None:
    moment = _time(value)
    return moment.date() if moment else None


def main(argv: list[str] | None = None) -> int:
    """`python -m adobe_privacy.audit {metrics,packs} --from YYYY-MM-DD --to YYYY-MM-DD`."""
    parser = argparse.ArgumentParser(prog="python -m adobe_privacy.audit", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("metrics", "packs"))
    parser.add_argument("--from", dest="start", required=True, type=date.fromisoformat)
    parser.add_argument("--to", dest="end", required=True, type=date.fromisoformat)
    parser.add_argument("--archive-uri", default=os.environ.get("AIRFLOW_VAR_PRIVACY_ARCHIVE_URI",
                                                                 "s3://privacy-archive/privacy"))
    parser.add_argument("--aws-conn-id", default="aws_default")
    parser.add_argument("--sse", default=os.environ.get("AIRFLOW_VAR_PRIVACY_SSE", "AES256"))
    parser.add_argument("--kms-key-id", default=os.environ.get("AIRFLOW_VAR_PRIVACY_KMS_KEY_ID") or None)
    args = parser.parse_args(argv)
    if args.end < args.start:
        parser.error("--to is before --from")
    store = PrivacyArchiveStore(args.archive_uri, aws_conn_id=args.aws_conn_id, sse=args.sse,
                                kms_key_id=args.kms_key_id)
    request_index = RequestIndex(store)
    if args.what == "metrics":
        result = write_metrics(store, request_index, args.start, args.end)
        print(json.dumps({"csv": result["csv"], "page": result["page"], "rows": result["rows"]}))
    else:
        count = write_packs(store, request_index, args.start, args.end, at=datetime.now(UTC))
        print(json.dumps({"packs": count, "under": store.uri(store.key("evidence"))}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
