"""The FastAPI applications: the Adobe-shaped API (with IMS and admin) and the legacy blob server.

``create_app(settings, db_path)`` builds the main app; ``create_blob_app(state)`` the unauthenticated
blob-style download server of the legacy download mode, which runs as a second uvicorn server in the
same process and records the headers of every request it gets (so tests can prove that no credential
is ever sent there).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from privacy_emulator import admin, events, gateway, hygiene, privacy, workorders
from privacy_emulator.content import verify_blob_token
from privacy_emulator.errors import (
    EmulatorHTTPError,
    aep_error,
    emulator_http_error_handler,
    formatting_error,
    not_found,
)
from privacy_emulator.openapi import install_openapi
from privacy_emulator.settings import EmulatorSettings
from privacy_emulator.state import EmulatorState
from privacy_emulator.store import Store

UNCOUNTED_PREFIXES = ("/_emulator", "/openapi.json", "/docs", "/redoc")
MASKED_HEADERS = frozenset({"authorization", "x-api-key", "cookie", "proxy-authorization"})


async def _request_validation_handler(request: Request, exc: Exception) -> JSONResponse:
    """Malformed query parameters get the same 400 Formatting error as bodies (FastAPI would send 422)."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        {
            "field": ".".join(str(part) for part in error["loc"][1:]) or str(error["loc"][0]),
            "message": error["msg"],
        }
        for error in exc.errors()
    ] or [{"field": "", "message": "invalid request"}]
    service = "HYGN" if request.url.path.startswith("/data/core/hygiene") else "PRVCY"
    error = formatting_error(errors, service)
    return JSONResponse(error.body, status_code=error.status)


ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
ADMIN_PREFIX = "/_emulator"
fallback_router = APIRouter(dependencies=gateway.API_DEPENDENCIES)


def _service(path: str) -> str:
    return "HYGN" if path.startswith("/data/core/hygiene") else "PRVCY"


def _allowed_methods(request: Request) -> list[str]:
    """Methods of the routes whose path matches (a partial match: the path fits, the method does not)."""
    allowed: set[str] = set()
    for route in request.app.routes:
        if getattr(route, "path", None) == "/{unknown_path:path}":
            continue
        match, _ = route.matches({**request.scope, "method": "__NONE__"})
        if match is Match.PARTIAL:
            allowed |= set(getattr(route, "methods", None) or ())
    return sorted(allowed)


@fallback_router.api_route("/{unknown_path:path}", methods=ALL_METHODS, include_in_schema=False)
async def unknown_path(unknown_path: str, request: Request) -> None:
    """Adobe's gateway checks every path first; then 405 for a known path's other method, else 404.

    Bodies are AEP problems like the emulator's other 404s (``PRVCY-``/``HYGN-`` by path prefix), never
    FastAPI's ``{"detail": "Not Found"}``."""
    service = _service(request.url.path)
    allowed = _allowed_methods(request)
    if allowed:
        error = aep_error(
            405, f"{service}-4050-405", "Method not allowed", "This path does not accept the method."
        )
        error.headers["Allow"] = ", ".join(allowed)
        raise error
    raise not_found("No such resource.", service)


async def _starlette_http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Any HTTP error raised by the framework itself still gets an Adobe-shaped body."""
    assert isinstance(exc, StarletteHTTPException)
    service = _service(request.url.path)
    body = aep_error(exc.status_code, f"{service}-{exc.status_code}", "Error", str(exc.detail)).body
    return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))


class CallRecorder:
    """Outermost ASGI layer: counts calls per route template and status, and performs dropped responses.

    A "drop_after_commit" fault marks the request scope; when the app then starts its response, the TCP
    connection is aborted instead, so the client sees a dropped connection after the work was committed.
    """

    def __init__(self, app: FastAPI, state: EmulatorState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        transport = getattr(getattr(send, "__self__", None), "transport", None)
        outcome: dict[str, Any] = {"status": 500}

        async def guarded_send(message: dict) -> None:
            if scope.get(gateway.DROP_SCOPE_KEY):
                if outcome.get("status") != "dropped":
                    outcome["status"] = "dropped"
                    if transport is None:
                        raise ConnectionAbortedError("cannot drop: no transport to abort")
                    transport.abort()
                    await asyncio.sleep(0)
                return
            if message["type"] == "http.response.start":
                outcome["status"] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, guarded_send)
        finally:
            path = scope.get("path", "")
            if not path.startswith(UNCOUNTED_PREFIXES):
                route = scope.get("route")
                self.state.calls.record(
                    f"{scope['method']} {getattr(route, 'path', 'unmatched')}", outcome["status"]
                )


def _base_app(title: str, state: EmulatorState) -> FastAPI:
    app = FastAPI(title=title, version="1.0.0")
    app.state.emulator = state
    app.add_exception_handler(EmulatorHTTPError, emulator_http_error_handler)
    app.add_exception_handler(RequestValidationError, _request_validation_handler)
    return app


def build_state(
    settings: EmulatorSettings, db_path: Path | str, blob_base_url: str | None = None
) -> EmulatorState:
    return EmulatorState(
        settings=settings,
        store=Store(db_path),
        launch_settings=settings.model_copy(deep=True),
        blob_base_url=blob_base_url,
    )


def create_app(
    settings: EmulatorSettings, db_path: Path | str = ":memory:", blob_base_url: str | None = None
) -> Any:
    """The emulator's main ASGI app (Adobe-shaped API, IMS, admin), wrapped in the call recorder."""
    state = build_state(settings, db_path, blob_base_url)
    return create_app_for_state(state)


def create_app_for_state(state: EmulatorState) -> Any:
    app = _base_app("Adobe Privacy Service emulator", state)
    app.add_exception_handler(StarletteHTTPException, _starlette_http_error_handler)
    app.description = (
        "A local stand-in for Adobe Experience Platform Privacy Service, Data Hygiene record delete and "
        "IMS OAuth server-to-server tokens, with fault injection and a clock under /_emulator."
    )
    app.include_router(gateway.ims_router)
    app.include_router(privacy.router)
    app.include_router(workorders.router)
    app.include_router(hygiene.router)
    app.include_router(events.router)  # before admin: its catch-all would answer /_emulator/events/*
    app.include_router(admin.router)
    app.include_router(fallback_router)
    install_openapi(app)
    return CallRecorder(app, state)


def create_blob_app(state: EmulatorState) -> FastAPI:
    """The legacy download host: ``GET /blob/{token}/{jobId}.zip`` with no authentication at all."""
    app = _base_app("Privacy emulator blob host", state)

    @app.get("/blob/{token}/{file_name}")
    async def download_blob(token: str, file_name: str, request: Request) -> Any:
        state.record_blob_request(
            {
                "path": "/blob/{token}/" + file_name,
                "headers": {
                    name: ("***" if name in MASKED_HEADERS else value)
                    for name, value in request.headers.items()
                },
            }
        )
        job_id = file_name.removesuffix(".zip")
        job = state.store.get_job("privacy", state.settings.org_id, job_id)
        if (
            job is None
            or not file_name.endswith(".zip")
            or not verify_blob_token(state.blob_secret, job_id, token)
        ):
            return JSONResponse(
                {"error": "BlobNotFound", "message": "The specified blob does not exist."}, status_code=404
            )
        privacy.ensure_downloadable(state, job)
        return privacy.zip_response(state, job)

    return app
