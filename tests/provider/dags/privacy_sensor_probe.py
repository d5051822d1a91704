"""A tiny DAG for the provider tests: submit two subjects, then wait for their jobs with the sensor."""

from __future__ import annotations

from datetime import UTC, datetime

from adobe_privacy.sensors import PrivacyJobsSensor
from airflow.sdk import DAG, task

REGULATION = "gdpr"

with DAG("privacy_sensor_probe", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:

    @task
    def submit() -> dict[str, list[str]]:
        from adobe_privacy.hooks import PrivacyServiceHook

        from tests.provider.helpers import make_payload

        hook = PrivacyServiceHook()
        created = hook.create_jobs(make_payload(hook.org_id, ["a", "b"], regulation=REGULATION))
        return {REGULATION: [job.job_id for job in created]}

    today = datetime.now(UTC).date().isoformat()
    PrivacyJobsSensor(
        task_id="wait",
        jobs_by_regulation=submit(),
        from_date=today,
        to_date=today,
        poke_interval=0.5,
        max_poll_interval=0.5,
        timeout=60,
    )
