"""Test-wide setup shared by every layer's tests.

Airflow reads its configuration on first import, so the environment is fixed here, before any test
module imports airflow. Each pytest process gets its own Airflow home (and SQLite metadata DB) under
the repo-local, git-ignored `.airflow/`, so two test runs on one machine never share a database.

Fixtures that start servers bind them to 127.0.0.1 on free ports and stop them by PID:
- `emulator`: our Adobe Privacy Service + IMS emulator (session-wide; tests reset or isolate state).
- `s3_server`: moto in server mode, the local S3 endpoint.
- `airflow_connections`: `AIRFLOW_CONN_*` variables pointing Airflow at both.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from privacy_emulator.testing import privacy_connection, s3_connection

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_TEST_HOME = REPO / ".airflow" / f"pytest-{os.getpid()}"

os.environ["AIRFLOW_HOME"] = str(AIRFLOW_TEST_HOME)
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(REPO / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(REPO / "plugins")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{AIRFLOW_TEST_HOME}/airflow.db"
os.environ["AIRFLOW__CORE__FERNET_KEY"] = "yU9WRy0UbxvC8ibc3pZkYrclnsZvVApWVEW0OE4NbPI="
os.environ["AIRFLOW__API_AUTH__JWT_SECRET"] = "tests-only-jwt-secret-" + "0" * 42  # 64 bytes: what SHA512 signing asks
os.environ["AIRFLOW__LOGGING__LOGGING_LEVEL"] = "INFO"
AIRFLOW_TEST_HOME.mkdir(parents=True, exist_ok=True)

DEFAULT_CONN_ID = "adobe_privacy_default"


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(AIRFLOW_TEST_HOME, ignore_errors=True)


def pytest_collection_modifyitems(session, config, items):
    """Longest files first: with files spread over processes (`make test`), the real-process stack and the whole
    DAG runs start at once instead of leaving one process busy at the end while the others idle."""

    def weight(item) -> int:
        return 0 if item.get_closest_marker("deployment") else 1 if item.get_closest_marker("slow") else 2

    by_file: dict[str, int] = {}
    for item in items:
        path = item.nodeid.split("::", 1)[0]
        by_file[path] = min(by_file.get(path, 2), weight(item))
    items.sort(key=lambda item: by_file[item.nodeid.split("::", 1)[0]])  # stable: file order kept within a weight


@pytest.fixture(scope="session")
def airflow_db():
    """A fresh Airflow metadata DB for this pytest process (only for tests that run DAGs)."""
    from airflow.utils import db

    db.resetdb()
    yield


@pytest.fixture(scope="session")
def emulator(tmp_path_factory):
    """One emulator process for the session; tests that change faults or clock undo it themselves."""
    from privacy_emulator.testing import EmulatorServer

    with EmulatorServer(db_path=tmp_path_factory.mktemp("emulator") / "state.sqlite") as server:
        yield server


@pytest.fixture(scope="session")
def s3_server():
    from privacy_emulator.testing import MotoS3Server

    with MotoS3Server() as server:
        yield server


@pytest.fixture
def airflow_connections(emulator, s3_server, monkeypatch):
    for name, value in {**privacy_connection(emulator), **s3_connection(s3_server)}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return {"privacy": DEFAULT_CONN_ID, "aws": "aws_default"}
