"""The distributed Airflow stack on loopback: CeleryExecutor, PostgreSQL, Redis, one process per component.

`Stack` is what the deployment tests (and a person debugging one) start and stop:

    with Stack(dags_folder=Path("dags"), env={"AIRFLOW_CONN_...": "..."}, workdir=tmp) as stack:
        api = stack.api()
        run_id = api.trigger("my_dag", conf={...})

It creates a fresh PostgreSQL database (metadata DB and Celery result backend) and takes an empty
Redis db index for the broker, migrates, creates the project's API pool (as compose's airflow-init does:
a submit task whose pool is missing is never scheduled), then starts the api-server (127.0.0.1, free port), scheduler,
dag-processor, triggerer and N Celery workers, each in its own process group with its own log file.
`stop()` ends every process group it started by PID, drops the database and flushes its Redis index.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
DEPLOY_DIR = REPO / "deploy"
AIRFLOW_BIN = Path(sys.executable).with_name("airflow")
POSTGRES_HOST, POSTGRES_PORT, POSTGRES_USER = "127.0.0.1", 5432, "postgres"
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379
ADMIN_USER = "admin"
TERMINAL_RUN_STATES = {"success", "failed"}
HEALTH_PARTS = ("metadatabase", "scheduler", "triggerer", "dag_processor")


class StackError(RuntimeError):
    """The stack did not come up, or a run did not finish, within its deadline."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.5) -> Any:
    """Poll `predicate` until it returns something truthy; raise StackError naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() > deadline:
            raise StackError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def ensure_services() -> None:
    """Start the machine's PostgreSQL and Redis when they are down (deploy/ensure-services.sh)."""
    subprocess.run(
        ["bash", str(DEPLOY_DIR / "ensure-services.sh")], check=True, capture_output=True, timeout=60
    )


def migrate(env: Mapping[str, str], log_path: Path, timeout: float = 300) -> None:
    """`airflow db migrate` in `env`, its output in `log_path`."""
    with log_path.open("wb") as log:
        result = subprocess.run([str(AIRFLOW_BIN), "db", "migrate"], env=dict(env), stdout=log,
                                stderr=subprocess.STDOUT, timeout=timeout)
    if result.returncode != 0:
        tail = log_path.read_text(errors="replace")[-3000:]
        raise StackError(f"airflow db migrate failed (log: {log_path}):\n{tail}")


def core_components(env: dict[str, str], logs_dir: Path, api_port: int) -> list[Component]:
    """Airflow's four long-running processes (the api-server on 127.0.0.1:`api_port`), not started yet."""
    airflow = str(AIRFLOW_BIN)
    commands = {
        "api-server": [airflow, "api-server", "--host", "127.0.0.1", "--port", str(api_port), "--workers", "1"],
        "scheduler": [airflow, "scheduler", "--skip-serve-logs"],
        "dag-processor": [airflow, "dag-processor"],
        "triggerer": [airflow, "triggerer", "--skip-serve-logs"],
    }
    return [Component(name, argv, env, logs_dir / f"{name}.log") for name, argv in commands.items()]


def healthy_parts(base_url: str, components: list[Component]) -> set[str]:
    """The parts of `HEALTH_PARTS` the api-server reports healthy (none while it does not answer).

    A component that has exited fails the start at once: waiting on would only time out."""
    dead = [c.name for c in components if not c.alive]
    if dead:
        raise StackError(f"component(s) exited during start-up: {', '.join(dead)}")
    try:
        report = httpx.get(f"{base_url}/api/v2/monitor/health", timeout=5).json()
    except (httpx.HTTPError, ValueError):
        return set()
    return {part for part in HEALTH_PARTS if (report.get(part) or {}).get("status") == "healthy"}


