"""A person's view of the console, in headless Chromium, on the stack `make up` starts.

`scripts/up.py` brings the stack up (its own state folder, a free port); a second call says it is
already running. The nightly DAG runs on the demo input through the real scheduler and triggerer; the
request index is then built with `scripts/rebuild_index.py` (until the DAG steps write it themselves).
The browser logs in, opens "Privacy requests" from Airflow's navigation, searches a key of the input
and checks what is on screen: jobs, products, due date, evidence links, links to the run's grid; and
the board of open requests. Screenshots go to test-artifacts/console/. `scripts/down.py` stops exactly
what was started.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import REPO
from tests.deployment.stack import AirflowApi

pytestmark = [pytest.mark.slow, pytest.mark.deployment]

ARTIFACTS = REPO / "test-artifacts" / "console"
NIGHTLY = "privacy_requests_nightly"
ROWS = 120
# Fewer jobs a day than the input needs: the batches over budget are postponed, so the board always has
# open requests (whatever the emulator's seeded errors do).
DAILY_JOB_BUDGET = 40
RUN_TIMEOUT_S = 150


def _script(name: str, *args: str, env: dict[str, str] | None = None, timeout: float = 300):
    return subprocess.run([sys.executable, str(REPO / "scripts" / name), *args], capture_output=True, text=True,
                          timeout=timeout, env=env, cwd=REPO)


def _env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        name, _, value = line.partition("=")
        values[name] = json.loads(value) if value.startswith('"') else value
    return values


@pytest.fixture(scope="module")
def chromium_installed() -> None:
    result = subprocess.run(["bash", str(REPO / "deploy" / "ensure-chromium.sh")], capture_output=True, text=True,
                            timeout=600)
    if result.returncode != 0:
        pytest.skip(f"COULD NOT INSTALL CHROMIUM, UI CHECK NOT RUN: {(result.stdout + result.stderr)[-1500:]}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    state_dir = tmp_path_factory.mktemp("up")
    up = _script("up.py", "--state-dir", str(state_dir), "--port", "0", "--rows", str(ROWS),
                 "--daily-job-budget", str(DAILY_JOB_BUDGET))
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        again = _script("up.py", "--state-dir", str(state_dir), timeout=60)
        assert again.returncode == 0 and "already running" in again.stdout, again.stdout + again.stderr
        yield state_dir, _env_file(state_dir / "up.env")
    finally:
        state = json.loads((state_dir / "state.json").read_text()) if (state_dir / "state.json").exists() else None
        down = _script("down.py", "--state-dir", str(state_dir), timeout=120)
        assert down.returncode == 0, down.stdout + down.stderr
        if state:
            sys.path.insert(0, str(REPO / "scripts"))
            from down import alive

            assert not [p["name"] for p in state["processes"] if alive(p)], "make down left processes running"
        assert not (state_dir / "up.env").exists()


def test_console_in_the_airflow_ui_after_a_nightly_run(stack, chromium_installed):
    from tests.deployment.browser import Chromium

    state_dir, login = stack
    url, user, password = login["AIRFLOW_UI_URL"], login["AIRFLOW_UI_USER"], login["AIRFLOW_UI_PASSWORD"]
    assert url.startswith("http://127.0.0.1:")
    api = AirflowApi.login(url, user, password)
    api.client.timeout = httpx.Timeout(60)  # two shared cores: the api-server can be slow while tasks run
    input_csv = next(state_dir.glob("requests-*.csv"))
    day = input_csv.stem.removeprefix("requests-")
    # input_uri is given because the DAG's default input template needs a logical date (see the report).
    run_id = api.trigger(NIGHTLY, {"input_uri": f"s3://privacy-inbox/requests/{day}/", "poll_interval": 5,
                                   "wait_timeout": 120})
    run = api.wait_for_run(NIGHTLY, run_id, timeout=RUN_TIMEOUT_S)
    assert run["state"] == "success", api.task_instances(NIGHTLY, run_id)

    env = {**os.environ, **_env_file(state_dir / "airflow.env")}
    rebuilt = _script("rebuild_index.py", "--cache-dir", str(state_dir / "rebuild-cache"), env=env, timeout=180)
    assert rebuilt.returncode == 0, rebuilt.stderr[-3000:]

    # A key of the input whose record has jobs, chosen through the console's own API.
    with open(input_csv, newline="") as handle:
        keys = list(dict.fromkeys(row["request_id"] for row in csv.DictReader(handle) if row["request_id"]))
    record = None
    for key in keys:
        response = api.client.get(f"/privacy/api/v1/requests/{key}")
        if response.status_code == 200 and response.json()["processing_details"]["jobs"]:
            record = response.json()
            break
    assert record is not None, "no key of the input has jobs in the index"
    key = record["request_id"]
    board = api.get("/privacy/api/v1/board")
    assert board["open"] > 0, "batches over the day's job budget leave requests open (postponed)"
    assert any(item["status"] == "postponed" for item in board["items"])

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with Chromium(log_path=ARTIFACTS / "chromium.log") as browser, browser.page() as page:
        page.navigate(f"{url}/")
        page.type_into("input[name=username]", user)
        page.type_into("input[name=password]", password)
        page.click_text("Sign in")
        page.wait_for("!location.pathname.startsWith('/auth/')", what="the login to redirect into the UI")
        page.click_text("Privacy requests", selector="a, button")
        page.wait_for("location.pathname.endsWith('/plugin/privacy-requests')", what="the console's route")
        frame = "document.querySelector('iframe[src$=\"/privacy/\"]')"
        page.wait_for(f"!!{frame} && !!{frame}.contentDocument.getElementById('board-table')",
                      what="the console page with its board inside Airflow's UI", timeout=60)
        page.screenshot(ARTIFACTS / "board.png")
        doc = f"{frame}.contentDocument"
        rows = page.evaluate(f"{doc}.querySelectorAll('#board-table tr').length - 1")
        assert rows == min(board["open"], 200)
        assert page.evaluate(f"!!{doc}.getElementById('board-chart')")
        first_open = page.evaluate(f"{doc}.querySelector('#board-table a[data-key]').textContent")
        assert first_open == board["items"][0]["request_id"]  # overdue first

        page.evaluate(f"{doc}.getElementById('search').value = {json.dumps(key)}")
        page.evaluate(f"{doc}.getElementById('search-form').requestSubmit()")
        page.wait_for(f"{doc}.getElementById('trail-jobs') !== null", what=f"the trail of {key}")
        trail = page.evaluate(f"{doc}.getElementById('trail').innerText")
        page.screenshot(ARTIFACTS / "trail.png")
        for job in record["processing_details"]["jobs"]:
            assert job["job_id"] in trail
            for product in job["products"]:
                assert product["product"] in trail
        assert page.evaluate(f"{doc}.getElementById('trail-due').innerText") == record["expected_by"]
        evidence = page.evaluate(f"[...{doc}.querySelectorAll('#trail-evidence a.evidence')].map(a => a.href)")
        # Archived objects are shown as s3:// addresses (they need S3 credentials); the evidence pack is a
        # download from the console itself, behind Airflow's auth.
        packs = [href for href in evidence if "/privacy/api/v1/requests/" in href]
        assert len(packs) == 2 and all(href.startswith(url) for href in packs), evidence
        assert all(href.startswith("s3://") for href in evidence if href not in packs), evidence
        assert {e["uri"] for e in record["evidence"] if e["uri"].startswith("s3://")} == set(evidence) - set(packs)
        grid = page.evaluate(f"[...{doc}.querySelectorAll('#trail-runs a')].map(a => a.getAttribute('href'))")
        assert any(href.startswith(f"/dags/{NIGHTLY}/runs/") for href in grid)
    api.close()
