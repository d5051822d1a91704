"""The emulator's own control surface under ``/_emulator`` (no auth: bind the emulator to loopback only).

- ``GET /_emulator/health``; ``GET``/``PATCH /_emulator/config`` (partial settings, validated as a whole);
- ``GET /_emulator/stats``: calls per route template and status, jobs per ``userKey|action``, duplicates,
  work orders and the identities in them;
- ``POST /_emulator/reset``: drop jobs, consent, faults, call counts, blob log and clock offset, and go
  back to the launch settings (issued tokens stay valid);
- ``GET /_emulator/clock``, ``POST /_emulator/clock/advance {"seconds": N}`` (then final-transition
  listeners see what ended, see ``transitions.py``);
- ``GET/POST/DELETE /_emulator/faults``; ``GET /_emulator/blob-requests``; ``GET /_emulator/consent``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field, ValidationError

from privacy_emulator.clock import adobe_date
from privacy_emulator.errors import EmulatorHTTPError
from privacy_emulator.settings import EmulatorSettings, FaultSpec
from privacy_emulator.state import EmulatorState, State

router = APIRouter(prefix="/_emulator", tags=["Emulator admin"])


class Health(BaseModel):
    status: str
    blob_base_url: str | None


class Stats(BaseModel):
    calls: dict[str, dict[str, int]] = Field(
        description="Route template → HTTP status (or 'dropped') → count."
    )
    jobs_total: int
    jobs_per_user_action: dict[str, int]
    duplicate_user_actions: int = Field(description="(userKey, action) pairs with more than one job.")
    consent_records: int
    hygiene_jobs_total: int
    workorders_total: int
    workorder_identities_total: int


class ClockState(BaseModel):
    now: float
    now_adobe: str
    offset_seconds: float


class ClockAdvance(BaseModel):
    seconds: float = Field(ge=0)


class FaultCreated(BaseModel):
    id: str


def _invalid(exc: ValidationError) -> EmulatorHTTPError:
    return EmulatorHTTPError(
        400,
        {
            "error_code": "EMULATOR-400",
            "message": "invalid settings",
            "errors": exc.errors(include_url=False, include_context=False),
        },
    )


@router.get("/health", response_model=Health)
async def health(state: State) -> dict:
    return {"status": "ok", "blob_base_url": state.blob_base_url}


@router.get("/config")
async def get_config(state: State) -> dict:
    """The current settings (client secret masked)."""
    return state.settings.public_dict()


@router.patch("/config")
async def patch_config(changes: Annotated[dict[str, Any], Body()], state: State) -> dict:
    """Change some settings at run time; the result is validated as a whole (400 when invalid)."""
    merged = {**state.settings.model_dump(), **changes}
    try:
        new_settings = EmulatorSettings.model_validate(merged)
    except ValidationError as exc:
        raise _invalid(exc) from None
    if "faults" in changes:
        state.faults.clear()
        for spec in new_settings.faults:
            state.faults.add(spec)
    state.faults.seed = new_settings.seed
    state.settings = new_settings
    return new_settings.public_dict()


@router.get("/stats", response_model=Stats)
async def stats(state: State) -> dict:
    per_user_action = state.store.job_counts_per_user_action("privacy")
    workorders, workorder_identities = state.store.workorder_totals()
    return {
        "calls": state.calls.snapshot(),
        "jobs_total": state.store.count_jobs("privacy"),
        "jobs_per_user_action": per_user_action,
        "duplicate_user_actions": sum(1 for count in per_user_action.values() if count > 1),
        "consent_records": len(state.store.consent_records()),
        "hygiene_jobs_total": state.store.count_jobs("hygiene"),
        "workorders_total": workorders,
        "workorder_identities_total": workorder_identities,
    }


@router.get("/consent")
async def consent_records(state: State) -> list[dict]:
    """Recorded consent requests: flag, namespaces and value counts (values are never stored)."""
    return state.store.consent_records()


@router.post("/reset")
async def reset(state: State) -> dict:
    state.reset()
    return {"status": "reset"}


def _clock_state(state: EmulatorState) -> dict:
    now = state.clock.now()
    return {"now": now, "now_adobe": adobe_date(now), "offset_seconds": state.clock.offset_seconds}


@router.get("/clock", response_model=ClockState)
async def get_clock(state: State) -> dict:
    return _clock_state(state)


@router.post("/clock/advance", response_model=ClockState)
async def advance_clock(advance: ClockAdvance, state: State) -> dict:
    """Move the emulator clock forward (persisted); job statuses and token expiry follow."""
    state.clock.advance(advance.seconds)
    state.final_transitions.sweep_safely()
    return _clock_state(state)


@router.get("/faults")
async def list_faults(state: State) -> list[dict]:
    return state.faults.list()


@router.post("/faults", response_model=FaultCreated)
async def add_fault(fault: Annotated[dict[str, Any], Body()], state: State) -> dict:
    try:
        spec = FaultSpec.model_validate(fault)
    except ValidationError as exc:
        raise _invalid(exc) from None
    return {"id": state.faults.add(spec)}


@router.delete("/faults")
async def clear_faults(state: State) -> dict:
    state.faults.clear()
    return {"status": "cleared"}


@router.get("/blob-requests")
async def blob_requests(state: State) -> list[dict]:
    """Requests the legacy blob server received, with their headers (credential values masked)."""
    return list(state.blob_requests)


@router.api_route(
    "/{unknown:path}", methods=["GET", "POST", "PUT", "PATCH", "DELETE"], include_in_schema=False
)
async def unknown_admin_path(unknown: str) -> None:
    """Unknown admin paths answer 404 here (the admin surface has no gateway)."""
    raise EmulatorHTTPError(404, {"error_code": "EMULATOR-404", "message": "no such admin endpoint"})
