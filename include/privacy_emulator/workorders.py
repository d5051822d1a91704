"""Data Lifecycle record-delete work orders: ``/data/core/hygiene/workorder`` (Adobe's GA Data Hygiene API).

Follows ``help/hygiene/api/workorder.md`` (the newest docs, via the reference's section 5 and 11.3) over the
draft data-hygiene OAS where they differ:

The data-hygiene OAS is a draft (editor questions inside; its GET example id is ``WO-…`` and it lists no
``x-sandbox-name`` on ``GET /workorder/{id}``); the docs and the 2026 facts win there. Its quota example
gives the quota descriptions.

- ``POST /workorder`` ``{displayName, description, action, datasetId, namespacesIdentities: [{namespace:
  {code}, IDs: [...]}]}`` answers **200** with ``workorderId`` ``DI-<uuid>``, ``bundleId`` ``BN-<uuid>``,
  ``action: "identity-delete"`` (Adobe documents the mismatch with the request's ``delete_identity``; the
  newest page's spelling ``delete-identity`` is accepted too), ``status: "received"``, ISO-8601 ``Z``
  timestamps. ``operationCount`` is the number of namespace entries (our reading of Adobe's ``1``);
  ``targetServices`` is always ``profile, datalake, identity``. The emulator knows no datasets:
  ``datasetId`` must be ``ALL`` or a 24-hex Platform id, and ``datasetName`` echoes it. ``displayName`` is
  required (the stricter reading; our client puts its batch id there). The older ``identities`` body is
  refused with a message naming ``namespacesIdentities``. No identity value is stored: only counts.
- Limits: at most ``workorder_max_identities`` (100,000) identities an order, and the day's and month's
  identities (``GET /quota``) within ``workorder_daily_identities`` / ``workorder_monthly_identities``.
- Statuses on the emulator clock: received → validated → submitted → ingested, a quarter of
  ``workorder_complete_after_seconds`` (stretched by the seeded jitter) each, then completed, or failed for
  a seeded ``workorder_failure_rate`` share. ``GET /workorder/{id}`` adds ``productStatusDetails`` from
  ``submitted`` on (``waiting``, then ``success``; one seeded ``failure`` in a failed order).
- ``PUT /workorder/{id}`` takes ``{name, description}`` (the docs' ``name``; the OAS's ``displayName`` is
  accepted as the same field) and answers the updated order.
- ``GET /workorder``: ``type`` (only ``identity-delete`` exists here; another type lists nothing),
  ``status`` (comma-separated, case-sensitive), ``fromDate``+``toDate`` (together), ``filterDate`` (with
  both, the filters add up as on ``/jobs``), ``page`` (0-based), ``limit`` (1-100, default 25), ``search``
  (case-insensitive, over displayName and description), ``displayName`` (the whole name, case-insensitive
as the OAS's parameter says), ``workorderId`` (exact),
  ``orderBy`` (``createdAt`` or ``displayName``, ``+``/``-``; default ``+createdAt``, our choice: stable
  while orders are added), ``sandboxName`` (``*`` = every sandbox; default the header's) →
  ``{results, total, count, _links: {next, page}}``. The ``_links`` hrefs omit the API's base path exactly
  as Adobe's example does (``https://platform.adobe.io/workorder?page=1&limit=2``): a client must build
  page URLs itself, here as on Adobe.
- Every call needs ``x-sandbox-name`` (400 ``400003`` "Missing header"); an order belongs to its sandbox.
  Errors are Adobe's ``{error_code, message}``: ``"400 BAD REQUEST"`` (the PUT example's code) naming the
  field or the quota, ``"404 NOT FOUND"`` for an unknown id.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from privacy_emulator.errors import GATEWAY_RESPONSES, EmulatorHTTPError
from privacy_emulator.gateway import API_DEPENDENCIES
from privacy_emulator.hygiene import quota_entry, require_sandbox
from privacy_emulator.jobs import technical_account
from privacy_emulator.lifecycle import job_draws, seeded_uuid
from privacy_emulator.listing import blank_is_absent
from privacy_emulator.models import WorkOrderRequest, WorkOrderUpdate
from privacy_emulator.openapi import documented_body
from privacy_emulator.privacy import json_body
from privacy_emulator.settings import DAY
from privacy_emulator.state import EmulatorState, State
from privacy_emulator.transitions import workorder_timeline
from privacy_emulator.workorder_store import (
    WORKORDER_STAGES,
    WORKORDER_STATUSES,
    WorkOrderQuery,
    WorkOrderRecord,
    WorkOrderTimeline,
)

REQUEST_ACTIONS = ("delete_identity", "delete-identity")
TARGET_SERVICES = ("profile", "datalake", "identity")
PRODUCT_NAMES = {"profile": "Profile Service", "datalake": "Data Management", "identity": "Identity Service"}
DATASET_ID = re.compile(r"^[0-9a-f]{24}$")
MAX_TEXT = 1024
MAX_MESSAGES = 10
DEFAULT_LIMIT, MAX_LIMIT = 25, 100
ORDER_COLUMNS = {"createdAt": "created_at", "displayName": "display_name"}
END_OF_TIME = 1e18

router = APIRouter(
    prefix="/data/core/hygiene",
    tags=["Data Lifecycle work orders"],
    dependencies=[*API_DEPENDENCIES, Depends(require_sandbox)],
)
RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"description": '{"error_code": "400 BAD REQUEST", "message": ...} or a gateway error.'},
    404: {"description": '{"error_code": "404 NOT FOUND", "message": ...}'},
    **GATEWAY_RESPONSES,
}


def bad_request(messages: list[str]) -> EmulatorHTTPError:
    return EmulatorHTTPError(
        400, {"error_code": "400 BAD REQUEST", "message": "; ".join(messages[:MAX_MESSAGES])}
    )


def iso(epoch_seconds: float) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, as Adobe's work-order examples."""
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# -- lifecycle --------------------------------------------------------------------------------------
def stage_at(order: WorkOrderRecord, timeline: WorkOrderTimeline, quarter: int) -> float:
    return order.created_at + timeline.complete_after * order.stretch * quarter / 4


