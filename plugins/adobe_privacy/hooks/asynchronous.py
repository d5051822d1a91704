"""``PrivacyServiceAsyncHook``: the reads triggers make while they wait (``aiohttp``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, NamedTuple, Unpack
from urllib.parse import quote

import aiohttp
import tenacity
from airflow.sdk.log import mask_secret
from multidict import CIMultiDict, CIMultiDictProxy

from adobe_privacy.exceptions import PrivacyServiceError, PrivacyTransientError
from adobe_privacy.hooks.base import PrivacyHookBase
from adobe_privacy.protocol import (
    HYGIENE_JOBS,
    MAX_WORKORDER_PAGE_SIZE,
    PRIVACY_JOBS,
    WORK_ORDERS,
    Authorized,
    JobListFilters,
    ListKind,
    ListRequest,
    PageRequest,
    PrivacyConnectionSettings,
    ReadRetryPolicy,
    SummaryWindow,
    TokenRequest,
    WorkOrderListFilters,
    WorkOrderPager,
    adrive,
    authorized_exchange,
    check_journal_url,
    checked_job_id,
    classify_error,
    job_list_request,
    normalize_job,
    parse_json_body,
    workorder_list_request,
)
from adobe_privacy.protocol.jobs import Date


class JournalResponse(NamedTuple):
    """One answer of the I/O Events journal, whatever its status (200, 204, 410, ...)."""

    status: int
    headers: CIMultiDictProxy[str]  # case-insensitive; several ``Link`` headers: ``headers.getall("Link")``
    body: bytes


class _Answer(NamedTuple):
    status: int
    headers: CIMultiDictProxy[str]
    body: bytes


class PrivacyServiceAsyncHook(PrivacyHookBase):
    """
    The async side for triggers, on ``aiohttp``: same connection, token rule, classification, paging
    and retry policy as :class:`~adobe_privacy.hooks.PrivacyServiceHook` (all in
    :mod:`adobe_privacy.protocol`); reads only.

    :param adobe_privacy_conn_id: the ``adobe_privacy_service`` connection.
    :param retry_policy: the read retry policy.
    :param sleep: async sleep used between retries (injectable for tests).
    :param clock: seconds since the epoch, for token expiry.
    """

    hook_name = "Adobe Privacy Service (async)"

    def __init__(
        self,
        adobe_privacy_conn_id: str = PrivacyHookBase.default_conn_name,
        *,
        retry_policy: ReadRetryPolicy | None = None,
        sleep: Callable[[float], Any] = asyncio.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(adobe_privacy_conn_id, retry_policy=retry_policy, sleep=sleep, clock=clock)
        self._settings: PrivacyConnectionSettings | None = None

    async def get_settings(self) -> PrivacyConnectionSettings:
        if self._settings is None:
            from airflow.providers.common.compat.connection import get_async_connection

            conn = await get_async_connection(self.adobe_privacy_conn_id, hook=self)
            self._settings = PrivacyConnectionSettings.from_connection(conn)
        return self._settings

    def _retrying(self) -> tenacity.AsyncRetrying:
        return tenacity.AsyncRetrying(**self.retry_policy.tenacity_kwargs(self._sleep, self.log))

    @staticmethod
    def _client_session(settings: PrivacyConnectionSettings) -> aiohttp.ClientSession:
        # TLS verification is aiohttp's default; trust_env stays off, so no .netrc or proxy credentials.
        return aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=settings.timeout))

    # ---------------------------------------------------------------- sending

    @staticmethod
    async def _send_once(
        http: aiohttp.ClientSession,
        method: str,
        url: str,
        operation: str,
        *,
        raise_for: Callable[[int], bool],
        **kwargs: Any,
    ) -> _Answer:
        """One request, no redirects; statuses for which ``raise_for`` is true become typed errors."""
        try:
            async with http.request(method, url, allow_redirects=False, **kwargs) as response:
                body = await response.read()
                if raise_for(response.status):
                    raise classify_error(response.status, body, response.headers, operation=operation)
                return _Answer(response.status, CIMultiDictProxy(CIMultiDict(response.headers)), body)
        except aiohttp.ClientConnectorError:
            raise PrivacyTransientError(
                f"{operation} failed: could not connect", request_sent=False
            ) from None
        except (TimeoutError, aiohttp.ClientError) as err:
            raise PrivacyTransientError(f"{operation} failed: {type(err).__name__}") from None

    async def _authorized(self, http: aiohttp.ClientSession, send: Callable[[str], Any]) -> Any:
        """Run ``await send(token)`` under the shared token rule (cache, IMS, one renewal after a 401)."""
        settings = await self.get_settings()

        async def request_token(step: TokenRequest) -> bytes:
            async def post() -> bytes:
                answer = await self._send_once(
                    http,
                    "POST",
                    step.url,
                    "POST /ims/token/v3",
                    raise_for=lambda status: status >= 300,
                    data=step.form,
                )
                return answer.body

            return await self._retrying()(post)

        async def perform(step: TokenRequest | Authorized) -> Any:
            if isinstance(step, TokenRequest):
                return await request_token(step)
            if step.fresh:
                mask_secret(step.token)
            return await send(step.token)

        return await adrive(authorized_exchange(settings, clock=self._clock), perform)

    async def _get_json(
        self,
        http: aiohttp.ClientSession,
        url: str,
        params: Mapping[str, Any] | None,
        *,
        operation: str,
        hygiene: bool = False,
    ) -> dict[str, Any]:
        """One authenticated read: renew the token once on a 401, retry transient failures."""
        settings = await self.get_settings()

        async def send(token: str) -> bytes:
            answer = await self._send_once(
                http,
                "GET",
                url,
                operation,
                raise_for=lambda status: status >= 300,
                params=dict(params or {}),
                headers=settings.api_headers(token, hygiene=hygiene),
            )
            return answer.body

        async def attempt() -> bytes:
            return await self._authorized(http, send)

        return parse_json_body(await self._retrying()(attempt))

    async def _iter_list(self, request: ListRequest) -> AsyncIterator[dict[str, Any]]:
        """Each item of one list once, page by page."""
        settings = await self.get_settings()
        pager = self._pager(settings, request)
        async with self._client_session(settings) as http:
            while (page_params := pager.next_params(request.params)) is not None:
                try:
                    body = await self._get_page(http, settings, request.kind, page_params)
                except PrivacyServiceError as err:
                    if pager.fall_back(err):
                        continue
                    raise
                for item in pager.accept(body):
                    yield item

    async def _summarize(
        self, kind: ListKind, wanted: Mapping[str, list[str]], window: SummaryWindow
    ) -> dict[str, Any]:
        settings = await self.get_settings()
        walk = self._summary_walk(settings, kind, wanted, window)
        async with self._client_session(settings) as http:

            async def fetch(request: PageRequest) -> dict[str, Any]:
                return await self._get_page(http, settings, kind, request.params)

            return await adrive(walk, fetch)

    async def _get_page(
        self,
        http: aiohttp.ClientSession,
        settings: PrivacyConnectionSettings,
        kind: ListKind,
        params: Mapping[str, Any],
    ) -> dict[str, Any]:
        return await self._get_json(
            http, kind.url(settings), params, operation=f"GET {kind.name}", hygiene=kind.hygiene
        )

    # ---------------------------------------------------------------- Privacy Service

    async def iter_jobs(
        self, regulation: str, *, page_size: int | None = None, **filters: Unpack[JobListFilters]
    ) -> AsyncIterator[dict[str, Any]]:
        """Async twin of :meth:`PrivacyServiceHook.iter_jobs`."""
        size = self.list_page_size(await self.get_settings(), page_size)
        async for job in self._iter_list(
            job_list_request(PRIVACY_JOBS, size, regulation=regulation, **filters)
        ):
            yield job

    async def summarize_jobs(
        self, jobs_by_regulation: Mapping[str, list[str]], **window: Unpack[SummaryWindow]
    ) -> dict[str, Any]:
        """
        Status counts over the given jobs from the LIST endpoint: about one call per 1000 jobs in the
        date window per regulation, stopping early once every wanted job was seen.

        :return: ``{"counts": {status: n}, "open": n, "error_job_ids": [...]}``; jobs not found in the
            window count as ``missing`` and as open.
        """
        return await self._summarize(PRIVACY_JOBS, jobs_by_regulation, window)

    # ---------------------------------------------------------------- Data Hygiene (alpha jobs API)

    async def get_hygiene_job(self, job_id: str) -> dict[str, Any]:
        settings = await self.get_settings()
        url = settings.hygiene_url(f"/jobs/{quote(checked_job_id(job_id), safe='')}")
        async with self._client_session(settings) as http:
            return normalize_job(
                await self._get_json(http, url, None, operation="GET hygiene /jobs/{jobId}", hygiene=True)
            )

    async def iter_hygiene_jobs(
        self, *, page_size: int | None = None, **filters: Unpack[JobListFilters]
    ) -> AsyncIterator[dict[str, Any]]:
        size = self.list_page_size(await self.get_settings(), page_size)
        async for job in self._iter_list(job_list_request(HYGIENE_JOBS, size, **filters)):
            yield job

    async def summarize_hygiene_jobs(
        self, job_ids: list[str], **window: Unpack[SummaryWindow]
    ) -> dict[str, Any]:
        """Async twin of :meth:`PrivacyServiceHook.summarize_hygiene_jobs` (the hygiene wait, deferred)."""
        return await self._summarize(HYGIENE_JOBS, {"hygiene": job_ids}, window)

    # ---------------------------------------------------------------- Data Lifecycle work orders

    async def get_workorder(self, workorder_id: str) -> dict[str, Any]:
        settings = await self.get_settings()
        url = settings.hygiene_url(f"/workorder/{quote(checked_job_id(workorder_id), safe='')}")
        async with self._client_session(settings) as http:
            body = await self._get_json(http, url, None, operation="GET /workorder/{id}", hygiene=True)
        return WorkOrderPager.normalize(body)

    async def iter_workorders(
        self, *, page_size: int = MAX_WORKORDER_PAGE_SIZE, **filters: Unpack[WorkOrderListFilters]
    ) -> AsyncIterator[dict[str, Any]]:
        async for order in self._iter_list(workorder_list_request(page_size, **filters)):
            yield order

    async def summarize_workorders(
        self, workorder_ids: list[str], *, from_date: Date = None, to_date: Date = None
    ) -> dict[str, Any]:
        """Async twin of :meth:`PrivacyServiceHook.summarize_workorders`."""
        window: SummaryWindow = {"from_date": from_date, "to_date": to_date}
        return await self._summarize(WORK_ORDERS, {"workorder": workorder_ids}, window)

    # ---------------------------------------------------------------- Adobe I/O Events journal

    async def journal_get(
        self, url: str | None = None, *, session: aiohttp.ClientSession | None = None
    ) -> JournalResponse:
        """
        One authenticated ``GET`` of the I/O Events journal: ``url`` (absolute, e.g. a ``Link`` header's
        ``rel="next"``) or, when None, the connection's ``journal_url`` extra.

        The URL must be on the configured journal's origin (scheme, host, port) and pass the strict URL
        parser, else :class:`~adobe_privacy.exceptions.UrlRefusedError`. Headers: ``Authorization``,
        ``x-api-key``, ``x-ims-org-id`` (the journal's name for the org; not ``x-gw-ims-org-id``).
        A 401 renews the token once; any other status is returned as it came (200, 204 with
        ``retry-after``, 410 Gone ...), never retried, never followed. Transport failures raise
        :class:`~adobe_privacy.exceptions.PrivacyTransientError`.
        """
        settings = await self.get_settings()
        checked = check_journal_url(settings, url or settings.journal_url or "")

        async def send(token: str) -> _Answer:
            return await self._send_once(
                http,
                "GET",
                checked.url,
                "GET journal",
                raise_for=lambda status: status == 401,
                headers=settings.journal_headers(token),
            )

        if session is not None:
            http = session
            answer = await self._authorized(http, send)
        else:
            async with self._client_session(settings) as http:
                answer = await self._authorized(http, send)
        return JournalResponse(answer.status, answer.headers, answer.body)
