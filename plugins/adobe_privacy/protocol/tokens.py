"""The IMS token rule, once for both hooks: cache, renewal margin, and "a 401 renews the token once".

:func:`authorized_exchange` is a sans-I/O generator. It yields what must be sent next (a
:class:`TokenRequest` to IMS, or :class:`Authorized` with the bearer token for the API request) and
receives what came back (``send``) or the error it raised (``throw``). The sync hook drives it with
``requests``, the async hook with ``aiohttp``; neither holds a copy of the rule.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from adobe_privacy.exceptions import PrivacyAuthError, PrivacyServiceError
from adobe_privacy.protocol.errors import ims_error, is_expired_token, parse_json_body
from adobe_privacy.protocol.settings import PrivacyConnectionSettings

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


@dataclass(frozen=True)
class TokenRequest:
    """POST this form to IMS (no redirects, read retries apply) and send back the raw answer body."""

    url: str
    form: dict[str, str] = field(repr=False)


@dataclass(frozen=True)
class Authorized:
    """Send the API request with this bearer token and send back its result. ``fresh``: just issued."""

    token: str = field(repr=False)
    fresh: bool


Exchange = Generator["TokenRequest | Authorized", Any, Any]


def authorized_exchange(
    settings: PrivacyConnectionSettings, *, clock: Callable[[], float], cache: TokenCache = TOKEN_CACHE
) -> Exchange:
    """One authenticated request: a cached token, or a new one from IMS; after a 401, one renewal.

    A 401 comes from the gateway before the request reaches the service, so resending (even a POST)
    cannot create anything twice. An IMS failure is re-raised as seen from the API call
    (:func:`~adobe_privacy.protocol.errors.ims_error`): the API request was not sent.
    """
    for attempt in (1, 2):
        token = cache.get(settings.cache_key, clock())
        fresh = token is None
        if token is None:
            try:
                body = yield TokenRequest(settings.token_url, settings.token_form())
            except PrivacyServiceError as err:
                raise ims_error(err) from None
            token = parse_token_response(parse_json_body(body), now=clock())
            cache.put(settings.cache_key, token)
        try:
            return (yield Authorized(token.value, fresh))
        except PrivacyServiceError as err:
            if attempt == 1 and is_expired_token(err):
                cache.invalidate(settings.cache_key, token.value)
                continue
            raise
    raise AssertionError("unreachable")