def workorder_status(order: WorkOrderRecord, now: float, timeline: WorkOrderTimeline) -> str:
    """Must agree with ``workorder_store.WORKORDER_STATUS_SQL``."""
    for quarter, stage in enumerate(WORKORDER_STAGES, start=1):
        if now < stage_at(order, timeline, quarter):
            return stage
    return "failed" if order.outcome_draw < timeline.failure_rate else "completed"


def _status_since(order: WorkOrderRecord, status: str, timeline: WorkOrderTimeline) -> float:
    if status in WORKORDER_STAGES:
        return stage_at(order, timeline, WORKORDER_STAGES.index(status))
    return stage_at(order, timeline, 4)


def render(order: WorkOrderRecord, now: float, timeline: WorkOrderTimeline, *, details: bool) -> dict:
    status = workorder_status(order, now, timeline)
    body = {
        "workorderId": order.workorder_id,
        "orgId": order.org_id,
        "bundleId": order.bundle_id,
        "action": "identity-delete",
        "createdAt": iso(order.created_at),
        "updatedAt": iso(max(order.edited_at or 0.0, _status_since(order, status, timeline))),
        "operationCount": len(order.namespaces),
        "targetServices": list(order.target_services),
        "status": status,
        "createdBy": order.created_by,
        "datasetId": order.dataset_id,
        "datasetName": order.dataset_id,
        "displayName": order.display_name,
        "description": order.description,
    }
    if details and status not in ("received", "validated"):
        body["productStatusDetails"] = _product_status_details(order, status, timeline)
    return body


