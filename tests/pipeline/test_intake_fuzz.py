"""Seeded fuzzer for intake with an oracle of physical lines.

Each case writes a file line by line, so the generator knows every physical line, where each request
starts, and what must become of it: a well-formed row must be in a subject with its value intact
whatever broke around it (a stray quote never swallows it), a broken row must be a reject naming its
own line, and header + blank + record lines must equal the physical lines. Quotes in every column,
every line-end style, BOMs and encodings, huge fields, deep JSON, odd dates, header variants,
formula cells in headers and data; CSV, JSON Lines and JSON arrays.

CI runs `INTAKE_FUZZ_CASES` cases (default 300, seconds); `INTAKE_FUZZ_CASES=5000` runs more (a long run). A failure prints its seed: `INTAKE_FUZZ_SEED=<seed> INTAKE_FUZZ_CASES=1` replays it.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from privacy_pipeline.intake import IntakeOptions, read_requests
from privacy_pipeline.report import FORMULA_PREFIXES, write_rejects_csv

from .helpers import source

CASES = int(os.environ.get("INTAKE_FUZZ_CASES", "300"))
FIRST_SEED = int(os.environ.get("INTAKE_FUZZ_SEED", "20261130"))
NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
OPTIONS = IntakeOptions(default_include=("analytics",), now=NOW)
COLUMNS = ["request_id", "action", "regulation", "namespace", "value", "type", "received_at", "include"]
FORMULA_NAMES = ['=HYPERLINK("http://x","y")', "@SUM(1+1)", "-", "+1+1", "notes"]
BAD_DATES = ["-1", "-2025-06-01", "9999-12-31", "0000-01-01", "31/02/2025", "1999-12-31"]
ENDS = ["\n", "\r\n", "\r"]

ACCEPT, REJECT, ANY = "accept", "reject", "any"


@dataclass
class Case:
    """The file as written, and what the oracle expects of it."""

    seed: int
    name: str = "in.csv"
    lines: list[str] = field(default_factory=list)  # physical lines, terminators included
    expect: dict[str, tuple[str, int, str]] = field(default_factory=dict)  # key -> (outcome, line, value)
    file_reject: str | None = None  # a whole-file reject is expected, with this in its reason
    encode: str = "utf-8"
    gzip: bool = False
    bom: bool = False

    def add(self, text: str, end: str) -> int:
        """Append `text` (which may hold line breaks of its own) + `end`; returns its first line number."""
        first = self.physical_lines() + 1
        self.lines.append(text + end)
        return first

    def physical_lines(self) -> int:
        return len(io.StringIO("".join(self.lines), newline="").readlines())

    def payload(self) -> bytes:
        text = "".join(self.lines)
        data = text.encode(self.encode, errors="surrogateescape") if self.encode == "utf-8" else text.encode(self.encode)
        if self.bom:
            data = b"\xef\xbb\xbf" + data
        return gzip.compress(data, mtime=0) if self.gzip else data


def csv_case(rng: random.Random, seed: int) -> Case:
    case = Case(seed)
    style = rng.choice(["lf", "crlf", "cr", "mixed"])

    def end() -> str:
        return rng.choice(ENDS) if style == "mixed" else {"lf": "\n", "crlf": "\r\n", "cr": "\r"}[style]

    columns = COLUMNS[: rng.choice([5, 8, 8])]
    extra = rng.sample(FORMULA_NAMES, rng.randint(0, 2)) if rng.random() < 0.4 else []
    header = [*columns, *extra]
    cells = [c.upper() if rng.random() < 0.1 else (f" {c} " if rng.random() < 0.1 else c) for c in header]
    header_text = ",".join(_quoted(c) if ("," in c or '"' in c or rng.random() < 0.2) else c for c in cells)
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        case.add("", end())
    if rng.random() < 0.02:
        header_text += "," + "h" * (128 * 1024 + 1)
        case.file_reject = "longer than 128 KiB"
    case.add(header_text, end())
    case.bom = rng.random() < 0.1
    for i in range(rng.randint(0, 25)):
        if rng.random() < 0.08:
            case.add(rng.choice(["", "", "  "]) if rng.random() < 0.9 else "", end())
            if case.lines[-1].strip("\r\n") == "  ":
                case.expect[f"_ws{i}"] = (REJECT, case.physical_lines(), "")
            continue
        key = f"k{i}"
        value = str(rng.randrange(10**12))
        row = [key, rng.choice(["access", "delete", "access|delete"]), rng.choice(["gdpr", "ccpa", "lgpd_bra"]),
               "ECID", value, "standard", f"2026-11-0{rng.randint(1, 9)}T10:00:00Z", ""][: len(columns)]
        row += ["x"] * len(extra)
        outcome = ACCEPT
        broken = rng.random() < 0.35
        kind = rng.choice(["stray_quote", "quoted_newline", "mid_quote", "escaped_quotes", "huge", "odd_date",
                           "formula", "short", "long", "latin1", "quoted_plain"]) if broken else None
        at = rng.randrange(len(row))
        if kind == "stray_quote":
            row[at] = '"' + row[at]
            outcome = REJECT
        elif kind == "quoted_newline":
            row[at] = '"' + row[at][:1] + rng.choice(ENDS) + row[at][1:] + '"'
            outcome = REJECT
        elif kind == "mid_quote" and at != 0:
            row[at] = row[at][:1] + '"' + row[at][1:]
            outcome = ANY
        elif kind == "escaped_quotes" and at == 4:
            row[4] = '"1""2"'
            value = '1"2'
        elif kind == "quoted_plain":
            row[at] = _quoted(row[at])
        elif kind == "huge":
            row[4] = "9" * (128 * 1024 + rng.randint(1, 50_000))
            outcome = REJECT
        elif kind == "odd_date" and len(columns) == 8:
            row[6] = rng.choice(BAD_DATES)
            outcome = REJECT
        elif kind == "formula" and at in (1, 2, 3):
            row[at] = rng.choice(["=1+2", "@SUM(A1)", "+cmd", "-x"])
            outcome = REJECT
        elif kind == "short":
            row = row[: rng.randint(1, len(row) - 1)]
            outcome = REJECT
        elif kind == "long":
            row = [*row, "extra"]
            outcome = REJECT
        elif kind == "latin1" and 0 < at < len(columns):  # bytes in an unused column do not matter
            row[at] = row[at] + "\udce9"  # a lone \xe9 byte once encoded: not UTF-8
            outcome = REJECT
        line = case.add(",".join(row), end())
        case.expect[key] = (outcome, line, value)
    if case.lines and rng.random() < 0.3:
        case.lines[-1] = case.lines[-1].rstrip("\r\n")  # no line end after the last line
    if rng.random() < 0.03:
        case.encode, case.file_reject, case.bom = "utf-16", "not UTF-8 text", False
        case.lines = [line.replace("\udce9", "e") for line in case.lines]
    case.gzip = rng.random() < 0.1
    return case


def json_case(rng: random.Random, seed: int) -> Case:
    case = Case(seed, name=rng.choice(["in.jsonl", "in.ndjson", "requests"]))
    style = rng.choice(["lf", "crlf", "cr", "mixed"])
    for i in range(rng.randint(0, 20)):
        end = rng.choice(ENDS) if style == "mixed" else {"lf": "\n", "crlf": "\r\n", "cr": "\r"}[style]
        if rng.random() < 0.1:
            case.add("", end)
            continue
        key, value = f"j{i}", str(rng.randrange(10**12))
        record = {"key": key, "action": ["access"], "regulation": "gdpr", "received_at": "2026-11-01",
                  "userIDs": [{"namespace": "ECID", "value": value, "type": "standard"}]}
        outcome, kind = ACCEPT, (rng.choice(["not_json", "deep", "date", "array", "quote_value"])
                                 if rng.random() < 0.3 else None)
        text = json.dumps(record)
        if kind == "not_json":
            text = text[: rng.randrange(1, len(text))]
            outcome = REJECT
        elif kind == "deep":
            text = json.dumps({"key": key, "x": 0}).replace("0}", "[" * 5000 + "]" * 5000 + "}")
            outcome = REJECT
        elif kind == "date":
            text = json.dumps({**record, "received_at": rng.choice(BAD_DATES)})
            outcome = REJECT
        elif kind == "array" and case.name != "requests":  # first in an extensionless file: a JSON array file
            text = json.dumps([record])
            outcome = ANY
        elif kind == "quote_value":
            value = 'a"b\\c'
            text = json.dumps({**record, "userIDs": [{"namespace": "ECID", "value": value, "type": "standard"}]})
        line = case.add(text, end)
        case.expect[key] = (outcome, line, value)
    if not case.expect and case.name == "requests":
        case.name = "in.jsonl"  # an empty extensionless file would be read as an (empty) CSV: fine, but not JSON
    return case


def json_array_case(rng: random.Random, seed: int) -> Case:
    """A .json array, one element per line (some over two), every line-end style; rejects name their element's line."""
    case = Case(seed, name="in.json")
    style = rng.choice(["lf", "crlf", "cr", "mixed"])

    def end() -> str:
        return rng.choice(ENDS) if style == "mixed" else {"lf": "\n", "crlf": "\r\n", "cr": "\r"}[style]

    case.add("[", end())
    count = rng.randint(0, 12)
    for i in range(count):
        key, value = f"a{i}", str(rng.randrange(10**12))
        record = {"key": key, "action": ["delete"], "regulation": "ccpa", "received_at": "2026-11-01",
                  "userIDs": [{"namespace": "ECID", "value": value, "type": "standard"}]}
        outcome = ACCEPT
        if rng.random() < 0.3:
            record["received_at"], outcome = rng.choice(BAD_DATES), REJECT
        text = json.dumps(record)
        if rng.random() < 0.2:
            text = text.replace(', "userIDs"', "," + end() + ' "userIDs"')  # an element over two lines
        line = case.add(text + ("," if i < count - 1 else ""), end())
        case.expect[key] = (outcome, line, value)
    case.add("]", end() if rng.random() < 0.5 else "")
    return case


