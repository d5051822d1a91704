"""Typed errors raised by the Privacy Service hooks.

Callers branch on the class, never on message text. Every error carries only what is safe to log:
HTTP status, Adobe's error code, a scrubbed detail, and caller-chosen user keys. Identity values
(emails, ECIDs, any ``userIDs`` value), tokens and secrets never appear in an error.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from airflow.sdk.exceptions import AirflowException


class SubmittedUser(NamedTuple):
    """The part of a submitted subject that is safe to keep: its caller key and actions."""

    user_key: str
    actions: tuple[str, ...]


class PrivacyServiceError(AirflowException):
    """Base class of every Privacy Service error raised by this provider."""


class PrivacyTerminalError(PrivacyServiceError):
    """The API refused the request (a 4xx other than back-pressure): repeating it cannot help."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        error_code: str | None,
        detail: str | None,
        fields: Sequence[str] = (),
    ):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.detail = detail
        self.fields = tuple(fields)  # the request fields Adobe named as wrong (``errors[].field``)


class PrivacyAuthError(PrivacyTerminalError):
    """IMS refused the credentials, or the gateway refused a freshly issued token."""


class PrivacyTransientError(PrivacyServiceError):
    """A 5xx, a timeout or a connection error: worth repeating for a read.

    ``request_sent`` is False only when the connection could not even be opened, so a write that
    fails this way certainly did not reach Adobe.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        request_sent: bool = True,
    ):
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after
        self.request_sent = request_sent


class PrivacyBackPressureError(PrivacyServiceError):
    """Adobe asked us to slow down: HTTP 429, code 1030-400, or the daily job cap.

    ``retry_after`` is the server's hint in seconds when it gave one. ``daily_limit`` tells the caller
    that waiting seconds will not help: the rest of the work belongs to tomorrow's budget.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        error_code: str | None,
        retry_after: float | None = None,
        daily_limit: bool = False,
    ):
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.retry_after = retry_after
        self.daily_limit = daily_limit


class PrivacyOutcomeUnknownError(PrivacyServiceError):
    """A write (POST) may or may not have been committed: timeout, dropped connection or 5xx.

    The request is never repeated by the hook. ``submitted`` lists the user keys and actions that were
    sent so the caller can reconcile (list jobs by ``userKey``) before deciding to submit again.
    """

    def __init__(self, message: str, *, operation: str, submitted: Sequence[SubmittedUser] = ()):
        super().__init__(message)
        self.operation = operation
        self.submitted = list(submitted)


class UrlRefusedError(PrivacyServiceError):
    """A URL from an answer (download link, redirect, journal link) is malformed, ambiguous or off its host.

    The message says why and names at most the normalised host, never the URL (it may carry tokens).
    """


class DownloadRefusedError(UrlRefusedError):
    """A download URL points at a host that is not allow-listed, uses plain HTTP off loopback, or is
    one a parser could read two ways (userinfo, backslash, control characters, encoded host)."""


class UntrustedIdError(PrivacyServiceError, ValueError):
    """A job or work-order id from Adobe's answer is not in Adobe's id alphabet; it never touches a path."""
