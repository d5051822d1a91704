"""No silent green run: decide what a run's intake must alert on, and which input files it must take in.

Pure decisions over what intake saw (names, hashes, counts; never identity values):

- `inbox_empty`: the run's input location listed no input object at all (an empty day, a typo'd or
  missing `s3://` prefix). A day may legitimately be empty; silence about it may not.
- `input_rejected`: a file gave nothing usable (a whole-file reject such as a PNG or a missing header,
  or every row rejected), or the run read rows and every one of them was rejected.
- `late_input`: a file landed in a past day's partition after that day's run: the look-back found it
  and this run takes it in.

The look-back picks input files *exactly once by content hash*: a file already in the taken-in ledger
is skipped wherever it sits, and the same bytes dropped twice (two days, two names) are taken once.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Final

from privacy_pipeline.errors import ConfigurationError

INBOX_EMPTY: Final = "inbox_empty"
INPUT_REJECTED: Final = "input_rejected"
LATE_INPUT: Final = "late_input"
ALERT_KINDS: Final = (INBOX_EMPTY, INPUT_REJECTED, LATE_INPUT)

#: Days of past partitions a run looks through for files that arrived after their night.
DEFAULT_LOOKBACK_DAYS: Final = 3
#: Adobe's list endpoint looks back 45 days; a request older than a month is a case for a person.
MAX_LOOKBACK_DAYS: Final = 31


@dataclass(frozen=True)
class ListedInput:
    """One input object found under a partition: its key (or path), the partition's day and its sha256."""

    key: str
    partition: date
    sha256: str


@dataclass(frozen=True)
class InputSelection:
    """What to take in: `fresh` (first occurrence of each new hash), and what is left out and why."""

    fresh: tuple[ListedInput, ...]
    already_taken: tuple[ListedInput, ...]
    duplicates: tuple[ListedInput, ...]  # same bytes as a file in `fresh`

    def late(self, run_date: date) -> tuple[ListedInput, ...]:
        """Fresh files of a partition before the run's own day."""
        return tuple(item for item in self.fresh if item.partition < run_date)


