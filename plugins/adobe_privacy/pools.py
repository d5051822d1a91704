"""The pool that caps concurrent calls to Adobe's API: its name (one setting), and creating and checking it.

A task whose pool does not exist is never queued: it sits in "scheduled" with an empty log, and only
the scheduler's log says why. So every way this project starts Airflow creates the pool
(`scripts/demo.py`, the deployment test's stack, compose's `airflow-init`), the DAG docs name it,
and `check_pool` fails with a clear message wherever the metadata database can be read.

The name is read from the environment when a DAG file is parsed (a pool is not templated, so it
cannot come from a Variable at run time): set `ADOBE_PRIVACY_API_POOL` on the DAG processor, the
scheduler and the workers alike, and create the pool under that name.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from privacy_pipeline.errors import ConfigurationError

POOL_ENV = "ADOBE_PRIVACY_API_POOL"
DEFAULT_POOL = "adobe_privacy_api"
#: Concurrent submit tasks: size it to the request rate Adobe allows the organisation, not to workers.
DEFAULT_POOL_SLOTS = 4
POOL_DESCRIPTION = "Adobe Privacy Service API calls (submit tasks)"

# Airflow accepts any non-empty name; ours must also read the same in a shell command and a URL path.
_POOL_NAME = re.compile(r"[A-Za-z0-9_.-]{1,256}")


def api_pool_name(environ: Mapping[str, str] = os.environ) -> str:
    """The pool of every task that calls Adobe's API: `$ADOBE_PRIVACY_API_POOL`, else `adobe_privacy_api`.

    :raises ConfigurationError: the variable is set to something Airflow cannot name a pool.
    """
    name = environ.get(POOL_ENV, "").strip() or DEFAULT_POOL
    if not _POOL_NAME.fullmatch(name):
        raise ConfigurationError(POOL_ENV, name, hint="letters, digits, '_', '.' and '-' only")
    return name


#: Read once per parse of a DAG file.
API_POOL = api_pool_name()


def pool_missing_message(name: str) -> str:
    return (
        f"Pool {name!r} does not exist: tasks in it are never scheduled. Create it with "
        f"`airflow pools set {name} {DEFAULT_POOL_SLOTS} {POOL_DESCRIPTION!r}` (or Admin > Pools), or "
        f"point {POOL_ENV} at an existing pool on every Airflow component."
    )


def pool_exists(name: str) -> bool | None:
    """Whether the pool exists, or None where this process may not read the metadata database.

    Airflow 3 task processes talk to the Task Execution API only, which has no pool route, so a
    worker's answer is None; the scheduler, `airflow dags test`, the CLI and tests read the database.
    """
    try:
        from airflow.models.pool import Pool
        from airflow.utils.session import create_session

        with create_session() as session:
            return Pool.get_pool(name, session=session) is not None
    except RuntimeError as err:  # "Direct database access via the ORM is not allowed in Airflow 3.0"
        if "database access" in str(err).lower():
            return None
        raise


def check_pool(name: str = API_POOL) -> bool:
    """Fail at once when `name` is not a pool; True when it was seen, False when it could not be checked.

    :raises ConfigurationError: the pool does not exist (the message says how to create it).
    """
    exists = pool_exists(name)
    if exists is False:
        raise ConfigurationError("pool", name, hint=pool_missing_message(name))
    return bool(exists)


def ensure_pool(name: str = API_POOL, slots: int = DEFAULT_POOL_SLOTS, description: str = POOL_DESCRIPTION) -> bool:
    """Create the pool unless it exists (an existing pool keeps its size). True when it was created.

    For the processes that set Airflow up (the demo, test stacks), never for a task.
    """
    from airflow.models.pool import Pool
    from airflow.utils.session import create_session

    with create_session() as session:
        if Pool.get_pool(name, session=session) is not None:
            return False
        session.add(Pool(pool=name, slots=slots, description=description, include_deferred=False))
    return True


def main() -> int:
    """`python -m adobe_privacy.pools`: create the API pool where Airflow is set up (compose, demo, tests)."""
    name = API_POOL
    created = ensure_pool(name)
    print(f"pool {name}: {'created with ' + str(DEFAULT_POOL_SLOTS) + ' slots' if created else 'exists'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
