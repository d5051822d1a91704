"""What the sync and async hooks share that is about Airflow, not about the wire: identity, the
connection form, and the page size each hook instance has learned."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from airflow.sdk import BaseHook

from adobe_privacy.get_provider_info import UI_FIELD_BEHAVIOUR
from adobe_privacy.protocol import (
    CONN_TYPE,
    DEFAULT_CONN_ID,
    MAX_PAGE_SIZE,
    ListKind,
    ListPager,
    ListRequest,
    PrivacyConnectionSettings,
    ReadRetryPolicy,
    SummaryWindow,
    summary_walk,
)
from adobe_privacy.protocol.jobs import Walk


class PrivacyHookBase(BaseHook):
    """
    Base of :class:`PrivacyServiceHook` and :class:`PrivacyServiceAsyncHook`.

    The hooks stand on ``BaseHook``, not on the HTTP provider's ``HttpHook``: ``HttpHook.get_conn``
    would send the connection's login and password as Basic auth and turn every extra key (org id,
    scopes, hosts) into an HTTP header, and ``HttpHook.run`` follows redirects with the session's
    headers. Adobe needs an IMS bearer token per request, no redirects with credentials, and its own
    error classification, so the hooks own their ``requests`` / ``aiohttp`` sessions instead of
    overriding HttpHook's internals.
    """

    conn_name_attr = "adobe_privacy_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = CONN_TYPE

    def __init__(
        self,
        adobe_privacy_conn_id: str = default_conn_name,
        *,
        retry_policy: ReadRetryPolicy | None = None,
        sleep: Callable[[float], Any] = time.sleep,
        clock: Callable[[], float] = time.time,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.adobe_privacy_conn_id = adobe_privacy_conn_id
        self.retry_policy = retry_policy or ReadRetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._learned_page_size: int | None = None

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """Relabel login/password/host, hide schema/port, and show a JSON example of the extra.

        The form is declared once, in :mod:`adobe_privacy.get_provider_info` (what Airflow 3.2+ reads).
        """
        return {
            "hidden_fields": UI_FIELD_BEHAVIOUR["hidden-fields"],
            "relabeling": UI_FIELD_BEHAVIOUR["relabeling"],
            "placeholders": UI_FIELD_BEHAVIOUR["placeholders"],
        }

    def list_page_size(self, settings: PrivacyConnectionSettings, requested: int | None = None) -> int:
        """The page size of a list call: the caller's, else what this hook learned, else the
        connection's ``page_size`` extra, else 1000. Never more than a size the server refused."""
        size = requested or settings.page_size or MAX_PAGE_SIZE
        return min(size, self._learned_page_size) if self._learned_page_size else size

    def _pager(self, settings: PrivacyConnectionSettings, request: ListRequest) -> ListPager:
        """The pager of one list walk; a page-size fall-back it makes is remembered by this hook."""
        return request.kind.pager(
            request.page_size, settings.page_base, on_fall_back=self._remember_page_size
        )

    def _summary_walk(
        self,
        settings: PrivacyConnectionSettings,
        kind: ListKind,
        wanted: Mapping[str, list[str]],
        window: SummaryWindow,
    ) -> Walk[dict[str, Any]]:
        """The status-summary walk over ``wanted`` ids of one kind of list; the hook only fetches its pages."""
        return summary_walk(
            kind,
            wanted,
            from_date=window["from_date"],
            to_date=window["to_date"],
            page_base=settings.page_base,
            page_size=min(self.list_page_size(settings, window.get("page_size")), kind.max_page_size),
            on_fall_back=self._remember_page_size,
        )

    def _remember_page_size(self, size: int) -> None:
        """A page answered at ``size`` after a fall-back: keep it for this hook's life."""
        if self._learned_page_size is None or size < self._learned_page_size:
            self.log.warning(
                "Connection %s refused the list page size; using %d from now on (set extra.page_size "
                "to make it permanent)",
                self.adobe_privacy_conn_id,
                size,
            )
            self._learned_page_size = size
