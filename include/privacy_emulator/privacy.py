"""Privacy Service routes under ``/data/core/privacy``: jobs, job detail, content and consent.

Sources where Adobe's documents differ (the seeds and the newest docs win over the OAS file):

- the job detail's link is sent under one key, ``download_url_key`` (default ``downloadUrl``: the live
  content page and the captured real responses; ``downloadURL`` is the jobs guide's example);
- ``adobe_known_bugs`` reproduces the content-endpoint draft's flagged orgs: a link on every job detail,
  before completion and on delete jobs; the link itself still serves only complete access jobs;
- ``GET /jobs/{jobId}/content`` needs ``Accept: application/json`` (Adobe's OAS marks it required and the
  content page sends it, although the answer is a ZIP): without the header the gateway's 400 ``400003``
  "Missing header"; with a header that does not accept JSON, 406 ``PRVCY-4060-406`` (our code).
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from privacy_emulator.content import blob_token, zip_stream
from privacy_emulator.errors import (
    GATEWAY_RESPONSES,
    aep_error,
    aep_responses,
    formatting_error,
    gateway_error,
    not_found,
)
from privacy_emulator.gateway import API_DEPENDENCIES
from privacy_emulator.jobs import basic_job, create_jobs, created_response, list_page
from privacy_emulator.lifecycle import job_status, lifecycle_of, product_responses
from privacy_emulator.listing import ListParams
from privacy_emulator.models import (
    ConsentRequest,
    CreatedJobsResponse,
    JobListResponse,
    PrivacyJobDetail,
    PrivacyJobRequest,
)
from privacy_emulator.openapi import documented_body
from privacy_emulator.state import EmulatorState, State
from privacy_emulator.store import JobRecord
from privacy_emulator.validation import (
    ErrorCollector,
    JobRequestRules,
    resolve_regulation,
    validate_job_request,
)

PRIVACY_RULES = JobRequestRules(
    service="PRVCY",
    actions=("access", "delete"),
    types=("standard", "custom", "integrationCode", "namespaceId", "unregistered", "analytics", "target"),
    require_include=True,
    require_regulation=True,
    require_company_contexts=True,
)

router = APIRouter(prefix="/data/core/privacy", tags=["Privacy Service"], dependencies=API_DEPENDENCIES)


async def json_body(request: Request, service: str = "PRVCY") -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise formatting_error(
            [{"field": "", "message": "the request body is not valid JSON"}], service
        ) from None


def job_creation_route(request_model: type[BaseModel]) -> dict[str, Any]:
    """The route arguments of a ``POST /jobs`` (Privacy Service and hygiene alike): 202 with the
    created jobs, Adobe's 400, the gateway's errors, and ``request_model`` as the documented body."""
    return {
        "status_code": 202,
        "response_model": CreatedJobsResponse,
        "response_model_exclude_none": True,
        "responses": {**aep_responses(400), **GATEWAY_RESPONSES},
        "openapi_extra": documented_body(request_model),
    }


@router.post("/jobs", **job_creation_route(PrivacyJobRequest))
async def create_privacy_jobs(request: Request, state: State) -> dict:
    """Create one access or delete job per (user, action); all products of ``include`` are in each job."""
    body = await json_body(request)
    validated = validate_job_request(
        body,
        request.headers["x-gw-ims-org-id"],
        PRIVACY_RULES,
        state.catalog,
        state.settings.accept_legacy_regulations,
    )
    request_id, jobs = create_jobs(state, validated, kind="privacy")
    return created_response(request_id, jobs, request_status=True)


@router.get(
    "/jobs",
    response_model=JobListResponse,
    responses={**aep_responses(400), **GATEWAY_RESPONSES},
)
async def list_privacy_jobs(
    state: State,
    params: Annotated[ListParams, Depends()],
    regulation: Annotated[str | None, Query(description="Required; one regulation per call.")] = None,
) -> dict:
    """Basic fields of the jobs of one regulation, oldest first, paginated."""
    collector = ErrorCollector()
    regulation = resolve_regulation(
        regulation, state.catalog, state.settings.accept_legacy_regulations, collector, "regulation"
    )
    now = state.clock.now()
    query = params.parse(now=now, settings=state.settings, errors=collector.items)
    return list_page(state, kind="privacy", regulation=regulation, query=query, now=now)


def _find_job(state: EmulatorState, job_id: str) -> JobRecord:
    job = state.store.get_job("privacy", state.settings.org_id, job_id)
    if job is None:
        raise not_found("No job with this jobId exists for this organization.")
    return job


def download_url(state: EmulatorState, request: Request, job: JobRecord) -> str:
    """The job's link: Adobe's authenticated content endpoint, or in legacy mode a blob-style link."""
    if state.settings.legacy_download and state.blob_base_url:
        token = blob_token(state.blob_secret, job.job_id)
        return f"{state.blob_base_url}/blob/{token}/{job.job_id}.zip"
    return str(request.url_for("get_privacy_job_content", jobId=job.job_id))


@router.get(
    "/jobs/{jobId}",
    response_model=PrivacyJobDetail,
    response_model_exclude_none=True,
    responses={**aep_responses(404), **GATEWAY_RESPONSES},
)
async def get_privacy_job(jobId: str, request: Request, state: State) -> dict:
    """Job detail: identities with namespaceId, product responses, and a download link when available."""
    job = _find_job(state, jobId)
    now = state.clock.now()
    detail = basic_job(job, state, now)
    detail["userIds"] = job.user_ids
    detail["productResponses"] = product_responses(job, now, state.settings, state.catalog.products)
    detail["regulation"] = job.regulation
    if state.settings.adobe_known_bugs or (detail["status"] == "complete" and job.action == "access"):
        detail[state.settings.download_url_key] = download_url(state, request, job)
    return detail


async def require_json_accept(request: Request) -> None:
    """``Accept: application/json`` on the content endpoint, as Adobe's OAS requires."""
    accept = request.headers.get("accept")
    if accept is None or not accept.strip():
        raise gateway_error(400, "400003", "Missing header")
    media_types = {part.split(";")[0].strip().lower() for part in accept.split(",")}
    if "application/json" not in media_types:
        raise aep_error(
            406,
            "PRVCY-4060-406",
            "Not acceptable",
            "The content endpoint needs the header Accept: application/json (it answers a ZIP).",
        )


