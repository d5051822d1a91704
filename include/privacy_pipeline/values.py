"""Value rules that need more than a catalogue lookup: receipt dates and look-alike keys.

Look-alike keys: a request_id is normalised before anything compares it (`normalise_key`): Unicode
NFKC (a no-break space becomes a space, full-width letters become ASCII), then every invisible format
character (zero-width space and joiners, byte order marks, soft hyphens: category Cf) is removed and
the ends are stripped, so "r1", "r1<U+200B>" and "<U+00A0>r1" are one key. A key that still mixes letters of
look-alike scripts (Latin with Cyrillic, Greek, Armenian or Cherokee) is rejected, since normalising
cannot tell which one the person meant; a key in one script alone (all Cyrillic) is fine. A key with
control characters or a quote character is rejected.

Receipt dates: `received_at` must be a real receipt date, on or after `EARLIEST_RECEIVED` and no more
than `FUTURE_TOLERANCE` after the run's clock; "9999-12-31", "-1" or year 0 are rejects with a
reason, so no deadline computed from an accepted date can overflow.
"""

from __future__ import annotations

import unicodedata
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

#: The earliest believable receipt date, and how far past the run's clock a date may be (time zones).
EARLIEST_RECEIVED = datetime(2000, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(days=1)
#: Scripts whose letters look like Latin ones: a key mixing two of them is a look-alike.
CONFUSABLE_SCRIPTS = frozenset({"LATIN", "CYRILLIC", "GREEK", "ARMENIAN", "CHEROKEE"})
_ISO_DATE_START = r"^\s*\d{4}-?\d{2}"


def parse_received_at(uniques: list[str], now: datetime | None = None) -> list[tuple[datetime | None, str | None]]:
    """ISO-8601 strings -> aware UTC datetimes (naive input is read as UTC); "" -> None. Vectorised.

    A date before `EARLIEST_RECEIVED` or more than `FUTURE_TOLERANCE` after `now` is an error.
    """
    latest = (now or datetime.now(UTC)) + FUTURE_TOLERANCE
    stripped = pc.utf8_trim_whitespace(pa.array(uniques, pa.string()))
    empty = pc.equal(stripped, "").to_numpy(zero_copy_only=False)
    shaped = pc.match_substring_regex(stripped, _ISO_DATE_START).to_numpy(zero_copy_only=False)
    candidates = pd.Series(stripped.to_numpy(zero_copy_only=False), dtype=object).where(~empty & shaped)
    parsed = pd.to_datetime(candidates, format="ISO8601", utc=True, errors="coerce")
    invalid = parsed.isna().to_numpy(dtype=bool) & ~empty
    early = ~invalid & ~empty & (parsed < pd.Timestamp(EARLIEST_RECEIVED)).to_numpy(dtype=bool)
    late = ~invalid & ~empty & (parsed > pd.Timestamp(latest)).to_numpy(dtype=bool)
    usable = ~(empty | invalid | early | late)
    stamps = np.full(len(uniques), None, dtype=object)
    if usable.any():
        stamps[usable] = np.array(parsed[usable].dt.to_pydatetime(), dtype=object)
    errors = np.full(len(uniques), None, dtype=object)
    errors[invalid] = "received_at is not an ISO-8601 date or date-time"
    errors[early] = (f"received_at is before {EARLIEST_RECEIVED:%Y-%m-%d}: not a real receipt date "
                     "(a placeholder?)")
    errors[late] = (f"received_at is more than {FUTURE_TOLERANCE.days} day(s) in the future: not a real "
                    "receipt date (a 'no date' placeholder like 9999-12-31?)")
    return list(zip(stamps.tolist(), errors.tolist(), strict=True))


def normalise_key(raw: str) -> str:
    """A request_id as compared and sent: NFKC, invisible format characters (Cf) removed, ends stripped."""
    text = unicodedata.normalize("NFKC", raw)
    return "".join(c for c in text if unicodedata.category(c) != "Cf").strip()


def mixed_scripts(key: str) -> list[str]:
    """The look-alike scripts whose letters `key` mixes (empty when it uses at most one)."""
    scripts = {unicodedata.name(c, "").split(" ", 1)[0] for c in key if c.isalpha()}
    found = sorted(scripts & CONFUSABLE_SCRIPTS)
    return found if len(found) > 1 else []
