"""The Privacy Service wire rules shared by the sync and async hooks. No I/O happens here.

Both transports (``requests`` in :class:`~adobe_privacy.hooks.PrivacyServiceHook`, ``aiohttp`` in
:class:`~adobe_privacy.hooks.PrivacyServiceAsyncHook`) do only the sending; everything that decides
what a response *means* lives here, once: connection settings, headers, the token cache, error
classification, the read retry policy, response normalisation, pagination and job summaries.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import tenacity

from adobe_privacy.exceptions import (
    DownloadRefusedError,
    PrivacyAuthError,
    PrivacyBackPressureError,
    PrivacyServiceError,
    PrivacyTerminalError,
    PrivacyTransientError,
    SubmittedUser,
)

log = logging.getLogger(__name__)

CONN_TYPE = "adobe_privacy_service"
DEFAULT_CONN_ID = "adobe_privacy_default"
DEFAULT_IMS_URL = "https://ims-na1.adobelogin.com"
DEFAULT_SCOPES = "openid,AdobeID,read_organizations,additional_info.projectedProductContext"
DEFAULT_PRIVACY_PATH = "/data/core/privacy"
DEFAULT_HYGIENE_PATH = "/data/core/hygiene"
DEFAULT_TIMEOUT_SECONDS = 60.0  # Adobe's gateway drops requests that run longer than 60 s.
IMS_TOKEN_PATH = "/ims/token/v3"
MAX_PAGE_SIZE = 1000

# Statuses after which a job never changes again. Anything else, including a status Adobe adds
# later, counts as still open: waiting longer is safe, declaring an unknown state done is not.
TERMINAL_STATUSES = frozenset({"complete", "error", "cancelled"})
FAILED_STATUSES = frozenset({"error", "cancelled"})
MISSING_STATUS = "missing"

BACK_PRESSURE_CODES = ("1030-400", "DAILY-LIMIT")
_DAILY_LIMIT_PATTERN = re.compile(r"daily\s+(job\s+)?limit", re.IGNORECASE)
_EMAIL_PATTERN = re.compile(r"[^\s@\"'<>]+@[^\s@\"'<>]+\.[A-Za-z]{2,}")
_LONG_NUMBER_PATTERN = re.compile(r"\d{12,}")
_MAX_DETAIL_CHARS = 500


# --------------------------------------------------------------------------------------------------
# Connection settings
# --------------------------------------------------------------------------------------------------


def is_loopback_host(hostname: str | None) -> bool:
    """Whether ``hostname`` is localhost or a loopback address (127.0.0.0/8, ::1)."""
    if not hostname:
        return False
    if hostname.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname.strip("[]")).is_loopback
    except ValueError:
        return False


def require_secure_url(url: str, *, what: str) -> None:
    """Refuse plain HTTP anywhere but loopback, where our emulator runs."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback_host(parts.hostname)):
        return
    raise PrivacyServiceError(f"{what} must use https (plain http is allowed only on loopback): {url!r}")


def _split_list(value: Any) -> tuple[str, ...]:
    """Accept a JSON list or a comma-separated string (what a UI text field produces)."""
    if value in (None, ""):
        return ()
    if isinstance(value, str):
        return tuple(item.strip() for item in value.split(",") if item.strip())
    return tuple(str(item).strip() for item in value if str(item).strip())


def _extra_value(extra: Mapping[str, Any], name: str, default: Any = None) -> Any:
    """Read an extra field, also under the ``extra__<conn_type>__`` prefix older UIs write."""
    for key in (name, f"extra__{CONN_TYPE}__{name}"):
        if extra.get(key) not in (None, ""):
            return extra[key]
    return default


