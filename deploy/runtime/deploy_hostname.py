"""`[core] hostname_callable` for several Celery workers sharing one host.

In containers each worker has its own hostname. On one machine (the loopback deployment test) they
share it, so each worker process names itself through `AIRFLOW_DEPLOY_WORKER_NAME` instead; the name
lands in every task instance's `hostname`, which is how the test sees which worker ran what.
"""

from __future__ import annotations

import os
import socket


def worker_hostname() -> str:
    """The worker's name from the environment, else the machine's fully qualified name."""
    return os.environ.get("AIRFLOW_DEPLOY_WORKER_NAME") or socket.getfqdn()
