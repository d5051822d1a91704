"""Value types shared by intake, batching, ledger and report. Frozen, so they can be keys and shared."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Identity:
    """One `userIDs[]` entry: canonical namespace code, the identity value and its qualifier."""

    namespace: str
    value: str
    type: str = "standard"

    def __repr__(self) -> str:
        # Identity values are personal data: keep them out of reprs, tracebacks and logs.
        return f"Identity(namespace={self.namespace!r}, type={self.type!r}, value=<redacted>)"

    def as_user_id(self) -> dict[str, str]:
        """The Adobe `userIDs[]` item."""
        return {"namespace": self.namespace, "value": self.value, "type": self.type}


@dataclass(frozen=True, slots=True)
class Subject:
    """One data subject (`users[]` item) and where it came from.

    `key` is the request_id, which becomes `users[].key` and is how the ledger finds the subject again.
    `rows` are the 1-based data rows of `source` that make up this subject (one per identity in CSV,
    one per line in JSON Lines).
    """

    key: str
    actions: tuple[str, ...]
    regulation: str
    include: tuple[str, ...]
    identities: tuple[Identity, ...]
    received_at: datetime | None = None
    priority: str = "normal"
    expand_ids: bool = False
    merge_policy_id: str | None = None
    source: str = ""
    rows: tuple[int, ...] = field(default=())

    def as_user(self) -> dict:
        """The Adobe `users[]` item for POST /jobs."""
        return {
            "key": self.key,
            "action": list(self.actions),
            "userIDs": [identity.as_user_id() for identity in self.identities],
        }


@dataclass(frozen=True, slots=True)
class Reject:
    """A rejected input row: where it is, which field failed and why, and the row as read.

    `row` is the 1-based data row (0 when the whole file is rejected); `line` the physical line of the
    file where the row starts, when known. `raw` holds the row's original columns (for rejects.csv,
    which is PII and lives only in the run's encrypted S3 prefix; never log it).
    """

    source: str
    row: int
    request_id: str
    field: str
    reason: str
    raw: dict[str, str] = field(default_factory=dict, repr=False)
    line: int | None = None