@dataclass(frozen=True)
class PrivacyConnectionSettings:
    """Everything the hooks need from an ``adobe_privacy_service`` connection, validated once."""

    conn_id: str
    api_base_url: str
    client_id: str
    client_secret: str = field(repr=False)
    org_id: str
    ims_url: str = DEFAULT_IMS_URL
    scopes: str = DEFAULT_SCOPES
    sandbox_name: str | None = None
    download_hosts: tuple[str, ...] = ()
    privacy_path: str = DEFAULT_PRIVACY_PATH
    hygiene_path: str = DEFAULT_HYGIENE_PATH
    timeout: float = DEFAULT_TIMEOUT_SECONDS
    page_base: int | None = None

    @classmethod
    def from_connection(cls, conn: Any) -> PrivacyConnectionSettings:
        """Build from an Airflow ``Connection`` (host = API base URL, login/password = client id/secret)."""
        extra = conn.extra_dejson or {}
        host = (conn.host or "").rstrip("/")
        if not host:
            raise PrivacyServiceError(f"Connection {conn.conn_id!r} has no host (the API base URL).")
        if "://" not in host:
            host = f"https://{host}"
        if conn.port and urlsplit(host).port is None:
            host = f"{host}:{conn.port}"
        org_id = _extra_value(extra, "org_id")
        if not (conn.login and conn.password and org_id):
            raise PrivacyServiceError(
                f"Connection {conn.conn_id!r} needs login (client id), password (client secret) "
                "and extra.org_id."
            )
        page_base = _extra_value(extra, "page_base")
        settings = cls(
            conn_id=conn.conn_id,
            api_base_url=host,
            client_id=conn.login,
            client_secret=conn.password,
            org_id=org_id,
            ims_url=str(_extra_value(extra, "ims_url", DEFAULT_IMS_URL)).rstrip("/"),
            scopes=",".join(_split_list(_extra_value(extra, "scopes", DEFAULT_SCOPES))),
            sandbox_name=_extra_value(extra, "sandbox_name"),
            download_hosts=tuple(h.lower() for h in _split_list(_extra_value(extra, "download_hosts"))),
            privacy_path="/" + str(_extra_value(extra, "privacy_path", DEFAULT_PRIVACY_PATH)).strip("/"),
            hygiene_path="/" + str(_extra_value(extra, "hygiene_path", DEFAULT_HYGIENE_PATH)).strip("/"),
            timeout=float(_extra_value(extra, "timeout", DEFAULT_TIMEOUT_SECONDS)),
            page_base=int(page_base) if page_base is not None else None,
        )
        require_secure_url(settings.api_base_url, what="The API base URL")
        require_secure_url(settings.ims_url, what="The IMS URL")
        return settings

    @property
    def token_url(self) -> str:
        return f"{self.ims_url}{IMS_TOKEN_PATH}"

    @property
    def cache_key(self) -> tuple[str, str, str]:
        return (self.conn_id, self.client_id, self.ims_url)

    @property
    def api_origin(self) -> tuple[str, str]:
        parts = urlsplit(self.api_base_url)
        return parts.scheme, parts.netloc.lower()

    def privacy_url(self, path: str) -> str:
        return f"{self.api_base_url}{self.privacy_path}{path}"

    def hygiene_url(self, path: str) -> str:
        return f"{self.api_base_url}{self.hygiene_path}{path}"

    def token_form(self) -> dict[str, str]:
        return {
            "grant_type": "client_credentials",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "scope": self.scopes,
        }

    def api_headers(self, token: str, *, hygiene: bool = False) -> dict[str, str]:
        """The gateway headers. ``x-sandbox-name`` only where the Data Hygiene API needs it."""
        headers = {
            "Authorization": f"Bearer {token}",
            "x-api-key": self.client_id,
            "x-gw-ims-org-id": self.org_id,
            "Accept": "application/json",
        }
        if hygiene:
            if not self.sandbox_name:
                raise PrivacyServiceError(
                    f"Connection {self.conn_id!r} needs extra.sandbox_name for the Data Hygiene API."
                )
            headers["x-sandbox-name"] = self.sandbox_name
        return headers


# --------------------------------------------------------------------------------------------------
# Download URLs: credentials only ever go to the configured API host
# --------------------------------------------------------------------------------------------------


class DownloadTarget(NamedTuple):
    """Where to fetch a content ZIP from, and whether our credentials may go with the request."""

    url: str
    authenticated: bool


