"""The daily job budget in S3: reservations written with compare-and-swap, so concurrent DAGs never overspend.

See `privacy_pipeline.budget` for the rules. The day's document is read with its ETag and written
back with `If-Match` (or `If-None-Match: *` when the day has none yet); a 412 means another submit
task wrote in between, so the read-decide-write loop starts again from the new document.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime

from adobe_privacy.exceptions import PrivacyBackPressureError

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

    def __init__(self, store, layout, limit: int) -> None:
        self.store = store
        self.layout = layout
        self.limit = limit

    def reserve(self, batch_id: str, jobs: int, *, now: datetime | None = None) -> int:
        """Reserve `jobs` for `batch_id` in today's budget; returns what is left afterwards.

        :raises DailyBudgetExhaustedError: the jobs do not fit (nothing is reserved).
        """
        from privacy_pipeline.budget import BudgetExhausted

        try:
            day = self._update(lambda budget: budget.reserve(batch_id, jobs, self.limit), now)
        except BudgetExhausted as err:
            raise DailyBudgetExhaustedError(str(err), day=err.day, wanted=err.wanted,
                                            remaining=err.remaining) from None
        return day.remaining(self.limit)

    def release(self, batch_id: str, *, now: datetime | None = None) -> None:
        """Give back `batch_id`'s reservation of today (a batch Adobe refused: nothing was created)."""
        self._update(lambda budget: budget.release(batch_id), now)

    def _update(self, change, now: datetime | None):
        from privacy_pipeline.budget import BudgetDay, budget_day

        day = budget_day(now)
        key = self.layout.ledger_budget(day)
        for _ in range(MAX_CAS_ATTEMPTS):
            document, etag = self._read(key)
            current = BudgetDay.from_json(document, day)
            changed = change(current)
            if changed == current:
                return current
            if self._write_if_unchanged(key, changed.to_json(), etag):
                return changed
            log.info("Budget %s changed while we updated it; reading it again", day)
        raise BudgetContentionError(f"budget {day}: {MAX_CAS_ATTEMPTS} concurrent updates in a row")

    def _read(self, key: str) -> tuple[dict | None, str | None]:
        client = self.store.client
        try:
            response = client.get_object(Bucket=self.store.bucket, Key=key)
        except client.exceptions.NoSuchKey:
            return None, None
        return json.loads(response["Body"].read()), response["ETag"]

    def _write_if_unchanged(self, key: str, document: dict, etag: str | None) -> bool:
        from botocore.exceptions import ClientError

        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        body = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
        try:
            self.store.client.put_object(
                Bucket=self.store.bucket, Key=key, Body=body, ContentType="application/json",
                **self.store.encryption_args, **condition,
            )
        except ClientError as err:
            if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (409, 412):
                return False  # 412 Precondition Failed; 409 ConditionalRequestConflict (a racing write)
            raise
        return True
