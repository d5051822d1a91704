"""Probe DAG for the distributed deployment test: exercises what a single-process run cannot.

- `wait_in_triggerer` defers through the real triggerer (a separate process on the Celery stack).
- `report_worker` is mapped over `fan_out` items: with one slot per Celery worker, the map indexes
  land on both workers, and each returns the hostname it ran on.
- `write_marker` writes one object to S3 through the `aws_default` connection taken from the
  components' environment, proving connections reach the workers.
"""

from __future__ import annotations

from datetime import timedelta

from airflow.providers.standard.sensors.date_time import DateTimeSensorAsync
from airflow.sdk import Param, dag, task

PROBE_DAG_ID = "deploy_probe"


@dag(
    dag_id=PROBE_DAG_ID,
    schedule=None,
    catchup=False,
    tags=["deployment-probe"],
    default_args={"retries": 0},
    params={
        "defer_seconds": Param(6, type="integer", minimum=1),
        "fan_out": Param(4, type="integer", minimum=2),
        "task_seconds": Param(1, type="number", minimum=0),
        "s3_bucket": Param("", type="string"),
        "s3_key": Param("deploy-probe/marker.json", type="string"),
    },
    dagrun_timeout=timedelta(minutes=5),
)
def deploy_probe():
    # Templated from the worker's clock at render time, so the sensor always has to defer, however
    # long the scheduler took to start it (a target relative to run_after could already be past).
    wait_in_triggerer = DateTimeSensorAsync(
        task_id="wait_in_triggerer",
        target_time="{{ (macros.datetime.utcnow() + macros.timedelta(seconds=params.defer_seconds)).isoformat() }}",
    )

    @task
    def fan_out(params: dict) -> list[int]:
        return list(range(int(params["fan_out"])))

    @task
    def report_worker(index: int, params: dict) -> str:
        import time

        from airflow.utils.net import get_hostname

        # Holding the single slot a moment keeps the other worker from taking every index.
        time.sleep(float(params["task_seconds"]))
        return get_hostname()

    @task
    def write_marker(hostnames: list[str], params: dict, run_id: str) -> str:
        import json

        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        if not params["s3_bucket"]:
            return "no bucket given"
        body = json.dumps({"run_id": run_id, "hostnames": sorted(set(hostnames))})
        S3Hook(aws_conn_id="aws_default").load_string(
            body, key=params["s3_key"], bucket_name=params["s3_bucket"], replace=True
        )
        return f"s3://{params['s3_bucket']}/{params['s3_key']}"

    indexes = fan_out()
    wait_in_triggerer >> indexes
    write_marker(report_worker.expand(index=indexes))


deploy_probe()
