"""Physical lines: the unit intake accounts by, and the helpers that count and split them.

A physical line ends at LF, at CR LF, or at a CR not followed by LF (as `bytes.splitlines()` and both
CSV parsers count them); a last line without a terminator is a line; an empty file has none. Every
line of a source is the header, a blank line, part of exactly one data record, or (when the whole
file is rejected) part of that one reject.

The CSV rule built on them (see `csv_format`): every non-empty line after the header is exactly one
record, read on its own; a quoted value never spans lines.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

#: The longest field or header cell we take (the `csv` module's historical limit): longer is a reject.
MAX_FIELD_CHARS = 128 * 1024
MAX_FIELD_TEXT = "128 KiB"

_EOL = re.compile(rb"\r\n|\r|\n")
_SCAN_SLICE = 1 << 24


def count_lines(data: bytes, start: int = 0) -> int:
    """Physical lines of `data[start:]` (C-speed counts, no per-line work, no copy)."""
    if start >= len(data):
        return 0
    terminators = data.count(b"\n", start)
    if data.find(b"\r", start) >= 0:  # rare: only then are the slower two-byte counts needed
        terminators += data.count(b"\r", start) - data.count(b"\r\n", start)
    return terminators + (0 if data.endswith((b"\n", b"\r")) else 1)


def nonempty_line_numbers(data: bytes, start: int = 0) -> np.ndarray:
    """1-based numbers of the non-empty lines of `data[start:]`. Vectorised, scanned in slices."""
    body = np.frombuffer(data, dtype=np.uint8, offset=start) if start < len(data) else np.zeros(0, np.uint8)
    size = len(body)
    if not size:
        return np.zeros(0, dtype=np.int64)
    if data.find(b"\r", start) < 0:
        terminator = np.concatenate([
            np.flatnonzero(body[at : at + _SCAN_SLICE] == 0x0A) + at for at in range(0, size, _SCAN_SLICE)
        ])
        next_start = terminator + 1
    else:
        is_lf = body == 0x0A
        is_cr = body == 0x0D
        crlf = np.zeros(size, dtype=bool)
        crlf[:-1] = is_cr[:-1] & is_lf[1:]
        lf_of_crlf = np.zeros(size, dtype=bool)
        lf_of_crlf[1:] = crlf[:-1]
        terminator = np.flatnonzero(is_cr | (is_lf & ~lf_of_crlf))
        next_start = terminator + 1 + crlf[terminator]
    line_start = np.concatenate(([0], next_start))
    line_end = np.concatenate((terminator, [size]))
    if line_start[-1] == size:  # a final terminator ends the last line; no empty line follows it
        line_start, line_end = line_start[:-1], line_end[:-1]
    return np.flatnonzero(line_end > line_start) + 1


def next_line(data: bytes, start: int) -> tuple[int, int]:
    """(end of the line starting at `start`, start of the next line)."""
    match = _EOL.search(data, start)
    if match is None:
        return len(data), len(data)
    return match.start(), match.end()


@contextmanager
def unlimited_fields() -> Iterator[None]:
    """Lift the `csv` module's field limit while we read: we check lengths ourselves and name the field."""
    previous = csv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


def count_terminators(data: bytes, start: int, end: int) -> int:
    """Line ends (LF, CR LF, lone CR) in `data[start:end]`."""
    count = data.count(b"\n", start, end)
    if data.find(b"\r", start, end) >= 0:
        count += data.count(b"\r", start, end) - data.count(b"\r\n", start, end)
    return count


def nonempty_line_count(data: bytes, start: int, end: int) -> int:
    """Non-empty physical lines in `data[start:end]` (a span that starts at a line start)."""
    if start >= end:
        return 0
    lines = count_terminators(data, start, end) + (0 if data[end - 1 : end] in (b"\n", b"\r") else 1)
    if data.find(b"\r", start, end) < 0 and data.find(b"\n\n", start, end) < 0 and data[start] != 0x0A:
        return lines
    return len(nonempty_line_numbers(data[start:end]))


def parse_line(text: str) -> list[str]:
    """The fields of one physical line (without its line end) read on its own, as the `csv` module reads.

    A quote that does not close on the line leaves a line break in the field it opened (the line end
    the parser saw), which is how callers recognise it. Call inside `unlimited_fields()`.
    """
    return next(csv.reader([text + "\n"]), [])


def quote_runs_to(data: bytes, line: int, line_end: int) -> int:
    """The last line a quote left open on `line` (whose line end is at `line_end`) would have swallowed:
    the line of the next quote character, or the last line of the file."""
    closing = data.find(b'"', line_end)
    if closing >= 0:
        return line + count_terminators(data, line_end, closing)
    return max(line, line + count_terminators(data, line_end, len(data)) - (1 if data.endswith((b"\n", b"\r")) else 0))


def malformed_reason(actual: int, expected: int) -> str:
    return f"malformed CSV line: {actual} field(s) where the header has {expected}"
