"""`airflow dags test` that SIGKILLs its own process group at a chosen S3 write (a test tool only).

Run as `python crash_runner.py dags test DAG_ID DATE -c CONF` in a new session. Environment:
- `CRASH_AT_WRITE=N`: the N-th S3 write of the run (PutObject, DeleteObject, CopyObject, multipart
  completion; any key) kills the whole process group, as `kill -9` of a worker would.
- `CRASH_AFTER=1`: kill right after that write succeeded instead of right before it.
- `CRASH_LOG=path`: appends one line per write (`n op key`), so a test can tell which writes happened.
Task retries follow within a second, as in the in-process harness: a retry's timing is not under test.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import timedelta

WRITES = {"PutObject", "DeleteObject", "DeleteObjects", "CopyObject", "CompleteMultipartUpload"}


def _arm() -> None:
    import botocore.client

    crash_at = int(os.environ.get("CRASH_AT_WRITE") or 0)
    after = os.environ.get("CRASH_AFTER") == "1"
    log_path = os.environ.get("CRASH_LOG")
    original = botocore.client.BaseClient._make_api_call
    seen = {"writes": 0}

    def call(self, operation_name, api_params):
        if operation_name not in WRITES:
            return original(self, operation_name, api_params)
        seen["writes"] += 1
        n = seen["writes"]
        if log_path:
            with open(log_path, "a") as log:
                log.write(f"{n} {operation_name} {api_params.get('Key', '')}\n")
        if n == crash_at and not after:
            os.killpg(0, signal.SIGKILL)
        result = original(self, operation_name, api_params)
        if n == crash_at and after:
            os.killpg(0, signal.SIGKILL)
        return result

    botocore.client.BaseClient._make_api_call = call


def _fast_retries() -> None:
    from airflow.sdk.definitions.dag import DAG

    original = DAG.test

    def test(self, *args, **kwargs):
        for task in self.tasks:
            task.retry_delay = timedelta(seconds=1)
            task.retry_exponential_backoff = False
        return original(self, *args, **kwargs)

    DAG.test = test


if __name__ == "__main__":
    _arm()
    _fast_retries()
    from airflow.__main__ import main

    sys.argv = ["airflow", *sys.argv[1:]]
    sys.exit(main())
