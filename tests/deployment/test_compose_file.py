"""docker-compose.yaml and the Dockerfile, validated as far as this machine can without a Docker engine.

`docker-compose config` (Debian's docker-compose 1.29) checks the file against the Compose schema and
resolves anchors and variables with no engine; the resolved config is then checked for what our
deployment needs. Nothing here builds the image or starts a container.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yaml"
DOCKERFILE = REPO / "Dockerfile"
REQUIRED_SETTINGS = {
    "AIRFLOW_FERNET_KEY": "yU9WRy0UbxvC8ibc3pZkYrclnsZvVApWVEW0OE4NbPI=",
    "AIRFLOW_JWT_SECRET": "compose-test-jwt-secret",
    "AIRFLOW_ADMIN_PASSWORD": "compose-test-password",
    "MINIO_ROOT_USER": "compose-test-user",
    "MINIO_ROOT_PASSWORD": "compose-test-minio-password",
    "MINIO_KMS_SECRET_KEY": "minio-key:c2l4dGVlbi1ieXRlLWtleS1mb3ItdGVzdHMtb25seS4uLg==",
}
AIRFLOW_SERVICES = (
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker",
    "airflow-init",
)
ONE_SHOT_SERVICES = {"airflow-init", "minio-init", "airflow-cli"}


@pytest.fixture(scope="module")
def docker_compose() -> str:
    result = subprocess.run(
        ["bash", str(REPO / "deploy" / "ensure-docker-compose.sh")],
        capture_output=True,
        text=True,
        timeout=600,
    )
    binary = shutil.which("docker-compose")
    if result.returncode != 0 or binary is None:
        pytest.skip(f"COULD NOT INSTALL docker-compose, COMPOSE FILE NOT VALIDATED: {result.stderr[-1500:]}")
    return binary


def compose_config(docker_compose: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp"}
    return subprocess.run(
        [docker_compose, "--project-directory", str(REPO), "-f", str(COMPOSE_FILE), "config"],
        capture_output=True,
        text=True,
        env={**base, **env},
        timeout=60,
    )


@pytest.fixture(scope="module")
def resolved(docker_compose) -> dict:
    result = compose_config(docker_compose, REQUIRED_SETTINGS)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_compose_file_is_valid_and_resolves(resolved):
    expected = {"postgres", "redis", "minio", "minio-init", "emulator", *AIRFLOW_SERVICES}
    assert expected <= set(resolved["services"])


@pytest.mark.parametrize("missing", sorted(REQUIRED_SETTINGS))
def test_secrets_have_no_defaults(docker_compose, missing):
    env = {k: v for k, v in REQUIRED_SETTINGS.items() if k != missing}
    result = compose_config(docker_compose, env)
    assert result.returncode != 0 and missing in result.stderr, result.stderr[-500:]


def test_airflow_components_share_image_executor_and_keys(resolved):
    services = resolved["services"]
    envs = {name: services[name]["environment"] for name in AIRFLOW_SERVICES}
    for name, env in envs.items():
        assert services[name]["image"] == services["airflow-apiserver"]["image"], name
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CORE__FERNET_KEY"] == REQUIRED_SETTINGS["AIRFLOW_FERNET_KEY"], name
        assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == REQUIRED_SETTINGS["AIRFLOW_JWT_SECRET"], name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == "http://airflow-apiserver:8080/execution/"
        assert "_PIP_ADDITIONAL_REQUIREMENTS" not in env, name


def test_connections_from_environment_point_at_the_bundled_services(resolved):
    env = resolved["services"]["airflow-triggerer"]["environment"]
    adobe = json.loads(env["AIRFLOW_CONN_ADOBE_PRIVACY_DEFAULT"])
    aws = json.loads(env["AIRFLOW_CONN_AWS_DEFAULT"])
    assert adobe["conn_type"] == "adobe_privacy_service"
    assert aws["conn_type"] == "aws"
    assert aws["extra"]["endpoint_url"] == "http://minio:9000"
    assert aws["login"] == REQUIRED_SETTINGS["MINIO_ROOT_USER"]

    from privacy_emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ORG_ID
    from privacy_emulator.__main__ import build_parser

    command = resolved["services"]["emulator"]["command"]
    argv = shlex.split(command) if isinstance(command, str) else command
    assert argv[:3] == ["python", "-m", "privacy_emulator"]
    emulator_args = build_parser().parse_args(argv[3:])
    assert adobe["host"] == f"http://emulator:{emulator_args.port}"
    assert adobe["extra"]["download_hosts"] == [f"emulator:{emulator_args.blob_port}"]
    assert (adobe["login"], adobe["password"], adobe["extra"]["org_id"]) == (
        DEFAULT_CLIENT_ID,
        DEFAULT_CLIENT_SECRET,
        DEFAULT_ORG_ID,
    )


def test_long_running_services_have_healthchecks_and_worker_scales(resolved):
    services = resolved["services"]
    for name, service in services.items():
        if name not in ONE_SHOT_SERVICES:
            assert "healthcheck" in service, f"{name} has no healthcheck"
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
    worker = services["airflow-worker"]
    assert "container_name" not in worker and "ports" not in worker, "a fixed name or port blocks --scale"
    for service in services.values():
        for port in service.get("ports", []):
            assert published_host_ip(port) == "127.0.0.1", f"{port} is published beyond loopback"


def published_host_ip(port: str | dict) -> str | None:
    """The host address of a published port, in the short ("ip:host:container") or the long syntax."""
    if isinstance(port, dict):
        return port.get("host_ip")
    parts = port.split(":")
    return parts[0] if len(parts) == 3 else None


def test_airflow_init_prepares_database_pool_and_login(resolved):
    script = " ".join(resolved["services"]["airflow-init"]["command"])
    assert "airflow db migrate" in script
    assert "python -m adobe_privacy.pools" in script, "airflow-init must create the API pool"
    # Every DAG names the pool through the one setting; every Airflow service must agree on its value.
    for dag_file in (REPO / "dags").glob("*.py"):
        text = dag_file.read_text()
        assert 'pool="' not in text, f"{dag_file.name} hard-codes a pool name instead of API_POOL"
    airflow = {name: service for name, service in resolved["services"].items() if name.startswith("airflow-")}
    pools = {service.get("environment", {}).get("ADOBE_PRIVACY_API_POOL") for service in airflow.values()}
    assert len(pools) == 1 and None not in pools, f"ADOBE_PRIVACY_API_POOL differs between services: {pools}"


def test_dockerfile_matches_pinned_airflow_and_installs_the_project():
    dockerfile = DOCKERFILE.read_text()
    pinned = re.search(r"^apache-airflow==(\S+)$", (REPO / "requirements.txt").read_text(), re.M).group(1)
    assert re.search(rf"^FROM apache/airflow:{re.escape(pinned)}-python3\.11$", dockerfile, re.M)
    assert "-r /opt/airflow/project/requirements.txt" in dockerfile
    assert re.search(r"pip install --no-cache-dir --no-deps /opt/airflow/project", dockerfile)
    ignored = {line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()}
    for source in re.findall(r"^COPY --chown=\S+ (.+) \S+$", dockerfile, re.M):
        for path in source.split():
            assert (REPO / path).exists(), f"Dockerfile copies missing {path}"
            assert path not in ignored, f".dockerignore excludes {path}, which the Dockerfile copies"
