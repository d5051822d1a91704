"""IMS token: cached per connection, renewed before expiry, renewed once after a 401, masked."""

from __future__ import annotations

import pytest
from adobe_privacy.exceptions import PrivacyAuthError
from adobe_privacy.hooks import PrivacyServiceHook
from adobe_privacy.protocol import TOKEN_CACHE
from airflow.sdk.log import redact

from tests.provider.helpers import JOBS_ROUTE, REGULATION, calls

TOKEN_ROUTE = "POST /ims/token/v3"


class FakeClock:
    def __init__(self, start: float) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now


def list_one(hook: PrivacyServiceHook) -> list[dict]:
    return list(hook.iter_jobs(REGULATION, page_size=1))


def test_token_is_cached_across_hooks_and_renewed_before_expiry(emu):
    emu.configure(token_ttl_seconds=1000)
    clock = FakeClock(1_000_000.0)
    list_one(PrivacyServiceHook(clock=clock))
    list_one(PrivacyServiceHook(clock=clock))  # a second hook on the same connection reuses the token
    assert calls(emu, TOKEN_ROUTE) == {"200": 1}

    clock.now += 850  # inside the lifetime, before the renewal margin (10% of 1000 s)
    list_one(PrivacyServiceHook(clock=clock))
    assert calls(emu, TOKEN_ROUTE) == {"200": 1}

    clock.now += 60  # within 100 s of expiry: renewed before the gateway could refuse it
    list_one(PrivacyServiceHook(clock=clock))
    assert calls(emu, TOKEN_ROUTE) == {"200": 2}
    assert calls(emu, f"GET {JOBS_ROUTE}") == {"200": 4}


def test_token_expired_at_the_gateway_is_renewed_once_and_the_call_succeeds(emu, hook):
    emu.configure(token_ttl_seconds=600)
    list_one(hook)
    emu.advance_clock(601)  # the emulator now refuses our cached token; the hook's clock does not know

    list_one(hook)

    assert calls(emu, f"GET {JOBS_ROUTE}") == {"200": 2, "401": 1}
    assert calls(emu, TOKEN_ROUTE) == {"200": 2}


def test_wrong_client_secret_raises_auth_error_without_the_secret(emu, connection_with):
    conn_id = connection_with(password="not-the-secret")
    hook = PrivacyServiceHook(conn_id)

    with pytest.raises(PrivacyAuthError) as err:
        list_one(hook)

    assert err.value.status == 401
    assert "not-the-secret" not in str(err.value)
    assert calls(emu, f"GET {JOBS_ROUTE}") == {}  # never reached the API without a token
    ok, message = hook.test_connection()
    assert not ok and "401" in message


def test_token_is_masked_as_soon_as_it_is_received(emu, hook):
    list_one(hook)
    token = TOKEN_CACHE.get(hook.settings.cache_key, now=0).value

    assert token not in str(redact(f"Authorization: Bearer {token}"))


def test_test_connection_gets_a_token_and_lists_one_job(emu, hook):
    assert hook.test_connection() == (True, "Token issued and GET /jobs answered.")
    assert calls(emu, f"GET {JOBS_ROUTE}") == {"200": 1}
