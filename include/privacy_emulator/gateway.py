"""IMS token issuing and the Adobe I/O gateway checks every API call goes through.

Gateway checks, in order, with the documented bodies of reference 1.3:
1. no ``Authorization: Bearer`` → 401 ``403010`` "Oauth token is missing." (Adobe does not state the
   status; we chose 401 so a client treats it as an auth failure);
2. unknown or expired token → 401 ``401013``;
3. no ``x-api-key`` → 403 ``403000``; a key other than the client id → 403 ``403003``;
4. no ``x-gw-ims-org-id`` → 400 ``400003``; a malformed org → 403 ``403027``; a token issued for another
   org → 403 ``403025``;
5. POST/PUT/PATCH without ``Content-Type: application/json`` → 400 "A valid content-type must be specified";
6. with ``gateway_requests_per_minute`` set, the gateway's throttle: past that many API calls in a minute
   of the emulator clock, 429 ``{"error_code":"429050","message":"Too many requests"}`` with
   ``Retry-After`` (seconds to the next minute). The body is the one Adobe's gateway answers for other
   Experience Platform APIs (developer FAQs; ServiceNow KB3006995). Privacy Service's own limits stay
   ``PRVCY-1030-400`` (a fault kind here) and the daily-cap 400 (``jobs.check_daily_cap``).

Every Adobe path goes through these checks first, unknown paths included (``app.unknown_path``): an
unauthenticated caller learns nothing about which routes exist, as with Adobe's gateway.

Tokens are opaque random strings, stored hashed, valid for ``token_ttl_seconds`` on the emulator clock
(so advancing the clock expires them). They are the one thing not drawn from the seed: they are
credentials, and no response, status or outcome depends on their value.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import secrets
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from privacy_emulator.errors import EmulatorHTTPError, ImsError, gateway_error
from privacy_emulator.state import EmulatorState, State
from privacy_emulator.throttle import THROTTLE_BODY

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
DROP_SCOPE_KEY = "privacy_emulator.drop_response"

ims_router = APIRouter(tags=["IMS"])


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_in: int


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _ims_error(status: int, error: str, description: str) -> EmulatorHTTPError:
    return EmulatorHTTPError(status, {"error": error, "error_description": description})


async def _ims_parameters(request: Request) -> dict[str, str]:
    """Form fields, falling back to query parameters (Adobe accepts both, recommends the body)."""
    params = dict(request.query_params)
    if request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        body = (await request.body()).decode("utf-8", errors="replace")
        params.update(parse_qsl(body, keep_blank_values=True))
    return params


@ims_router.post(
    "/ims/token/v3",
    response_model=TokenResponse,
    responses={400: {"model": ImsError}, 401: {"model": ImsError}},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "required": ["grant_type", "client_id", "client_secret", "scope"],
                        "properties": {
                            "grant_type": {"type": "string", "enum": ["client_credentials"]},
                            "client_id": {"type": "string"},
                            "client_secret": {"type": "string"},
                            "scope": {
                                "type": "string",
                                "description": "Comma-separated; any scope is accepted.",
                            },
                        },
                    }
                }
            }
        }
    },
)
async def issue_token(request: Request, state: State) -> TokenResponse:
    """OAuth server-to-server ``client_credentials`` grant."""
    params = await _ims_parameters(request)
    settings = state.settings
    if params.get("grant_type") != "client_credentials":
        raise _ims_error(400, "unsupported_grant_type", "grant_type must be client_credentials")
    if not params.get("client_id") or not params.get("client_secret"):
        raise _ims_error(400, "invalid_request", "client_id and client_secret are required")
    if not params.get("scope"):
        raise _ims_error(400, "invalid_scope", "scope is required")
    if params["client_id"] != settings.client_id or not secrets.compare_digest(
        params["client_secret"], settings.client_secret
    ):
        raise _ims_error(401, "invalid_client", "invalid client_id or client_secret")
    token = secrets.token_urlsafe(48)
    expires_at = state.clock.now() + settings.token_ttl_seconds
    state.store.save_token(hash_token(token), settings.client_id, settings.org_id, expires_at)
    return TokenResponse(access_token=token, expires_in=settings.token_ttl_seconds)


def route_key(request: Request) -> str:
    """``"METHOD /template/{param}"`` for the matched route, or the raw path when nothing matched."""
    route = request.scope.get("route")
    return f"{request.method} {getattr(route, 'path', request.url.path)}"


async def apply_faults(request: Request, state: State) -> None:
    """Injected faults fire before the gateway, as a throttling or failing front door would."""
    decision = state.faults.decide(route_key(request))
    if decision.latency_ms:
        await asyncio.sleep(decision.latency_ms / 1000)
    fault = decision.failure
    if fault is None:
        return
    if fault.kind == "429":
        raise EmulatorHTTPError(429, dict(THROTTLE_BODY), {"Retry-After": str(fault.retry_after)})
    if fault.kind == "5xx":
        raise EmulatorHTTPError(
            fault.status, {"error_code": str(fault.status), "message": "Service unavailable"}
        )
    if fault.kind == "1030":
        raise EmulatorHTTPError(
            400,
            {
                "type": "http://ns.adobe.com/aep/errors/PRVCY-1030-400",
                "title": "Document rate limit exceeded",
                "status": 400,
                "error_code": "PRVCY-1030-400",
                "detail": "Document rate limit exceeded. Lower the submission rate and retry.",
            },
        )
    if fault.kind == "drop_after_commit":
        request.scope[DROP_SCOPE_KEY] = True


def bearer_and_api_key(request: Request, state: EmulatorState) -> tuple[dict[str, Any], str]:
    """The checks every Adobe gateway makes first: a live bearer token, then an API key (its stored
    token record and the key as sent). Adobe's codes: 403010 / 401013 / 403000."""
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if not authorization:
        raise gateway_error(401, "403010", "Oauth token is missing.")
    record = state.store.find_token(hash_token(token.strip())) if scheme.lower() == "bearer" else None
    if record is None or record["expires_at"] <= state.clock.now():
        raise gateway_error(401, "401013", "Oauth token is not valid")
    api_key = request.headers.get("x-api-key")
    if not api_key:
        raise gateway_error(403, "403000", "Api Key is required")
    return record, api_key


