"""Hooks for Adobe Experience Platform Privacy Service and the Data Hygiene API.

:class:`PrivacyServiceHook` (sync, on the HTTP provider's ``HttpHook`` and ``requests``) is what
operators and tasks use; :class:`PrivacyServiceAsyncHook` (``aiohttp``) is what the trigger uses. Both
only send: what a response means (errors, retries, pagination, normalisation) is decided once, in
:mod:`adobe_privacy.protocol`.

Connection (conn type ``adobe_privacy_service``, default id ``adobe_privacy_default``): host = API
base URL with scheme, login = client id (also the x-api-key), password = client secret, extra =
``org_id``, ``ims_url``, ``scopes``, ``sandbox_name``, ``download_hosts``, and optionally
``privacy_path``, ``hygiene_path``, ``timeout``, ``page_base``. As an environment variable::

    AIRFLOW_CONN_ADOBE_PRIVACY_DEFAULT='{"conn_type": "adobe_privacy_service",
        "host": "https://platform.adobe.io", "login": "<client id>", "password": "<client secret>",
        "extra": {"org_id": "<org>@AdobeOrg", "sandbox_name": "prod"}}'
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from functools import cached_property
from typing import Any
from urllib.parse import quote, urljoin

import aiohttp
import requests
import tenacity
from airflow.providers.http.hooks.http import HttpHook
from airflow.sdk import BaseHook
from airflow.sdk.log import mask_secret
from urllib3.exceptions import NewConnectionError

from adobe_privacy.exceptions import (
    PrivacyAuthError,
    PrivacyOutcomeUnknownError,
    PrivacyServiceError,
    PrivacyTerminalError,
    PrivacyTransientError,
    SubmittedUser,
)
from adobe_privacy.get_provider_info import UI_FIELD_BEHAVIOUR
from adobe_privacy.protocol import (
    CONN_TYPE,
    DEFAULT_CONN_ID,
    MAX_PAGE_SIZE,
    TOKEN_CACHE,
    CreatedJob,
    DownloadTarget,
    ListPager,
    PrivacyConnectionSettings,
    ReadRetryPolicy,
    SummaryBuilder,
    classify_error,
    is_expired_token,
    iter_pages,
    list_params,
    normalize_job,
    parse_created_jobs,
    parse_json_body,
    parse_token_response,
    resolve_download_target,
    submitted_users,
)

DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
MAX_DOWNLOAD_REDIRECTS = 5
Date = date | datetime | str | None


def _outcome_unknown(
    error: PrivacyTransientError, operation: str, submitted: list[SubmittedUser]
) -> PrivacyServiceError:
    """A failed write: certainly not sent (transient, the caller may resend) or possibly committed."""
    if not error.request_sent:
        return error
    return PrivacyOutcomeUnknownError(
        f"{operation}: {error}. The request may have been committed; it is not sent again. "
        f"Reconcile the {len(submitted)} submitted user keys (list jobs by userKey) before resubmitting.",
        operation=operation,
        submitted=submitted,
    )


def _ims_error(error: PrivacyServiceError) -> PrivacyServiceError:
    """
    An IMS failure seen from the API call that needed the token.

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


def _is_success(status: int) -> bool:
    return 200 <= status < 300


def _requests_transport_error(error: requests.RequestException, operation: str) -> PrivacyTransientError:
    reason = getattr(error.args[0], "reason", None) if error.args else None
    not_sent = isinstance(error, requests.ConnectTimeout) or isinstance(reason, NewConnectionError)
    return PrivacyTransientError(f"{operation} failed: {type(error).__name__}", request_sent=not not_sent)


