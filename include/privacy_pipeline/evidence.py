"""Evidence packs: one document per request key with its whole trail, for auditors and regulators.

Adobe keeps job data 30 days and access content 30-60 days after completion; regulators ask years
later. An evidence pack is assembled from the request's index record (`privacy_pipeline.index`), which
already holds every fact our DAGs observed: the input file and lines, the validation outcome, the
batch and the sha256 of the payload sent, when it was posted, the job ids per action, every status we
saw, per-product outcome codes, the content ZIP's key, size and sha256 (or why it was quarantined),
approvals, postponements, resubmissions, the due date, closed_at, and the Airflow runs (with DAG
versions) that touched it. Keys and hashes only: an index record never holds an identity value, and
neither does a pack.

`evidence_pack` gives the JSON document (for machines), `evidence_page` a small self-contained HTML
page (for people). Both are deterministic for a given record and `generated_at`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

EVIDENCE_FORMAT = "privacy-evidence-pack/1"
#: Adobe's product messages are free text: kept short so a pack stays a summary, not a data dump.
MESSAGE_LIMIT = 200


def evidence_pack(record: Mapping[str, Any], *, generated_at: datetime, archive_uri: str | None = None) -> dict:
    """The evidence document of one derived index record."""
    jobs = sorted(record.get("jobs") or (), key=lambda j: (str(j.get("action")), int(j.get("attempt") or 1),
                                                          str(j.get("job_id"))))
    rejections = list(record.get("rejections") or ())
    return {
        "format": EVIDENCE_FORMAT,
        "generated_at": generated_at.isoformat(),
        "archive_uri": archive_uri,
        "request": {
            "request_id": record["request_id"],
            "regulation": record.get("regulation"),
            "actions": list(record.get("actions") or ()),
            "received_at": record.get("received_at"),
            "due_date": record.get("due_date"),
            "status": record.get("status"),
            "reason": record.get("reason"),
            "closed_at": record.get("closed_at"),
        },
        "input": [{"file": s.get("name"), "sha256": s.get("sha256"), "lines": s.get("rows") or []}
                  for s in record.get("sources") or ()],
        "validation": {
            "outcome": "rejected" if record.get("status") == "rejected" else
                       ("accepted with rejected rows" if rejections else "accepted"),
            "rejected_rows": [{"file": r.get("source"), "row": r.get("row"), "line": r.get("line"),
                               "field": r.get("field"), "reason": r.get("reason")} for r in rejections],
        },
        "submissions": [{"batch_id": b.get("batch_id"), "payload_sha256": b.get("payload_sha256"),
                         "state": b.get("state"), "posted_at": b.get("posted_at"),
                         "submitted_at": b.get("submitted_at"), "attempts": b.get("attempts")}
                        for b in record.get("batches") or ()],
        "jobs": [_job(job) for job in jobs],
        "approvals": list(record.get("approvals") or ()),
        "postponements": list(record.get("postponements") or ()),
        "resubmissions": list(record.get("resubmissions") or ()),
        "airflow_runs": [{"dag_id": r.get("dag_id"), "run_id": r.get("run_id"), "dag_version": r.get("dag_version"),
                          "at": r.get("at"), "tasks": r.get("tasks") or []} for r in record.get("runs") or ()],
    }


def _job(job: Mapping[str, Any]) -> dict[str, Any]:
    content = None
    if job.get("content_key") or job.get("quarantine_reason"):
        content = {"key": job.get("content_key"), "size": job.get("content_size"),
                   "sha256": job.get("content_sha256"), "quarantine_reason": job.get("quarantine_reason"),
                   "archived_at": job.get("archived_at")}
    return {
        "job_id": job.get("job_id"),
        "action": job.get("action"),
        "batch_id": job.get("batch_id"),
        "attempt": job.get("attempt"),
        "status": job.get("status"),
        "status_history": [{"status": h.get("status"), "observed_at": h.get("at")} for h in job.get("history") or ()],
        "products": [{"product": p.get("product"), "status": p.get("status"), "code": p.get("code"),
                      "message": (p.get("message") or "")[:MESSAGE_LIMIT] or None} for p in job.get("products") or ()],
        "content": content,
    }


def evidence_json(pack: Mapping[str, Any]) -> bytes:
    return json.dumps(pack, indent=2, sort_keys=False, default=str).encode("utf-8")


def evidence_page(pack: Mapping[str, Any], *, grid_url: str | None = None) -> bytes:
    """A self-contained HTML page of the pack: no script, no external resource."""
    esc = html.escape

    def cell(value: Any) -> str:
        if value is None or value == [] or value == "":
            return "<td class=none>—</td>"
        if isinstance(value, list | dict):
            value = json.dumps(value, default=str)
        return f"<td>{esc(str(value))}</td>"

    def table(rows: list[Mapping[str, Any]], columns: tuple[str, ...], empty: str) -> str:
        if not rows:
            return f"<p class=none>{esc(empty)}</p>"
        head = "".join(f"<th>{esc(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(cell(r.get(c)) for c in columns) + "</tr>" for r in rows)
        return f"<table><tr>{head}</tr>{body}</table>"

    request = pack["request"]
    summary = "".join(f"<tr><th>{esc(k)}</th>{cell(v)}</tr>" for k, v in request.items())
    job_sections = []
    for job in pack["jobs"]:
        content = job["content"]
        content_html = (table([content], ("key", "size", "sha256", "quarantine_reason", "archived_at"), "")
                        if content else "<p class=none>no content archived for this job</p>")
        job_sections.append(
            f"<h3>{esc(str(job['action']))} job {esc(str(job['job_id']))} (attempt {esc(str(job['attempt']))}, "
            f"batch {esc(str(job['batch_id']))}): {esc(str(job['status']))}</h3>"
            + table(job["status_history"], ("status", "observed_at"), "no status observed")
            + table(job["products"], ("product", "status", "code", "message"), "no product responses yet")
            + content_html
        )
    runs = pack["airflow_runs"]
    if grid_url:
        runs = [{**r, "grid": f"{grid_url}/dags/{r['dag_id']}/runs/{r['run_id']}"} for r in runs]
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Evidence pack {esc(request['request_id'])}</title>
<style>body{{font-family:sans-serif;margin:2em;max-width:70em}}table{{border-collapse:collapse;margin:.5em 0}}
td,th{{border:1px solid #999;padding:.2em .5em;text-align:left;vertical-align:top}}.none{{color:#777}}</style>
</head><body>
<h1>Evidence pack: request {esc(request['request_id'])}</h1>
<p>Generated {esc(pack['generated_at'])} ({esc(pack['format'])}). Keys and hashes only; no identity value
appears in this document.</p>
<table>{summary}</table>
<h2>Input</h2>{table(pack['input'], ('file', 'sha256', 'lines'), 'no input file recorded')}
<h2>Validation: {esc(pack['validation']['outcome'])}</h2>
{table(pack['validation']['rejected_rows'], ('file', 'row', 'line', 'field', 'reason'), 'no row rejected')}
<h2>Submissions</h2>
{table(pack['submissions'], ('batch_id', 'payload_sha256', 'state', 'posted_at', 'submitted_at', 'attempts'),
       'not submitted')}
<h2>Approvals</h2>{table(pack['approvals'], ('batch_id', 'decision', 'by', 'at', 'reasons'), 'no approval was required')}
<h2>Postponements</h2>{table(pack['postponements'], ('batch_id', 'at', 'reason'), 'never postponed')}
<h2>Resubmissions</h2>{table(pack['resubmissions'], ('job_id', 'action', 'retry_batch_id', 'at'), 'none')}
<h2>Jobs</h2>{''.join(job_sections) or '<p class=none>no job created</p>'}
<h2>Airflow runs</h2>
{table(runs, ('dag_id', 'run_id', 'dag_version', 'at', 'tasks', 'grid') if grid_url else
       ('dag_id', 'run_id', 'dag_version', 'at', 'tasks'), 'none')}
</body></html>
"""
    return page.encode("utf-8")
