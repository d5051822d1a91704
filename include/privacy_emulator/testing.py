"""Test helpers: run the emulator and a moto S3 server as subprocesses on free loopback ports.

``EmulatorServer`` and ``MotoS3Server`` are context managers used by ``tests/conftest.py``; admin calls
go over HTTP with httpx, exactly as any other client would make them. ``privacy_connection`` and
``s3_connection`` build the ``AIRFLOW_CONN_*`` variables pointing Airflow at them (the tests, the demo
and the benchmarks share this one shape).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from privacy_emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ORG_ID

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
STDERR_TAIL_CHARS = 4000
DEFAULT_SCOPE = "openid,AdobeID,read_organizations"


def free_port() -> int:
    """A port that was free on 127.0.0.1 a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Subprocess:
    """A server subprocess with its output in a log file, started and stopped by PID."""

    def __init__(self, name: str) -> None:
        self._name = name
        self._workdir = Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self._log_path = self._workdir / "server.log"
        self._process: subprocess.Popen | None = None

    def _spawn(self, command: list[str], env: dict[str, str] | None = None) -> None:
        log = self._log_path.open("ab")
        try:
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        finally:
            log.close()

    def _log_tail(self) -> str:
        try:
            return self._log_path.read_text(encoding="utf-8", errors="replace")[-STDERR_TAIL_CHARS:]
        except OSError:
            return ""

    def _wait_until_ready(self, url: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(
                    f"{self._name} exited with code {self._process.returncode} during start:\n{self._log_tail()}"
                )
            try:
                if httpx.get(url, timeout=1.0).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        self._terminate()
        raise RuntimeError(
            f"{self._name} did not answer {url} within {START_TIMEOUT_SECONDS} s:\n{self._log_tail()}"
        )

    def _terminate(self) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT_SECONDS)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None


class EmulatorServer(_Subprocess):
    """``python -m privacy_emulator`` on free ports; ``restart()`` keeps the database and the ports."""

    def __init__(
        self, db_path: Path | None = None, *, settings: dict | None = None, python: str = sys.executable
    ):
        super().__init__("privacy-emulator")
        self.db_path = Path(db_path) if db_path else self._workdir / "state.sqlite"
        self.settings = dict(settings or {})
        self.python = python
        self.port = free_port()
        self.blob_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.blob_base_url = f"http://127.0.0.1:{self.blob_port}"
        self.blob_host = f"127.0.0.1:{self.blob_port}"
        self.client_id = self.settings.get("client_id", DEFAULT_CLIENT_ID)
        self.client_secret = self.settings.get("client_secret", DEFAULT_CLIENT_SECRET)
        self.org_id = self.settings.get("org_id", DEFAULT_ORG_ID)
        self.api_key = self.settings.get("api_key") or self.client_id
        self._client = httpx.Client(base_url=self.base_url, timeout=30.0)

    def start(self) -> EmulatorServer:
        config_path = self._workdir / "settings.json"
        config_path.write_text(json.dumps(self.settings), encoding="utf-8")
        command = [
            self.python,
            "-m",
            "privacy_emulator",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--blob-port",
            str(self.blob_port),
            "--db",
            str(self.db_path),
            "--config",
            str(config_path),
        ]
        self._spawn(command, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        self._wait_until_ready(f"{self.base_url}/_emulator/health")
        return self

    def stop(self) -> None:
        self._terminate()

    def restart(self) -> EmulatorServer:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        self._client.close()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- clients' view -------------------------------------------------------------------------------
    def token(self) -> str:
        """A fresh access token from the emulator's IMS endpoint."""
        response = self._client.post(
            "/ims/token/v3",
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.client_secret,
                "scope": DEFAULT_SCOPE,
            },
        )
        response.raise_for_status()
        return response.json()["access_token"]

    def headers(self, token: str | None = None) -> dict[str, str]:
        """The gateway headers of an API call (a fresh token unless one is given)."""
        return {
            "Authorization": f"Bearer {token or self.token()}",
            "x-api-key": self.api_key,
            "x-gw-ims-org-id": self.org_id,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }

    def hygiene_headers(self, token: str | None = None, sandbox_name: str = "prod") -> dict[str, str]:
        """The gateway headers plus ``x-sandbox-name``, as the work-order API requires."""
        return {**self.headers(token), "x-sandbox-name": sandbox_name}

    # -- admin ---------------------------------------------------------------------------------------
    def _admin(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._client.request(method, f"/_emulator{path}", **kwargs)
        response.raise_for_status()
        return response.json()

    def stats(self) -> dict:
        return self._admin("GET", "/stats")

    def configure(self, **settings: Any) -> dict:
        return self._admin("PATCH", "/config", json=settings)

    def adobe_known_bugs(self, enabled: bool = True) -> dict:
        """Switch the flagged-org bugs on or off (links on unfinished and delete jobs)."""
        return self.configure(adobe_known_bugs=enabled)

    def add_fault(self, **fault: Any) -> str:
        return self._admin("POST", "/faults", json=fault)["id"]

    def clear_faults(self) -> None:
        self._admin("DELETE", "/faults")

    def advance_clock(self, seconds: float) -> None:
        self._admin("POST", "/clock/advance", json={"seconds": seconds})

    def reset(self) -> None:
        self._admin("POST", "/reset")

    def blob_requests(self) -> list[dict]:
        return self._admin("GET", "/blob-requests")


class MotoS3Server(_Subprocess):
    """``python -m moto.server`` on a free loopback port: the local S3 endpoint."""

    def __init__(self, python: str = sys.executable) -> None:
        super().__init__("moto-s3")
        self.python = python
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoS3Server:
        env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
        self._spawn([self.python, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)], env=env)
        self._wait_until_ready(f"{self.endpoint_url}/moto-api/")
        return self

    def stop(self) -> None:
        self._terminate()

    def __enter__(self) -> MotoS3Server:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
        shutil.rmtree(self._workdir, ignore_errors=True)


