"""Hooks for Adobe Experience Platform Privacy Service, the Data Hygiene API and its work orders.

:class:`PrivacyServiceHook` (sync, ``requests``) is what operators and tasks use;
:class:`PrivacyServiceAsyncHook` (``aiohttp``) is what triggers use. Both only send: what to send
and what an answer means (token rule, errors, retries, paging, summaries, URL checks) is decided
once, in :mod:`adobe_privacy.protocol`. Why they stand on ``BaseHook`` rather than ``HttpHook``:
see :class:`~adobe_privacy.hooks.base.PrivacyHookBase`.

Connection (conn type ``adobe_privacy_service``, default id ``adobe_privacy_default``): host = API
base URL with scheme, login = client id (also the x-api-key), password = client secret, extra =
``org_id``, ``ims_url``, ``scopes``, ``sandbox_name`` (default ``prod``), ``download_hosts``, and
optionally ``privacy_path``, ``hygiene_path``, ``timeout``, ``page_base``, ``page_size``,
``journal_url``. As an environment variable::

    AIRFLOW_CONN_ADOBE_PRIVACY_DEFAULT='{"conn_type": "adobe_privacy_service",
        "host": "https://platform.adobe.io", "login": "<client id>", "password": "<client secret>",
        "extra": {"org_id": "<org>@AdobeOrg", "sandbox_name": "prod"}}'
"""

from __future__ import annotations

from adobe_privacy.hooks.asynchronous import JournalResponse, PrivacyServiceAsyncHook
from adobe_privacy.hooks.sync import PrivacyServiceHook

__all__ = ["JournalResponse", "PrivacyServiceAsyncHook", "PrivacyServiceHook"]