async def check_gateway(request: Request, state: State) -> None:
    settings = state.settings
    record, api_key = bearer_and_api_key(request, state)
    if api_key != settings.effective_api_key:
        raise gateway_error(403, "403003", "Api Key is invalid")
    org_id = request.headers.get("x-gw-ims-org-id")
    if not org_id:
        raise gateway_error(400, "400003", "Missing header")
    if not org_id.endswith("@AdobeOrg"):
        raise gateway_error(403, "403027", "User region is missing")
    if org_id != record["org_id"]:
        raise gateway_error(403, "403025", "Profile is not valid")
    if request.method in BODY_METHODS:
        media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if media_type != "application/json":
            raise EmulatorHTTPError(
                400,
                {
                    "type": "/placeholder/type/uri",
                    "status": 400,
                    "title": "BadRequestError",
                    "detail": "A valid content-type must be specified",
                },
            )


async def throttle(state: State) -> None:
    limit = state.settings.gateway_requests_per_minute
    if not limit:
        return
    wait = state.throttle.admit(state.clock.now(), limit)
    if wait is not None:
        raise EmulatorHTTPError(429, dict(THROTTLE_BODY), {"Retry-After": str(max(1, math.ceil(wait)))})


async def sweep_final_transitions(state: State) -> None:
    """Let final-transition listeners see what ended since the last call (only while one is subscribed)."""
    if state.final_transitions.has_listeners:
        state.final_transitions.sweep_safely()


API_DEPENDENCIES = [
    Depends(apply_faults),
    Depends(check_gateway),
    Depends(throttle),
    Depends(sweep_final_transitions),
]