def _quoted(text: str) -> str:
    return '"' + text.replace('"', '""') + '"'


def check(case: Case) -> None:
    result = read_requests([source(case.name, case.payload())], OPTIONS)  # never raises
    counts = result.line_counts()
    if case.encode == "utf-8":  # UTF-16 bytes are not text: their "lines" are whatever the bytes say
        assert counts["lines_read"] == case.physical_lines()
    assert counts["lines_read"] == counts["lines_header"] + counts["lines_blank"] + counts["lines_in_records"]
    assert result.accounting_gap() == 0
    for reject in result.rejects:  # every reject names its line
        assert reject.line is not None and 1 <= reject.line <= max(counts["lines_read"], 1), reject
    rows = [r.row for r in result.rejects if r.row] + [row for s in result.subjects for row in s.rows]
    assert sorted(rows) == list(range(1, result.rows_read + 1)) or case.file_reject
    file_rejects = [r for r in result.rejects if r.row == 0]
    if case.file_reject:
        assert len(file_rejects) == 1 and case.file_reject in file_rejects[0].reason, file_rejects
        return
    assert not file_rejects, file_rejects  # an unexpected error would hide here: never
    accepted = {s.key: s for s in result.subjects}
    rejected_lines = {r.line for r in result.rejects}
    for key, (outcome, line, value) in case.expect.items():
        if outcome == ACCEPT:
            assert key in accepted, (key, line, [(r.line, r.reason) for r in result.rejects])
            assert [i.value for i in accepted[key].identities] == [value]
        elif outcome == REJECT:
            assert key not in accepted and line in rejected_lines, (key, line)
    for subject in result.subjects:  # nothing accepted that the file did not hold as one row
        assert subject.key in case.expect
        assert all("\n" not in i.value and "\r" not in i.value for i in subject.identities)
    _rejects_csv_is_safe(result.rejects)