def _product_status_details(order: WorkOrderRecord, status: str, timeline: WorkOrderTimeline) -> list[dict]:
    failing = None
    if status == "failed":  # outcome_draw < failure_rate: rescaled, it is a seeded draw in [0, 1)
        share = order.outcome_draw / timeline.failure_rate
        failing = order.target_services[
            min(int(share * len(order.target_services)), len(order.target_services) - 1)
        ]
    outcome = {"completed": "success", "failed": "success"}.get(status, "waiting")
    return [
        {
            "productName": PRODUCT_NAMES.get(service, service),
            "productStatus": "failure" if service == failing else outcome,
            "createdAt": iso(stage_at(order, timeline, 2)),
        }
        for service in order.target_services
    ]


# -- create -----------------------------------------------------------------------------------------
def _text(body: dict, name: str, problems: list[str], *, required: bool) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value.strip()) or len(value) > MAX_TEXT:
        problems.append(
            f"{name}: must be a{' non-empty' if required else ''} string of at most {MAX_TEXT} characters"
        )
        return ""
    return value


def _namespaces(raw: Any, problems: list[str]) -> list[dict]:
    if not isinstance(raw, list) or not raw:
        problems.append("namespacesIdentities: is required and must hold at least one {namespace, IDs} item")
        return []
    namespaces = []
    for index, item in enumerate(raw):
        path = f"namespacesIdentities[{index}]"
        namespace = item.get("namespace") if isinstance(item, dict) else None
        code = namespace.get("code") if isinstance(namespace, dict) else None
        ids = item.get("IDs") if isinstance(item, dict) else None
        if not isinstance(code, str) or not code.strip() or len(code) > 256:
            problems.append(f"{path}.namespace.code: is required and must be a non-empty string")
        elif not isinstance(ids, list) or not ids or not all(isinstance(v, str) and v.strip() for v in ids):
            problems.append(f"{path}.IDs: must be a non-empty array of non-empty strings")
        else:
            namespaces.append({"code": code, "count": len(ids)})
    return namespaces


def validate_workorder(body: Any) -> tuple[str, str, str, list[dict]]:
    """(displayName, description, datasetId, namespaces with counts); raises 400 naming each bad field."""
    if not isinstance(body, dict):
        raise bad_request(["the request body must be a JSON object"])
    problems: list[str] = []
    namespaces: list[dict] = []
    display_name = _text(body, "displayName", problems, required=True)
    description = _text(body, "description", problems, required=False)
    if body.get("action") not in REQUEST_ACTIONS:
        problems.append(f"action: must be {REQUEST_ACTIONS[0]}")
    dataset_id = body.get("datasetId")
    if not isinstance(dataset_id, str) or not (dataset_id == "ALL" or DATASET_ID.match(dataset_id)):
        problems.append("datasetId: must be ALL or a dataset id (24 hexadecimal characters)")
    if "namespacesIdentities" not in body and "identities" in body:
        problems.append("namespacesIdentities: is required (the older identities array is not accepted)")
    else:
        namespaces = _namespaces(body.get("namespacesIdentities"), problems)
    if problems:
        raise bad_request(problems)
    return display_name, description, str(dataset_id), namespaces


def check_identity_limits(state: EmulatorState, identities: int, now: float) -> None:
    settings = state.settings
    if identities > settings.workorder_max_identities:
        raise bad_request(
            [
                f"namespacesIdentities: holds {identities} identities; at most "
                f"{settings.workorder_max_identities} are allowed in one work order"
            ]
        )
    for name in ("dailyConsumerDeleteIdentitiesQuota", "monthlyConsumerDeleteIdentitiesQuota"):
        quota = quota_entry(state, name, now)
        if quota["consumed"] + identities > quota["quota"]:
            raise bad_request(
                [
                    f"quota exceeded: {name} has {quota['quota'] - quota['consumed']} identities left "
                    f"of {quota['quota']}; this work order holds {identities}"
                ]
            )