def resolve_download_target(settings: PrivacyConnectionSettings, url: str) -> DownloadTarget:
    """Decide how (and whether) a download URL may be fetched.

    On the API host: with our auth headers. Elsewhere: only if the host is in ``download_hosts``, and
    then with no credentials at all. https is required except on loopback.
    """
    parts = urlsplit(url)
    if (parts.scheme, parts.netloc.lower()) == settings.api_origin:
        return DownloadTarget(url, authenticated=True)
    netloc, hostname = parts.netloc.lower(), (parts.hostname or "").lower()
    allowed = any(entry in (netloc, hostname) for entry in settings.download_hosts)
    if not allowed:
        raise DownloadRefusedError(
            f"Refusing to download from {netloc or url!r}: the host is not in the connection's "
            "download_hosts allow-list."
        )
    try:
        require_secure_url(url, what="A download URL")
    except PrivacyServiceError as err:
        raise DownloadRefusedError(str(err)) from None
    return DownloadTarget(url, authenticated=False)


# --------------------------------------------------------------------------------------------------
# IMS token cache
# --------------------------------------------------------------------------------------------------

RENEW_MARGIN_SECONDS = 300.0


@dataclass(frozen=True)
class AccessToken:
    value: str = field(repr=False)
    expires_at: float
    renew_at: float

    def usable(self, now: float) -> bool:
        return now < self.renew_at


def parse_token_response(body: Mapping[str, Any], *, now: float) -> AccessToken:
    """Read an IMS token answer. Renew ``min(5 min, 10% of the lifetime)`` before it expires."""
    value = body.get("access_token")
    if not value:
        raise PrivacyAuthError(
            "IMS answered without an access_token.", status=200, error_code=None, detail=None
        )
    expires_in = float(body.get("expires_in") or 86399)
    if expires_in > 10**6:
        # The old JWT exchange reported milliseconds (reference 1.4); a day is 86 400 s.
        expires_in /= 1000.0
    margin = min(RENEW_MARGIN_SECONDS, expires_in * 0.1)
    return AccessToken(value=value, expires_at=now + expires_in, renew_at=now + expires_in - margin)


class TokenCache:
    """Process-wide tokens keyed by (conn id, client id, IMS URL); shared by sync and async hooks."""

    def __init__(self) -> None:
        self._tokens: dict[tuple[str, ...], AccessToken] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, ...], now: float) -> AccessToken | None:
        with self._lock:
            token = self._tokens.get(key)
        return token if token is not None and token.usable(now) else None

    def put(self, key: tuple[str, ...], token: AccessToken) -> None:
        with self._lock:
            self._tokens[key] = token

    def invalidate(self, key: tuple[str, ...], value: str | None = None) -> None:
        """Drop the cached token (only if it is still ``value``, so a fresh one is not thrown away)."""
        with self._lock:
            current = self._tokens.get(key)
            if current is not None and (value is None or current.value == value):
                del self._tokens[key]

    def clear(self) -> None:
        with self._lock:
            self._tokens.clear()


TOKEN_CACHE = TokenCache()


# --------------------------------------------------------------------------------------------------
# Error classification
# --------------------------------------------------------------------------------------------------


def scrub(text: str | None) -> str | None:
    """Cut and redact anything that looks like an identity value before it reaches an error or log."""
    if text is None:
        return None
    text = _EMAIL_PATTERN.sub("[redacted]", text)
    text = _LONG_NUMBER_PATTERN.sub("[redacted]", text)
    return text[:_MAX_DETAIL_CHARS]


def parse_json_body(raw: bytes | str | None) -> dict[str, Any]:
    if not raw:
        return {}
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
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


def error_detail_of(body: Mapping[str, Any], fallback: str | None = None) -> str | None:
    for key in ("detail", "message", "title", "error_description"):
        if body.get(key):
            return scrub(str(body[key]))
    return scrub(fallback) if fallback else None


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
    """429, Adobe's 1030-400 "document rate limit", or the daily cap: on the code first, text second."""
    if status == 429:
        return True
    if status != 400:
        return False
    if code:
        return any(marker in code.upper() for marker in BACK_PRESSURE_CODES)
    return bool(detail and (_DAILY_LIMIT_PATTERN.search(detail) or "rate limit" in detail.lower()))


