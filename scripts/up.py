"""`make up`: the local Airflow UI with everything the DAGs need, left running in the background.

Starts on 127.0.0.1: our Adobe emulator and a moto S3 server, then Airflow's api-server, scheduler,
dag-processor and triggerer (LocalExecutor, SQLite under .airflow/up/), each in its own process group;
sets the connections and variables (environment of every component), a login, the pool
`adobe_privacy_api`; loads a generated demo input into the inbox for today's run; returns once the UI
answers. It prints the URL and the login and writes them to `.airflow/up.env`. `make down` stops
exactly the processes recorded in `.airflow/up/state.json` (by PID and start time). A second `make up`
while that stack runs says so and starts nothing.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import shutil
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DIR = REPO / ".airflow" / "up"
DEFAULT_UP_ENV = REPO / ".airflow" / "up.env"
ADMIN_USER = "admin"
POOL, POOL_SLOTS = "adobe_privacy_api", 2
NIGHTLY_DAG_ID = "privacy_requests_nightly"
DEMO_ROWS = 600
# Jobs move on in seconds here (as in `make demo`); a few end in error, so the board has open requests.
EMULATOR_SETTINGS = {"processing_after_seconds": 2, "complete_after_seconds": 6, "content_bytes": 20_000,
                     "error_rate": 0.05, "seed": 7}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8080, help="api-server port (a free one if it is taken)")
    parser.add_argument("--rows", type=int, default=DEMO_ROWS, help="rows of the generated demo input")
    parser.add_argument("--daily-job-budget", type=int, default=None,
                        help="privacy_daily_job_budget for this stack (default: the DAGs' own, 20000)")
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_DIR,
                        help="where the stack keeps its state and logs (tests use their own; up.env goes inside)")
    args = parser.parse_args(argv)

    running = running_stack(args.state_dir)
    if running is not None:
        print(f"The stack is already running: {running['url']} (login {running['user']}); `make down` stops it.")
        return 0
    started = time.monotonic()
    stack = LocalStack(port=args.port if _port_free(args.port) else None, rows=args.rows, state_dir=args.state_dir,
                       daily_job_budget=args.daily_job_budget)
    try:
        stack.start()
    except BaseException as error:
        print(f"make up failed: {error}", file=sys.stderr)
        print(stack.log_tails(), file=sys.stderr)
        stack.stop()
        return 1
    print(f"Airflow UI:  {stack.url}   (up in {time.monotonic() - started:.0f} s)")
    print(f"login:       {ADMIN_USER} / {stack.password}")
    print(f"demo input:  {stack.input_uri} (trigger {NIGHTLY_DAG_ID}; set poll_interval to 5 in the form)")
    print(f"logs:        {stack.logs}   written: {stack.up_env}   stop with: make down")
    print("request console: 'Privacy requests' in the navigation; after a run, index it with\n"
          f"  set -a; . {stack.dir / 'airflow.env'}; set +a; {Path(sys.executable)} scripts/rebuild_index.py")
    return 0


def running_stack(state_dir: Path = DEFAULT_DIR) -> dict[str, Any] | None:
    """The recorded stack when at least one of its processes is still alive, else None."""
    from down import alive  # scripts/down.py: one definition of "this is still our process"

    state_file = state_dir / "state.json"
    if not state_file.exists():
        return None
    state = json.loads(state_file.read_text())
    return state if any(alive(p) for p in state["processes"]) else None


class LocalStack:
    def __init__(self, *, port: int | None, rows: int, state_dir: Path = DEFAULT_DIR,
                 daily_job_budget: int | None = None) -> None:
        self.daily_job_budget = daily_job_budget
        sys.path[:0] = [str(REPO), str(REPO / "scripts")]
        from tests.deployment.stack import free_port

        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.rows = rows
        self.password = secrets.token_urlsafe(12)
        self.dir = state_dir.resolve()
        self.state_file = self.dir / "state.json"
        self.up_env = DEFAULT_UP_ENV if self.dir == DEFAULT_DIR else self.dir / "up.env"
        self.home = self.dir / "home"
        self.logs = self.dir / "logs"
        self.processes: list[dict[str, Any]] = []
        self.components: list[Any] = []
        self.servers: list[Any] = []
        self.input_uri = ""

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self) -> None:
        from privacy_emulator.testing import EmulatorServer, MotoS3Server

        shutil.rmtree(self.dir, ignore_errors=True)
        self.logs.mkdir(parents=True)
        self.home.mkdir(parents=True)
        adobe = EmulatorServer(db_path=self.dir / "emulator.sqlite", settings=EMULATOR_SETTINGS)
        self.servers.append(adobe)
        adobe.start()
        self._record("emulator", adobe.pid, group=False, workdir=adobe._workdir)
        s3 = MotoS3Server()
        self.servers.append(s3)
        s3.start()
        self._record("moto-s3", s3.pid, group=False, workdir=s3._workdir)
        env = self.environment(adobe, s3)
        self._buckets_and_input(s3.endpoint_url, env)
        self._migrate(env)
        self._start_airflow(env)
        self._wait_ready()
        self._configure()
        self.up_env.write_text(f"AIRFLOW_UI_URL={self.url}\nAIRFLOW_UI_USER={ADMIN_USER}\n"
                          f"AIRFLOW_UI_PASSWORD={self.password}\n")
        self.up_env.chmod(0o600)

    def stop(self) -> None:
        from down import stop_recorded

        stop_recorded(self.processes)
        self.state_file.unlink(missing_ok=True)

    # -- environment -----------------------------------------------------------------------------------
    def environment(self, adobe, s3) -> dict[str, str]:
        """Every component's environment: the caller's minus Airflow settings, plus the stack's own."""
        saved = dict(os.environ)
        try:  # conftest fixes AIRFLOW_* for pytest at import: keep only its connection builders
            from tests.conftest import AIRFLOW_TEST_HOME, privacy_connection, s3_connection
        finally:
            os.environ.clear()
            os.environ.update(saved)
        shutil.rmtree(AIRFLOW_TEST_HOME, ignore_errors=True)
        from demo import ARCHIVE_URI, INBOX_BUCKET  # scripts/demo.py: the embedded default's buckets

        inherited = {k: v for k, v in os.environ.items()
                     if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")) and k != "AIRFLOW_HOME"}
        env = {
            **inherited,
            **privacy_connection(adobe),
            **s3_connection(s3),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__CORE__FERNET_KEY": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(48),
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home}/airflow.db",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # Runs start when someone triggers them: no scheduled run appears behind a person's back.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "AIRFLOW_VAR_PRIVACY_ARCHIVE_URI": ARCHIVE_URI,
            "AIRFLOW_VAR_PRIVACY_INPUT_URI": f"s3://{INBOX_BUCKET}/requests",
            "PRIVACY_INDEX_CACHE_DIR": str(self.dir / "index-cache"),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        }
        if self.daily_job_budget is not None:
            env["AIRFLOW_VAR_PRIVACY_DAILY_JOB_BUDGET"] = str(self.daily_job_budget)
        (self.home / "passwords.json").write_text(json.dumps({ADMIN_USER: self.password}))
        # Scripts (the index rebuild) read the same connections and variables from here.
        (self.dir / "airflow.env").write_text("".join(
            f"{k}={json.dumps(v)}\n" for k, v in sorted(env.items())
            if k.startswith(("AIRFLOW_CONN_", "AIRFLOW_VAR_", "AWS_", "PRIVACY_"))))
        (self.dir / "airflow.env").chmod(0o600)
        self.env = env
        return env

    def _buckets_and_input(self, endpoint_url: str, env: dict[str, str]) -> None:
        from demo import ARCHIVE_URI, INBOX_BUCKET, _make_buckets, _s3
        from privacy_pipeline.sample import generate_requests_csv

        del ARCHIVE_URI
        _make_buckets(endpoint_url)
        today = datetime.now(UTC).date().isoformat()
        path = self.dir / f"requests-{today}.csv"
        generate_requests_csv(path, rows=self.rows, seed=7)
        key = f"requests/{today}/requests.csv"
        _s3(endpoint_url).upload_file(str(path), INBOX_BUCKET, key, ExtraArgs={"ServerSideEncryption": "AES256"})
        self.input_uri = f"s3://{INBOX_BUCKET}/{key}"
        self.input_path = path

    def _migrate(self, env: dict[str, str]) -> None:
        from tests.deployment.stack import migrate

        migrate(env, self.logs / "db-migrate.log")

    def _start_airflow(self, env: dict[str, str]) -> None:
        from tests.deployment.stack import core_components

        for component in core_components(env, self.logs, self.port):
            component.start()
            self.components.append(component)
            self._record(component.name, component.process.pid if component.process else None, group=True)

    def _wait_ready(self, timeout: float = 240) -> None:
        from tests.deployment.stack import HEALTH_PARTS, healthy_parts, wait_until

        wait_until(lambda: healthy_parts(self.url, self.components) == set(HEALTH_PARTS), timeout=timeout,
                   what="every Airflow component to report healthy", interval=1)

    def _configure(self) -> None:
        """The login works, the pool exists, the nightly DAG is parsed and unpaused (runs start on trigger)."""
        from tests.deployment.stack import AirflowApi

        api = AirflowApi.login(self.url, ADMIN_USER, self.password)
        try:
            if api.client.get(f"/api/v2/pools/{POOL}").status_code == 404:
                api.client.post("/api/v2/pools", json={"name": POOL, "slots": POOL_SLOTS}).raise_for_status()
            api.wait_for_dag(NIGHTLY_DAG_ID, timeout=180)
            api.unpause(NIGHTLY_DAG_ID)
        finally:
            api.close()

    # -- bookkeeping -----------------------------------------------------------------------------------
    def _record(self, name: str, pid: int | None, *, group: bool, workdir: Path | None = None) -> None:
        import psutil

        if pid is None:
            raise RuntimeError(f"{name} did not start")
        self.processes.append({"name": name, "pid": pid, "group": group,
                               "create_time": psutil.Process(pid).create_time(),
                               "workdir": str(workdir) if workdir else None})
        self.state_file.write_text(json.dumps({"url": self.url, "user": ADMIN_USER, "processes": self.processes,
                                               "up_env": str(self.up_env)}, indent=1))

    def log_tails(self, lines: int = 25) -> str:
        return "\n".join(f"----- {c.name} -----\n{c.log_tail(lines)}" for c in self.components)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


if __name__ == "__main__":
    sys.path[:0] = [str(REPO), str(REPO / "scripts")]
    sys.exit(main())
