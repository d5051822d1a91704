"""Property: whatever bytes arrive, intake never raises and every row lands exactly once."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from privacy_pipeline.intake import IntakeOptions, read_requests

from .helpers import HEADER, source

# A swallowed exception inside pyarrow's invalid-row callback must fail the test, not warn.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

OPTIONS = IntakeOptions(default_include=("analytics",))

plausible = {
    "request_id": st.sampled_from(["r1", "r2", "r3", " r1", "", "r\u00e9"]),
    "action": st.sampled_from(["access", "delete", "access|delete", "ACCESS", "erase", "", "access|"]),
    "regulation": st.sampled_from(["gdpr", "ccpa", "cpra_usa", "GDPR", "nope", ""]),
    "namespace": st.sampled_from(["email", "ECID", "Phone", "loyalty", "123", ""]),
    "value": st.sampled_from(["a@example.com", "b@example.com", "bad@", "123", " ", "x\"y", "=1+2"]),
    "type": st.sampled_from(["", "standard", "custom", "namespaceId", "bogus"]),
    "received_at": st.sampled_from(["", "2025-06-01", "2025-06-01T10:00:00Z", "2025-02-30", "yesterday"]),
    "include": st.sampled_from(["", "analytics", "Target|analytics", "photoshop", "|"]),
}
garbage_cell = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=8),
    st.sampled_from(['"', '""', '"a,b"', "a\nb", '"a\nb"', "\r", ",,", "\ufffd", "\\"]),
)


@st.composite
def csv_rows(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 12))):
        if draw(st.booleans()):
            cells = [draw(strategy) for strategy in plausible.values()]
        else:
            cells = draw(st.lists(garbage_cell, min_size=0, max_size=10))
        if draw(st.booleans()):
            cells = ['"' + c.replace('"', '""') + '"' for c in cells]
        lines.append(",".join(cells))
    header = draw(st.sampled_from([HEADER, HEADER.upper(), "request_id,action,regulation,namespace,value",
                                   "request_id,action", ""]))
    data = (header + "\n" + draw(st.sampled_from(["\n", "\r\n"])).join(lines)).encode("utf-8")
    if draw(st.booleans()):  # garbage bytes spliced in anywhere
        position = draw(st.integers(0, len(data)))
        data = data[:position] + draw(st.binary(min_size=1, max_size=4)) + data[position:]
    return data


def assert_every_row_once(result) -> None:
    assert result.rows_read == sum(len(s.rows) for s in result.subjects) + len(result.rejects)
    rows = [row for s in result.subjects for row in s.rows] + [r.row for r in result.rejects]
    if any(r.row == 0 for r in result.rejects):
        assert rows == [0]
        # Only a bad header or a broken container may reject a whole file, never the rows' content.
        assert any(word in result.rejects[0].reason
                   for word in ("header", "gzip", "JSON", "not UTF-8 text", "not a CSV")), result.rejects[0]
    else:
        assert sorted(rows) == list(range(1, result.rows_read + 1))
    for s in result.subjects:
        assert 1 <= len(s.identities) <= 9 and s.actions and s.include and s.key


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=csv_rows(), gz=st.booleans())
def test_csv_intake_never_raises_and_accounts_for_every_row(data, gz):
    payload = gzip.compress(data) if gz else data
    result = read_requests([source("in.csv", payload)], OPTIONS)
    assert_every_row_once(result)


json_value = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=6,
)


@st.composite
def user_lines(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 8))):
        kind = draw(st.integers(0, 2))
        if kind == 0:
            user = {
                "key": draw(plausible["request_id"]),
                "action": draw(st.lists(plausible["action"], max_size=2)),
                "regulation": draw(plausible["regulation"]),
                "userIDs": [
                    {"namespace": draw(plausible["namespace"]), "value": draw(plausible["value"]),
                     "type": draw(plausible["type"])}
                    for _ in range(draw(st.integers(0, 11)))
                ],
            }
            lines.append(json.dumps(user))
        elif kind == 1:
            lines.append(json.dumps(draw(json_value)))
        else:
            lines.append(draw(st.text(max_size=20)).replace("\n", " "))
    data = "\n".join(lines).encode("utf-8", "surrogatepass")
    if draw(st.booleans()):
        data += draw(st.binary(max_size=4))
    return data


@pytest.mark.slow
@settings(max_examples=100, deadline=None)
@given(data=user_lines())
def test_json_lines_intake_never_raises_and_accounts_for_every_row(data):
    result = read_requests([source("in.jsonl", data)], OPTIONS)
    assert_every_row_once(result)
