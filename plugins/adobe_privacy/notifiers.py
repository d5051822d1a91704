"""Notifiers for what a person must look at: overdue legal deadlines, content not archived in time, stuck jobs.

Operators call a notifier with the task context plus a `privacy_alert` dict (kind, count, keys or job
ids: never identity values), so any Airflow notifier works unchanged with a template such as
`"{{ privacy_alert.count }} {{ privacy_alert.kind }}"` (SlackNotifier, SmtpNotifier, ...). The default
logs at ERROR, which every log pipeline can alert on.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseNotifier

log = logging.getLogger(__name__)

DEFAULT_MESSAGE = (
    "Privacy alert {{ privacy_alert.kind }}: {{ privacy_alert.count }} item(s) in run {{ run_id }}; "
    "first: {{ privacy_alert['items'][:20] | join(', ') }}"
)


class PrivacyAlertLogNotifier(BaseNotifier):
    """Log a privacy alert at ERROR level (the default notifier of the companion DAGs)."""

    template_fields: Sequence[str] = ("message",)

    def __init__(self, message: str = DEFAULT_MESSAGE) -> None:
        super().__init__()
        self.message = message

    def notify(self, context: Any) -> None:
        log.error("%s", self.message)


def send_alert(notifier: BaseNotifier | None, context: Any, *, kind: str, items: Sequence[str]) -> None:
    """Fire `notifier` (if any) with `privacy_alert` added to the context; `items` are keys or job ids."""
    if notifier is None or not items:
        return
    # A notifier renders its templates in place: a copy per alert keeps the next alert's text its own.
    copy.copy(notifier)({**context, "privacy_alert": {"kind": kind, "count": len(items), "items": list(items)}})
