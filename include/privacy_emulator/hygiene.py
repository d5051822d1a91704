"""Data Hygiene routes under ``/data/core/hygiene``: the seed's alpha record-delete jobs and the quota.

Reference 11.4 documents the record-delete body as Privacy-style (``users`` with ``action: ["delete"]``,
``type`` standard or custom) answered with ``{requestId, totalRecords, jobs}``. ``companyContexts`` is
optional here (validated when sent), and ``include``/``regulation`` are not used. Hygiene jobs follow the
same clock-driven lifecycle; errors use the ``HYGN-`` prefix.

``x-sandbox-name`` is not demanded here: the seed's alpha page lists only the three gateway headers, and
Adobe's data-hygiene OAS and the quota page's curl send none on ``GET /quota``. When sent on a job it is
kept and shown as ``sandboxName``. It is required on ``/workorder`` (``workorders.py``).

``GET /quota`` counts the identities of work orders and alpha jobs alike: daily per UTC day, monthly
from the 1st (UTC), against ``workorder_daily_identities`` / ``workorder_monthly_identities``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from privacy_emulator.errors import (
    GATEWAY_RESPONSES,
    aep_responses,
    formatting_error,
    gateway_error,
    not_found,
)
from privacy_emulator.gateway import API_DEPENDENCIES
from privacy_emulator.jobs import basic_job, create_jobs, created_response, list_page, utc_day_bounds
from privacy_emulator.listing import ListParams
from privacy_emulator.models import (
    HygieneJobDetail,
    HygieneJobRequest,
    JobListResponse,
    QuotaResponse,
)
from privacy_emulator.privacy import job_creation_route, json_body
from privacy_emulator.state import EmulatorState, State
from privacy_emulator.validation import JobRequestRules, validate_job_request

HYGIENE_RULES = JobRequestRules(
    service="HYGN",
    actions=("delete",),
    types=("standard", "custom"),
    require_include=False,
    require_regulation=False,
    require_company_contexts=False,
)
QUOTA_DESCRIPTIONS = {  # the texts of the data-hygiene OAS example where it has one
    "datasetExpirationQuota": (
        "The number of concurrently active Expiration Dataset Delete operations in all work order requests "
        "for the organization."
    ),
    "dailyConsumerDeleteIdentitiesQuota": (
        "The consumed number of deleted identities in all work order requests for the organization for today."
    ),
    "monthlyConsumerDeleteIdentitiesQuota": (
        "The consumed number of deleted identities in all work order requests for the organization this month."
    ),
    "monthlyUpdatedFieldIdentitiesQuota": "Identities with updated fields this month.",
}
DATASET_EXPIRATION_QUOTA = 20
UPDATED_FIELD_IDENTITIES_QUOTA = 2_000_000


async def require_sandbox(request: Request) -> str:
    """``x-sandbox-name`` where Adobe requires it (``/workorder``, ``/ttl``): missing → 400 ``400003``."""
    sandbox = request.headers.get("x-sandbox-name", "").strip()
    if not sandbox:
        raise gateway_error(400, "400003", "Missing header")
    return sandbox


def optional_sandbox(request: Request) -> str | None:
    return request.headers.get("x-sandbox-name", "").strip() or None


router = APIRouter(prefix="/data/core/hygiene", tags=["Data Hygiene"], dependencies=API_DEPENDENCIES)


@router.post("/jobs", **job_creation_route(HygieneJobRequest))
async def create_hygiene_jobs(request: Request, state: State) -> dict:
    """The seed's alpha record delete: one delete job per user."""
    validated = validate_job_request(
        await json_body(request, "HYGN"),
        request.headers["x-gw-ims-org-id"],
        HYGIENE_RULES,
        state.catalog,
        False,
    )
    request_id, jobs = create_jobs(state, validated, kind="hygiene", sandbox_name=optional_sandbox(request))
    return created_response(request_id, jobs, request_status=False)


@router.get("/jobs", response_model=JobListResponse, responses={**aep_responses(400), **GATEWAY_RESPONSES})
async def list_hygiene_jobs(state: State, params: Annotated[ListParams, Depends()]) -> dict:
    """Record-delete jobs, same query rules and shape as the Privacy Service list."""
    now = state.clock.now()
    query = params.parse(now=now, settings=state.settings, service="HYGN")
    return list_page(state, kind="hygiene", regulation=None, query=query, now=now)


@router.get(
    "/jobs/{jobId}",
    response_model=HygieneJobDetail,
    response_model_exclude_none=True,
    responses={**aep_responses(404), **GATEWAY_RESPONSES},
)
async def get_hygiene_job(jobId: str, state: State) -> dict:
    job = state.store.get_job("hygiene", state.settings.org_id, jobId)
    if job is None:
        raise not_found("No record-delete job with this jobId exists for this organization.", "HYGN")
    detail = basic_job(job, state, state.clock.now())
    detail["userIds"] = job.user_ids
    detail["sandboxName"] = job.sandbox_name
    return detail


@router.get("/quota", response_model=QuotaResponse, responses={**aep_responses(400), **GATEWAY_RESPONSES})
async def get_quota(
    state: State,
    quotaType: Annotated[str | None, Query(description=f"One of {', '.join(QUOTA_DESCRIPTIONS)}.")] = None,
) -> dict:
    """Quota consumption; the identity quotas count identities in work orders and alpha record deletes."""
    if quotaType is not None and quotaType not in QUOTA_DESCRIPTIONS:
        raise formatting_error(
            [{"field": "quotaType", "message": f"must be one of {', '.join(QUOTA_DESCRIPTIONS)}"}], "HYGN"
        )
    names = [quotaType] if quotaType else list(QUOTA_DESCRIPTIONS)
    return {"quotas": [quota_entry(state, name, state.clock.now()) for name in names]}


def quota_entry(state: EmulatorState, name: str, now: float) -> dict:
    """``{name, description, consumed, quota}`` of one quota at ``now``."""
    settings = state.settings
    if name == "dailyConsumerDeleteIdentitiesQuota":
        consumed, quota = identities_deleted(state, *utc_day_bounds(now)), settings.workorder_daily_identities
    elif name == "monthlyConsumerDeleteIdentitiesQuota":
        consumed = identities_deleted(state, month_start(now), utc_day_bounds(now)[1])
        quota = settings.workorder_monthly_identities
    elif name == "datasetExpirationQuota":
        consumed, quota = 0, DATASET_EXPIRATION_QUOTA
    else:
        consumed, quota = 0, UPDATED_FIELD_IDENTITIES_QUOTA
    return {"name": name, "description": QUOTA_DESCRIPTIONS[name], "consumed": consumed, "quota": quota}


def identities_deleted(state: EmulatorState, start: float, end: float) -> int:
    org = state.settings.org_id
    return state.store.count_identities_created(
        "hygiene", org, start, end
    ) + state.store.count_workorder_identities(org, start, end)


def month_start(now: float) -> float:
    moment = datetime.fromtimestamp(now, tz=UTC)
    return datetime(moment.year, moment.month, 1, tzinfo=UTC).timestamp()
