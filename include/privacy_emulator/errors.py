"""Error bodies: the gateway's documented ones (reference 1.3) and AEP-style problem bodies.

Adobe publishes no example 400 body for Privacy Service. We answer in the AEP problem style used by
other Platform services (``type``/``title``/``status``) plus ``error_code`` (the stable code clients key
on) and ``errors[]`` naming each bad field with its index. Bodies never echo identity values.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

AEP_ERROR_TYPE = "http://ns.adobe.com/aep/errors/"


class FieldError(BaseModel):
    field: str
    message: str


class AepError(BaseModel):
    """AEP-style problem body (our choice where Adobe shows none)."""

    type: str
    title: str
    status: int
    error_code: str
    detail: str
    errors: list[FieldError] = []


class GatewayError(BaseModel):
    """The Adobe I/O gateway's error shape (reference 1.3)."""

    error_code: str
    message: str


class ContentTypeError(BaseModel):
    """The gateway's body for a missing or wrong Content-Type (reference 1.3)."""

    type: str
    status: int
    title: str
    detail: str


class ImsError(BaseModel):
    """OAuth-style IMS error (the exact Adobe body is unconfirmed)."""

    error: str
    error_description: str


class EmulatorHTTPError(Exception):
    """Raised anywhere in a request to answer with ``body`` (and ``headers``) at ``status``."""

    def __init__(
        self, status: int, body: dict[str, Any] | None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def aep_error(
    status: int, error_code: str, title: str, detail: str, errors: list[dict[str, str]] | None = None
) -> EmulatorHTTPError:
    body = {
        "type": AEP_ERROR_TYPE + error_code,
        "title": title,
        "status": status,
        "error_code": error_code,
        "detail": detail,
    }
    if errors is not None:
        body["errors"] = errors
    return EmulatorHTTPError(status, body)


def formatting_error(errors: list[dict[str, str]], service: str = "PRVCY") -> EmulatorHTTPError:
    """400 ``<service>-1000-400`` "Formatting error" naming every bad field; detail is the first one."""
    first = errors[0]
    detail = f"{first['field']}: {first['message']}" if first["field"] else first["message"]
    return aep_error(400, f"{service}-1000-400", "Formatting error", detail, errors)


def not_found(detail: str, service: str = "PRVCY") -> EmulatorHTTPError:
    return aep_error(404, f"{service}-4040-404", "Not found", detail)


def gateway_error(status: int, error_code: str, message: str) -> EmulatorHTTPError:
    return EmulatorHTTPError(status, {"error_code": error_code, "message": message})


async def emulator_http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EmulatorHTTPError)
    return JSONResponse(exc.body, status_code=exc.status, headers=exc.headers)


def aep_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for AEP-style errors (a 400 may also come from the gateway)."""
    return {
        status: {"model": AepError | GatewayError | ContentTypeError if status == 400 else AepError}
        for status in statuses
    }


GATEWAY_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": GatewayError, "description": "Missing, expired or invalid token (403010 / 401013)."},
    403: {"model": GatewayError, "description": "API key missing/invalid, or token not for this org."},
    429: {
        "model": GatewayError,
        "description": "Injected throttling fault.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
    },
    "5XX": {"model": GatewayError, "description": "Injected server fault."},
}