def _rejects_csv_is_safe(rejects) -> None:
    buffer = io.BytesIO()
    write_rejects_csv(rejects, buffer)
    for row in csv.reader(io.StringIO(buffer.getvalue().decode("utf-8"), newline="")):
        for cell in row:
            assert not cell.startswith(FORMULA_PREFIXES) or cell.lstrip("-").isdigit(), cell


@pytest.mark.parametrize("block", range(10))
def test_fuzzed_inputs_keep_every_line_and_promise(block):
    for seed in range(FIRST_SEED + block, FIRST_SEED + CASES, 10):
        rng = random.Random(seed)
        draw = rng.random()
        case = json_case(rng, seed) if draw < 0.25 else json_array_case(rng, seed) if draw < 0.3 \
            else csv_case(rng, seed)
        try:
            check(case)
        except AssertionError as err:
            raise AssertionError(f"fuzz case INTAKE_FUZZ_SEED={seed} INTAKE_FUZZ_CASES=1: {err}") from err


def test_a_json_array_nested_too_deeply_is_one_file_reject():
    data = "[" + "[" * 3000 + "]" * 3000 + "]"
    result = read_requests([source("deep.json", data)], OPTIONS)
    (reject,) = result.rejects
    assert reject.row == 0 and "nested too deeply" in reject.reason and reject.line == 1


def _outcome(result) -> tuple:
    return (
        [(s.key, s.rows, [i.value for i in s.identities]) for s in result.subjects],
        [(r.row, r.line, r.field, r.reason, r.request_id) for r in result.rejects],
        result.line_counts(),
    )


def test_block_boundaries_never_change_the_outcome(monkeypatch):
    """The same files read in 8 MiB blocks and in tiny ones (many threads, narrowed exact pieces) agree."""
    from privacy_pipeline import csv_format

    cases = []
    for seed in range(FIRST_SEED, FIRST_SEED + max(CASES // 5, 1)):
        rng = random.Random(seed)
        if rng.random() >= 0.3:  # the CSV cases of the main fuzzer
            cases.append(csv_case(rng, seed))
    whole = [_outcome(read_requests([source(c.name, c.payload())], OPTIONS)) for c in cases]
    monkeypatch.setattr(csv_format, "BLOCK_BYTES", 97)
    monkeypatch.setattr(csv_format, "_EXACT_BYTES", 31)
    for case, expected in zip(cases, whole, strict=True):
        assert _outcome(read_requests([source(case.name, case.payload())], OPTIONS)) == expected, case.seed
