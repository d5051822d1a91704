"""The Trigger form's params, built from the catalogues so that every DAG file stays wiring.

Each builder returns an Airflow `Param` whose JSON Schema the form and the REST API both validate
before a run is created: products are an `enum` of the catalogue's codes (a typo such as `photoshop`
is refused with the allowed list, and no run starts), times carry their unit in the title and have
bounds, and every param has a title and a description that says what an empty value means.

Cheap at parse time: only `privacy_pipeline.catalog` (standard library only) is imported.
"""

from __future__ import annotations

from collections.abc import Sequence

from airflow.sdk import Param
from privacy_pipeline import catalog

#: Form sections, in the order a person fills them in.
INPUT, BEHAVIOUR, WAITING, FOLLOW_UP = "Input", "Behaviour", "Waiting for Adobe", "Follow-up"

MINUTE, HOUR, DAY = 60, 3600, 86400
#: Adobe asks clients not to poll hard: a poll every few seconds is for tests and demos only.
POLL_INTERVAL_BOUNDS = (5, DAY)
#: A run waits at most a week in the triggerer; jobs still open then go to privacy_reconcile.
WAIT_TIMEOUT_BOUNDS = (10, 7 * DAY)


def product_codes() -> list[str]:
    """The canonical `include` codes Adobe accepts (reference section 9), sorted case-insensitively."""
    return sorted(catalog.PRODUCTS.values(), key=str.lower)


def regulation_codes() -> list[str]:
    """The current regulation codes Adobe accepts (reference section 7.2), sorted."""
    return sorted(catalog.REGULATIONS)


def input_uri_param(*, partition: str = "<privacy_input_uri>/<run date>/") -> Param:
    """Where the run reads its requests; empty means the Variable's partition for the run's date."""
    return Param(
        None,
        type=["null", "string"],
        title="Input (local path or s3:// prefix)",
        description=(
            f"Empty: {partition}, where the run date is the logical date, or the day the run started "
            "for a manual run without one. Every CSV / JSON Lines object under the prefix is read; a file "
            "already taken in by an earlier run (same content hash) is skipped."
        ),
        section=INPUT,
    )


def include_param(default: Sequence[str]) -> Param:
    """Products for rows that name none: a multi-select of the catalogue's product codes."""
    allowed = product_codes()
    unknown = [code for code in default if code not in allowed]
    if unknown:
        raise ValueError(f"default products {unknown} are not in the product catalogue: {allowed}")
    return Param(
        list(default),
        type="array",
        items={"type": "string", "enum": allowed},
        examples=allowed,  # what the form offers as a multi-select
        uniqueItems=True,
        minItems=1,
        title="Products (include) for rows that name none",
        description=(
            "Adobe product codes sent as include for every row whose own include column is empty. "
            "A row's own value wins. Pick at least one."
        ),
        section=INPUT,
    )


def map_legacy_regulations_param() -> Param:
    """Whether legacy regulation values (retired by Adobe on 2025-07-28) are mapped or rejected."""
    examples = ", ".join(f"{old} → {new}" for old, new in sorted(catalog.LEGACY_REGULATIONS.items())[:4])
    return Param(
        False,
        type="boolean",
        title="Map legacy regulation values",
        description=(
            "Off: a row whose regulation is a legacy value Adobe stopped accepting on 2025-07-28 is "
            "rejected with a reason naming the current value. On: it is submitted under the current "
            f"value instead (e.g. {examples}). Unknown values are rejected either way; current values: "
            f"{', '.join(regulation_codes())}."
        ),
        section=BEHAVIOUR,
    )


def dry_run_param() -> Param:
    return Param(
        False,
        type="boolean",
        title="Dry run (post nothing)",
        description=(
            "Validate and batch, write intake.json, rejects.csv and the batches, but send nothing to Adobe "
            "and mark no input as taken in, so the real run that follows still submits the files."
        ),
        section=BEHAVIOUR,
    )


def poll_interval_param(default: int = 15 * MINUTE) -> Param:
    low, high = POLL_INTERVAL_BOUNDS
    return Param(
        default,
        type="integer",
        minimum=low,
        maximum=high,
        title="Poll interval (seconds)",
        description=(
            f"Seconds between two list calls while waiting (default {default} s = {default // MINUTE} min; "
            f"{low} s to {high // HOUR} h). The interval grows to a cap while nothing changes. Adobe asks "
            "clients not to poll hard: keep short intervals for tests and demos."
        ),
        section=WAITING,
    )


def wait_timeout_param(default: int = 6 * HOUR) -> Param:
    low, high = WAIT_TIMEOUT_BOUNDS
    return Param(
        default,
        type="integer",
        minimum=low,
        maximum=high,
        title="Wait timeout (seconds)",
        description=(
            f"Seconds the run waits for its jobs (default {default} s = {default // HOUR} h; at most "
            f"{high // DAY} days). Jobs still open then are reported as open, not failed, and "
            "privacy_reconcile finishes them: Adobe's jobs often take days."
        ),
        section=WAITING,
    )


def max_attempts_param(default: int = 3) -> Param:
    return Param(
        default,
        type="integer",
        minimum=1,
        maximum=10,
        title="Attempts per subject and action (at most)",
        description=(
            "An errored job is resubmitted as a fresh job until a subject and action has had this many "
            "jobs; then it is reported, not retried. Adobe never re-runs a failed job by itself."
        ),
        section=FOLLOW_UP,
    )


def archive_alert_days_param(default: int = 7) -> Param:
    return Param(
        default,
        type="integer",
        minimum=1,
        maximum=25,
        title="Alert on unarchived content after (days)",
        description=(
            "Days after an access job completed at which content still not archived raises an alert. "
            "At most 25: Adobe may delete access content 30 days after completion."
        ),
        section=FOLLOW_UP,
    )


def stuck_after_days_param(default: int = 45) -> Param:
    return Param(
        default,
        type="integer",
        minimum=1,
        maximum=365,
        title="Report jobs processing longer than (days)",
        description=(
            "A job still processing after this many days is reported as stuck. Adobe says 15-45 days of "
            "processing is normal."
        ),
        section=FOLLOW_UP,
    )


def nightly_params(default_products: Sequence[str]) -> dict[str, Param]:
    """The params of `privacy_requests_nightly`."""
    return {
        "input_uri": input_uri_param(),
        "include": include_param(default_products),
        "map_legacy_regulations": map_legacy_regulations_param(),
        "dry_run": dry_run_param(),
        "poll_interval": poll_interval_param(),
        "wait_timeout": wait_timeout_param(),
    }


def hygiene_params() -> dict[str, Param]:
    """The params of `data_hygiene_deletes` (its input partition lives under `hygiene/`)."""
    return {
        "input_uri": input_uri_param(partition="<privacy_input_uri>/hygiene/<run date>/"),
        "poll_interval": poll_interval_param(),
        "wait_timeout": wait_timeout_param(),
    }


def opt_out_params() -> dict[str, Param]:
    """The params of `privacy_opt_out`."""
    return {"input_uri": input_uri_param()}


def reconcile_params() -> dict[str, Param]:
    """The params of `privacy_reconcile`."""
    return {
        "max_attempts": max_attempts_param(),
        "archive_alert_days": archive_alert_days_param(),
        "stuck_after_days": stuck_after_days_param(),
    }
