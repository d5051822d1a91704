"""The daily job budget: how many jobs one UTC day may still create, shared by every DAG that creates jobs.

Adobe documents about 20,000 jobs a day per organisation. Beyond it POSTs fail, so the budget is spent
before posting: each batch reserves its job count in the day's budget document, and a batch that
does not fit is deferred (carried to a later run, exactly like back-pressure) without any POST.

The document is one object per day holding `{batch_id: jobs}`; reserving is idempotent per batch (a
retried task does not pay twice) and the caller writes the document back with a compare-and-swap
(S3 `If-Match` on the ETag it read, `If-None-Match: *` for the first write of the day), so submit
tasks of several DAGs running at once can never overspend it together.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from privacy_pipeline.errors import ConfigurationError

DEFAULT_DAILY_JOB_BUDGET = 20_000
BUDGET_FORMAT_VERSION = 1


class BudgetExhausted(Exception):
    """The batch's jobs do not fit in what is left of the day's budget."""

    def __init__(self, day: str, wanted: int, remaining: int, limit: int) -> None:
        super().__init__(
            f"daily job budget for {day} exhausted: {wanted} jobs wanted, {remaining} of {limit} left"
        )
        self.day = day
        self.wanted = wanted
        self.remaining = remaining
        self.limit = limit


@dataclass(frozen=True)
class BudgetDay:
    """One day's reservations: batch id -> jobs reserved."""

    day: str
    reservations: Mapping[str, int] = field(default_factory=dict)

    @property
    def used(self) -> int:
        return sum(self.reservations.values())

    def remaining(self, limit: int) -> int:
        return max(limit - self.used, 0)

    def reserve(self, batch_id: str, jobs: int, limit: int) -> BudgetDay:
        """The day with `jobs` reserved for `batch_id` (unchanged when it holds a reservation already).

        :raises BudgetExhausted: the jobs do not fit in what is left.
        """
        if jobs < 0:
            raise ValueError("cannot reserve a negative number of jobs")
        if batch_id in self.reservations:
            return self
        if jobs > self.remaining(limit):
            raise BudgetExhausted(self.day, jobs, self.remaining(limit), limit)
        return BudgetDay(self.day, {**self.reservations, batch_id: jobs})

    def release(self, batch_id: str) -> BudgetDay:
        """The day without `batch_id`'s reservation (for a batch that posted nothing after all)."""
        return BudgetDay(self.day, {k: v for k, v in self.reservations.items() if k != batch_id})

    def to_json(self) -> dict[str, Any]:
        return {"version": BUDGET_FORMAT_VERSION, "day": self.day, "used": self.used,
                "reservations": dict(self.reservations)}

    @classmethod
    def from_json(cls, document: Mapping[str, Any] | None, day: str) -> BudgetDay:
        if not document:
            return cls(day)
        if document.get("version") != BUDGET_FORMAT_VERSION or document.get("day") != day:
            raise ValueError(f"not a budget document for {day}")
        return cls(day, {str(k): int(v) for k, v in document["reservations"].items()})


def budget_day(moment: datetime | date | None = None) -> str:
    """The budget's day (UTC, ISO) of `moment` (default: now)."""
    if moment is None:
        moment = datetime.now(UTC)
    if isinstance(moment, datetime):
        moment = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC).date()
    return moment.isoformat()


def parse_budget(value: Any, default: int = DEFAULT_DAILY_JOB_BUDGET) -> int:
    """A budget from an Airflow Variable or param: an int, a numeric string, or empty for the default."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        budget = int(value)
    except (TypeError, ValueError):
        budget = -1
    if budget < 0:
        raise ConfigurationError("daily job budget (Variable privacy_daily_job_budget)", value,
                                 hint="a whole number of jobs, 0 or more, or empty for 20,000")
    return budget
