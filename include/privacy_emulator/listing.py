"""Query rules of the job list endpoints (reference 3), shared by Privacy Service and hygiene.

- ``page`` is 0-based: the documented base (Adobe's docs; its OAS says default 1, its Postman collection
  sends ``page=1``). ``page_base`` (0 or 1) is the setting. The rule, for a Postman user: with base 0,
  ``page=1&size=25`` is the *second* page, jobs 26 to 50 in creation order, so an org with 25 jobs or
  fewer gets ``"jobDetails": []`` while ``totalRecords`` still counts them all. Send ``page=0`` (or start
  the emulator with ``--page-base 1``, Adobe's OAS numbering) to see the first page.
- ``size`` defaults to 100 (docs; OAS 25); above ``max_page_size`` (1000 by the docs, 100 by the OAS) is
  a 400 naming ``size``.
- ``fromDate``/``toDate`` (``YYYY-MM-DD``, GMT) come together or not at all; the span is at most 30 days
  and ``fromDate`` at most 45 days back. Without any date the window is the last 7 days.
- ``filterDate`` selects jobs created on that day (Adobe says "processed"; we use the created day). Given
  with ``fromDate``/``toDate`` (Adobe's OAS lists all three, its Postman request sends all three at once)
  the filters add up: jobs created on ``filterDate`` *and* inside the range, so a ``filterDate`` outside
  the range gives an empty page, not an error. Each date is still checked on its own.
- An empty value (``status=&filterDate=``, what a Postman or script template sends for an unset
  variable) is the same as leaving the parameter out.
- Order is stable: (createdDate, jobId); ``totalRecords`` counts all pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Annotated

from fastapi import Query

from privacy_emulator.errors import formatting_error
from privacy_emulator.settings import DAY, EmulatorSettings

JOB_STATUSES = ("submitted", "processing", "complete", "error")
ISO_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
END_OF_TIME = 1e18


@dataclass(frozen=True)
class ListQuery:
    offset: int
    size: int
    status: str | None
    created_from: float
    created_to: float


def _day_start(day: date) -> float:
    return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()


def _parse_day(name: str, value: str, errors: list[dict[str, str]]) -> date | None:
    if not ISO_DAY.match(value):
        errors.append({"field": name, "message": "must be a date formatted YYYY-MM-DD"})
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        errors.append({"field": name, "message": "is not a valid calendar date"})
        return None


def _range(
    from_date: str | None,
    to_date: str | None,
    now: float,
    settings: EmulatorSettings,
    errors: list[dict[str, str]],
) -> tuple[float, float] | None:
    """The fromDate/toDate window, or None when neither is given (or they are unusable)."""
    today = datetime.fromtimestamp(now, tz=UTC).date()
    oldest = today - timedelta(days=settings.lookback_days)
    if from_date is None and to_date is None:
        return None
    if from_date is None or to_date is None:
        missing = "fromDate" if from_date is None else "toDate"
        errors.append({"field": missing, "message": "fromDate and toDate must be given together"})
        return None
    start, end = _parse_day("fromDate", from_date, errors), _parse_day("toDate", to_date, errors)
    if start is None or end is None:
        return None
    if end < start:
        errors.append({"field": "toDate", "message": "must not be before fromDate"})
    elif (end - start).days > settings.max_span_days:
        errors.append(
            {"field": "toDate", "message": f"the date range must span at most {settings.max_span_days} days"}
        )
    if start < oldest:
        errors.append(
            {"field": "fromDate", "message": f"must be within the last {settings.lookback_days} days"}
        )
    return _day_start(start), _day_start(end) + DAY


def _window(
    from_date: str | None,
    to_date: str | None,
    filter_date: str | None,
    now: float,
    settings: EmulatorSettings,
    errors: list[dict[str, str]],
) -> tuple[float, float]:
    today = datetime.fromtimestamp(now, tz=UTC).date()
    oldest = today - timedelta(days=settings.lookback_days)
    window = _range(from_date, to_date, now, settings, errors)
    if filter_date is not None:
        day = _parse_day("filterDate", filter_date, errors)
        if day is None:
            return window or (now - settings.default_window_days * DAY, END_OF_TIME)
        if day < oldest:
            errors.append(
                {"field": "filterDate", "message": f"must be within the last {settings.lookback_days} days"}
            )
        start, end = _day_start(day), _day_start(day) + DAY
        if window is not None:
            start, end = max(start, window[0]), min(end, window[1])
        return start, max(start, end)
    return window or (now - settings.default_window_days * DAY, END_OF_TIME)


def blank_is_absent(value: str | None) -> str | None:
    """An empty or blank query value means "not given" (templates send ``status=`` for unset variables)."""
    return value if value is not None and value.strip() else None


def parse_list_query(
    *,
    page: int | None,
    size: int | None,
    status: str | None,
    from_date: str | None,
    to_date: str | None,
    filter_date: str | None,
    now: float,
    settings: EmulatorSettings,
    service: str = "PRVCY",
    errors: list[dict[str, str]] | None = None,
) -> ListQuery:
    """The validated list query; raises 400 naming every bad parameter (plus any ``errors`` passed in)."""
    errors = list(errors or [])
    status, from_date, to_date, filter_date = (
        blank_is_absent(value) for value in (status, from_date, to_date, filter_date)
    )
    page = settings.page_base if page is None else page
    size = settings.default_page_size if size is None else size
    if page < settings.page_base:
        errors.append({"field": "page", "message": f"must be >= {settings.page_base}"})
    if not 1 <= size <= settings.max_page_size:
        errors.append({"field": "size", "message": f"must be between 1 and {settings.max_page_size}"})
    if status is not None and status not in JOB_STATUSES:
        errors.append({"field": "status", "message": f"must be one of {', '.join(JOB_STATUSES)}"})
    created_from, created_to = _window(from_date, to_date, filter_date, now, settings, errors)
    if errors:
        raise formatting_error(errors, service)
    return ListQuery(
        offset=(page - settings.page_base) * size,
        size=size,
        status=status,
        created_from=created_from,
        created_to=created_to,
    )


class ListParams:
    """The query parameters every job list endpoint takes, as a FastAPI dependency
    (``params: Annotated[ListParams, Depends()]``); :meth:`parse` applies the rules above."""

    def __init__(
        self,
        page: Annotated[int | None, Query(description="0-based unless the page_base setting is 1.")] = None,
        size: Annotated[int | None, Query(description="Default 100, at most max_page_size (1000).")] = None,
        status: Annotated[str | None, Query(description=f"One of {', '.join(JOB_STATUSES)}.")] = None,
        fromDate: Annotated[str | None, Query(description="YYYY-MM-DD (GMT); needs toDate.")] = None,  # noqa: N803
        toDate: Annotated[str | None, Query(description="YYYY-MM-DD (GMT); needs fromDate.")] = None,  # noqa: N803
        filterDate: Annotated[  # noqa: N803
            str | None, Query(description="YYYY-MM-DD: jobs created that day.")
        ] = None,
    ) -> None:
        self.page, self.size, self.status = page, size, status
        self.from_date, self.to_date, self.filter_date = fromDate, toDate, filterDate

    def parse(
        self,
        *,
        now: float,
        settings: EmulatorSettings,
        service: str = "PRVCY",
        errors: list[dict[str, str]] | None = None,
    ) -> ListQuery:
        """The validated query (see :func:`parse_list_query`)."""
        return parse_list_query(
            page=self.page,
            size=self.size,
            status=self.status,
            from_date=self.from_date,
            to_date=self.to_date,
            filter_date=self.filter_date,
            now=now,
            settings=settings,
            service=service,
            errors=errors,
        )
