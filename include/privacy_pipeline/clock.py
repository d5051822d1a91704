"""One clock for every "now" of the pipeline: reconcile's rules, the report's "today", ledger times, the budget day.

The wall clock by default. A rehearsal, a simulated month against the emulator, or a rerun of an old
day sets `as_of` (the Airflow Variable `privacy_as_of`, or an operator argument): the run then starts
at that moment and time moves on from it at the wall clock's pace, so durations inside the run stay
real while every rule sees the same "now" as the emulator (or as the day being rerun).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from privacy_pipeline.errors import ConfigurationError


class Clock:
    """`now()` as an aware UTC datetime; `today()` its UTC date.

    :param as_of: the moment this clock reads at construction; None for the wall clock.
    :param monotonic: the time source the offset moves with (injectable for tests).
    """

    def __init__(self, as_of: datetime | None = None, *,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._monotonic = monotonic
        self._start = monotonic()
        self.as_of = _aware(as_of) if as_of is not None else None

    @property
    def is_wall_clock(self) -> bool:
        return self.as_of is None

    def now(self) -> datetime:
        if self.as_of is None:
            return datetime.now(UTC)
        return self.as_of + timedelta(seconds=self._monotonic() - self._start)

    def today(self) -> date:
        return self.now().date()

    def __repr__(self) -> str:
        return "Clock(wall)" if self.as_of is None else f"Clock(as_of={self.as_of.isoformat()})"


WALL_CLOCK = Clock()


def clock_from_setting(value: str | datetime | None, *, setting: str = "as_of") -> Clock:
    """The clock an `as_of` setting asks for: empty for the wall clock, else an ISO-8601 date or date-time.

    :raises ConfigurationError: the value is not a date (a typo must not silently move every deadline).
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return Clock()
    if isinstance(value, datetime):
        return Clock(value)
    text = str(value).strip()
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ConfigurationError(setting, value, hint="an ISO-8601 date or date-time, or empty for now") from None
    return Clock(moment)


def _aware(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
