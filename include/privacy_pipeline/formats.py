"""Input formats: bytes of one source -> a table of identity rows, plus the rows that could not be parsed.

Both formats end in the same shape, `ParsedSource.frame`: one row per identity with the CSV contract's
columns as strings (missing -> "") and `_row`, the 1-based data row it came from (a CSV record, or a JSON
Lines line that may carry several identities). Validation then runs on that one shape.

Every source is also accounted by physical line (`ParsedSource.lines_*`, see `lines`): a line ends at
LF, CR LF or a lone CR in both formats. CSV is parsed in `csv_format`. Before either parser runs, a
file that is not UTF-8 text at all (UTF-16, an image, an archive) is rejected whole with a reason that
says so.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Callable, Iterator
from typing import Any

import pandas as pd

from privacy_pipeline.csv_format import is_valid_utf8, parse_csv
from privacy_pipeline.lines import count_lines
from privacy_pipeline.parsed import (
    BAD_UTF8,
    CSV,
    CSV_COLUMNS,
    EXTRA_COLUMNS,
    FRAME_COLUMNS,
    JSON_ARRAY,
    JSONL,
    RAW_TEXT,
    REQUIRED_COLUMNS,
    BadRow,
    FileRejected,
    ParsedSource,
)

__all__ = [
    "BAD_UTF8", "CSV", "CSV_COLUMNS", "EXTRA_COLUMNS", "FRAME_COLUMNS", "JSONL", "JSON_ARRAY", "RAW_TEXT",
    "REQUIRED_COLUMNS", "BadRow", "FileRejected", "ParsedSource", "decompress", "detect_format",
    "is_valid_utf8", "parse", "sniff",
]

_GZIP_MAGIC = b"\x1f\x8b"
_BOM = b"\xef\xbb\xbf"
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
#: File signatures of formats people export by mistake: name -> magic bytes.
_SIGNATURES = (
    ("a PNG image", b"\x89PNG\r\n\x1a\n"), ("a JPEG image", b"\xff\xd8\xff"), ("a GIF image", b"GIF8"),
    ("a PDF document", b"%PDF-"), ("a ZIP archive (or an Excel .xlsx workbook)", b"PK\x03\x04"),
    ("an Excel .xls workbook", b"\xd0\xcf\x11\xe0"), ("a 7-Zip archive", b"7z\xbc\xaf"),
    ("a bzip2 file", b"BZh"), ("an xz file", b"\xfd7zXZ"), ("a Parquet file", b"PAR1"),
)
_SNIFF_BYTES = 64 * 1024
_LINE_END = re.compile(r"\r\n|\r|\n")


def decompress(data: bytes) -> bytes:
    """Gunzip `data` when it is gzip (by magic number, whatever the name says)."""
    if not data.startswith(_GZIP_MAGIC):
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise FileRejected(f"not a readable gzip file ({err})") from err


def sniff(data: bytes) -> None:
    """Reject a file that is not UTF-8 text at all, saying what it looks like instead.

    UTF-16 (by byte order mark, or by NUL bytes in every other position) is "not UTF-8 text"; a known
    binary signature or NUL bytes making up 1% of the start is "not a CSV or JSON text file". A UTF-8
    file with a few bad bytes (or a stray NUL) is not rejected here: its affected rows are, one by one.
    """
    if data.startswith(_UTF16_BOMS):
        raise FileRejected("not UTF-8 text: the file is UTF-16 (it starts with a UTF-16 byte order mark); "
                           "save it as UTF-8", 1)
    for what, magic in _SIGNATURES:
        if data.startswith(magic):
            raise FileRejected(f"not a CSV or JSON text file: it is {what}", 1)
    head = data[:_SNIFF_BYTES]
    if head and head.count(0) * 100 >= len(head):  # NUL is at least 1% of the start: not text (a stray one is a row's problem)
        even, odd = head[0::2].count(0), head[1::2].count(0)
        half = max(len(head) // 2, 1)
        if max(even, odd) * 2 >= half and min(even, odd) * 10 < half:  # Latin text in UTF-16: every other byte
            raise FileRejected("not UTF-8 text: the file looks like UTF-16 (NUL in every other byte); "
                               "save it as UTF-8", 1)
        raise FileRejected("not a CSV or JSON text file: it holds binary data (NUL bytes)", 1)


def detect_format(name: str, data: bytes) -> str:
    """CSV, JSON Lines or a JSON array: by extension (after an optional .gz), else by the first byte."""
    lowered = name.lower().split("?", 1)[0]
    if lowered.endswith(".gz"):
        lowered = lowered[:-3]
    if lowered.endswith(".csv"):
        return CSV
    if lowered.endswith((".jsonl", ".ndjson")):
        return JSONL
    first = data.lstrip(_BOM + b" \t\r\n")[:1]
    if first == b"[":
        return JSON_ARRAY
    if first == b"{" or lowered.endswith(".json"):
        return JSONL
    return CSV


def parse(name: str, data: bytes) -> ParsedSource:
    """Parse the (already decompressed) bytes of one source; `FileRejected` when it is unusable."""
    sniff(data)
    if data.startswith(_BOM):
        data = data[len(_BOM) :]
    fmt = detect_format(name, data)
    if fmt == CSV:
        return parse_csv(data)
    return _parse_json(data, fmt)


# --------------------------------------------------------------------------------------- JSON Lines


def _parse_json(data: bytes, fmt: str) -> ParsedSource:
    had_bad_utf8 = False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        had_bad_utf8 = True
        text = data.decode("utf-8", errors="replace")
    lines_read = count_lines(data)
    if fmt == JSON_ARRAY:
        records, lines, texts = _json_array_records(text)
        blank = sum(1 for line in _physical_lines(text) if not line.strip())
    else:
        records, lines, texts = _json_line_records(text)
        blank = lines_read - len(records)
    identity_rows: list[dict[str, Any]] = []
    bad_rows: list[BadRow] = []
    for row, record in enumerate(records, start=1):
        try:
            identity_rows.extend(_flatten_user(record, row))
        except _RecordError as err:
            key = record.get("key") if isinstance(record, dict) else None
            key = key.strip() if isinstance(key, str) and key.isprintable() else ""
            bad_rows.append(BadRow(row, err.field, err.reason, {"json": texts(row)}, key))
    frame = pd.DataFrame(identity_rows, columns=[*FRAME_COLUMNS, "_row"])
    frame[list(FRAME_COLUMNS)] = frame[list(FRAME_COLUMNS)].astype(str)
    frame["_row"] = frame["_row"].astype("int64")
    # JSON Lines: one record per non-blank line. A JSON array: its non-blank lines are the document
    # that holds the records (a record's own lines are not tracked; its row is its array position).
    return ParsedSource(
        fmt, frame, bad_rows, len(records), had_bad_utf8, lambda row: lines.get(row),
        columns=["json"], record_text=texts,
        lines_read=lines_read, lines_blank=blank, lines_in_records=lines_read - blank,
    )


class _RecordError(ValueError):
    def __init__(self, field: str, reason: str):
        super().__init__(reason)
        self.field = field
        self.reason = reason


def _physical_lines(text: str) -> list[str]:
    """The physical lines of `text` without terminators (LF, CR LF or CR; never U+2028 and kin)."""
    lines = _LINE_END.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # a final terminator ends the last line; no empty line follows it
    return lines


def _json_line_records(text: str) -> tuple[list[Any], dict[int, int], Callable[[int], str]]:
    """Parsed objects (or the raw text of a line that is not JSON), row -> physical line, row -> text.

    A raw CR or LF can never sit inside a JSON value (it must be escaped), so splitting on every line
    end is safe; str.splitlines() would also split inside strings holding U+2028 etc.
    """
    records: list[Any] = []
    lines: dict[int, int] = {}
    texts: list[str] = []
    for line_number, line in enumerate(_physical_lines(text), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except RecursionError:
            records.append(_NotJson(line, "line is nested too deeply to be a users[] record"))
        except ValueError:
            records.append(_NotJson(line))
        texts.append(line)
        lines[len(records)] = line_number
    return records, lines, lambda row: texts[row - 1]


def _json_array_records(text: str) -> tuple[list[Any], dict[int, int], Callable[[int], str]]:
    try:
        document = json.loads(text)
    except RecursionError:
        raise FileRejected("not a usable JSON document: nested too deeply to be an array of users[] records", 1) \
            from None
    except ValueError as err:
        line = getattr(err, "lineno", None)
        raise FileRejected(f"not valid JSON ({err.__class__.__name__} at line {line})", line) from err
    if not isinstance(document, list):
        raise FileRejected("a .json file must hold one array of users[] objects, or be JSON Lines", 1)
    return document, _element_lines(text, len(document)), lambda row: _shown_json(document[row - 1])


_WHITESPACE = re.compile(r"[ \t\r\n]*")


def _element_lines(text: str, count: int) -> dict[int, int]:
    """Row -> the physical line where that element of the (valid) top-level array starts."""
    decoder = json.JSONDecoder()
    lines: dict[int, int] = {}
    position = _WHITESPACE.match(text, 0).end() + 1  # just after "["
    line, counted = 1, 0
    for row in range(1, count + 1):
        position = _WHITESPACE.match(text, position).end()
        line += len(_LINE_END.findall(text, counted, position))
        counted = position
        lines[row] = line
        _, position = decoder.raw_decode(text, position)
        position = _WHITESPACE.match(text, position).end() + 1  # past the "," (or the closing "]")
    return lines


def _shown_json(record: Any) -> str:
    # ensure_ascii: a record may hold lone surrogates (from \\ud800 escapes) that UTF-8 cannot carry.
    try:
        return json.dumps(record, ensure_ascii=True, default=str)
    except (RecursionError, ValueError):
        return "(record nested too deeply to show)"


class _NotJson(str):
    """The text of a line that did not parse as JSON, and why."""

    reason = "line is not valid JSON"

    def __new__(cls, text: str, reason: str = "line is not valid JSON") -> _NotJson:
        made = super().__new__(cls, text)
        made.reason = reason
        return made


def _flatten_user(record: Any, row: int) -> Iterator[dict[str, Any]]:
    """Adobe `users[]` item (+ regulation, include, received_at ...) -> one dict per identity."""
    if isinstance(record, _NotJson):
        raise _RecordError("*", record.reason)
    if not isinstance(record, dict):
        raise _RecordError("*", "line is not a JSON object")
    common = {
        "request_id": _text(record, "key", required=True),
        "action": _joined(record, "action"),
        "regulation": _text(record, "regulation", required=True),
        "include": _joined(record, "include"),
        "received_at": _text(record, "received_at"),
        "priority": _text(record, "priority"),
        "expand_ids": _flag(record, "expandIds"),
        "merge_policy_id": _scalar(record, "mergePolicyId"),
        "_row": row,
    }
    user_ids = record.get("userIDs", record.get("userIds"))
    if not isinstance(user_ids, list) or not user_ids:
        raise _RecordError("userIDs", "userIDs must be a non-empty list")
    for position, user_id in enumerate(user_ids):
        if not isinstance(user_id, dict):
            raise _RecordError("userIDs", f"userIDs[{position}] is not an object")
        yield {
            **common,
            "namespace": _text(user_id, "namespace", field=f"userIDs[{position}].namespace"),
            "value": _text(user_id, "value", field=f"userIDs[{position}].value"),
            "type": _text(user_id, "type", field=f"userIDs[{position}].type"),
        }


def _text(obj: dict, key: str, *, required: bool = False, field: str | None = None) -> str:
    value = obj.get(key)
    if value is None:
        if required:
            raise _RecordError(field or key, f"{field or key} is missing")
        return ""
    if not isinstance(value, str):
        # A number here would already have lost digits (ECIDs exceed float precision): never coerce.
        raise _RecordError(field or key, f"{field or key} must be a string")
    return _encodable(value, field or key)


def _encodable(value: str, field: str) -> str:
    """JSON escapes can spell lone surrogates, which no UTF-8 writer downstream could encode."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise _RecordError(field, f"{field} holds invalid Unicode (a lone surrogate)") from None
    return value


def _joined(obj: dict, key: str) -> str:
    """A list of strings (Adobe's shape) or an already `|`-joined string."""
    value = obj.get(key)
    if value is None or isinstance(value, str):
        return _encodable(value or "", key)
    if isinstance(value, list) and all(isinstance(item, str) and "|" not in item for item in value):
        return _encodable("|".join(value), key)
    raise _RecordError(key, f"{key} must be a list of strings")


def _flag(obj: dict, key: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return _encodable(value, key)
    raise _RecordError(key, f"{key} must be true or false")


def _scalar(obj: dict, key: str) -> str:
    value = obj.get(key)
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise _RecordError(key, f"{key} must be an integer or a string")
    return _encodable(str(value), key)