@router.post("/workorder", responses=RESPONSES, openapi_extra=documented_body(WorkOrderRequest))
async def create_workorder(request: Request, state: State) -> dict:
    """Create a record-delete work order (200, status ``received``)."""
    display_name, description, dataset_id, namespaces = validate_workorder(await json_body(request, "HYGN"))
    now = state.clock.now()
    identities = sum(item["count"] for item in namespaces)
    check_identity_limits(state, identities, now)
    settings = state.settings
    number = str(state.store.reserve_sequence("workorder", 1))
    workorder_id = "DI-" + seeded_uuid(settings.seed, "workorder", number)
    stretch, outcome_draw = job_draws(settings.seed, workorder_id, settings.jitter_ratio)
    order = WorkOrderRecord(
        workorder_id=workorder_id,
        bundle_id="BN-" + seeded_uuid(settings.seed, "bundle", number),
        org_id=settings.org_id,
        sandbox_name=await require_sandbox(request),
        dataset_id=dataset_id,
        display_name=display_name,
        description=description,
        created_by=technical_account(settings.client_id),
        created_at=now,
        edited_at=None,
        identity_count=identities,
        namespaces=namespaces,
        target_services=list(TARGET_SERVICES),
        stretch=stretch,
        outcome_draw=outcome_draw,
    )
    state.store.insert_workorder(order)
    return render(order, now, workorder_timeline(state), details=False)


def _find(state: EmulatorState, sandbox: str, workorder_id: str) -> WorkOrderRecord:
    order = state.store.get_workorder(state.settings.org_id, sandbox, workorder_id)
    if order is None:
        raise EmulatorHTTPError(
            404,
            {"error_code": "404 NOT FOUND", "message": "No work order with this id exists in this sandbox."},
        )
    return order


@router.get("/workorder/{workorderId}", responses=RESPONSES)
async def get_workorder(
    workorderId: str, sandbox: Annotated[str, Depends(require_sandbox)], state: State
) -> dict:
    """One work order, with ``productStatusDetails`` once it has been dispatched."""
    return render(
        _find(state, sandbox, workorderId), state.clock.now(), workorder_timeline(state), details=True
    )


@router.put("/workorder/{workorderId}", responses=RESPONSES, openapi_extra=documented_body(WorkOrderUpdate))
async def update_workorder(
    workorderId: str, request: Request, sandbox: Annotated[str, Depends(require_sandbox)], state: State
) -> dict:
    """Rename or re-describe a work order: ``{name, description}``."""
    body = await json_body(request, "HYGN")
    order = _find(state, sandbox, workorderId)
    if not isinstance(body, dict):
        raise bad_request(["the request body must be a JSON object"])
    problems: list[str] = []
    name_field = "name" if "name" in body else "displayName"
    name = _text(body, name_field, problems, required=True) if name_field in body else None
    description = _text(body, "description", problems, required=False) if "description" in body else None
    if name is None and description is None and not problems:
        problems.append("name: give name or description")
    if problems:
        raise bad_request(problems)
    now = state.clock.now()
    state.store.edit_workorder(order.workorder_id, name, description, now)
    return render(_find(state, sandbox, workorderId), now, workorder_timeline(state), details=True)


# -- list -------------------------------------------------------------------------------------------
def _parse_date(name: str, value: str, problems: list[str]) -> float | None:
    try:
        if len(value) == 10:
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    except ValueError:
        problems.append(f"{name}: must be a date (YYYY-MM-DD) or an ISO-8601 time")
        return None