@dataclass
class Component:
    """One Airflow process (and its children) in its own process group, logging to `log_path`."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen | None = None

    def start(self) -> None:
        log = self.log_path.open("ab")
        # A new session makes the component the leader of its own process group, so stop() can end
        # the celery pool children and task supervisors with one signal, and nothing else.
        self.process = subprocess.Popen(
            self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def signal_group(self, signum: int) -> None:
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signum)
        except ProcessLookupError:
            pass

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    def rss_bytes(self) -> int:
        """Resident memory of the component and all its descendants."""
        import psutil

        if not self.alive:
            return 0
        try:
            root = psutil.Process(self.process.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return 0
        total = 0
        for proc in procs:
            try:
                total += proc.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total


@dataclass
class Stack:
    """Airflow on CeleryExecutor + PostgreSQL + Redis, every component a separate local process."""

    dags_folder: Path
    workdir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    workers: int = 2
    worker_concurrency: int = 1
    parallelism: int = 8
    startup_timeout: float = 150.0

    def __post_init__(self) -> None:
        suffix = secrets.token_hex(4)
        self.database = f"airflow_deploy_{suffix}"
        self.api_port = free_port()
        self.admin_password = secrets.token_urlsafe(12)
        self.redis_db: int | None = None
        self.components: list[Component] = []
        self.timings: dict[str, float] = {}
        self.home = self.workdir / "airflow-home"
        self.logs_dir = self.workdir / "logs"

    # ---- addresses -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def sql_alchemy_conn(self) -> str:
        return f"postgresql+psycopg2://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{self.database}"

    @property
    def worker_names(self) -> list[str]:
        return [f"deploy-worker-{chr(ord('a') + i)}" for i in range(self.workers)]

    # ---- lifecycle -------------------------------------------------------------------------------
    def __enter__(self) -> Stack:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def start(self) -> None:
        started = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        ensure_services()
        self._create_database()
        self.redis_db = self._claim_redis_db()
        self._write_passwords_file()
        self._migrate()
        self.timings["migrate_s"] = time.monotonic() - started
        self._create_pools()
        for component in self._components():
            component.start()
            self.components.append(component)
        self._wait_healthy()
        self.timings["startup_s"] = time.monotonic() - started

    def stop(self) -> None:
        """SIGTERM every process group, SIGKILL what is left after a grace period, then drop the state."""
        for component in self.components:
            component.signal_group(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for component in self.components:
            if component.process is None:
                continue
            try:
                component.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for component in self.components:
            # Also after a clean exit of the leader: a pool child or task supervisor may linger.
            component.signal_group(signal.SIGKILL)
            if component.process is not None:
                component.process.wait(timeout=10)
        self._drop_database()
        self._release_redis_db()

    # ---- environment -----------------------------------------------------------------------------
    def base_env(self) -> dict[str, str]:
        """Environment shared by every component: the parent's, minus its Airflow settings, plus ours."""
        inherited = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_VAR_")) and key != "AIRFLOW_HOME"
        }
        runtime_path = str(DEPLOY_DIR / "runtime")
        python_path = os.pathsep.join(p for p in (runtime_path, inherited.get("PYTHONPATH", "")) if p)
        return {
            **inherited,
            "PYTHONPATH": python_path,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            # The default 32 slots start far more processes than two cores can carry.
            "AIRFLOW__CORE__PARALLELISM": str(self.parallelism),
            "AIRFLOW__CORE__FERNET_KEY": "yU9WRy0UbxvC8ibc3pZkYrclnsZvVApWVEW0OE4NbPI=",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
            "AIRFLOW__API_AUTH__JWT_SECRET": "deployment-test-jwt-secret-" + "0" * 37,  # 64 bytes for SHA512
            "AIRFLOW__API__HOST": "127.0.0.1",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.base_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": self.sql_alchemy_conn,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS_HOST}:{REDIS_PORT}/{self.redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql://{POSTGRES_USER}@{POSTGRES_HOST}:{POSTGRES_PORT}/{self.database}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": str(self.worker_concurrency),
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
            # Runs are triggered through the API only: an unpaused daily DAG would otherwise start its
            # latest scheduled run at once, and with max_active_runs=1 the test's run would queue behind it.
            "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": "False",
            "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "120",
            "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(self.home / "logs"),
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
            # The connection form's Test button: our hook implements test_connection.
            "AIRFLOW__CORE__TEST_CONNECTION": "Enabled",
            **self.env,
        }

    def _components(self) -> Iterator[Component]:
        env = self.base_env()
        yield from core_components(env, self.logs_dir, self.api_port)
        airflow = str(AIRFLOW_BIN)
        for worker in self.worker_names:
            worker_env = {
                **env,
                # Workers on one host share its name; each names itself so task instances tell them apart.
                "AIRFLOW_DEPLOY_WORKER_NAME": worker,
                "AIRFLOW__CORE__HOSTNAME_CALLABLE": "deploy_hostname.worker_hostname",
            }
            argv = [
                airflow,
                "celery",
                "worker",
                "--celery-hostname",
                f"{worker}@%h",
                "--concurrency",
                str(self.worker_concurrency),
                "--skip-serve-logs",
            ]
            yield Component(worker, argv, worker_env, self.logs_dir / f"{worker}.log")

    # ---- state outside the processes -------------------------------------------------------------
    def _admin_connection(self):
        import psycopg2

        connection = psycopg2.connect(
            host=POSTGRES_HOST, port=POSTGRES_PORT, user=POSTGRES_USER, dbname="postgres"
        )
        connection.autocommit = True
        return connection

    def _create_database(self) -> None:
        connection = self._admin_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            connection.close()
        self._database_created = True

    def _drop_database(self) -> None:
        if not getattr(self, "_database_created", False):
            return
        connection = self._admin_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        finally:
            connection.close()
        self._database_created = False

    def _redis(self, db: int):
        import redis

        return redis.Redis(host=REDIS_HOST, port=REDIS_PORT, db=db, socket_timeout=5)

    def _claim_redis_db(self) -> int:
        """An empty Redis db index (1..15), marked as ours so a parallel run skips it."""
        for db in range(1, 16):
            client = self._redis(db)
            if client.dbsize() == 0 and client.set("airflow-deploy-test:owner", self.database, nx=True):
                return db
        raise StackError("no empty Redis db index in 1..15")

    def _release_redis_db(self) -> None:
        if self.redis_db is not None:
            self._redis(self.redis_db).flushdb()
            self.redis_db = None

    def _write_passwords_file(self) -> None:
        (self.home / "passwords.json").write_text(json.dumps({ADMIN_USER: self.admin_password}))

    def _migrate(self) -> None:
        migrate(self.base_env(), self.logs_dir / "db-migrate.log", timeout=180)

    def _create_pools(self) -> None:
        """The API pool under the name the DAGs will read (`ADOBE_PRIVACY_API_POOL` in `env`, else the default)."""
        result = subprocess.run(
            [sys.executable, "-m", "adobe_privacy.pools"],
            env=self.base_env(),
            capture_output=True,
            text=True,
            timeout=120,
        )
        (self.logs_dir / "pools.log").write_text(result.stdout + result.stderr)
        if result.returncode != 0:
            raise StackError(f"creating the API pool failed:\n{(result.stdout + result.stderr)[-3000:]}")

    # ---- health ----------------------------------------------------------------------------------
    def _wait_healthy(self) -> None:
        def healthy() -> bool:
            ready = healthy_parts(self.base_url, self.components)
            ready |= {
                c.name for c in self.components if c.name in self.worker_names and " ready." in c.log_text()
            }
            for part in ready:
                self.timings.setdefault(f"{part}_ready_s", time.monotonic() - began)
            return len(ready) == len(HEALTH_PARTS) + len(self.worker_names)

        began = time.monotonic()

        wait_until(
            healthy, timeout=self.startup_timeout, what="every component to report healthy", interval=1
        )

    def rss_bytes(self) -> dict[str, int]:
        return {component.name: component.rss_bytes() for component in self.components}

    def log_tails(self, lines: int = 40) -> str:
        return "\n".join(f"----- {c.name} ({c.log_path}) -----\n{c.log_tail(lines)}" for c in self.components)

    def log_of(self, name: str) -> str:
        return next(c.log_text() for c in self.components if c.name == name)

    def task_log_dir(self, dag_id: str, run_id: str, task_id: str) -> Path:
        """Where the default log filename template puts a task's attempts (and its trigger logs)."""
        return self.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"

    def trigger_log(self, dag_id: str, run_id: str, task_id: str) -> str:
        """What the triggerer logged while running the task's triggers (`attempt=N.log.trigger.ID.log`)."""
        files = sorted(self.task_log_dir(dag_id, run_id, task_id).rglob("*.log.trigger.*.log"))
        return "\n".join(path.read_text(errors="replace") for path in files)

    def task_errors(self, dag_id: str, run_id: str, task_id: str, limit: int = 4000) -> str:
        """The error records of every attempt of a task, for failure messages."""
        lines = []
        for path in sorted(self.task_log_dir(dag_id, run_id, task_id).rglob("*.log")):
            lines += [
                line for line in path.read_text(errors="replace").splitlines() if '"level":"error"' in line
            ]
        return "\n".join(lines)[-limit:]

    def api(self) -> AirflowApi:
        return AirflowApi.login(self.base_url, ADMIN_USER, self.admin_password)


