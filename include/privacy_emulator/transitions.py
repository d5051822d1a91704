"""Final transitions: the one place where a job, its products or a work order are seen reaching a final state.

A status here is a pure function of time, so nothing runs at the moment a job ends. The feed sweeps the
emulator-time interval since its persisted watermark instead, and calls every listener once per final
transition, in end order:

- a privacy or hygiene job: each of its products (``product`` is that product's ``productResponses``
  entry, status ``complete`` or ``error``), then the job itself (``product`` None, ``complete``/``error``);
- a work order: the order (``product`` None, ``completed``/``failed``).

Subscribe with ``state.final_transitions.subscribe(listener)``; ``listener(transition)`` gets a
``FinalTransition``. Sweeps run after ``POST /_emulator/clock/advance``, before every Adobe-path call while
at least one listener is subscribed, and whenever a reader calls ``state.final_transitions.sweep()``
itself (a journal does so before serving a page). With no listener nothing is swept, so a listener that
subscribes later still gets every transition since the watermark (0 on a fresh database).

Delivery is at least once, like Adobe's I/O Events: the watermark is saved after the listeners ran, so a
crash in between repeats those transitions, and a listener that raises leaves the watermark where it was
(the next sweep retries); the API and admin calls that sweep (``sweep_safely``) log that failure and
answer as usual. Changing ``complete_after_seconds`` or ``workorder_complete_after_seconds`` at
run time moves the end of unfinished jobs; a sweep reports what the settings say now.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from privacy_emulator.lifecycle import finished_at, job_status, lifecycle_of, product_responses
from privacy_emulator.store import JobRecord
from privacy_emulator.workorder_store import WorkOrderRecord, WorkOrderTimeline

if TYPE_CHECKING:
    from privacy_emulator.state import EmulatorState

LOG = logging.getLogger(__name__)
WATERMARK_KEY = "final_transitions_watermark"
MAX_STRETCH = 2.0  # jitter_ratio <= 1, so no job's delays stretch further


@dataclass(frozen=True)
class FinalTransition:
    """One final state reached: ``job`` is a ``JobRecord`` (``kind`` "privacy"/"hygiene") or a
    ``WorkOrderRecord`` (``kind`` "workorder"); ``at`` is its emulator time (epoch seconds)."""

    job: JobRecord | WorkOrderRecord
    product: dict | None
    status: str
    at: float


FinalListener = Callable[[FinalTransition], None]


def workorder_timeline(state: EmulatorState) -> WorkOrderTimeline:
    return WorkOrderTimeline(
        complete_after=state.settings.workorder_complete_after_seconds,
        failure_rate=state.settings.workorder_failure_rate,
    )


class FinalTransitionFeed:
    def __init__(self, state: EmulatorState) -> None:
        self._state = state
        self._listeners: list[FinalListener] = []
        self._lock = threading.Lock()

    def subscribe(self, listener: FinalListener) -> None:
        with self._lock:
            self._listeners.append(listener)

    def unsubscribe(self, listener: FinalListener) -> None:
        with self._lock:
            self._listeners.remove(listener)

    @property
    def has_listeners(self) -> bool:
        return bool(self._listeners)

    def sweep(self, now: float | None = None) -> int:
        """Deliver every final transition up to ``now`` (default: the emulator clock); returns how many."""
        with self._lock:
            if not self._listeners:
                return 0
            store = self._state.store
            until = self._state.clock.now() if now is None else now
            since = float(store.meta_value(WATERMARK_KEY) or 0.0)
            if until <= since:
                return 0
            transitions = self._transitions(since, until)
            for transition in transitions:
                for listener in list(self._listeners):
                    listener(transition)
            store.set_meta_value(WATERMARK_KEY, repr(until))
            return len(transitions)

    def sweep_safely(self) -> int | None:
        """``sweep()`` for the API and admin paths: a failing listener is logged, never breaks the call."""
        try:
            return self.sweep()
        except Exception:
            LOG.exception("a final-transition listener failed; the next sweep delivers again")
            return None

    def _transitions(self, since: float, until: float) -> list[FinalTransition]:
        state = self._state
        lifecycle = lifecycle_of(state.settings)
        found: list[tuple[float, int, FinalTransition]] = []
        for job in state.store.jobs_finished_between(since, until, lifecycle, MAX_STRETCH):
            at = finished_at(job, lifecycle)
            for entry in product_responses(job, at, state.settings, state.catalog.products):
                status = entry["productStatusResponse"]["status"]
                found.append((at, len(found), FinalTransition(job, entry, status, at)))
            found.append((at, len(found), FinalTransition(job, None, job_status(job, at, lifecycle), at)))
        timeline = workorder_timeline(state)
        for order in state.store.workorders_finished_between(since, until, timeline, MAX_STRETCH):
            at = order.created_at + timeline.complete_after * order.stretch
            status = "failed" if order.outcome_draw < timeline.failure_rate else "completed"
            found.append((at, len(found), FinalTransition(order, None, status, at)))
        return [transition for _, _, transition in sorted(found, key=lambda item: item[:2])]
