"""Physical lines: the unit intake accounts by, and the line-aware CSV record reader.

A physical line ends at LF, at CR LF, or at a CR not followed by LF (as `bytes.splitlines()` and both
CSV parsers count them); a last line without a terminator is a line; an empty file has none. Every
line of a source is the header, a blank line, part of exactly one data record, or (when the whole
file is rejected) part of that one reject.

`read_csv_records` is the slow, exact path for a CSV body whose records do not all sit on one line:
it knows the first and last line of every record. A record that runs over several lines because a
quoted value holds a line break (a stray or unbalanced `"`) is not trusted: it is rejected on its
first line, with the lines it spans in the reason, and the lines it swallowed are read again as
records of their own. This holds for every column, not only the contract's: a stray quote in a
free-text `notes` column would otherwise swallow the next requests into a note and lose them
silently; a genuine multi-line note costs a visible reject of its continuation lines instead.
"""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

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


def split_lines(text: str) -> list[str]:
    """The physical lines of `text`, each with its terminator (LF, CR LF or CR; nothing else)."""
    return io.StringIO(text, newline="").readlines()


@contextmanager
def unlimited_fields() -> Iterator[None]:
    """Lift the `csv` module's field limit while we read: we check lengths ourselves and name the field."""
    previous = csv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        csv.field_size_limit(previous)


@dataclass(frozen=True, slots=True)
class CsvRecord:
    """One data record of a CSV body: its lines, its fields (None when rejected whole), and why."""

    first: int  # 1-based physical line where it starts (in the file)
    last: int  # its last physical line
    fields: list[str] | None
    problem: str | None
    text: str  # the record as read (the first line only for a record rejected as swallowing others)
    field: str = "*"


@dataclass
class CsvRecords:
    records: list[CsvRecord]
    blank_lines: int
    lines: int


class _Feed:
    """Lines to a `csv.reader`, counting how many it took."""

    def __init__(self, lines: Sequence[str], position: int):
        self.lines = lines
        self.position = position

    def __iter__(self) -> _Feed:
        return self

    def __next__(self) -> str:
        if self.position >= len(self.lines):
            raise StopIteration
        self.position += 1
        return self.lines[self.position - 1]


def read_csv_records(text: str, first_line: int, names: Sequence[str]) -> CsvRecords:
    """Every record of the CSV body `text` with its physical lines (the exact, slow path).

    :param first_line: the file's line number of the body's first line.
    :param names: the header's column names (the record width).
    """
    lines = split_lines(text)
    records: list[CsvRecord] = []
    blank = 0
    position = 0
    with unlimited_fields():
        while position < len(lines):
            feed = _Feed(lines, position)
            reader = csv.reader(feed)
            restart = None
            while feed.position < len(lines):
                start = feed.position
                try:
                    fields = next(reader)
                except StopIteration:
                    break
                except csv.Error as err:  # not expected without a field limit; never let it out
                    records.append(_whole(first_line, start, feed.position, lines, f"unreadable CSV ({err})"))
                    restart = feed.position
                    break
                end = feed.position  # exclusive
                if not fields:
                    blank += end - start
                    continue
                record, swallowed = _classify(fields, first_line, start, end, lines, names)
                if end == len(lines) and record.problem is None and _open_quote_at_end(lines[start:end]):
                    record = CsvRecord(record.first, record.last, None,
                                       f"a quote is never closed (line {record.first}, the last line)", record.text)
                records.append(record)
                if swallowed:
                    restart = start + 1
                    break
            position = len(lines) if restart is None else restart
    return CsvRecords(records, blank, len(lines))


def _whole(first_line: int, start: int, end: int, lines: Sequence[str], reason: str) -> CsvRecord:
    return CsvRecord(first_line + start, first_line + max(start, end - 1), None, reason,
                     "".join(lines[start:end]).rstrip("\r\n"))


def _classify(fields: list[str], first_line: int, start: int, end: int, lines: Sequence[str],
              names: Sequence[str]) -> tuple[CsvRecord, bool]:
    """(the record, whether it swallowed lines that must be read again)."""
    first, last = first_line + start, first_line + end - 1
    broken = next((names[i] if i < len(names) else "*" for i in range(len(fields))
                   if "\n" in fields[i] or "\r" in fields[i]), None)
    if broken is None and end - start > 1 and len(fields) != len(names):
        broken = "*"  # a malformed record over several lines: a stray quote, whatever the column
    if broken is not None:
        where = f"column {broken}" if broken != "*" else "a column"
        if end - start > 1:
            reason = (f"a quoted value in {where} runs over lines {first}-{last} (a stray or unbalanced quote); "
                      f"lines {first + 1}-{last} are read as rows of their own")
        else:
            reason = f"a quote in {where} is never closed (line {first})"
        text = lines[start].rstrip("\r\n")
        return CsvRecord(first, first, None, reason, text, broken if broken != "*" else "*"), end - start > 1
    text = "".join(lines[start:end]).rstrip("\r\n")
    if len(fields) != len(names):
        return CsvRecord(first, last, fields, malformed_reason(len(fields), len(names)), text), False
    too_long = next((i for i, value in enumerate(fields) if len(value) > MAX_FIELD_CHARS), None)
    if too_long is not None:
        return CsvRecord(first, last, None, f"field {names[too_long]} is longer than {MAX_FIELD_TEXT}",
                         text[:200], names[too_long]), False
    return CsvRecord(first, last, fields, None, text), False


def _open_quote_at_end(lines: Sequence[str]) -> bool:
    """Whether the file's last record ends inside quotes (only visible when it has no line end)."""
    if not lines or lines[-1].endswith(("\n", "\r")) or '"' not in lines[-1]:
        return False
    try:
        list(csv.reader(lines, strict=True))
    except csv.Error:
        return True
    return False


def malformed_reason(actual: int, expected: int) -> str:
    return f"malformed CSV line: {actual} field(s) where the header has {expected}"
