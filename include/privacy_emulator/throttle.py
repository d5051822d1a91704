"""The gateway's throttle: API calls per minute of the emulator clock, answered with Adobe's 429 body.

Adobe's gateway answers rate limiting with 429 ``{"error_code":"429050","message":"Too many requests"}``
(developer FAQs of other Experience Platform APIs; ServiceNow KB3006995). Off unless
``gateway_requests_per_minute`` is set; the ``429`` fault kind sends the same body.
"""

from __future__ import annotations

import threading

THROTTLE_BODY = {"error_code": "429050", "message": "Too many requests"}


class GatewayThrottle:
    """One counter for the org (Adobe throttles per org), per minute of the emulator clock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._minute = -1
        self._count = 0

    def admit(self, now: float, limit: int) -> float | None:
        """None when the call may pass, else the seconds until the next minute starts."""
        with self._lock:
            minute = int(now // 60)
            if minute != self._minute:
                self._minute, self._count = minute, 0
            self._count += 1
            if self._count <= limit:
                return None
            return (minute + 1) * 60 - now
