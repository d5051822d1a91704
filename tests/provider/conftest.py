"""Fixtures for the provider tests: every test talks to the session emulator over real HTTP.

Each test starts from a reset emulator (no jobs, faults or clock offset, launch settings) and an
empty token cache, so tests never see each other's state.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

import pytest
from adobe_privacy.hooks import PrivacyServiceHook
from adobe_privacy.protocol import TOKEN_CACHE, ReadRetryPolicy

from tests.provider.helpers import SleepRecorder


@pytest.fixture
def emu(emulator, airflow_connections):
    emulator.reset()
    TOKEN_CACHE.clear()
    yield emulator
    emulator.clear_faults()
    TOKEN_CACHE.clear()


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def hook(emu, sleeps) -> PrivacyServiceHook:
    return PrivacyServiceHook(retry_policy=ReadRetryPolicy(max_attempts=4), sleep=sleeps)


@pytest.fixture
def connection_with(emu, monkeypatch) -> Callable[..., str]:
    """Register a variant of the default connection (``extra`` keys replaced); returns its conn id."""
    base = json.loads(os.environ["AIRFLOW_CONN_ADOBE_PRIVACY_DEFAULT"])
    counter = iter(range(1000))

    def register(**changes) -> str:
        conn_id = f"adobe_privacy_variant_{next(counter)}"
        value = {**base, "extra": {**base["extra"]}}
        for key, val in changes.items():
            if key in ("host", "login", "password"):
                value[key] = val
            else:
                value["extra"][key] = val
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
        return conn_id

    return register


@pytest.fixture
def stand_in(emu, monkeypatch):
    """A recording stand-in for the API host (answers chosen by the test), IMS from the emulator.

    Yields ``(server, connect)``; ``connect(**extra)`` registers a connection to it and returns its id.
    """
    from tests.provider.recording_server import RecordingServer

    counter = iter(range(1000))
    with RecordingServer("127.0.0.1") as api:

        def connect(**extra) -> str:
            conn_id = f"adobe_privacy_stand_in_{next(counter)}"
            value = {
                "conn_type": "adobe_privacy_service",
                "host": api.base_url,
                "login": emu.client_id,
                "password": emu.client_secret,
                "extra": {"org_id": emu.org_id, "ims_url": emu.base_url, **extra},
            }
            monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(value))
            return conn_id

        yield api, connect
