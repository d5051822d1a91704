"""The yearly request metrics step: 11 CCR §7102 figures from the request index, written to the archive."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from airflow.sdk import Context

from adobe_privacy.operators.base import ENCRYPTION_FIELDS, PrivacyBaseOperator


class RequestMetricsOperator(PrivacyBaseOperator):
    """
    Write the request metrics of one calendar year so far (`metrics/<from>_<to>/metrics.csv` and `.html`).

    The definitions live in `privacy_pipeline.metrics`; this step only reads the index and writes.

    :param year: the calendar year (templated); its metrics run from 1 January to `until` or 31 December.
    :param until: the last day counted (templated, ISO date); None means the year's end.
    """

    template_fields: Sequence[str] = ("archive_uri", "year", "until", *ENCRYPTION_FIELDS)
    ui_color = "#d9ead3"

    def __init__(self, *, year: int | str, until: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.year = year
        self.until = until

    def execute(self, context: Context) -> dict[str, Any]:
        from privacy_pipeline.errors import ConfigurationError

        from adobe_privacy.audit import write_metrics
        from adobe_privacy.index_store import RequestIndex

        try:
            year = int(self.year)
            start = date(year, 1, 1)
            end = date.fromisoformat(str(self.until)) if self.until else date(year, 12, 31)
        except ValueError:
            raise ConfigurationError("year/until", f"{self.year}/{self.until}", hint="a year and an ISO date") from None
        result = write_metrics(self.store, RequestIndex(self.store), start, min(end, date(year, 12, 31)))
        for row in result["rows"]:
            self.log.info("%s: received %d, whole %d, part %d, denied %d, open %d, median days %s",
                          row["request_type"], row["received"], row["complied_in_whole"], row["complied_in_part"],
                          row["denied"], row["open"], row["median_days_to_respond"])
        self.log.info("Metrics written: %s and %s", result["csv"], result["page"])
        return {"csv": result["csv"], "page": result["page"], "rows": result["rows"]}
