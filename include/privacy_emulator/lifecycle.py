"""Job lifecycle as a pure function of (created time, clock now, seed, jobId).

Each job gets two seeded draws when it is created: ``stretch`` (1 + jitter_ratio * u) scales its delays,
``outcome_draw`` decides ``error`` against ``error_rate``. Product outcomes are drawn per (seed, jobId,
product). Nothing is scheduled or mutated: asking again at the same clock gives the same answer, and a
restart cannot lose a transition.

``processedDate`` is on every product response, in progress too (Adobe's content page and the captured
real response in the content-endpoint draft show it on a ``submitted`` product): the time the product
last moved (created, processing, finished).

Where Adobe is silent we chose: an ``error`` job has one product (seeded) in ``error`` with
``PRVCY-1021-400`` and the others complete; product outcome 6054 carries ``results`` that split the
job's identities into processed/ignored, like Adobe's example.
"""

from __future__ import annotations

import hashlib
import uuid

from privacy_emulator.clock import adobe_date
from privacy_emulator.settings import EmulatorSettings
from privacy_emulator.store import JobRecord, Lifecycle

PRODUCT_OUTCOMES: dict[str, dict[str, str]] = {
    "6000": {
        "message": "Success",
        "responseMsgCode": "PRVCY-6000-200",
        "responseMsgDetail": "Finished successfully.",
    },
    "6052": {
        "message": "User IDs not found",
        "responseMsgCode": "PRVCY-6052-200",
        "responseMsgDetail": "User IDs were not found.",
    },
    "6054": {
        "message": "Partially completed",
        "responseMsgCode": "PRVCY-6054-200",
        "responseMsgDetail": "PARTIALLY COMPLETED- Data not found for some requests, check results for more info.",
    },
}
PRODUCT_ERROR = {
    "message": "Job failure",
    "responseMsgCode": "PRVCY-1021-400",
    "responseMsgDetail": "One or more jobs from the request failed.",
}


def seeded_unit(seed: int, *parts: str) -> float:
    """A deterministic draw in [0, 1) from the seed and some labels."""
    digest = hashlib.sha256(":".join((str(seed), *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def seeded_uuid(seed: int, *parts: str) -> str:
    """A version-4-shaped UUID drawn from the seed and some labels (job ids, work order and bundle ids)."""
    digest = hashlib.sha256(":".join((str(seed), "uuid", *parts)).encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def job_draws(seed: int, job_id: str, jitter_ratio: float) -> tuple[float, float]:
    """(stretch, outcome_draw) fixed at creation time."""
    return 1.0 + jitter_ratio * seeded_unit(seed, job_id, "jitter"), seeded_unit(seed, job_id, "outcome")


def lifecycle_of(settings: EmulatorSettings) -> Lifecycle:
    return Lifecycle(
        processing_after=settings.processing_after_seconds,
        complete_after=settings.complete_after_seconds,
        error_rate=settings.error_rate,
    )


def processing_at(job: JobRecord, lifecycle: Lifecycle) -> float:
    return job.created_at + lifecycle.processing_after * job.stretch


def finished_at(job: JobRecord, lifecycle: Lifecycle) -> float:
    return job.created_at + lifecycle.complete_after * job.stretch


def job_status(job: JobRecord, now: float, lifecycle: Lifecycle) -> str:
    """Must agree with ``store.STATUS_SQL``."""
    if now < processing_at(job, lifecycle):
        return "submitted"
    if now < finished_at(job, lifecycle):
        return "processing"
    return "error" if job.outcome_draw < lifecycle.error_rate else "complete"


def last_modified_at(job: JobRecord, now: float, lifecycle: Lifecycle) -> float:
    status = job_status(job, now, lifecycle)
    if status == "submitted":
        return job.created_at
    if status == "processing":
        return processing_at(job, lifecycle)
    return finished_at(job, lifecycle)


def product_outcome(settings: EmulatorSettings, job_id: str, include_code: str) -> str:
    """One of "6000", "6052", "6054", drawn from the configured weights."""
    weights = [
        (code, weight) for code, weight in sorted(settings.product_outcome_weights.items()) if weight > 0
    ]
    total = sum(weight for _, weight in weights)
    point = seeded_unit(settings.seed, job_id, include_code.lower(), "product") * total
    for code, weight in weights:
        point -= weight
        if point < 0:
            return code
    return weights[-1][0]


def failing_product(settings: EmulatorSettings, job: JobRecord) -> str:
    index = int(seeded_unit(settings.seed, job.job_id, "failing-product") * len(job.include))
    return job.include[index]


def product_responses(
    job: JobRecord, now: float, settings: EmulatorSettings, display_name: dict[str, str]
) -> list[dict]:
    """``productResponses`` of a job detail, one per ``include`` product, by display name."""
    lifecycle = lifecycle_of(settings)
    status = job_status(job, now, lifecycle)
    failed = failing_product(settings, job) if status == "error" else None
    responses = []
    for code in job.include:
        entry: dict = {
            "product": display_name[code],
            "retryCount": 0,
            "processedDate": adobe_date(last_modified_at(job, now, lifecycle)),
        }
        if status == "submitted":
            entry["productStatusResponse"] = {"status": "submitted"}
        elif status == "processing":
            entry["productStatusResponse"] = {"status": "processing", "message": "processing"}
        else:
            entry["productStatusResponse"] = _finished_product_status(job, settings, code, failed)
        responses.append(entry)
    return responses


def _finished_product_status(
    job: JobRecord, settings: EmulatorSettings, code: str, failed: str | None
) -> dict:
    if code == failed:
        return {"status": "error", **PRODUCT_ERROR}
    outcome = product_outcome(settings, job.job_id, code)
    response = {"status": "complete", **PRODUCT_OUTCOMES[outcome]}
    if outcome == "6054":
        values = [identity["value"] for identity in job.user_ids]
        split = max(1, len(values) // 2) if len(values) > 1 else 0
        response["results"] = {"processed": values[:split], "ignored": values[split:]}
    return response


def data_products(job: JobRecord, settings: EmulatorSettings) -> list[str]:
    """Include codes whose product found data for the subject (outcome 6000 or 6054)."""
    return [code for code in job.include if product_outcome(settings, job.job_id, code) != "6052"]
