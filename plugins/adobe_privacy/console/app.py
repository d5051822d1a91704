"""The request console's FastAPI app, mounted by our plugin at `/privacy` on Airflow's api-server.

    GET /privacy/                                  the page (search, trail, deadline board)
    GET /privacy/api/v1/requests/{request_id}      one request, DRP "exercise status" shape + our trail
    GET /privacy/api/v1/requests?prefix=&regulation=&action=&status=&open=&limit=&offset=
    GET /privacy/api/v1/board?as_of=&regulation=&action=&status=   open requests by days to deadline
    GET /privacy/api/v1/requests/{request_id}/evidence.json|.html   the request's evidence pack, as of now

Plugin endpoints are not protected by Airflow on their own: every route here depends on Airflow's own
auth-manager checks (`requires_access_dag`), so a request without a valid token gets 401 and a user
who may not read our DAGs gets 403, whatever auth manager the deployment uses.
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from fastapi import Depends, FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, Response

URL_PREFIX = "/privacy"
#: Reading the console means reading what these DAGs did: a user needs read access to every one of them.
PRIVACY_DAG_IDS = ("privacy_requests_nightly", "privacy_reconcile")
MAX_LIMIT = 1000


def _authorized() -> list[Any]:
    from airflow.api_fastapi.core_api.security import requires_access_dag

    return [Depends(requires_access_dag("GET", param_dag_id=dag_id)) for dag_id in PRIVACY_DAG_IDS]


@lru_cache(maxsize=1)
def request_index():
    """The index of the configured archive (Variables as the DAGs read them; cached listing and files)."""
    from adobe_privacy.index_store import RequestIndex
    from adobe_privacy.storage import PrivacyArchiveStore

    store = PrivacyArchiveStore(
        _variable("privacy_archive_uri", "s3://privacy-archive/privacy"),
        aws_conn_id=os.environ.get("PRIVACY_CONSOLE_AWS_CONN_ID", "aws_default"),
        sse=_variable("privacy_sse", "AES256"),
        kms_key_id=_variable("privacy_kms_key_id", "") or None,
    )
    return RequestIndex(store, cache_dir=os.environ.get("PRIVACY_INDEX_CACHE_DIR") or None, serve_stale=True)


def _variable(name: str, default: str) -> str:
    value = os.environ.get(f"AIRFLOW_VAR_{name.upper()}")
    if value is not None:
        return value
    try:
        from airflow.models.variable import Variable

        return Variable.get(name, default_var=default)
    except Exception:  # no metadata DB here (a script, a test): the default stands
        return default


def create_app() -> FastAPI:
    app = FastAPI(title="Privacy requests", version="1", dependencies=_authorized(),
                  docs_url="/api/docs", openapi_url="/api/openapi.json", redoc_url=None)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> HTMLResponse:
        from adobe_privacy.console.page import PAGE_HTML

        return HTMLResponse(PAGE_HTML, headers={"Cache-Control": "no-store"})

    @app.get("/api/v1/requests/{request_id}")
    def request_status(request_id: str) -> dict[str, Any]:
        record = request_index().lookup(request_id)
        if record is None:
            raise HTTPException(status_code=404, detail=f"no request with key {request_id!r} in the index")
        return exercise_status(record, request_index().store)

    @app.get("/api/v1/requests/{request_id}/evidence.{kind}")
    def evidence_pack(request_id: str, kind: str) -> Response:
        """The evidence pack built from the index record now (the archive keeps the one written at close)."""
        from privacy_pipeline import evidence

        if kind not in ("json", "html"):
            raise HTTPException(status_code=404, detail="evidence comes as .json or .html")
        record = request_index().lookup(request_id)
        if record is None:
            raise HTTPException(status_code=404, detail=f"no request with key {request_id!r} in the index")
        store = request_index().store
        pack = evidence.evidence_pack(record, generated_at=datetime.now(UTC), archive_uri=store.uri(store.key()))
        name = f"evidence-{quote(request_id, safe='')}.{kind}"
        body, media = ((evidence.evidence_json(pack), "application/json") if kind == "json"
                       else (evidence.evidence_page(pack), "text/html; charset=utf-8"))
        return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"',
                                                         "Cache-Control": "no-store"})

    @app.get("/api/v1/requests")
    def requests(prefix: str | None = Query(None, max_length=200), regulation: str | None = None,
                 action: str | None = None, status: str | None = None, open: bool = False,  # noqa: A002
                 as_of: date | None = None, limit: int = Query(50, ge=1, le=MAX_LIMIT),
                 offset: int = Query(0, ge=0)) -> dict[str, Any]:
        result = request_index().query(prefix=prefix, regulation=regulation, action=action, status=status,
                                       open_only=open, as_of=as_of or _today(), limit=limit, offset=offset)
        return {"as_of": (as_of or _today()).isoformat(), **result}

    @app.get("/api/v1/board")
    def board(as_of: date | None = None, regulation: str | None = None, action: str | None = None,
              status: str | None = None, limit: int = Query(200, ge=1, le=MAX_LIMIT)) -> dict[str, Any]:
        today = as_of or _today()
        result = request_index().query(regulation=regulation, action=action, status=status, open_only=True,
                                       as_of=today, limit=limit)
        return {"as_of": today.isoformat(), "open": result["total"], "by_bucket": result["by_bucket"],
                "items": result["items"]}

    return app


def _today() -> date:
    return datetime.now(UTC).date()


def exercise_status(record: dict[str, Any], store) -> dict[str, Any]:
    """A record in the DRP v0.9.4 exercise-status shape, with our trail and evidence links (keys only)."""
    from privacy_pipeline.index import DRP_STATUS, latest_jobs

    current = {job["job_id"] for job in latest_jobs(record).values()}
    jobs = [{
        "job_id": job["job_id"], "action": job.get("action"), "status": job.get("status"),
        "attempt": job.get("attempt"), "batch_id": job.get("batch_id"), "current": job["job_id"] in current,
        "products": job.get("products") or [], "history": job.get("history") or [],
        "content_key": job.get("content_key"), "content_sha256": job.get("content_sha256"),
        "content_size": job.get("content_size"), "quarantine_reason": job.get("quarantine_reason"),
    } for job in record.get("jobs") or ()]
    pack = f"{URL_PREFIX}/api/v1/requests/{quote(record['request_id'], safe='')}/evidence"
    evidence = [{"kind": "evidence pack (JSON)", "uri": f"{pack}.json"},
                {"kind": "evidence pack (page)", "uri": f"{pack}.html"}]
    for job in jobs:
        if job["content_key"]:
            evidence.append({"kind": "quarantined content" if job["quarantine_reason"] else "access content",
                             "job_id": job["job_id"], "uri": store.uri(job["content_key"]),
                             "sha256": job["content_sha256"], "size": job["content_size"]})
    runs = []
    for run in record.get("runs") or ():
        runs.append({**run, "grid_url": f"/dags/{quote(run['dag_id'], safe='')}/runs/{quote(run['run_id'], safe='')}"})
        if run.get("root"):
            for name in ("report.json", "jobs.jsonl"):
                evidence.append({"kind": f"run {name}", "run_id": run["run_id"],
                                 "uri": store.uri(f"{run['root']}/{name}")})
    return {
        "request_id": record["request_id"],
        "received_at": record.get("received_at"),
        "expected_by": record.get("due_date"),
        "status": DRP_STATUS.get(str(record.get("status")), "open"),
        "reason": record.get("reason") or "none",
        "processing_details": {
            "status": record.get("status"), "regulation": record.get("regulation"),
            "actions": record.get("actions"), "closed_at": record.get("closed_at"), "jobs": jobs,
            "products": sorted({p.get("product") for j in jobs if j["current"] for p in j["products"]} - {None}),
            "batches": record.get("batches") or [], "postponements": record.get("postponements") or [],
            "resubmissions": record.get("resubmissions") or [], "rejections": record.get("rejections") or [],
            "approvals": record.get("approvals") or [],
            "sources": record.get("sources") or [],
        },
        "runs": runs,
        "evidence": evidence,
    }