def classify_error(
    status: int, raw_body: bytes | str | None, headers: Mapping[str, str], *, operation: str
) -> PrivacyServiceError:
    """Turn a non-2xx response into the matching typed error (the caller decides whether to retry)."""
    body = parse_json_body(raw_body)
    code = error_code_of(body)
    detail = error_detail_of(body)
    title = body.get("title")
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
    if status in (401, 403):
        return PrivacyAuthError(
            f"{summary}: {detail or 'not authorised'}", status=status, error_code=code, detail=detail
        )
    return PrivacyTerminalError(
        f"{summary}: {detail or 'request refused'}", status=status, error_code=code, detail=detail
    )


def is_expired_token(error: PrivacyServiceError) -> bool:
    """A 401 from the gateway means our token is no longer accepted: renew it once and resend."""
    return isinstance(error, PrivacyAuthError) and error.status == 401


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

    def tenacity_kwargs(self, sleep: Callable[[float], Any], logger: logging.Logger) -> dict[str, Any]:
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


# --------------------------------------------------------------------------------------------------
# Normalisation of Adobe's documented ambiguities
# --------------------------------------------------------------------------------------------------


class CreatedJob(NamedTuple):
    """One job created by ``POST /jobs``: one per (user key, action)."""

    job_id: str
    user_key: str
    action: str


def submitted_users(payload: Mapping[str, Any]) -> list[SubmittedUser]:
    """The keys and actions of a create payload: what an outcome-unknown error may safely carry."""
    users = payload.get("users") or []
    return [
        SubmittedUser(str(u.get("key")), tuple(u.get("action") or ())) for u in users if isinstance(u, dict)
    ]


def parse_created_jobs(body: Mapping[str, Any]) -> list[CreatedJob]:
    """Read a create answer: ``jobs`` (docs) or ``jobDetails`` (OAS schema), one action per job."""
    items = body.get("jobs")
    if items is None:
        items = body.get("jobDetails") or []
    created = []
    for item in items:
        user = (item.get("customer") or {}).get("user") or {}
        actions = user.get("action") or item.get("action") or []
        if isinstance(actions, str):
            actions = [actions]
        user_key = user.get("key", item.get("userKey"))
        for action in actions or [None]:
            created.append(CreatedJob(str(item["jobId"]), str(user_key), str(action)))
    return created


def normalize_job(raw: Mapping[str, Any]) -> dict[str, Any]:
    """One spelling for every field Adobe spells two ways; everything else (and unknown statuses) kept."""
    job = dict(raw)
    download_url = job.pop("downloadURL", None)
    if not job.get("downloadUrl") and download_url:
        job["downloadUrl"] = download_url
    user_ids = job.pop("userIDs", None)
    if "userIds" not in job and user_ids is not None:
        job["userIds"] = user_ids
    if isinstance(job.get("status"), str):
        job["status"] = job["status"].strip().lower()
    return job


