"""Reads are retried (429 honouring Retry-After, 5xx, bounded); writes are sent exactly once."""

from __future__ import annotations

import socket

import pytest
from adobe_privacy.exceptions import (
    PrivacyBackPressureError,
    PrivacyOutcomeUnknownError,
    PrivacyTerminalError,
    PrivacyTransientError,
    SubmittedUser,
)
from adobe_privacy.hooks import PrivacyServiceHook
from adobe_privacy.protocol import ReadRetryPolicy

from tests.provider.helpers import JOBS_ROUTE, REGULATION, calls, make_payload

LIST = f"GET {JOBS_ROUTE}"
CREATE = f"POST {JOBS_ROUTE}"


def test_429_is_retried_and_each_wait_honours_retry_after(emu, hook, sleeps):
    emu.add_fault(route=LIST, kind="429", times=2, retry_after=7)

    assert list(hook.iter_jobs(REGULATION)) == []

    assert calls(emu, LIST) == {"429": 2, "200": 1}
    assert len(sleeps.waits) == 2
    assert all(wait >= 7 for wait in sleeps.waits)


def test_a_retry_after_longer_than_the_policy_allows_is_handed_to_the_caller(emu, hook, sleeps):
    emu.add_fault(route=LIST, kind="429", times=1, retry_after=3600)

    with pytest.raises(PrivacyBackPressureError) as err:
        list(hook.iter_jobs(REGULATION))

    assert err.value.retry_after == 3600
    assert calls(emu, LIST) == {"429": 1}
    assert sleeps.waits == []  # an hour is not spent asleep in a worker slot


def test_5xx_then_success_backs_off_exponentially_with_jitter(emu, hook, sleeps):
    emu.add_fault(route=LIST, kind="5xx", times=3, status=503)

    assert list(hook.iter_jobs(REGULATION)) == []

    assert calls(emu, LIST) == {"503": 3, "200": 1}
    first, second, third = sleeps.waits
    assert 0.5 <= first <= 1 and 1 <= second <= 2 and 2 <= third <= 4


def test_persistent_5xx_gives_up_after_the_bounded_attempts(emu, sleeps):
    emu.add_fault(route=LIST, kind="5xx", status=502)
    hook = PrivacyServiceHook(retry_policy=ReadRetryPolicy(max_attempts=3), sleep=sleeps)

    with pytest.raises(PrivacyTransientError) as err:
        list(hook.iter_jobs(REGULATION))

    assert err.value.status == 502
    assert calls(emu, LIST) == {"502": 3}
    assert len(sleeps.waits) == 2


def test_validation_error_is_terminal_carries_the_code_and_no_identity(emu, hook, sleeps):
    payload = make_payload(emu.org_id, ["bad-type"])
    payload["users"][0]["userIDs"][0]["type"] = "not-a-qualifier"

    with pytest.raises(PrivacyTerminalError) as err:
        hook.create_jobs(payload)

    assert err.value.status == 400
    assert err.value.error_code and "400" in err.value.error_code
    assert "users[0]" in (err.value.detail or "")
    assert "@example.test" not in str(err.value)
    assert calls(emu, CREATE) == {"400": 1}
    assert sleeps.waits == []


def test_post_429_is_back_pressure_and_not_retried(emu, hook, sleeps):
    emu.add_fault(route=CREATE, kind="429", times=1, retry_after=30)

    with pytest.raises(PrivacyBackPressureError) as err:
        hook.create_jobs(make_payload(emu.org_id, ["u1"]))

    assert (err.value.status, err.value.retry_after, err.value.daily_limit) == (429, 30, False)
    assert calls(emu, CREATE) == {"429": 1}
    assert emu.stats()["jobs_total"] == 0
    assert sleeps.waits == []


def test_document_rate_limit_1030_is_back_pressure(emu, hook):
    emu.add_fault(route=CREATE, kind="1030", times=1)

    with pytest.raises(PrivacyBackPressureError) as err:
        hook.create_jobs(make_payload(emu.org_id, ["u1"]))

    assert err.value.status == 400 and "1030" in err.value.error_code and not err.value.daily_limit
    assert calls(emu, CREATE) == {"400": 1}


def test_daily_cap_is_back_pressure_marked_daily(emu, hook):
    emu.configure(daily_job_cap=2)
    hook.create_jobs(make_payload(emu.org_id, ["u1", "u2"]))

    with pytest.raises(PrivacyBackPressureError) as err:
        hook.create_jobs(make_payload(emu.org_id, ["u3"]))

    assert err.value.status == 400 and err.value.daily_limit
    assert err.value.error_code == "PRVCY-DAILY-LIMIT-400"
    assert emu.stats()["jobs_total"] == 2


def test_post_5xx_is_outcome_unknown_and_sent_once(emu, hook, sleeps):
    emu.add_fault(route=CREATE, kind="5xx", times=1, status=500)

    with pytest.raises(PrivacyOutcomeUnknownError) as err:
        hook.create_jobs(make_payload(emu.org_id, ["u1"], actions=("access", "delete")))

    assert err.value.submitted == [SubmittedUser("u1", ("access", "delete"))]
    assert calls(emu, CREATE) == {"500": 1}
    assert sleeps.waits == []


def test_post_dropped_after_commit_is_outcome_unknown_and_never_sent_again(emu, hook):
    emu.add_fault(route=CREATE, kind="drop_after_commit", times=1)
    keys = ["s1", "s2", "s3"]

    with pytest.raises(PrivacyOutcomeUnknownError) as err:
        hook.create_jobs(make_payload(emu.org_id, keys))

    assert [user.user_key for user in err.value.submitted] == keys
    assert sum(calls(emu, CREATE).values()) == 1  # one POST, no blind retry
    stats = emu.stats()
    assert stats["jobs_total"] == 3  # committed: the caller must reconcile, not resubmit
    assert {f"{key}|access" for key in keys} <= stats["jobs_per_user_action"].keys()
    assert "@example.test" not in str(err.value)


def _closed_port_url() -> str:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def test_post_to_an_unreachable_host_was_certainly_not_sent(emu, connection_with, sleeps):
    hook = PrivacyServiceHook(connection_with(host=_closed_port_url()), sleep=sleeps)
    hook._access_token()  # IMS is still the emulator: only the API host is down

    with pytest.raises(PrivacyTransientError) as err:
        hook.create_jobs(make_payload(emu.org_id, ["u1"]))

    assert err.value.request_sent is False
    assert not isinstance(err.value, PrivacyOutcomeUnknownError)
    assert sleeps.waits == []  # a write is never retried by the hook, even when it is safe


def test_post_without_a_token_because_ims_is_down_was_not_sent(emu, connection_with, sleeps):
    hook = PrivacyServiceHook(
        connection_with(ims_url=_closed_port_url()),
        retry_policy=ReadRetryPolicy(max_attempts=2),
        sleep=sleeps,
    )

    with pytest.raises(PrivacyTransientError) as err:
        hook.create_jobs(make_payload(emu.org_id, ["u1"]))

    assert err.value.request_sent is False and not isinstance(err.value, PrivacyOutcomeUnknownError)
    assert len(sleeps.waits) == 1  # the token request itself is a read: retried within the policy
    assert calls(emu, CREATE) == {}