def _created_window(
    from_date: str | None, to_date: str | None, filter_date: str | None, problems: list[str]
) -> tuple[float, float]:
    start, end = 0.0, END_OF_TIME
    if (from_date is None) != (to_date is None):
        problems.append(f"{'fromDate' if from_date is None else 'toDate'}: fromDate and toDate go together")
    elif from_date is not None and to_date is not None:
        low, high = _parse_date("fromDate", from_date, problems), _parse_date("toDate", to_date, problems)
        if low is not None and high is not None:
            start, end = low, high + (DAY if len(to_date) == 10 else 0.001)
    if filter_date is not None:
        day = _parse_date("filterDate", filter_date[:10], problems)
        if day is not None:
            start, end = max(start, day), min(end, day + DAY)
    return start, max(start, end)


@router.get("/workorder", responses=RESPONSES)
async def list_workorders(
    request: Request,
    sandbox: Annotated[str, Depends(require_sandbox)],
    state: State,
    type: Annotated[str | None, Query(description="identity-delete")] = None,  # noqa: A002
    status: Annotated[str | None, Query(description="Comma-separated, case-sensitive.")] = None,
    fromDate: Annotated[str | None, Query()] = None,
    toDate: Annotated[str | None, Query()] = None,
    filterDate: Annotated[str | None, Query()] = None,
    page: Annotated[int, Query(description="0-based.")] = 0,
    limit: Annotated[int, Query(description="1 to 100.")] = DEFAULT_LIMIT,
    search: Annotated[str | None, Query()] = None,
    displayName: Annotated[str | None, Query(description="The whole display name, case-insensitive.")] = None,
    workorderId: Annotated[str | None, Query()] = None,
    orderBy: Annotated[str | None, Query(description="[+|-]createdAt or [+|-]displayName.")] = None,
    sandboxName: Annotated[str | None, Query(description="* for every sandbox.")] = None,
) -> dict:
    """Work orders of the sandbox, one page: ``{results, total, count, _links}``."""
    problems: list[str] = []
    statuses = tuple(part.strip() for part in (blank_is_absent(status) or "").split(",") if part.strip())
    problems += [
        f"status: '{s}' is not one of {', '.join(WORKORDER_STATUSES)}"
        for s in statuses
        if s not in WORKORDER_STATUSES
    ][:1]
    if page < 0:
        problems.append("page: must be >= 0")
    if not 1 <= limit <= MAX_LIMIT:
        problems.append(f"limit: must be between 1 and {MAX_LIMIT}")
    order_by = blank_is_absent(orderBy) or "+createdAt"
    column = ORDER_COLUMNS.get(order_by.lstrip("+- "))
    if column is None:
        problems.append(f"orderBy: must be [+|-] followed by one of {', '.join(ORDER_COLUMNS)}")
    created_from, created_to = _created_window(
        blank_is_absent(fromDate), blank_is_absent(toDate), blank_is_absent(filterDate), problems
    )
    if problems:
        raise bad_request(problems)
    query = WorkOrderQuery(
        sandbox_name=None if sandboxName == "*" else (blank_is_absent(sandboxName) or sandbox),
        statuses=statuses,
        created_from=created_from,
        created_to=created_to,
        search=blank_is_absent(search),
        order_column=column or "created_at",
        descending=order_by.startswith("-"),
        offset=page * limit,
        limit=limit,
        display_name=blank_is_absent(displayName),
        workorder_id=blank_is_absent(workorderId),
    )
    now = state.clock.now()
    timeline = workorder_timeline(state)
    if blank_is_absent(type) not in (None, "identity-delete"):
        total, orders = 0, []
    else:
        total, orders = state.store.list_workorders(state.settings.org_id, query, now, timeline)
    origin = f"{request.url.scheme}://{request.url.netloc}"
    links: dict = {"page": {"href": f"{origin}/workorder?limit={{limit}}&page={{page}}", "templated": True}}
    if (page + 1) * limit < total:
        links["next"] = {"href": f"{origin}/workorder?page={page + 1}&limit={limit}", "templated": False}
    return {
        "results": [render(order, now, timeline, details=False) for order in orders],
        "total": total,
        "count": len(orders),
        "_links": links,
    }