def list_items(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The jobs in a list answer: ``jobDetails`` (OAS, scripts) or ``jobs``."""
    for key in ("jobDetails", "jobs", "results"):
        if isinstance(body.get(key), list):
            return body[key]
    return []


def format_list_date(value: date | datetime | str | None) -> str | None:
    """``fromDate``/``toDate`` are ``YYYY-MM-DD`` (read as GMT)."""
    if value is None or isinstance(value, str):
        return value[:10] if isinstance(value, str) else None
    if isinstance(value, datetime) and value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%d")


def list_params(
    *,
    regulation: str | None,
    status: str | None,
    from_date: date | datetime | str | None,
    to_date: date | datetime | str | None,
    page_size: int,
) -> dict[str, Any]:
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size}")
    if (from_date is None) != (to_date is None):
        raise ValueError("from_date and to_date must be given together (Adobe answers 400 otherwise)")
    params: dict[str, Any] = {"size": page_size}
    for name, value in (
        ("regulation", regulation),
        ("status", status),
        ("fromDate", format_list_date(from_date)),
        ("toDate", format_list_date(to_date)),
    ):
        if value is not None:
            params[name] = value
    return params


class ListPager:
    """Walks a list endpoint whatever its page base, yielding each job once.

    Adobe documents 0-based pages, its OpenAPI file says 1, and a 1-based server may refuse page 0.
    Unless the connection names the base, the first request carries no ``page`` at all (the server's
    own first page), then pages 1, 2, ... follow; job ids are de-duplicated, so a 1-based server costs
    one repeated page, never duplicates or a 400. The walk stops on an empty or short page, once
    ``totalRecords`` (read as the total across pages) jobs were seen, or after two pages in a row that
    bring nothing new (a server ignoring ``page``).
    """

    def __init__(self, page_size: int, page_base: int | None = None, max_pages: int = 100_000):
        self.page_size = page_size
        self.page: int | None = page_base
        self.max_pages = max_pages
        self.done = False
        self.calls = 0
        self._seen: set[str] = set()
        self._pages_without_news = 0

    def next_params(self, params: Mapping[str, Any]) -> dict[str, Any] | None:
        """The query of the next page request, or None when the walk is over."""
        if self.done or self.calls >= self.max_pages:
            return None
        return dict(params) if self.page is None else {**params, "page": self.page}

    def accept(self, body: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Record one page's answer and return its jobs not seen before, normalised."""
        self.calls += 1
        items = list_items(body)
        fresh = []
        for item in items:
            job_id = item.get("jobId")
            if job_id in self._seen:
                continue
            self._seen.add(job_id)
            fresh.append(normalize_job(item))
        self._pages_without_news = 0 if fresh else self._pages_without_news + 1
        total = body.get("totalRecords")
        # totalRecords is read as the total across pages only when it says more than this page holds
        # (the OAS reads it as the page's own count); a short page ends the walk unless it says more.
        total_across_pages = isinstance(total, int) and total > len(items)
        reached_total = total_across_pages and len(self._seen) >= total
        short_page = len(items) < self.page_size and not (total_across_pages and len(self._seen) < total)
        if not items or short_page or reached_total or self._pages_without_news >= 2:
            self.done = True
        self.page = 1 if self.page is None else self.page + 1
        return fresh


# --------------------------------------------------------------------------------------------------
# Job summaries (what the trigger and sensor report)
# --------------------------------------------------------------------------------------------------


@dataclass
class JobsSummary:
    """Counts by status over the jobs we wait for. Unknown statuses count as open."""

    counts: dict[str, int] = field(default_factory=dict)
    open: int = 0
    error_job_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "counts": dict(sorted(self.counts.items())),
            "open": self.open,
            "error_job_ids": self.error_job_ids,
        }


class SummaryBuilder:
    """Collects statuses from list pages for the jobs we wait on; knows when it has seen them all."""

    def __init__(self, jobs_by_regulation: Mapping[str, Iterable[str]]):
        self.wanted: dict[str, set[str]] = {reg: set(ids) for reg, ids in jobs_by_regulation.items()}
        self.status: dict[str, str] = {}

    def observe(self, regulation: str, jobs: Iterable[Mapping[str, Any]]) -> None:
        wanted = self.wanted.get(regulation, set())
        for job in jobs:
            if job.get("jobId") in wanted:
                self.status[job["jobId"]] = str(job.get("status") or "unknown")

    def all_seen(self, regulation: str) -> bool:
        return self.wanted.get(regulation, set()) <= self.status.keys()

    def build(self) -> JobsSummary:
        summary = JobsSummary()
        for regulation in sorted(self.wanted):
            for job_id in sorted(self.wanted[regulation]):
                # A job absent from its window is counted as open: it surfaces at the deadline.
                status = self.status.get(job_id, MISSING_STATUS)
                summary.counts[status] = summary.counts.get(status, 0) + 1
                if status in FAILED_STATUSES:
                    summary.error_job_ids.append(job_id)
                elif status not in TERMINAL_STATUSES:
                    summary.open += 1
        return summary


def iter_pages(pager: ListPager, params: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """The query parameters of each page request, until the pager is done."""
    while (page_params := pager.next_params(params)) is not None:
        yield page_params
