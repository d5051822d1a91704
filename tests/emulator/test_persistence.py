"""State survives a restart: jobs, their lifecycle position, the clock offset and issued tokens."""

from __future__ import annotations

import httpx
import pytest
from privacy_emulator.testing import EmulatorServer

from tests.emulator.conftest import CONSENT, JOBS, job_request


@pytest.mark.slow
def test_state_survives_a_restart(tmp_path):
    with EmulatorServer(tmp_path / "state.sqlite", settings={"seed": 7}) as server:
        token = server.token()
        headers = server.headers(token)
        created = httpx.post(f"{server.base_url}{JOBS}", json=job_request(server.org_id), headers=headers)
        assert created.status_code == 202
        httpx.post(
            f"{server.base_url}{CONSENT}",
            json={"optOutOfSale": True, "entities": [{"nameSpace": "ECID", "values": ["1"]}]},
            headers=headers,
        )
        server.advance_clock(3600)
        before = httpx.get(f"{server.base_url}{JOBS}", params={"regulation": "ccpa"}, headers=headers).json()
        detail_before = httpx.get(
            f"{server.base_url}{JOBS}/{before['jobDetails'][0]['jobId']}", headers=headers
        ).json()
        old_pid = server.pid
        server.restart()
        assert server.pid != old_pid
        clock = httpx.get(f"{server.base_url}/_emulator/clock").json()
        assert clock["offset_seconds"] == 3600
        after = httpx.get(f"{server.base_url}{JOBS}", params={"regulation": "ccpa"}, headers=headers)
        assert after.status_code == 200  # the token issued before the restart is still valid
        assert after.json() == before
        detail_after = httpx.get(f"{server.base_url}{JOBS}/{detail_before['jobId']}", headers=headers).json()
        assert detail_after == detail_before
        stats = server.stats()
        assert stats["jobs_total"] == 3 and stats["consent_records"] == 1


@pytest.mark.slow
def test_start_failure_reports_the_server_output(tmp_path):
    server = EmulatorServer(tmp_path / "state.sqlite", settings={"page_base": 5})
    try:
        server.start()
    except RuntimeError as error:
        assert "page_base" in str(error)
    else:
        raise AssertionError("an invalid setting must stop the emulator from starting")
    finally:
        server.close()
