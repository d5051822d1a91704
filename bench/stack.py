"""The servers and Airflow environment the benchmarks run against, all on 127.0.0.1.

The emulator and moto are the same subprocess servers the tests use (`privacy_emulator.testing`);
the `AIRFLOW_CONN_*` values come from the same module, the one source of the connection shape.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import work_dir
from bench.report import REPO

ARCHIVE_BUCKET = "privacy-archive"
ARCHIVE_URI = f"s3://{ARCHIVE_BUCKET}/privacy"
INBOX_BUCKET = "privacy-inbox"
#: The emulator's job-creation cap is Adobe's (20,000 a day); B1 submits more than that on purpose.
UNCAPPED = 10**9


@dataclass
class Stack:
    emulator: Any  # privacy_emulator.testing.EmulatorServer
    s3: Any  # privacy_emulator.testing.MotoS3Server
    airflow_home: Path

    @property
    def env(self) -> dict[str, str]:
        """Environment for a process that uses the hook and the store (a probe, `airflow dags test`)."""
        return airflow_env(self.airflow_home) | connection_env(self.emulator, self.s3)

    def s3_client(self):
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.s3.endpoint_url, region_name="us-east-1",
            aws_access_key_id="testing", aws_secret_access_key="testing",
        )


@contextmanager
def running_stack(name: str, emulator_settings: dict[str, Any] | None = None) -> Iterator[Stack]:
    """Emulator + moto S3 (with the archive and inbox buckets) for one benchmark; stopped by PID after."""
    from privacy_emulator.testing import EmulatorServer, MotoS3Server

    home = work_dir(name)
    shutil.rmtree(home, ignore_errors=True)
    home.mkdir(parents=True)
    with ExitStack() as stack:
        emulator = stack.enter_context(EmulatorServer(db_path=home / "emulator.sqlite", settings=emulator_settings))
        s3 = stack.enter_context(MotoS3Server())
        running = Stack(emulator=emulator, s3=s3, airflow_home=home / "airflow")
        running.airflow_home.mkdir()
        client = running.s3_client()
        for bucket in (ARCHIVE_BUCKET, INBOX_BUCKET):
            client.create_bucket(Bucket=bucket)
        yield running


def airflow_env(airflow_home: Path) -> dict[str, str]:
    """A private Airflow home with a SQLite DB; the project's dags and plugins; no examples."""
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home}/airflow.db",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "AIRFLOW_VAR_PRIVACY_ARCHIVE_URI": ARCHIVE_URI,
        "AIRFLOW_VAR_PRIVACY_INPUT_URI": f"s3://{INBOX_BUCKET}/requests",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }


def connection_env(emulator, s3) -> dict[str, str]:
    from privacy_emulator.testing import privacy_connection, s3_connection

    return privacy_connection(emulator) | s3_connection(s3)


def migrate_airflow_db(env: dict[str, str], log: Path) -> None:
    with open(log, "wb") as out:
        subprocess.run(
            [sys.executable, "-m", "airflow", "db", "migrate"], env={**os.environ, **env},
            stdout=out, stderr=subprocess.STDOUT, check=True,
        )
