"""Errors of the pure pipeline that the Airflow layer must treat differently from a passing fault."""

from __future__ import annotations

from collections.abc import Iterable


class ConfigurationError(ValueError):
    """
    A setting, param or Variable holds a value that can never work (an unknown product, a regulation
    Adobe does not know, a malformed JSON Variable). Retrying cannot help: operators turn it into a
    non-retryable task failure. The message names the setting, the value and the allowed values.
    """

    def __init__(self, setting: str, value: object, allowed: Iterable[str] = (), hint: str = "") -> None:
        self.setting = setting
        self.value = value
        self.allowed = sorted(allowed)
        shown = ", ".join(self.allowed)
        message = f"{setting}: {value!r} is not valid"
        if self.allowed:
            message += f"; allowed: {shown}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)
