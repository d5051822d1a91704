"""Errors never carry an identity value of the batch being sent, however the server echoes it.

Unit level: a seeded fuzzer embeds the batch's values (phones with any separators, custom ids,
emails in any case) in error text. Over HTTP: a stand-in API host answers POSTs with Adobe-shaped
error bodies that echo the values back; the hook's errors (message, detail, code) hold none of them.
"""

from __future__ import annotations

import json
import random
import re

import pytest
from adobe_privacy.exceptions import PrivacyOutcomeUnknownError, PrivacyTerminalError
from adobe_privacy.hooks import PrivacyServiceHook
from adobe_privacy.protocol import ReadRetryPolicy, identity_values, scrub

from tests.provider.helpers import make_payload
from tests.provider.recording_server import Answer, RecordingServer

SEED = 11
PHONE = "+44 20 7946 0958"
CUSTOM = "LA00000007"


def _random_identity(rng: random.Random) -> str:
    kind = rng.choice(["phone", "custom", "email", "ecid"])
    if kind == "phone":
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(9, 13)))
        cut = sorted(rng.sample(range(1, len(digits)), 3))
        parts = [digits[: cut[0]], digits[cut[0] : cut[1]], digits[cut[1] : cut[2]], digits[cut[2] :]]
        return "+" + rng.choice([" ", "-", ".", ""]).join(parts)
    if kind == "custom":
        return rng.choice(["LA", "CRM-", "u_"]) + "".join(
            rng.choice("0123456789ABC") for _ in range(rng.randint(4, 10))
        )
    if kind == "email":
        return f"{rng.choice(['jane', 'Max.Mustermann', 'o'])}{rng.randint(0, 99)}@example.test"
    return "".join(rng.choice("0123456789") for _ in range(38))


def _echo_forms(value: str, rng: random.Random) -> list[str]:
    forms = [value, value.upper(), value.lower()]
    digits = re.sub(r"\D", "", value)
    if len(digits) >= 7 and len(digits) >= len(value) // 2:
        forms.append(digits)
        forms.append("+" + " ".join(digits[i : i + 3] for i in range(0, len(digits), 3)))
    return forms


def test_seeded_fuzz_no_identity_value_survives_scrubbing():
    rng = random.Random(SEED)
    for _ in range(300):
        values = {_random_identity(rng) for _ in range(rng.randint(1, 9))}
        text = " ".join(
            f"{rng.choice(['user', 'id', 'value', 'bad'])} {rng.choice(_echo_forms(v, rng))} {rng.choice([',', ';', ' is invalid'])}"
            for v in values
        )
        out = scrub(text, values) or ""
        for value in values:
            assert value.lower() not in out.lower(), (value, out)
            digits = re.sub(r"\D", "", value)
            if len(digits) >= 7:
                assert digits not in re.sub(r"\D", "", out.replace("[redacted]", "|")), (value, out)


def test_identity_values_are_read_from_every_payload_shape():
    payload = {
        "users": [{"userIDs": [{"value": PHONE}], "key": "k"}, {"userIds": [{"value": CUSTOM}]}],
        "entities": [{"values": ["o@example.test"]}],
        "namespacesIdentities": [{"namespace": {"code": "email"}, "IDs": ["w@example.test"]}],
        "identities": [{"namespace": {"code": "crm"}, "id": "CRM-9"}],
    }
    assert identity_values(payload) == {PHONE, CUSTOM, "o@example.test", "w@example.test", "CRM-9"}


@pytest.fixture
def echo_api(emu, monkeypatch):
    with RecordingServer("127.0.0.1") as api:
        value = {
            "conn_type": "adobe_privacy_service",
            "host": api.base_url,
            "login": emu.client_id,
            "password": emu.client_secret,
            "extra": {"org_id": emu.org_id, "ims_url": emu.base_url},
        }
        monkeypatch.setenv("AIRFLOW_CONN_ECHO", json.dumps(value))
        yield api, PrivacyServiceHook("echo", retry_policy=ReadRetryPolicy(max_attempts=1))


def _echoing_body(request_body: bytes, status: int) -> dict:
    sent = json.loads(request_body)
    values = sorted(identity_values(sent))
    echoed = "; ".join(f"{v} / {re.sub(r'[^0-9]', '', v)} / {v.upper()}" for v in values)
    return {
        "error_code": f"PRVCY-0000-{status}",
        "message": f"Rejected: {echoed}",
        "errors": [{"field": "users[0].userIDs[0].value", "message": echoed}],
    }


@pytest.mark.parametrize("status", [400, 422, 500, 503])
def test_create_jobs_errors_hold_no_identity_value(echo_api, status):
    api, hook = echo_api
    api.routes["/data/core/privacy/jobs"] = lambda r: Answer(status, _echoing_body(r.body, status))
    payload = make_payload("ORG@AdobeOrg", ["k1", "k2"])
    payload["users"][0]["userIDs"][0] = {"namespace": "phone", "value": PHONE, "type": "standard"}
    payload["users"][1]["userIDs"][0] = {"namespace": "loyalty", "value": CUSTOM, "type": "unregistered"}

    expected = PrivacyTerminalError if status < 500 else PrivacyOutcomeUnknownError
    with pytest.raises(expected) as err:
        hook.create_jobs(payload)

    shown = " ".join(
        str(part)
        for part in (err.value, getattr(err.value, "detail", ""), getattr(err.value, "error_code", ""))
    )
    assert "[redacted]" in shown or status >= 500
    for value in (PHONE, CUSTOM, "442079460958", "k1@example.test"):
        assert value.lower() not in shown.lower()


def test_work_order_errors_hold_no_identity_value(echo_api):
    api, hook = echo_api
    api.routes["/data/core/hygiene/workorder"] = lambda r: Answer(400, _echoing_body(r.body, 400))

    with pytest.raises(PrivacyTerminalError) as err:
        hook.create_workorder(
            {
                "displayName": "b-1",
                "action": "delete_identity",
                "datasetId": "ALL",
                "namespacesIdentities": [{"namespace": {"code": "phone"}, "IDs": [PHONE, CUSTOM]}],
            }
        )

    assert (
        PHONE not in str(err.value) and CUSTOM not in str(err.value) and "442079460958" not in str(err.value)
    )
