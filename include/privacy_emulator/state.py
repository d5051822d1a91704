"""The emulator's run-time state shared by every route: settings, store, clock, faults and call counts."""

from __future__ import annotations

import threading
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Annotated

from fastapi import Depends, Request

from privacy_emulator.catalog import Catalog, load_catalog
from privacy_emulator.clock import EmulatorClock
from privacy_emulator.faults import FaultBook
from privacy_emulator.settings import EmulatorSettings
from privacy_emulator.store import Store
from privacy_emulator.throttle import GatewayThrottle
from privacy_emulator.transitions import FinalTransitionFeed

MAX_RECORDED_BLOB_REQUESTS = 1000


@dataclass
class CallCounter:
    """Calls per route template and HTTP status, for ``GET /_emulator/stats``."""

    _counts: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, route: str, status: int) -> None:
        with self._lock:
            self._counts[route][str(status)] += 1

    def snapshot(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {route: dict(statuses) for route, statuses in sorted(self._counts.items())}

    def clear(self) -> None:
        with self._lock:
            self._counts.clear()


@dataclass
class EmulatorState:
    settings: EmulatorSettings
    store: Store
    launch_settings: EmulatorSettings
    blob_base_url: str | None = None
    catalog: Catalog = field(default_factory=load_catalog)
    calls: CallCounter = field(default_factory=CallCounter)
    blob_requests: list[dict] = field(default_factory=list)
    faults: FaultBook = field(init=False)
    clock: EmulatorClock = field(init=False)
    throttle: GatewayThrottle = field(default_factory=GatewayThrottle)
    final_transitions: FinalTransitionFeed = field(init=False)
    """The hook for final states: ``final_transitions.subscribe(listener)`` (see ``transitions.py``)."""

    def __post_init__(self) -> None:
        self.clock = EmulatorClock(self.store)
        self.final_transitions = FinalTransitionFeed(self)
        self.faults = FaultBook(seed=self.settings.seed)
        for spec in self.settings.faults:
            self.faults.add(spec)

    @property
    def blob_secret(self) -> str:
        """Key for blob download tokens: stable across restarts for the same credentials and seed."""
        return f"{self.settings.client_secret}:{self.settings.seed}"

    def record_blob_request(self, entry: dict) -> None:
        self.blob_requests.append(entry)
        del self.blob_requests[:-MAX_RECORDED_BLOB_REQUESTS]

    def reset(self) -> None:
        """Back to launch settings with no jobs, consent, faults, call counts or clock offset."""
        self.store.reset()
        self.settings = self.launch_settings.model_copy(deep=True)
        self.faults.clear()
        self.faults.seed = self.settings.seed
        for spec in self.settings.faults:
            self.faults.add(spec)
        self.calls.clear()
        self.blob_requests.clear()


def get_state(request: Request) -> EmulatorState:
    return request.app.state.emulator


State = Annotated[EmulatorState, Depends(get_state)]