class AirflowApi:
    """A small REST API v2 client: JWT from /auth/token, then bearer auth."""

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    @classmethod
    def login(cls, base_url: str, username: str, password: str) -> AirflowApi:
        response = httpx.post(
            f"{base_url}/auth/token", json={"username": username, "password": password}, timeout=10
        )
        response.raise_for_status()
        token = response.json()["access_token"]
        return cls(httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=15))

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.client.get(path, params=params)
        response.raise_for_status()
        return response.json()

    def wait_for_dag(self, dag_id: str, dag_file: str | None = None, timeout: float = 90) -> None:
        """Wait until the DAG is serialized; fail at once, with the traceback, if its file fails to import."""
        file_name = dag_file or f"{dag_id}.py"

        def parsed() -> bool:
            errors = [
                error
                for error in self.get("/api/v2/importErrors")["import_errors"]
                if Path(error["filename"]).name == file_name
            ]
            if errors:
                raise StackError(f"DAG import errors: {json.dumps(errors, indent=1)[:4000]}")
            return self.client.get(f"/api/v2/dags/{dag_id}").status_code == 200

        wait_until(parsed, timeout=timeout, what=f"DAG {dag_id} to be parsed and serialized")

    def unpause(self, dag_id: str) -> None:
        self.client.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": False}).raise_for_status()

    def trigger(self, dag_id: str, conf: Mapping[str, Any], logical_date: str | None = None) -> str:
        """Create a manual run; a null logical date is what the UI's plain "Trigger" sends."""
        response = self.client.post(
            f"/api/v2/dags/{dag_id}/dagRuns", json={"logical_date": logical_date, "conf": dict(conf)}
        )
        response.raise_for_status()
        return response.json()["dag_run_id"]

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        body = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=100)
        return body["task_instances"]

    def wait_for_run(
        self, dag_id: str, run_id: str, *, timeout: float, on_poll: Callable[[list[dict]], None] | None = None
    ) -> dict[str, Any]:
        """Poll the run until success or failure; `on_poll` sees the task instances at every poll."""

        def finished() -> dict[str, Any] | None:
            try:
                run = self.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
                task_instances = self.task_instances(dag_id, run_id) if on_poll is not None else []
            except httpx.TimeoutException:
                return None  # a busy single-worker api-server on a loaded machine: ask again at the next poll
            if on_poll is not None:
                on_poll(task_instances)
            return run if run["state"] in TERMINAL_RUN_STATES else None

        return wait_until(finished, timeout=timeout, what=f"run {run_id} of {dag_id} to finish", interval=1)

    def close(self) -> None:
        self.client.close()
