"""Small builders shared by the pipeline tests."""

from __future__ import annotations

import io
from datetime import UTC, datetime

from privacy_pipeline.intake import InputSource, IntakeOptions, IntakeResult, read_requests
from privacy_pipeline.models import Identity, Subject

HEADER = "request_id,action,regulation,namespace,value,type,received_at,include"
DEFAULT_OPTIONS = IntakeOptions(default_include=("analytics",))


def source(name: str, data: bytes | str) -> InputSource:
    payload = data.encode("utf-8") if isinstance(data, str) else data
    return InputSource(name, lambda: io.BytesIO(payload))


def read(data: bytes | str, name: str = "in.csv", options: IntakeOptions = DEFAULT_OPTIONS) -> IntakeResult:
    """Read one in-memory source and assert the accounting invariant every result must keep."""
    result = read_requests([source(name, data)], options)
    assert result.rows_read == sum(len(s.rows) for s in result.subjects) + len(result.rejects)
    return result


def csv_text(*rows: str, header: str = HEADER) -> str:
    return "\n".join((header, *rows)) + "\n"


def subject(key: str, *, actions=("access",), regulation="gdpr", include=("analytics",), identities=1,
            received_at=datetime(2025, 6, 1, tzinfo=UTC), **kwargs) -> Subject:
    return Subject(
        key=key,
        actions=tuple(actions),
        regulation=regulation,
        include=tuple(include),
        identities=tuple(Identity("Email", f"{key}.{n}@example.com", "standard") for n in range(identities)),
        received_at=received_at,
        source="test.csv",
        rows=tuple(range(1, identities + 1)),
        **kwargs,
    )
