"""What an answer means: redaction, error classification and the read retry policy. No I/O."""

from __future__ import annotations

import functools
import json
import logging
import random
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import tenacity

from adobe_privacy.exceptions import (
    PrivacyAuthError,
    PrivacyBackPressureError,
    PrivacyOutcomeUnknownError,
    PrivacyServiceError,
    PrivacyTerminalError,
    PrivacyTransientError,
    SubmittedUser,
)

BACK_PRESSURE_CODES = ("1030-400", "DAILY-LIMIT", "429050")
_DAILY_LIMIT_PATTERN = re.compile(r"daily\s+(job\s+)?limit", re.IGNORECASE)
_EMAIL_PATTERN = re.compile(r"[^\s@\"'<>]+@[^\s@\"'<>]+\.[A-Za-z]{2,}")
_LONG_NUMBER_PATTERN = re.compile(r"\d{12,}")
_SIZE_WORD = re.compile(r"\bsize\b", re.IGNORECASE)
_DIGIT_SEPARATORS = r"[\s().+/-]*"
_MAX_DETAIL_CHARS = 500
REDACTED = "[redacted]"


# --------------------------------------------------------------------------------------------------
# Redaction
# --------------------------------------------------------------------------------------------------


def identity_values(payload: Mapping[str, Any]) -> frozenset[str]:
    """Every identity value a request body carries, whatever the API's shape.

    Privacy jobs and the alpha hygiene jobs (``users[].userIDs[].value``), consent
    (``entities[].values``), work orders (``namespacesIdentities[].IDs`` and the older
    ``identities[].id``).
    """
    found: set[str] = set()

    def add(value: Any) -> None:
        if isinstance(value, str | int) and str(value).strip():
            found.add(str(value).strip())

    for user in payload.get("users") or ():
        if isinstance(user, Mapping):
            for identity in user.get("userIDs") or user.get("userIds") or ():
                if isinstance(identity, Mapping):
                    add(identity.get("value"))
    for entity in payload.get("entities") or ():
        if isinstance(entity, Mapping):
            for value in entity.get("values") or ():
                add(value.get("value") if isinstance(value, Mapping) else value)
    for group in payload.get("namespacesIdentities") or ():
        if isinstance(group, Mapping):
            for value in group.get("IDs") or ():
                add(value)
    for identity in payload.get("identities") or ():
        if isinstance(identity, Mapping):
            add(identity.get("id"))
    return frozenset(found)


def _redaction_pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    """One pattern for a batch: each value literally (any case), and phone-like values by their digits
    with any separators in between (``+44 20 7946 0958`` also matches ``442079460958``)."""
    alternatives = set()
    for value in values:
        alternatives.add(re.escape(value))
        digits = re.sub(r"\D", "", value)
        if len(digits) >= 7 and len(digits) >= len(value) // 2:
            alternatives.add(_DIGIT_SEPARATORS.join(digits))
    if not alternatives:
        return None
    return re.compile("|".join(sorted(alternatives, key=len, reverse=True)), re.IGNORECASE)


class Redactor:
    """Redacts one request's identity values (by value), emails and long digit runs; cuts to 500 characters.

    Built per error, never cached: the values do not outlive the error handling.
    """

    def __init__(self, identities: Iterable[str] = ()) -> None:
        self._pattern = _redaction_pattern(identities)

    def __call__(self, text: str | None) -> str | None:
        if text is None:
            return None
        if self._pattern is not None:
            text = self._pattern.sub(REDACTED, text)
        text = _EMAIL_PATTERN.sub(REDACTED, text)
        text = _LONG_NUMBER_PATTERN.sub(REDACTED, text)
        return text[:_MAX_DETAIL_CHARS]


def scrub(text: str | None, identities: Iterable[str] = ()) -> str | None:
    """Redact ``identities`` (by value), emails and long digit runs from ``text``; cut to 500 characters."""
    return Redactor(identities)(text)


# --------------------------------------------------------------------------------------------------
# Error classification
# --------------------------------------------------------------------------------------------------