def ensure_downloadable(state: EmulatorState, job: JobRecord) -> None:
    """Content exists only for complete access jobs (Adobe's status code here is unconfirmed; our choice:
    400 for a delete job, 404 while the job is unfinished or ended in error)."""
    if job.action != "access":
        raise aep_error(
            400, "PRVCY-1000-400", "Formatting error", "Content is only available for access jobs."
        )
    status = job_status(job, state.clock.now(), lifecycle_of(state.settings))
    if status != "complete":
        raise not_found(f"No content is available for a job whose status is {status}.")


def zip_response(state: EmulatorState, job: JobRecord) -> StreamingResponse:
    return StreamingResponse(
        zip_stream(job, state.settings.model_copy(), state.catalog),
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{job.job_id}.zip"'},
    )


@router.get(
    "/jobs/{jobId}/content",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}}},
        **aep_responses(400, 404, 406),
        **GATEWAY_RESPONSES,
    },
    dependencies=[Depends(require_json_accept)],
)
async def get_privacy_job_content(jobId: str, state: State) -> StreamingResponse:
    """The access data as a streamed ZIP, one folder per product."""
    job = _find_job(state, jobId)
    ensure_downloadable(state, job)
    return zip_response(state, job)


def _validate_consent(body: Any, state: EmulatorState) -> tuple[bool, list[str], int]:
    errors = ErrorCollector()
    if not isinstance(body, dict):
        raise formatting_error([{"field": "", "message": "the request body must be a JSON object"}])
    opt_out = body.get("optOutOfSale")
    if not isinstance(opt_out, bool):
        errors.add("optOutOfSale", "is required and must be a boolean")
    entities = body.get("entities")
    namespaces: list[str] = []
    value_count = 0
    if not isinstance(entities, list) or not entities:
        errors.add("entities", "is required and must hold at least one {nameSpace, values} item")
        entities = []
    for index, entity in enumerate(entities):
        path = f"entities[{index}]"
        if not isinstance(entity, dict):
            errors.add(path, "must be an object")
            continue
        namespace = entity.get("nameSpace")
        if not isinstance(namespace, str) or state.catalog.namespace_id(namespace) is None:
            errors.add(
                f"{path}.nameSpace",
                f"must be a standard namespace: {', '.join(state.catalog.standard_namespaces)}",
            )
        else:
            namespaces.append(namespace)
        values = entity.get("values")
        if not isinstance(values, list) or not values or not all(isinstance(v, str) and v for v in values):
            errors.add(f"{path}.values", "must be a non-empty array of non-empty strings")
        elif len(set(values)) != len(values):
            errors.add(f"{path}.values", "must not contain duplicates")
        else:
            value_count += len(values)
    for name in ("requestId", "transactionId", "orgId"):
        if name in body and not isinstance(body[name], str):
            errors.add(name, "must be a string")
    if errors.items:
        raise formatting_error(errors.items)
    return opt_out, namespaces, value_count


@router.post(
    "/consent",
    status_code=202,
    response_class=Response,
    responses={202: {"description": "Accepted; empty body."}, **aep_responses(400), **GATEWAY_RESPONSES},
    openapi_extra=documented_body(ConsentRequest),
)
async def record_consent(request: Request, state: State) -> Response:
    """Opt-out-of-sale consent: recorded (count and namespaces only, never values); 202 with no body."""
    opt_out, namespaces, value_count = _validate_consent(await json_body(request), state)
    state.store.insert_consent(state.settings.org_id, state.clock.now(), opt_out, namespaces, value_count)
    return Response(status_code=202)