def parse_lookback_days(value: object, setting: str = "privacy_input_lookback_days") -> int:
    """The look-back window in days from a Variable or param value (`None` or "" for the default).

    :raises ConfigurationError: not a whole number of days in 0..MAX_LOOKBACK_DAYS.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        return DEFAULT_LOOKBACK_DAYS
    allowed = (f"a whole number of days from 0 to {MAX_LOOKBACK_DAYS}",)
    if isinstance(value, bool):
        raise ConfigurationError(setting, value, allowed)
    try:
        days = int(str(value).strip()) if not isinstance(value, int) else value
    except ValueError:
        raise ConfigurationError(setting, value, allowed) from None
    if not 0 <= days <= MAX_LOOKBACK_DAYS:
        raise ConfigurationError(setting, value, allowed)
    return days


def lookback_partitions(run_date: date, days: int) -> list[date]:
    """The past days a run looks through, newest first (the run's own day is not among them)."""
    if not 0 <= days <= MAX_LOOKBACK_DAYS:
        raise ValueError(f"look-back of {days} days is outside 0..{MAX_LOOKBACK_DAYS}")
    return [run_date - timedelta(days=offset) for offset in range(1, days + 1)]


def partition_root(input_root: str, day: date) -> str:
    """`<input_root>/<YYYY-MM-DD>/`, the layout the DAGs read (`privacy_input_uri`)."""
    return f"{input_root.rstrip('/')}/{day.isoformat()}/"


def select_inputs(listed: Iterable[ListedInput], taken_in: Iterable[str]) -> InputSelection:
    """Each new content hash once, oldest partition first (then key), whatever name or day it carries.

    :param listed: every input object found in the run's partition and the look-back partitions.
    :param taken_in: sha256 of every input the ledger records as taken in by an earlier run.
    """
    taken = set(taken_in)
    fresh: list[ListedInput] = []
    already: list[ListedInput] = []
    duplicates: list[ListedInput] = []
    chosen: set[str] = set()
    for item in sorted(set(listed), key=lambda i: (i.partition, i.key, i.sha256)):
        if item.sha256 in taken:
            already.append(item)
        elif item.sha256 in chosen:
            duplicates.append(item)
        else:
            chosen.add(item.sha256)
            fresh.append(item)
    return InputSelection(tuple(fresh), tuple(already), tuple(duplicates))


@dataclass(frozen=True)
class SourceOutcome:
    """What intake made of one file: rows read and rejected, and whether the file was rejected whole."""

    name: str
    rows_read: int
    rows_rejected: int
    whole_file_rejected: bool = False

    @property
    def unusable(self) -> bool:
        return self.whole_file_rejected or (self.rows_read > 0 and self.rows_rejected >= self.rows_read)


@dataclass(frozen=True)
class InputAlert:
    """One alert for the notifier: `kind`, the file names or keys it concerns (never values), a message."""

    kind: str
    items: tuple[str, ...]
    message: str

    @property
    def count(self) -> int:
        return len(self.items)


@dataclass(frozen=True)
class IntakeOutcome:
    """The alerts of a run's intake, and the one-line WARNING when the run will do nothing."""

    alerts: tuple[InputAlert, ...] = ()
    nothing_to_do: str | None = None

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(alert.kind for alert in self.alerts)


def intake_alerts(
    *,
    input_uri: str,
    objects_listed: int,
    sources: Sequence[SourceOutcome],
    skipped_as_taken_in: int = 0,
    late: Sequence[ListedInput] = (),
    batches: int = 0,
    carried_batches: int = 0,
) -> IntakeOutcome:
    """Decide a run's input alerts from what its intake saw.

    :param objects_listed: input objects listed under the run's own input location.
    :param sources: one outcome per file read (the run's own and late ones).
    :param skipped_as_taken_in: files skipped because an earlier run took them in (by hash).
    :param late: files of past partitions this run takes in (see `select_inputs`).
    :param batches: batches staged from this run's input; `carried_batches`: carried from earlier runs.
    """
    alerts: list[InputAlert] = []
    if objects_listed == 0:
        alerts.append(InputAlert(
            INBOX_EMPTY, (input_uri,),
            f"no input object under {input_uri}: an empty day, or a wrong or missing prefix",
        ))
    unusable = tuple(s.name for s in sources if s.unusable)
    rows_read = sum(s.rows_read for s in sources)
    rows_rejected = sum(s.rows_rejected for s in sources)
    if unusable:
        alerts.append(InputAlert(
            INPUT_REJECTED, unusable,
            f"{len(unusable)} input file(s) gave no usable row (whole-file reject or every row rejected)",
        ))
    elif rows_read > 0 and rows_rejected >= rows_read:
        names = tuple(s.name for s in sources)
        alerts.append(InputAlert(INPUT_REJECTED, names, f"all {rows_read} rows read were rejected"))
    if late:
        days = sorted({item.partition.isoformat() for item in late})
        alerts.append(InputAlert(
            LATE_INPUT, tuple(item.key for item in late),
            f"{len(late)} file(s) arrived after their day's run ({', '.join(days)}); taken in now",
        ))

    nothing = None
    if batches == 0 and carried_batches == 0:
        if objects_listed == 0 and not late:
            nothing = f"This run did nothing: no input under {input_uri}"
        elif not sources and skipped_as_taken_in:
            nothing = (
                f"This run did nothing: all {skipped_as_taken_in} input file(s) under {input_uri} were taken "
                "in by an earlier run (same content hash)"
            )
        else:
            nothing = (
                f"This run did nothing: {rows_read} rows read, {rows_rejected} rejected, no batch to submit "
                "(see rejects.csv)"
            )
    return IntakeOutcome(tuple(alerts), nothing)


_ROW_NUMBER = re.compile(r"\b(rows?|lines?) \d+(?:\s*[-–]\s*\d+)?")


def rejects_by_reason(rejects: Iterable[Any], *, limit: int = 10) -> list[tuple[str, str, int]]:
    """(field, reason, count) of rejected rows, most frequent first: for a task log, never with values.

    `rejects` are `models.Reject` objects or rows of rejects.csv (mappings with `field` and `reason`).

    Intake writes reasons that name the field and the rule, never an identity value, so they may be
    logged. Row and line numbers are folded (`row 51` -> `row N`) so one rule is one line of the log.
    """
    counts: dict[tuple[str, str], int] = {}
    for reject in rejects:
        field, reason = (
            (reject.get("field", ""), reject.get("reason", ""))
            if isinstance(reject, Mapping)
            else (getattr(reject, "field", ""), getattr(reject, "reason", ""))
        )
        key = (str(field), _ROW_NUMBER.sub(lambda m: f"{m.group(1)} N", str(reason)))
        counts[key] = counts.get(key, 0) + 1
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return [(f, reason, n) for (f, reason), n in ranked[:limit]]