def parse_json_body(raw: bytes | str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return {}
    return body if isinstance(body, dict) else {}


def error_code_of(body: Mapping[str, Any]) -> str | None:
    """Adobe's error code from any of its error shapes (gateway, AEP problem+json, error-chain)."""
    if body.get("error_code"):
        return str(body["error_code"])
    chain = body.get("error-chain")
    if isinstance(chain, list) and chain and isinstance(chain[0], dict) and chain[0].get("errorCode"):
        return str(chain[0]["errorCode"])
    type_uri = body.get("type")
    if isinstance(type_uri, str) and "/errors/" in type_uri:
        return type_uri.rsplit("/", 1)[-1]
    if body.get("error"):  # IMS, OAuth style
        return str(body["error"])
    return None


def error_detail_of(body: Mapping[str, Any], redact: Redactor | None = None) -> str | None:
    redact = redact or Redactor()
    for key in ("detail", "message", "title", "error_description"):
        if body.get(key):
            return redact(str(body[key]))
    return None


def error_fields_of(body: Mapping[str, Any]) -> tuple[str, ...]:
    """The parameter names an error body blames (``errors[].field``, AEP style)."""
    errors = body.get("errors")
    if not isinstance(errors, list):
        return ()
    return tuple(str(item["field"])[:100] for item in errors if isinstance(item, dict) and item.get("field"))


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: either delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


def is_back_pressure(status: int, code: str | None, detail: str | None) -> bool:
    """429 (the gateway's 429050), Adobe's 1030-400 "document rate limit", or the daily cap."""
    if status == 429:
        return True
    if status != 400:
        return False
    if code:
        return any(marker in code.upper() for marker in BACK_PRESSURE_CODES)
    return bool(detail and (_DAILY_LIMIT_PATTERN.search(detail) or "rate limit" in detail.lower()))


def classify_error(
    status: int,
    raw_body: bytes | str | None,
    headers: Mapping[str, str],
    *,
    operation: str,
    identities: Iterable[str] = (),
) -> PrivacyServiceError:
    """Turn a non-2xx response into the matching typed error (the caller decides whether to retry).

    ``identities`` are the identity values of the request that was sent: none of them reaches the
    error's message or detail, however Adobe echoes them.
    """
    body = parse_json_body(raw_body)
    redact = Redactor(identities)
    code = error_code_of(body)
    code = (redact(code) or "")[:100] if code else None
    detail = error_detail_of(body, redact)
    title = redact(str(body["title"])) if body.get("title") else None
    text_for_match = " ".join(str(part) for part in (title, detail) if part)
    retry_after = parse_retry_after(headers.get("Retry-After") or headers.get("retry-after"))
    summary = f"{operation} answered HTTP {status}" + (f" ({code})" if code else "")
    if is_back_pressure(status, code, text_for_match):
        daily = bool(
            (code and "DAILY" in code.upper()) or (not code and _DAILY_LIMIT_PATTERN.search(text_for_match))
        )
        return PrivacyBackPressureError(
            f"{summary}: back-pressure" + (f", retry after {retry_after:g} s" if retry_after else ""),
            status=status,
            error_code=code,
            retry_after=retry_after,
            daily_limit=daily,
        )
    if status >= 500:
        return PrivacyTransientError(
            f"{summary}: {detail or 'server error'}", status=status, retry_after=retry_after
        )
    fields = error_fields_of(body)
    if status in (401, 403):
        return PrivacyAuthError(
            f"{summary}: {detail or 'not authorised'}", status=status, error_code=code, detail=detail
        )
    return PrivacyTerminalError(
        f"{summary}: {detail or 'request refused'}",
        status=status,
        error_code=code,
        detail=detail,
        fields=fields,
    )


def is_expired_token(error: BaseException) -> bool:
    """A 401 from the gateway means our token is no longer accepted: renew it once and resend."""
    return isinstance(error, PrivacyAuthError) and error.status == 401


def refuses_page_size(error: BaseException) -> bool:
    """A 400 that blames the ``size`` parameter (Adobe's OpenAPI file caps it at 100, its guide at 1000)."""
    if not isinstance(error, PrivacyTerminalError) or error.status != 400:
        return False
    if "size" in error.fields:
        return True
    return not error.fields and bool(_SIZE_WORD.search(error.detail or ""))


def ims_error(error: PrivacyServiceError) -> PrivacyServiceError:
    """An IMS failure seen from the API call that needed the token.

    Any 4xx means the credentials or scopes are wrong. A transient failure means the API request was
    never sent, so even a POST may simply be tried again later (it is not "outcome unknown").
    """
    if isinstance(error, PrivacyTransientError):
        return PrivacyTransientError(
            f"IMS token request failed, API request not sent: {error}",
            status=error.status,
            retry_after=error.retry_after,
            request_sent=False,
        )
    if isinstance(error, PrivacyTerminalError) and not isinstance(error, PrivacyAuthError):
        return PrivacyAuthError(
            str(error), status=error.status, error_code=error.error_code, detail=error.detail
        )
    return error


def outcome_unknown(
    error: PrivacyTransientError, operation: str, submitted: list[SubmittedUser], *, recover_by: str
) -> PrivacyServiceError:
    """A failed write: certainly not sent (transient, the caller may resend) or possibly committed."""
    if not error.request_sent:
        return error
    return PrivacyOutcomeUnknownError(
        f"{operation}: {error}. The request may have been committed; it is not sent again. "
        f"{recover_by} before resubmitting.",
        operation=operation,
        submitted=submitted,
    )


# --------------------------------------------------------------------------------------------------
# The read retry policy (one definition, used by tenacity's sync and async loops)
# --------------------------------------------------------------------------------------------------


def is_retryable_read(error: BaseException, *, max_retry_after: float = float("inf")) -> bool:
    """5xx, timeouts, connection errors and 429 are worth repeating for a read; nothing else is.

    A server asking us to wait longer than ``max_retry_after`` is not waited for in a worker: the
    error goes to the caller, which can defer or reschedule instead.
    """
    if isinstance(error, PrivacyBackPressureError):
        if error.status != 429 or error.daily_limit:
            return False
    elif not isinstance(error, PrivacyTransientError):
        return False
    return (error.retry_after or 0.0) <= max_retry_after


class wait_backoff_or_retry_after(tenacity.wait.wait_base):
    """Exponential backoff with full jitter over [half, whole], never shorter than ``Retry-After``."""

    def __init__(self, initial: float, maximum: float, rng: random.Random | None = None):
        self.initial = initial
        self.maximum = maximum
        self.rng = rng or random.Random()

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        backoff = min(self.maximum, self.initial * 2 ** (retry_state.attempt_number - 1))
        wait = self.rng.uniform(backoff / 2, backoff)
        error = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(error, "retry_after", None)
        return max(wait, retry_after or 0.0)


@dataclass(frozen=True)
class ReadRetryPolicy:
    """How reads are retried. Writes (POST) are never retried by the hooks."""

    max_attempts: int = 6
    initial_wait: float = 1.0
    max_wait: float = 60.0
    max_retry_after: float = 300.0

    def tenacity_kwargs(self, sleep: Callable[[float], Any], logger: logging.Logger | Any) -> dict[str, Any]:
        def log_retry(state: tenacity.RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            logger.warning(
                "Attempt %d/%d failed (%s); retrying in %.1f s",
                state.attempt_number,
                self.max_attempts,
                error,
                state.upcoming_sleep,
            )

        return {
            "stop": tenacity.stop_after_attempt(self.max_attempts),
            "wait": wait_backoff_or_retry_after(self.initial_wait, self.max_wait),
            "retry": tenacity.retry_if_exception(
                functools.partial(is_retryable_read, max_retry_after=self.max_retry_after)
            ),
            "sleep": sleep,
            "before_sleep": log_retry,
            "reraise": True,
        }
