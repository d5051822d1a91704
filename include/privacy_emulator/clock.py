"""The emulator clock: real time plus a persisted offset that tests and the demo move forward.

Everything time-dependent (token expiry, job lifecycle, list date windows, the daily cap) reads this
clock, so ``POST /_emulator/clock/advance`` fast-forwards the whole emulated service consistently.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from privacy_emulator.store import Store

ADOBE_DATE_FORMAT = "%m/%d/%Y %I:%M %p GMT"


class EmulatorClock:
    def __init__(self, store: Store) -> None:
        self._store = store

    @property
    def offset_seconds(self) -> float:
        return self._store.clock_offset()

    def now(self) -> float:
        """Seconds since the epoch on the emulator clock."""
        return time.time() + self._store.clock_offset()

    def advance(self, seconds: float) -> float:
        """Move the clock forward (never backwards: job history must stay consistent) and persist it."""
        if seconds < 0:
            raise ValueError("the emulator clock only moves forward")
        return self._store.set_clock_offset(self._store.clock_offset() + seconds)

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=UTC)


def adobe_date(epoch_seconds: float) -> str:
    """Privacy Service's date format, ``04/12/2024 04:08 PM GMT``."""
    return datetime.fromtimestamp(epoch_seconds, tz=UTC).strftime(ADOBE_DATE_FORMAT)
