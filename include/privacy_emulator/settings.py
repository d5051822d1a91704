"""Emulator settings: one pydantic model, read from defaults, a ``--realistic`` preset, a JSON file and flags.

Where Adobe publishes a number (page size 100/1000, 45-day look-back, 30-day span, 1000 users, 9 IDs,
about 20,000 jobs a day, token lifetime 86399 s, 100,000 identities a work order, 1,000,000 a day, a
monthly cap of 2,000,000) it is the default. Timings default to seconds so the
demo and tests finish quickly; ``REALISTIC_PRESET`` moves them to days.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from privacy_emulator import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ORG_ID

FaultKind = Literal["latency", "429", "5xx", "1030", "drop_after_commit"]

DAY = 86400.0


class FaultSpec(BaseModel):
    """One injected fault; ``route`` is a route template such as ``"POST /data/core/privacy/jobs"`` or ``"*"``."""

    model_config = ConfigDict(extra="forbid")

    route: str = "*"
    kind: FaultKind
    rate: float | None = Field(default=None, ge=0, le=1, description="Probability per matching call.")
    times: int | None = Field(default=None, ge=1, description="Fire on the next N matching calls only.")
    status: int = Field(default=503, ge=500, le=599, description="HTTP status for kind 5xx.")
    retry_after: int = Field(default=1, ge=0, description="Retry-After seconds for kind 429.")
    latency_ms: int = Field(default=50, ge=0, le=120_000, description="Delay for kind latency.")


class EmulatorSettings(BaseModel):
    """Everything that shapes the emulator's behaviour; all of it can be changed at run time (PATCH config)."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    client_id: str = DEFAULT_CLIENT_ID
    client_secret: str = DEFAULT_CLIENT_SECRET
    api_key: str | None = Field(default=None, description="x-api-key; defaults to client_id like Adobe's.")
    org_id: str = DEFAULT_ORG_ID
    token_ttl_seconds: int = Field(default=86399, ge=1)

    seed: int = 0
    processing_after_seconds: float = Field(default=2.0, ge=0)
    complete_after_seconds: float = Field(default=5.0, ge=0)
    jitter_ratio: float = Field(
        default=0.2, ge=0, le=1, description="Each job's delays stretch by up to this fraction (seeded)."
    )
    error_rate: float = Field(default=0.0, ge=0, le=1)
    product_outcome_weights: dict[Literal["6000", "6052", "6054"], float] = Field(
        default_factory=lambda: {"6000": 0.7, "6052": 0.2, "6054": 0.1}
    )

    page_base: Literal[0, 1] = 0
    default_page_size: int = Field(default=100, ge=1, description="Adobe's docs: 100 (its OAS: 25).")
    max_page_size: int = Field(
        default=1000,
        ge=1,
        description=(
            "Largest list size; above it the list answers 400 naming size. Adobe's docs say 1000 (the "
            "default, the docs win), its OAS 100: set 100 to test a client's fallback."
        ),
    )
    lookback_days: int = Field(default=45, ge=1)
    max_span_days: int = Field(default=30, ge=1)
    default_window_days: int = Field(default=7, ge=1)

    accept_legacy_regulations: bool = False
    daily_job_cap: int = Field(default=20000, ge=0)
    content_bytes: int = Field(default=16384, ge=0, le=4 * 1024**3)
    legacy_download: bool = Field(
        default=False, description="The org's downloadUrl points at the unauthenticated blob server."
    )
    download_url_key: Literal["downloadUrl", "downloadURL"] = Field(
        default="downloadUrl",
        description=(
            "The one key a job detail's link is sent under. No Adobe response has both: the live content "
            "page and captured real responses use downloadUrl (the default), the jobs guide's example "
            "downloadURL."
        ),
    )
    adobe_known_bugs: bool = Field(
        default=False,
        description=(
            "Reproduce what the content-endpoint draft reports for flagged orgs: every job detail carries "
            "a download link, before completion and on delete jobs too (the link itself still only "
            "serves complete access jobs)."
        ),
    )
    gateway_requests_per_minute: int = Field(
        default=0,
        ge=0,
        description=(
            "Gateway throttle: API calls per minute of the emulator clock before 429 "
            '{"error_code":"429050","message":"Too many requests"} with Retry-After (0 = off).'
        ),
    )
    workorder_complete_after_seconds: float = Field(
        default=8.0,
        ge=0,
        description=(
            "A work order's end (completed or failed); received, validated, submitted and ingested each "
            "take a quarter of it (stretched by the job jitter)."
        ),
    )
    workorder_failure_rate: float = Field(default=0.0, ge=0, le=1)
    workorder_max_identities: int = Field(
        default=100_000, ge=1, description="Identities per work order (Adobe: 100,000 through the API)."
    )
    workorder_daily_identities: int = Field(
        default=1_000_000, ge=0, description="dailyConsumerDeleteIdentitiesQuota (UTC day)."
    )
    workorder_monthly_identities: int = Field(
        default=2_000_000, ge=0, description="monthlyConsumerDeleteIdentitiesQuota (resets on the 1st, UTC)."
    )
    faults: list[FaultSpec] = Field(default_factory=list)

    @property
    def effective_api_key(self) -> str:
        return self.api_key or self.client_id

    @model_validator(mode="after")
    def _check_consistency(self) -> EmulatorSettings:
        if self.complete_after_seconds < self.processing_after_seconds:
            raise ValueError("complete_after_seconds must be >= processing_after_seconds")
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must be <= max_page_size")
        if not any(weight > 0 for weight in self.product_outcome_weights.values()):
            raise ValueError("product_outcome_weights needs at least one positive weight")
        return self

    def public_dict(self) -> dict:
        """The settings as JSON, with the client secret masked (admin responses are not a secret store)."""
        data = self.model_dump(mode="json")
        data["client_secret"] = "***"
        return data


REALISTIC_PRESET: dict = {
    "processing_after_seconds": 1 * DAY,
    "complete_after_seconds": 10 * DAY,
    "jitter_ratio": 0.5,
    "error_rate": 0.02,
    "workorder_complete_after_seconds": 15 * DAY,
}