DEFAULT_PRIVACY_CONN_ID = "adobe_privacy_default"
DEFAULT_AWS_CONN_ID = "aws_default"


def privacy_connection(server: EmulatorServer, conn_id: str = DEFAULT_PRIVACY_CONN_ID) -> dict[str, str]:
    """The ``AIRFLOW_CONN_*`` variable of an ``adobe_privacy_service`` connection to ``server``."""
    extra = {
        "org_id": server.org_id,
        "ims_url": server.base_url,
        "scopes": DEFAULT_SCOPE,
        "sandbox_name": "prod",
        "download_hosts": [server.blob_host],
    }
    value = {
        "conn_type": "adobe_privacy_service",
        "host": server.base_url,
        "login": server.client_id,
        "password": server.client_secret,
        "extra": extra,
    }
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(value)}


def s3_connection(server: MotoS3Server, conn_id: str = DEFAULT_AWS_CONN_ID) -> dict[str, str]:
    """The ``AIRFLOW_CONN_*`` variable of an Amazon connection to the moto ``server``."""
    value = {
        "conn_type": "aws",
        "login": "testing",
        "password": "testing",
        "extra": {"endpoint_url": server.endpoint_url, "region_name": "us-east-1"},
    }
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(value)}


def local_airflow_env(airflow_home: Path, project: Path, *, archive_uri: str, input_uri: str) -> dict[str, str]:
    """The environment of an Airflow run on this machine against the emulator and a local S3: a private home
    with a SQLite DB, the project's dags and plugins, no examples, the archive and inbox Variables, moto's
    dummy AWS credentials, and this interpreter's `airflow` first on PATH (the demo, the benchmarks)."""
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(project / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(project / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db",
        "AIRFLOW_VAR_PRIVACY_ARCHIVE_URI": archive_uri,
        "AIRFLOW_VAR_PRIVACY_INPUT_URI": input_uri,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
