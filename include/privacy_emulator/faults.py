"""Fault injection: latency, 429 with Retry-After, 5xx, PRVCY-1030-400 and "drop after commit".

A fault matches a route template (``"POST /data/core/privacy/jobs"``) or ``"*"``. ``times`` limits it to
the next N firings; ``rate`` fires it with a probability drawn deterministically from the seed, the
fault id and that fault's own call counter, so a failing run can be replayed. Latency faults add up; of
the other kinds the first one that fires wins.

"drop_after_commit" is Adobe's 60 s gateway case: the handler runs and commits (jobs exist), then the
connection is aborted before any response byte is written, so the client sees a dropped connection.
"""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass, field

from privacy_emulator.lifecycle import seeded_unit
from privacy_emulator.settings import FaultSpec


@dataclass
class ActiveFault:
    id: str
    spec: FaultSpec
    calls_seen: int = 0
    fired: int = 0

    def as_dict(self) -> dict:
        return {"id": self.id, **self.spec.model_dump(), "calls_seen": self.calls_seen, "fired": self.fired}


@dataclass
class FaultDecision:
    """What the faults chose for one call: total added latency and at most one failing fault."""

    latency_ms: int = 0
    failure: FaultSpec | None = None


@dataclass
class FaultBook:
    seed: int
    _faults: list[ActiveFault] = field(default_factory=list)
    _ids: itertools.count = field(default_factory=lambda: itertools.count(1))
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, spec: FaultSpec) -> str:
        with self._lock:
            fault = ActiveFault(id=f"fault-{next(self._ids)}", spec=spec)
            self._faults.append(fault)
            return fault.id

    def clear(self) -> None:
        """Remove every fault and restart ids, so a replayed test draws the same rate decisions."""
        with self._lock:
            self._faults.clear()
            self._ids = itertools.count(1)

    def list(self) -> list[dict]:
        with self._lock:
            return [fault.as_dict() for fault in self._faults]

    def decide(self, route: str) -> FaultDecision:
        """Count this call against every matching fault and return what fires."""
        decision = FaultDecision()
        with self._lock:
            for fault in list(self._faults):
                if fault.spec.route not in ("*", route):
                    continue
                fault.calls_seen += 1
                if decision.failure is not None and fault.spec.kind != "latency":
                    continue
                if not self._fires(fault):
                    continue
                fault.fired += 1
                if fault.spec.times is not None and fault.fired >= fault.spec.times:
                    self._faults.remove(fault)
                if fault.spec.kind == "latency":
                    decision.latency_ms += fault.spec.latency_ms
                else:
                    decision.failure = fault.spec
        return decision

    def _fires(self, fault: ActiveFault) -> bool:
        if fault.spec.rate is None:
            return True
        return seeded_unit(self.seed, fault.id, str(fault.calls_seen)) < fault.spec.rate
