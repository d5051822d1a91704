"""``PrivacyServiceHook``: the sync hook operators and tasks use (``requests``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from typing import Any, Unpack
from urllib.parse import quote, urljoin

import requests
import tenacity
from airflow.sdk.log import mask_secret
from urllib3.exceptions import NewConnectionError
from urllib3.util import parse_url

from adobe_privacy.exceptions import (
    DownloadRefusedError,
    PrivacyOutcomeUnknownError,
    PrivacyServiceError,
    PrivacyTerminalError,
    PrivacyTransientError,
    SubmittedUser,
)
from adobe_privacy.hooks.base import PrivacyHookBase
from adobe_privacy.protocol import (
    HYGIENE_JOBS,
    MAX_WORKORDER_PAGE_SIZE,
    PRIVACY_JOBS,
    WORK_ORDERS,
    Authorized,
    CheckedUrl,
    CreatedJob,
    DownloadTarget,
    JobListFilters,
    ListKind,
    ListRequest,
    PrivacyConnectionSettings,
    SummaryWindow,
    TokenRequest,
    WorkOrderListFilters,
    WorkOrderPager,
    authorized_exchange,
    checked_job_id,
    classify_error,
    drive,
    identity_values,
    job_list_request,
    normalize_job,
    outcome_unknown,
    parse_created_jobs,
    parse_json_body,
    resolve_download_target,
    submitted_users,
    workorder_list_request,
)
from adobe_privacy.protocol.jobs import Date

DEFAULT_CHUNK_SIZE = 8 * 1024 * 1024
MAX_DOWNLOAD_REDIRECTS = 5
RECOVER_JOBS = "Reconcile the submitted user keys (list jobs by userKey)"


class HeaderAuth(requests.auth.AuthBase):
    """Sets ``Authorization`` to exactly ``value``, or removes it: requests then never derives one
    from the URL's userinfo or from ``~/.netrc`` (it only does when no ``auth`` is given)."""

    def __init__(self, value: str | None) -> None:
        self.value = value

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers.pop("Authorization", None)
        if self.value:
            request.headers["Authorization"] = self.value
        return request


def _transport_error(error: requests.RequestException, operation: str) -> PrivacyTransientError:
    reason = getattr(error.args[0], "reason", None) if error.args else None
    not_sent = isinstance(error, requests.ConnectTimeout) or isinstance(reason, NewConnectionError)
    return PrivacyTransientError(f"{operation} failed: {type(error).__name__}", request_sent=not not_sent)


def _is_success(status: int) -> bool:
    return 200 <= status < 300


