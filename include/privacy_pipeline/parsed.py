"""What a parsed source looks like, shared by the CSV and JSON readers (see `formats`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pandas as pd

#: The input CSV contract (DESIGN.md), in order.
CSV_COLUMNS = ("request_id", "action", "regulation", "namespace", "value", "type", "received_at", "include")
#: Columns a CSV header must have; the others default per row (type standard, include the default).
REQUIRED_COLUMNS = ("request_id", "action", "regulation", "namespace", "value")
#: Optional job-shape columns beyond the contract; JSON Lines carries them as priority/expandIds/mergePolicyId.
EXTRA_COLUMNS = ("priority", "expand_ids", "merge_policy_id")
FRAME_COLUMNS = CSV_COLUMNS + EXTRA_COLUMNS

CSV = "csv"
JSONL = "jsonl"
JSON_ARRAY = "json"

BAD_UTF8 = "\ufffd"
#: The key of a rejected record's text in `BadRow.raw` when it has no columns to show it by.
RAW_TEXT = "raw_line"


class FileRejected(Exception):
    """The whole source is unusable (missing columns, corrupt gzip ...); the message is the reason.

    `line` is the physical line the reason is about, when there is one (a bad header).
    """

    def __init__(self, reason: str, line: int | None = None):
        super().__init__(reason)
        self.line = line


@dataclass
class BadRow:
    """A data row that never made it into the frame (malformed CSV line, invalid JSON ...)."""

    row: int
    field: str
    reason: str
    raw: dict[str, str]
    request_id: str = ""


@dataclass
class ParsedSource:
    """One source as rows, with the physical-line accounting of the whole file.

    `lines_read == lines_header + lines_blank + lines_in_records` always: every line is the header,
    blank, or part of exactly one data record (a record may span lines; a rejected record still counts).
    """

    format: str
    frame: pd.DataFrame
    bad_rows: list[BadRow]
    rows_read: int
    #: True when the bytes were not valid UTF-8: cells holding U+FFFD mark the affected rows.
    had_bad_utf8: bool = False
    #: Maps a 1-based data row to the physical line where it starts (None when unknown).
    line_of: Callable[[int], int | None] = field(default=lambda row: None)
    #: The source's own columns (CSV header), for showing a rejected row as it was.
    columns: list[str] = field(default_factory=list)
    #: JSON: the text of each record by row, for showing a rejected record as it was.
    record_text: Callable[[int], str] = field(default=lambda row: "")
    lines_read: int = 0
    lines_header: int = 0
    lines_blank: int = 0
    lines_in_records: int = 0

    def line_gap(self) -> int:
        """Lines neither header, blank nor in a record: 0 unless there is a bug."""
        return self.lines_read - self.lines_header - self.lines_blank - self.lines_in_records