class PrivacyServiceHook(HttpHook):
    """
    Interact with Adobe Privacy Service (and the Data Hygiene API) with an IMS OAuth S2S token.

    Reads are retried (429, 5xx, connection errors; exponential backoff with jitter, never shorter
    than ``Retry-After``, bounded). Writes are sent exactly once: a timeout, dropped connection or 5xx
    raises :class:`~adobe_privacy.exceptions.PrivacyOutcomeUnknownError` with the submitted user keys.

    :param adobe_privacy_conn_id: the ``adobe_privacy_service`` connection.
    :param retry_policy: the read retry policy (attempts and waits).
    :param sleep: how retries wait; tests inject a recorder instead of sleeping.
    :param clock: seconds since the epoch, for token expiry; tests inject their own.
    """

    conn_name_attr = "adobe_privacy_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "Adobe Privacy Service"

    def __init__(
        self,
        adobe_privacy_conn_id: str = default_conn_name,
        *,
        retry_policy: ReadRetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(method="GET", http_conn_id=adobe_privacy_conn_id, **kwargs)
        self.adobe_privacy_conn_id = adobe_privacy_conn_id
        self.retry_policy = retry_policy or ReadRetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._session: requests.Session | None = None

    # ---------------------------------------------------------------- connection and UI

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel login/password/host, hide schema/port, and show a JSON example of the extra."""
        return {
            "hidden_fields": UI_FIELD_BEHAVIOUR["hidden-fields"],
            "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
            "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
        }

    @cached_property
    def settings(self) -> PrivacyConnectionSettings:
        return PrivacyConnectionSettings.from_connection(self.get_connection(self.adobe_privacy_conn_id))

    @property
    def org_id(self) -> str:
        """The IMS org id (``x-gw-ims-org-id``), which payloads repeat in ``companyContexts``."""
        return self.settings.org_id

    def get_conn(
        self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None
    ) -> requests.Session:
        """
        The session for the API host: TLS verified, keep-alive, no basic auth.

        Unlike ``HttpHook.get_conn`` the connection extra is never turned into headers: it holds the
        org id, scopes and hosts, not headers. The bearer token is added per request.
        """
        if self._session is None:
            self.base_url = self.settings.api_base_url
            self._base_url_initialized = True
            session = requests.Session()
            session.verify = True
            self._session = self._configure_session_from_mount_adapters(session)
        if headers:
            self._session.headers.update(headers)
        return self._session

    @cached_property
    def _download_session(self) -> requests.Session:
        """For hosts other than the API host: no credentials, and no ``.netrc`` either (trust_env off)."""
        session = requests.Session()
        session.verify = True
        session.trust_env = False
        return session

    def test_connection(self) -> tuple[bool, str]:
        """Get a token and make one cheap list call."""
        try:
            self._access_token()
            self._read_json(
                "GET", self.settings.privacy_url("/jobs"), params={"regulation": "gdpr", "size": 1}
            )
        except Exception as err:
            return False, str(err)
        return True, "Token issued and GET /jobs answered."

    # ---------------------------------------------------------------- token

    def _access_token(self) -> str:
        cached = TOKEN_CACHE.get(self.settings.cache_key, self._clock())
        if cached is not None:
            return cached.value
        try:
            response = self._retrying()(self._request_token)
        except PrivacyServiceError as err:
            raise _ims_error(err) from None
        token = parse_token_response(parse_json_body(response.content), now=self._clock())
        mask_secret(token.value)
        TOKEN_CACHE.put(self.settings.cache_key, token)
        self.log.info("Obtained an IMS access token for client %s", self.settings.client_id)
        return token.value

    def _request_token(self) -> requests.Response:
        operation = "POST /ims/token/v3"
        try:
            # No redirects: the form carries the client secret and must reach only the IMS URL.
            response = self.get_conn().post(
                self.settings.token_url,
                data=self.settings.token_form(),
                timeout=self.settings.timeout,
                allow_redirects=False,
            )
        except requests.RequestException as err:
            raise _requests_transport_error(err, operation) from None
        if not response.ok:
            raise classify_error(
                response.status_code, response.content, response.headers, operation=operation
            )
        return response

    # ---------------------------------------------------------------- sending

    def _retrying(self) -> tenacity.Retrying:
        return tenacity.Retrying(**self.retry_policy.tenacity_kwargs(self._sleep, self.log))

    def _send(
        self,
        method: str,
        url: str,
        *,
        operation: str,
        hygiene: bool = False,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        stream: bool = False,
        redirect_ok: bool = False,
    ) -> requests.Response:
        """
        Send once with the cached token; after a 401, renew the token and send once more.

        Redirects are never followed here (requests would carry x-api-key and the org header to
        the new host); a download hands them back to :meth:`_open_download` with ``redirect_ok``.
        """
        for attempt in (1, 2):
            token = self._access_token()
            try:
                response = self.get_conn().request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers=self.settings.api_headers(token, hygiene=hygiene),
                    timeout=self.settings.timeout,
                    stream=stream,
                    allow_redirects=False,
                )
            except requests.RequestException as err:
                raise _requests_transport_error(err, operation) from None
            if _is_success(response.status_code) or (redirect_ok and response.is_redirect):
                return response
            error = classify_error(
                response.status_code, response.content, response.headers, operation=operation
            )
            response.close()
            if attempt == 1 and is_expired_token(error):
                # The gateway refused the token before the request reached the service, so
                # sending again (even a POST) cannot create anything twice.
                self.log.info("%s: token refused (401); renewing it once", operation)
                TOKEN_CACHE.invalidate(self.settings.cache_key, token)
                continue
            raise error
        raise AssertionError("unreachable")

    def _read(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        return self._retrying()(self._send, method, url, **kwargs)

    def _read_json(self, method: str, url: str, *, operation: str | None = None, **kwargs: Any) -> dict:
        response = self._read(method, url, operation=operation or f"{method} {url}", **kwargs)
        return parse_json_body(response.content)

    def _write(
        self,
        url: str,
        payload: Mapping[str, Any],
        *,
        operation: str,
        submitted: list[SubmittedUser],
        hygiene: bool = False,
    ) -> requests.Response:
        try:
            return self._send("POST", url, json=payload, operation=operation, hygiene=hygiene)
        except PrivacyTransientError as err:
            raise _outcome_unknown(err, operation, submitted) from err

    def run(
        self,
        endpoint: str | None = None,
        data: dict[str, Any] | str | None = None,
        headers: dict[str, Any] | None = None,
        extra_options: dict[str, Any] | None = None,
        **request_kwargs: Any,
    ) -> requests.Response:
        """``HttpHook.run`` for a path under the privacy base path: GET retried, other methods sent once."""
        url = self.settings.privacy_url("/" + (endpoint or "").lstrip("/"))
        operation = f"{self.method} {endpoint}"
        if self.method == "GET":
            return self._read("GET", url, operation=operation, params=data)
        return self._write(url, request_kwargs.get("json", data), operation=operation, submitted=[])

    # ---------------------------------------------------------------- Privacy Service

    def create_jobs(self, payload: Mapping[str, Any]) -> list[CreatedJob]:
        """
        ``POST /jobs``: one job per (user, action). Sent exactly once.

        :raises PrivacyOutcomeUnknownError: timeout, dropped connection or 5xx; carries the user keys.
        :raises PrivacyBackPressureError: 429, 1030-400 or the daily cap; nothing was created.
        :raises PrivacyTerminalError: any other refusal (validation), with Adobe's code and detail.
        """
        submitted = submitted_users(payload)
        operation = "POST /jobs"
        response = self._write(
            self.settings.privacy_url("/jobs"), payload, operation=operation, submitted=submitted
        )
        return self._created_jobs(response, operation, submitted)

    def _created_jobs(
        self, response: requests.Response, operation: str, submitted: list[SubmittedUser]
    ) -> list[CreatedJob]:
        try:
            created = parse_created_jobs(response.json())
        except (ValueError, KeyError, TypeError, AttributeError) as err:
            # Committed (2xx) but the job ids are unreadable: the caller must reconcile.
            raise PrivacyOutcomeUnknownError(
                f"{operation} answered {response.status_code} with an unreadable body",
                operation=operation,
                submitted=submitted,
            ) from err
        self.log.info("%s created %d jobs for %d subjects", operation, len(created), len(submitted))
        return created

    def iter_jobs(
        self,
        regulation: str,
        *,
        status: str | None = None,
        from_date: Date = None,
        to_date: Date = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        """Every job of ``regulation`` (optionally by status and GMT date window), page by page, once each."""
        params = list_params(
            regulation=regulation, status=status, from_date=from_date, to_date=to_date, page_size=page_size
        )
        yield from self._iter_list(self.settings.privacy_url("/jobs"), params, page_size, hygiene=False)

    def summarize_jobs(
        self,
        jobs_by_regulation: Mapping[str, list[str]],
        *,
        from_date: Date,
        to_date: Date,
        page_size: int = MAX_PAGE_SIZE,
    ) -> dict[str, Any]:
        """Sync twin of :meth:`PrivacyServiceAsyncHook.summarize_jobs` (the sensor's poke)."""
        builder = SummaryBuilder(jobs_by_regulation)
        for regulation in sorted(builder.wanted):
            if not builder.wanted[regulation]:
                continue
            for job in self.iter_jobs(regulation, from_date=from_date, to_date=to_date, page_size=page_size):
                builder.observe(regulation, [job])
                if builder.all_seen(regulation):
                    break  # closing the generator stops paging
        return builder.build().as_dict()

    def get_job(self, job_id: str) -> dict[str, Any]:
        """``GET /jobs/{id}``, normalised (``downloadUrl``, ``userIds``, lower-case status)."""
        url = self.settings.privacy_url(f"/jobs/{quote(job_id, safe='')}")
        return normalize_job(self._read_json("GET", url, operation="GET /jobs/{jobId}"))

    @contextmanager
    def stream_content(
        self, job: str | Mapping[str, Any], *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[Iterator[bytes]]:
        """
        The access ZIP of a job as an iterator of chunks; the whole file is never held in memory.

        ``job`` is a job id (fetched from ``/jobs/{id}/content``) or a job dict whose ``downloadUrl``
        is used. A URL off the API host is fetched without credentials, and only from an allow-listed
        host (else :class:`~adobe_privacy.exceptions.DownloadRefusedError`).
        """
        response = self._open_download(self._content_url(job))
        try:
            yield self._iter_chunks(response, chunk_size)
        finally:
            response.close()

    def _content_url(self, job: str | Mapping[str, Any]) -> str:
        if isinstance(job, str):
            return self.settings.privacy_url(f"/jobs/{quote(job, safe='')}/content")
        normalized = normalize_job(job)
        return normalized.get("downloadUrl") or self._content_url(str(normalized["jobId"]))

    def _open_download(self, url: str) -> requests.Response:
        for _ in range(MAX_DOWNLOAD_REDIRECTS + 1):
            target = resolve_download_target(self.settings, url)
            response = self._fetch_download(target)
            if not response.is_redirect:
                return response
            # Follow redirects ourselves so the allow-list and the no-credentials rule apply to each hop.
            url = urljoin(url, response.headers["Location"])
            response.close()
        raise PrivacyTerminalError(
            "Too many redirects on a content download", status=None, error_code=None, detail=None
        )

    def _fetch_download(self, target: DownloadTarget) -> requests.Response:
        operation = "GET content"
        if target.authenticated:
            return self._read("GET", target.url, operation=operation, stream=True, redirect_ok=True)

        def fetch_anonymously() -> requests.Response:
            try:
                response = self._download_session.get(
                    target.url, stream=True, timeout=self.settings.timeout, allow_redirects=False
                )
            except requests.RequestException as err:
                raise _requests_transport_error(err, operation) from None
            if not response.ok:
                raise classify_error(
                    response.status_code, response.content, response.headers, operation=operation
                )
            return response

        return self._retrying()(fetch_anonymously)

    @staticmethod
    def _iter_chunks(response: requests.Response, chunk_size: int) -> Iterator[bytes]:
        try:
            for chunk in response.iter_content(chunk_size=chunk_size):
                if chunk:
                    yield chunk
        except requests.RequestException as err:
            raise _requests_transport_error(err, "content download") from None

    def submit_consent(self, payload: Mapping[str, Any]) -> None:
        """``POST /consent`` (opt-out of sale): 202 with no body, no job to wait on. Sent exactly once."""
        self._write(self.settings.privacy_url("/consent"), payload, operation="POST /consent", submitted=[])
        self.log.info("Consent submitted for %d namespaces", len(payload.get("entities") or []))

    # ---------------------------------------------------------------- Data Hygiene

    def create_hygiene_jobs(self, payload: Mapping[str, Any]) -> list[CreatedJob]:
        """Data Hygiene record-delete jobs (``POST {hygiene_path}/jobs``); same guarantees as create_jobs."""
        submitted = submitted_users(payload)
        operation = "POST hygiene /jobs"
        response = self._write(
            self.settings.hygiene_url("/jobs"),
            payload,
            operation=operation,
            submitted=submitted,
            hygiene=True,
        )
        return self._created_jobs(response, operation, submitted)

    def get_hygiene_job(self, job_id: str) -> dict[str, Any]:
        url = self.settings.hygiene_url(f"/jobs/{quote(job_id, safe='')}")
        return normalize_job(self._read_json("GET", url, operation="GET hygiene /jobs/{jobId}", hygiene=True))

    def iter_hygiene_jobs(
        self,
        *,
        regulation: str | None = None,
        status: str | None = None,
        from_date: Date = None,
        to_date: Date = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[dict[str, Any]]:
        params = list_params(
            regulation=regulation, status=status, from_date=from_date, to_date=to_date, page_size=page_size
        )
        yield from self._iter_list(self.settings.hygiene_url("/jobs"), params, page_size, hygiene=True)

    def _iter_list(
        self, url: str, params: Mapping[str, Any], page_size: int, *, hygiene: bool
    ) -> Iterator[dict[str, Any]]:
        pager = ListPager(page_size, self.settings.page_base)
        for page_params in iter_pages(pager, params):
            body = self._read_json("GET", url, operation="GET list", params=page_params, hygiene=hygiene)
            yield from pager.accept(body)


class PrivacyServiceAsyncHook(BaseHook):
    """
    The async side for triggers, on ``aiohttp``: same connection, token cache, classification and
    retry policy as :class:`PrivacyServiceHook`, reads only.

    :param adobe_privacy_conn_id: the ``adobe_privacy_service`` connection.
    :param retry_policy: the read retry policy.
    :param sleep: async sleep used between retries (injectable for tests).
    :param clock: seconds since the epoch, for token expiry.
    """

    conn_name_attr = "adobe_privacy_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE
    hook_name = "Adobe Privacy Service (async)"

    def __init__(
        self,
        adobe_privacy_conn_id: str = default_conn_name,
        *,
        retry_policy: ReadRetryPolicy | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.adobe_privacy_conn_id = adobe_privacy_conn_id
        self.retry_policy = retry_policy or ReadRetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._settings: PrivacyConnectionSettings | None = None

    async def get_settings(self) -> PrivacyConnectionSettings:
        if self._settings is None:
            from airflow.providers.common.compat.connection import get_async_connection

            conn = await get_async_connection(self.adobe_privacy_conn_id, hook=self)
            self._settings = PrivacyConnectionSettings.from_connection(conn)
        return self._settings

    def _retrying(self) -> tenacity.AsyncRetrying:
        return tenacity.AsyncRetrying(**self.retry_policy.tenacity_kwargs(self._sleep, self.log))

    async def _access_token(self, http: aiohttp.ClientSession) -> str:
        settings = await self.get_settings()
        cached = TOKEN_CACHE.get(settings.cache_key, self._clock())
        if cached is not None:
            return cached.value

        async def request_token() -> bytes:
            return await self._send_once(
                http, "POST", settings.token_url, "POST /ims/token/v3", data=settings.token_form()
            )

        try:
            body = await self._retrying()(request_token)
        except PrivacyServiceError as err:
            raise _ims_error(err) from None
        token = parse_token_response(parse_json_body(body), now=self._clock())
        mask_secret(token.value)
        TOKEN_CACHE.put(settings.cache_key, token)
        return token.value

    @staticmethod
    async def _send_once(
        http: aiohttp.ClientSession, method: str, url: str, operation: str, **kwargs: Any
    ) -> bytes:
        try:
            async with http.request(method, url, allow_redirects=False, **kwargs) as response:
                body = await response.read()
                if response.status >= 300:
                    raise classify_error(response.status, body, response.headers, operation=operation)
                return body
        except aiohttp.ClientConnectorError:
            raise PrivacyTransientError(
                f"{operation} failed: could not connect", request_sent=False
            ) from None
        except (TimeoutError, aiohttp.ClientError) as err:
            raise PrivacyTransientError(f"{operation} failed: {type(err).__name__}") from None

    async def _get_json(
        self, http: aiohttp.ClientSession, url: str, params: Mapping[str, Any], *, operation: str
    ) -> dict[str, Any]:
        """One authenticated read: renew the token once on a 401, retry transient failures."""
        settings = await self.get_settings()

        async def attempt() -> bytes:
            for renewal in (1, 2):
                token = await self._access_token(http)
                try:
                    return await self._send_once(
                        http, "GET", url, operation, params=dict(params), headers=settings.api_headers(token)
                    )
                except PrivacyServiceError as err:
                    if renewal == 1 and is_expired_token(err):
                        TOKEN_CACHE.invalidate(settings.cache_key, token)
                        continue
                    raise
            raise AssertionError("unreachable")

        return parse_json_body(await self._retrying()(attempt))

    def _client_session(self, settings: PrivacyConnectionSettings) -> aiohttp.ClientSession:
        # TLS verification is aiohttp's default; trust_env stays off so no .netrc credentials leak.
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.timeout))

    async def iter_jobs(
        self,
        regulation: str,
        *,
        status: str | None = None,
        from_date: Date = None,
        to_date: Date = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> AsyncIterator[dict[str, Any]]:
        """Async twin of :meth:`PrivacyServiceHook.iter_jobs`."""
        settings = await self.get_settings()
        params = list_params(
            regulation=regulation, status=status, from_date=from_date, to_date=to_date, page_size=page_size
        )
        pager = ListPager(page_size, settings.page_base)
        async with self._client_session(settings) as http:
            for page_params in iter_pages(pager, params):
                body = await self._get_json(
                    http, settings.privacy_url("/jobs"), page_params, operation="GET /jobs"
                )
                for job in pager.accept(body):
                    yield job

    async def summarize_jobs(
        self,
        jobs_by_regulation: Mapping[str, list[str]],
        *,
        from_date: Date,
        to_date: Date,
        page_size: int = MAX_PAGE_SIZE,
    ) -> dict[str, Any]:
        """
        Status counts over the given jobs from the LIST endpoint: about one call per 1000 jobs in the
        date window per regulation, stopping early once every wanted job was seen.

        :return: ``{"counts": {status: n}, "open": n, "error_job_ids": [...]}``; jobs not found in the
            window count as ``missing`` and as open.
        """
        settings = await self.get_settings()
        builder = SummaryBuilder(jobs_by_regulation)
        async with self._client_session(settings) as http:
            for regulation in sorted(builder.wanted):
                if not builder.wanted[regulation]:
                    continue
                params = list_params(
                    regulation=regulation,
                    status=None,
                    from_date=from_date,
                    to_date=to_date,
                    page_size=page_size,
                )
                pager = ListPager(page_size, settings.page_base)
                for page_params in iter_pages(pager, params):
                    body = await self._get_json(
                        http, settings.privacy_url("/jobs"), page_params, operation="GET /jobs"
                    )
                    builder.observe(regulation, pager.accept(body))
                    if builder.all_seen(regulation):
                        break
        return builder.build().as_dict()