class PrivacyServiceHook(PrivacyHookBase):
    """
    Interact with Adobe Privacy Service and the Data Hygiene API with an IMS OAuth S2S token.

    Reads are retried (429, 5xx, connection errors; exponential backoff with jitter, never shorter
    than ``Retry-After``, bounded). Writes are sent exactly once: a timeout, dropped connection or 5xx
    raises :class:`~adobe_privacy.exceptions.PrivacyOutcomeUnknownError`.

    :param adobe_privacy_conn_id: the ``adobe_privacy_service`` connection.
    :param retry_policy: the read retry policy (attempts and waits).
    :param sleep: how retries wait; tests inject a recorder instead of sleeping.
    :param clock: seconds since the epoch, for token expiry; tests inject their own.
    """

    hook_name = "Adobe Privacy Service"

    @cached_property
    def settings(self) -> PrivacyConnectionSettings:
        return PrivacyConnectionSettings.from_connection(self.get_connection(self.adobe_privacy_conn_id))

    @property
    def org_id(self) -> str:
        """The IMS org id (``x-gw-ims-org-id``), which payloads repeat in ``companyContexts``."""
        return self.settings.org_id

    @cached_property
    def session(self) -> requests.Session:
        """The session for the API and IMS hosts: TLS verified, keep-alive; auth is set per request."""
        session = requests.Session()
        session.verify = True
        return session

    def get_conn(self) -> requests.Session:
        return self.session

    @cached_property
    def _download_session(self) -> requests.Session:
        """For hosts other than the API host: no credentials, no ``.netrc``, no proxy env (trust_env off)."""
        session = requests.Session()
        session.verify = True
        session.trust_env = False
        return session

    def test_connection(self) -> tuple[bool, str]:
        """Get a token and make one cheap list call."""
        try:
            self._read(
                "GET",
                self.settings.privacy_url("/jobs"),
                operation="GET /jobs",
                params={"regulation": "gdpr", "size": 1},
            )
        except Exception as err:
            return False, str(err)
        return True, "Token issued and GET /jobs answered."

    # ---------------------------------------------------------------- sending

    def _retrying(self) -> tenacity.Retrying:
        return tenacity.Retrying(**self.retry_policy.tenacity_kwargs(self._sleep, self.log))

    def _request_token(self, step: TokenRequest) -> bytes:
        def post() -> bytes:
            operation = "POST /ims/token/v3"
            try:
                # No redirects: the form carries the client secret and must reach only the IMS URL.
                response = self.session.post(
                    step.url,
                    data=step.form,
                    timeout=self.settings.timeout,
                    allow_redirects=False,
                    auth=HeaderAuth(None),
                )
            except requests.RequestException as err:
                raise _transport_error(err, operation) from None
            if not _is_success(response.status_code):
                raise classify_error(
                    response.status_code, response.content, response.headers, operation=operation
                )
            return response.content

        body = self._retrying()(post)
        self.log.info("Obtained an IMS access token for client %s", self.settings.client_id)
        return body

    def _access_token(self) -> str:
        """The current token (cached, or fetched from IMS)."""
        return self._authorized(lambda token: token)

    def _authorized(self, send: Any) -> Any:
        """Run ``send(token)`` under the shared token rule (cache, IMS, one renewal after a 401)."""

        def perform(step: TokenRequest | Authorized) -> Any:
            if isinstance(step, TokenRequest):
                return self._request_token(step)
            if step.fresh:
                mask_secret(step.token)
            return send(step.token)

        return drive(authorized_exchange(self.settings, clock=self._clock), perform)

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
        identities: frozenset[str] = frozenset(),
    ) -> requests.Response:
        """Send once with the cached token (renewed once after a 401). Redirects are never followed
        here (requests would carry x-api-key and the org header along); downloads handle them."""

        def send(token: str) -> requests.Response:
            headers = self.settings.api_headers(token, hygiene=hygiene)
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    headers=headers,
                    auth=HeaderAuth(headers["Authorization"]),
                    timeout=self.settings.timeout,
                    stream=stream,
                    allow_redirects=False,
                )
            except requests.RequestException as err:
                raise _transport_error(err, operation) from None
            if _is_success(response.status_code) or (redirect_ok and response.is_redirect):
                return response
            error = classify_error(
                response.status_code,
                response.content,
                response.headers,
                operation=operation,
                identities=identities,
            )
            response.close()
            raise error

        return self._authorized(send)

    def _read(self, method: str, url: str, **kwargs: Any) -> requests.Response:
        return self._retrying()(self._send, method, url, **kwargs)

    def _read_json(self, url: str, *, operation: str, **kwargs: Any) -> dict[str, Any]:
        return parse_json_body(self._read("GET", url, operation=operation, **kwargs).content)

    def _write(
        self,
        url: str,
        payload: Mapping[str, Any],
        *,
        operation: str,
        submitted: list[SubmittedUser],
        recover_by: str = RECOVER_JOBS,
        hygiene: bool = False,
    ) -> requests.Response:
        identities = identity_values(payload)
        try:
            return self._send(
                "POST", url, json=payload, operation=operation, hygiene=hygiene, identities=identities
            )
        except PrivacyTransientError as err:
            raise outcome_unknown(err, operation, submitted, recover_by=recover_by) from err

    def _read_page(self, kind: ListKind, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._read_json(
            kind.url(self.settings), operation=f"GET {kind.name}", params=params, hygiene=kind.hygiene
        )

    def _iter_list(self, request: ListRequest) -> Iterator[dict[str, Any]]:
        """Each item of one list once, page by page."""
        pager = self._pager(self.settings, request)
        while (page_params := pager.next_params(request.params)) is not None:
            try:
                body = self._read_page(request.kind, page_params)
            except PrivacyServiceError as err:
                if pager.fall_back(err):
                    continue
                raise
            yield from pager.accept(body)

    def _summarize(
        self, kind: ListKind, wanted: Mapping[str, list[str]], window: SummaryWindow
    ) -> dict[str, Any]:
        walk = self._summary_walk(self.settings, kind, wanted, window)
        return drive(walk, lambda request: self._read_page(kind, request.params))

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
        self, regulation: str, *, page_size: int | None = None, **filters: Unpack[JobListFilters]
    ) -> Iterator[dict[str, Any]]:
        """Every job of ``regulation`` (optionally by status and GMT date window), page by page, once each."""
        size = self.list_page_size(self.settings, page_size)
        yield from self._iter_list(job_list_request(PRIVACY_JOBS, size, regulation=regulation, **filters))

    def summarize_jobs(
        self, jobs_by_regulation: Mapping[str, list[str]], **window: Unpack[SummaryWindow]
    ) -> dict[str, Any]:
        """Status counts over the given jobs from the list endpoint (see :func:`job_summary_walk`)."""
        return self._summarize(PRIVACY_JOBS, jobs_by_regulation, window)

    def get_job(self, job_id: str) -> dict[str, Any]:
        """``GET /jobs/{id}``, normalised (``downloadUrl``, ``userIds``, lower-case status)."""
        url = self.settings.privacy_url(f"/jobs/{quote(checked_job_id(job_id), safe='')}")
        return normalize_job(self._read_json(url, operation="GET /jobs/{jobId}"))

    @contextmanager
    def stream_content(
        self, job: str | Mapping[str, Any], *, chunk_size: int = DEFAULT_CHUNK_SIZE
    ) -> Iterator[Iterator[bytes]]:
        """
        The access ZIP of a job as an iterator of chunks; the whole file is never held in memory.

        ``job`` is a job id (fetched from ``/jobs/{id}/content``) or a job dict whose ``downloadUrl``
        (or ``downloadURL``) is used. A URL off the API host is fetched without credentials, and only
        from an allow-listed host (else :class:`~adobe_privacy.exceptions.DownloadRefusedError`).
        """
        response = self._open_download(self._content_url(job))
        try:
            yield self._iter_chunks(response, chunk_size)
        finally:
            response.close()

    def _content_url(self, job: str | Mapping[str, Any]) -> str:
        if isinstance(job, str):
            return self.settings.privacy_url(f"/jobs/{quote(checked_job_id(job), safe='')}/content")
        normalized = normalize_job(job)
        return normalized.get("downloadUrl") or self._content_url(str(normalized["jobId"]))

    def _open_download(self, url: str) -> requests.Response:
        left_api_host = False
        for _ in range(MAX_DOWNLOAD_REDIRECTS + 1):
            target = resolve_download_target(self.settings, url, left_api_host=left_api_host)
            left_api_host = left_api_host or not target.authenticated
            response = self._fetch_download(target)
            if not response.is_redirect:
                return response
            # Redirects are followed here, one hop at a time, so every hop is parsed, allow-listed and
            # sent without credentials unless it is still the API host.
            url = urljoin(target.url.url, response.headers["Location"])
            response.close()
        raise PrivacyTerminalError(
            "Too many redirects on a content download", status=None, error_code=None, detail=None
        )

    def _fetch_download(self, target: DownloadTarget) -> requests.Response:
        operation = "GET content"
        if target.authenticated:
            return self._read("GET", target.url.url, operation=operation, stream=True, redirect_ok=True)

        def fetch_anonymously() -> requests.Response:
            prepared = self._download_session.prepare_request(
                requests.Request("GET", target.url.url, auth=HeaderAuth(None))
            )
            self._confirm_destination(prepared, target.url)
            try:
                response = self._download_session.send(
                    prepared, stream=True, timeout=self.settings.timeout, allow_redirects=False
                )
            except requests.RequestException as err:
                raise _transport_error(err, operation) from None
            if not (_is_success(response.status_code) or response.is_redirect):
                error = classify_error(
                    response.status_code, response.content, response.headers, operation=operation
                )
                response.close()
                raise error
            return response

        return self._retrying()(fetch_anonymously)

    @staticmethod
    def _confirm_destination(prepared: requests.PreparedRequest, checked: CheckedUrl) -> None:
        """The host requests will connect to is the one that was checked, and nothing authenticates."""
        parsed = parse_url(prepared.url or "")
        destination = (parsed.scheme, (parsed.host or "").strip("[]").lower(), parsed.port or checked.port)
        if destination != checked.origin or "Authorization" in prepared.headers:
            raise DownloadRefusedError("The HTTP library would send the download elsewhere; refused.")

    @staticmethod
    def _iter_chunks(response: requests.Response, chunk_size: int) -> Iterator[bytes]:
        try:
            for chunk in response.iter_content(chunk_size=chunk_size):
                if chunk:
                    yield chunk
        except requests.RequestException as err:
            raise _transport_error(err, "content download") from None

    def submit_consent(self, payload: Mapping[str, Any]) -> None:
        """``POST /consent`` (opt-out of sale): 202 with no body, no job to wait on. Sent exactly once."""
        self._write(
            self.settings.privacy_url("/consent"),
            payload,
            operation="POST /consent",
            submitted=[],
            recover_by="Nothing to list for consent: resending the same values is harmless",
        )
        self.log.info("Consent submitted for %d namespaces", len(payload.get("entities") or []))

    # ---------------------------------------------------------------- Data Hygiene (alpha jobs API)

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
        url = self.settings.hygiene_url(f"/jobs/{quote(checked_job_id(job_id), safe='')}")
        return normalize_job(self._read_json(url, operation="GET hygiene /jobs/{jobId}", hygiene=True))

    def iter_hygiene_jobs(
        self,
        *,
        regulation: str | None = None,
        page_size: int | None = None,
        **filters: Unpack[JobListFilters],
    ) -> Iterator[dict[str, Any]]:
        size = self.list_page_size(self.settings, page_size)
        yield from self._iter_list(job_list_request(HYGIENE_JOBS, size, regulation=regulation, **filters))

    def summarize_hygiene_jobs(self, job_ids: list[str], **window: Unpack[SummaryWindow]) -> dict[str, Any]:
        """Status counts over the given hygiene jobs from the hygiene list endpoint."""
        return self._summarize(HYGIENE_JOBS, {"hygiene": job_ids}, window)

    # ---------------------------------------------------------------- Data Lifecycle work orders

    def create_workorder(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """
        ``POST /workorder`` (record delete). Sent exactly once: Adobe takes no idempotency key.

        :raises PrivacyOutcomeUnknownError: timeout, dropped connection, 5xx, or a 2xx without a
            ``workorderId``: list with ``search=<displayName>`` before posting again.
        """
        operation = "POST /workorder"
        recover_by = "List work orders with search=<displayName> of this payload"
        response = self._write(
            self.settings.hygiene_url("/workorder"),
            payload,
            operation=operation,
            submitted=[],
            recover_by=recover_by,
            hygiene=True,
        )
        order = parse_json_body(response.content)
        if not order.get("workorderId"):
            raise PrivacyOutcomeUnknownError(
                f"{operation} answered {response.status_code} without a workorderId. {recover_by}.",
                operation=operation,
            )
        self.log.info(
            "%s created %s (%s identities)", operation, order["workorderId"], order.get("operationCount")
        )
        return order

    def get_workorder(self, workorder_id: str) -> dict[str, Any]:
        """``GET /workorder/{id}``, with ``productStatusDetails``; status lower-cased."""
        url = self.settings.hygiene_url(f"/workorder/{quote(checked_job_id(workorder_id), safe='')}")
        return WorkOrderPager.normalize(self._read_json(url, operation="GET /workorder/{id}", hygiene=True))

    def iter_workorders(
        self, *, page_size: int = MAX_WORKORDER_PAGE_SIZE, **filters: Unpack[WorkOrderListFilters]
    ) -> Iterator[dict[str, Any]]:
        """Record-delete work orders (0-based pages of at most 100), each once."""
        yield from self._iter_list(workorder_list_request(page_size, **filters))

    def summarize_workorders(
        self, workorder_ids: list[str], *, from_date: Date = None, to_date: Date = None
    ) -> dict[str, Any]:
        """Status counts over the given work orders (terminal: completed, failed) from the list."""
        window: SummaryWindow = {"from_date": from_date, "to_date": to_date}
        return self._summarize(WORK_ORDERS, {"workorder": workorder_ids}, window)

    def get_hygiene_quota(self, quota_type: str | None = None) -> dict[str, Any]:
        """``GET /quota`` (optionally one ``quotaType``, e.g. ``dailyConsumerDeleteIdentitiesQuota``)."""
        params = {"quotaType": quota_type} if quota_type else None
        return self._read_json(
            self.settings.hygiene_url("/quota"), operation="GET /quota", params=params, hygiene=True
        )
