"""A realistic generated request file for the demo and the benchmarks.

Mixed regulations, 1-3 identities per subject, some `access|delete`, and about `bad_fraction` of the
rows broken in the ways real exports break: legacy or unknown regulations, bad actions, malformed
emails, unknown namespaces or products, empty values, bad dates, exact duplicates, short lines,
rows that contradict their request, and requests with too many identities.
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from os import PathLike
from pathlib import Path

from privacy_pipeline.formats import CSV_COLUMNS

_REGULATIONS = (("gdpr", 40), ("ccpa", 25), ("cpra_ca_usa", 10), ("lgpd_bra", 8), ("vcdpa_va_usa", 6),
                ("pdpa_tha", 4), ("ucpa_ut_usa", 4), ("apa_aus", 3))
_ACTIONS = (("access", 45), ("delete", 35), ("access|delete", 20))
_INCLUDES = (("", 70), ("analytics|profileService", 15), ("aepDataLake", 10), ("AudienceManager|target", 5))
_BAD_KINDS = ("legacy_regulation", "unknown_regulation", "bad_action", "bad_email", "unknown_namespace",
              "empty_value", "bad_received_at", "unknown_product", "duplicate", "short_line", "conflict",
              "too_many_identities")


@dataclass
class SampleSummary:
    rows: int
    subjects: int
    bad_rows: Counter = field(default_factory=Counter)


def _weighted(rng: random.Random, table: tuple[tuple[str, int], ...]) -> str:
    return rng.choices([v for v, _ in table], weights=[w for _, w in table])[0]


def _identity(rng: random.Random, subject: int, position: int) -> tuple[str, str]:
    kind = rng.random()
    if kind < 0.55:
        return "email", f"user{subject}.{position}@example.com"
    if kind < 0.85:
        return "ECID", "".join(rng.choices("0123456789", k=38))
    return "phone", f"+1555{rng.randrange(10**7):07d}"


def generate_requests_csv(
    path: str | PathLike[str],
    rows: int,
    bad_fraction: float = 0.02,
    seed: int = 0,
    *,
    received_until: datetime | None = None,
) -> SampleSummary:
    """Write exactly `rows` data rows (plus the header) to `path`; same seed, same file.

    `received_until` is the newest received_at (default: now); requests go back 50 days from it so
    the deadline report has overdue, due-soon and comfortable subjects.
    """
    rng = random.Random(seed)
    until = (received_until or datetime.now(UTC)).replace(microsecond=0)
    summary = SampleSummary(rows=rows, subjects=0)
    written = 0
    with Path(path).open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        while written < rows:
            summary.subjects += 1
            subject = summary.subjects
            request = [
                f"req-{seed}-{subject:08d}",
                _weighted(rng, _ACTIONS),
                _weighted(rng, _REGULATIONS),
                "", "", "standard",
                (until - timedelta(minutes=rng.randrange(50 * 24 * 60))).isoformat().replace("+00:00", "Z"),
                _weighted(rng, _INCLUDES),
            ]
            lines = []
            for position in range(rng.randint(1, 3)):
                namespace, value = _identity(rng, subject, position)
                lines.append(request[:3] + [namespace, value] + request[5:])
            if rng.random() < bad_fraction / 1.8:  # ~1.8 rows per subject
                kind = rng.choice(_BAD_KINDS)
                lines = _break(rng, kind, lines)
                summary.bad_rows[kind] += 1
            for line in lines[: rows - written]:
                if isinstance(line, str):
                    handle.write(line + "\n")
                else:
                    writer.writerow(line)
                written += 1
    return summary


def _break(rng: random.Random, kind: str, lines: list[list[str]]) -> list:
    """Damage one row of a request in the given way (the request as a whole then fails or shrinks)."""
    row = list(lines[0])
    if kind == "legacy_regulation":
        row[2] = rng.choice(("cpra_usa", "vcdpa_usa", "ucpa_usa"))
    elif kind == "unknown_regulation":
        row[2] = "gdrp"
    elif kind == "bad_action":
        row[1] = rng.choice(("erase", "access|access", ""))
    elif kind == "bad_email":
        row[3], row[4] = "email", row[4].split("@")[0] + "@@example"
    elif kind == "unknown_namespace":
        row[3] = "loyaltyId"
    elif kind == "empty_value":
        row[4] = ""
    elif kind == "bad_received_at":
        row[6] = "31/02/2025"
    elif kind == "unknown_product":
        row[7] = "analytics|photoshop"
    elif kind == "duplicate":
        return [*lines, list(lines[0])]
    elif kind == "short_line":
        return [",".join(row[:4]), *lines[1:]]
    elif kind == "conflict":
        row[2] = "ccpa" if row[2] != "ccpa" else "gdpr"
        return [*lines, [row[0], row[1], row[2], "ECID", "9" * 38, *row[5:]]]
    elif kind == "too_many_identities":
        return lines[:1] + [[*row[:3], "ECID", f"{n:038d}", *row[5:]] for n in range(1, 10)]
    return [row, *lines[1:]]
