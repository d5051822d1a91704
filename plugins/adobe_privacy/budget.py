"""The daily job budget in S3: reservations written with compare-and-swap, so concurrent DAGs never overspend.

See `privacy_pipeline.budget` for the rules. The day's document is read with its ETag and written
back with `If-Match` (or `If-None-Match: *` when the day has none yet) through the store's conditional
write; a refused write means another submit task wrote in between, so the read-decide-write loop starts
again from the new document. The budget day is the injected clock's day.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING

from adobe_privacy.exceptions import PrivacyBackPressureError

if TYPE_CHECKING:
    from privacy_pipeline.budget import BudgetDay
    from privacy_pipeline.clock import Clock
    from privacy_pipeline.layout import ArchiveLayout

    from adobe_privacy.storage import PrivacyArchiveStore

log = logging.getLogger(__name__)

#: Rendered by every operator that creates jobs, so one Airflow Variable sets the budget of all DAGs.
BUDGET_TEMPLATE = "{{ var.value.get('privacy_daily_job_budget', '') }}"
MAX_CAS_ATTEMPTS = 20


class DailyBudgetExhaustedError(PrivacyBackPressureError):
    """Our own daily budget (not Adobe) says no: handled exactly like Adobe's back-pressure."""

    def __init__(self, message: str, *, day: str, wanted: int, remaining: int) -> None:
        super().__init__(message, status=0, error_code="daily-budget", daily_limit=True)
        self.day = day
        self.wanted = wanted
        self.remaining = remaining


class BudgetContentionError(RuntimeError):
    """The budget document kept changing under us (more than MAX_CAS_ATTEMPTS concurrent writers)."""


class DailyJobBudget:
    """Reserve and release jobs in the day's budget document under the archive's ledger."""

    def __init__(self, store: PrivacyArchiveStore, layout: ArchiveLayout, limit: int,
                 clock: Clock | None = None) -> None:
        from privacy_pipeline.clock import WALL_CLOCK

        self.store = store
        self.layout = layout
        self.limit = limit
        self.clock = clock or WALL_CLOCK

    def reserve(self, batch_id: str, jobs: int) -> int:
        """Reserve `jobs` for `batch_id` in today's budget; returns what is left afterwards.

        :raises DailyBudgetExhaustedError: the jobs do not fit (nothing is reserved).
        """
        from privacy_pipeline.budget import BudgetExhausted

        try:
            day = self._update(lambda budget: budget.reserve(batch_id, jobs, self.limit))
        except BudgetExhausted as err:
            raise DailyBudgetExhaustedError(str(err), day=err.day, wanted=err.wanted,
                                            remaining=err.remaining) from None
        return day.remaining(self.limit)

    def release(self, batch_id: str) -> None:
        """Give back `batch_id`'s reservation of today (a batch Adobe refused: nothing was created)."""
        self._update(lambda budget: budget.release(batch_id))

    def _update(self, change: Callable[[BudgetDay], BudgetDay]) -> BudgetDay:
        from privacy_pipeline.budget import BudgetDay, budget_day

        day = budget_day(self.clock.now())
        key = self.layout.ledger_budget(day)
        for _ in range(MAX_CAS_ATTEMPTS):
            document, etag = self.store.get_json_versioned(key)
            current = BudgetDay.from_json(document, day)
            changed = change(current)
            if changed == current:
                return current
            if self.store.put_json_if(key, changed.to_json(), etag=etag):
                return changed
            log.info("Budget %s changed while we updated it; reading it again", day)
        raise BudgetContentionError(f"budget {day}: {MAX_CAS_ATTEMPTS} concurrent updates in a row")
