"""Deadlines, ZIP inspection and the catalogues."""

from __future__ import annotations

import base64
import io
import re
import stat
import zipfile
from datetime import UTC, date, datetime

import pytest
from privacy_pipeline import catalog
from privacy_pipeline.archive import HashingReader, HashingWriter, inspect_zip
from privacy_pipeline.deadlines import deadline_summary, due_date, render_deadline_chart

TODAY = date(2025, 6, 30)


# --------------------------------------------------------------------------------------- deadlines


@pytest.mark.parametrize(
    ("regulation", "due"),
    [("gdpr", date(2025, 7, 1)), ("ccpa", date(2025, 7, 16)), ("lgpd_bra", date(2025, 6, 16)),
     ("pdpa_tha", date(2025, 7, 1)), ("made_up", date(2025, 7, 1))],
)
def test_due_date_by_regulation(regulation, due):
    assert due_date(regulation, datetime(2025, 6, 1, 23, 59, tzinfo=UTC)) == due


def test_due_date_unknown_regulation_uses_the_configured_default():
    assert due_date("made_up", date(2025, 6, 1), default_days=10) == date(2025, 6, 11)
    assert due_date("gdpr", None) is None


def test_summary_lists_overdue_and_due_soon_keys_and_buckets():
    items = [
        ("late", "lgpd_bra", date(2025, 6, 1), "processing"),       # due 06-16: overdue
        ("soon", "gdpr", date(2025, 6, 3), "submitted"),            # due 07-03: 3 days left
        ("edge", "gdpr", date(2025, 6, 7), "error"),                # due 07-07: 7 days left
        ("later", "ccpa", date(2025, 6, 20), "processing"),         # due 08-04: 35 days left
        ("done", "lgpd_bra", date(2025, 5, 1), "complete"),         # closed: never overdue
        ("undated", "gdpr", None, "processing"),
    ]
    summary = deadline_summary(items, TODAY)
    assert summary["overdue"] == [{"key": "late", "due": "2025-06-16"}]
    assert [i["key"] for i in summary["due_within_7_days"]] == ["soon", "edge"]
    assert (summary["subjects"], summary["open"], summary["closed"]) == (6, 5, 1)
    assert summary["open_by_bucket"] == {"overdue": {"processing": 1}, "0-7 days": {"error": 1, "submitted": 1},
                                         "8-14 days": {}, "15-30 days": {}, "31+ days": {"processing": 1},
                                         "no received_at": {"processing": 1}}
    assert summary["open_by_status"] == {"error": 1, "processing": 3, "submitted": 1}


def test_chart_png_and_self_contained_html(tmp_path):
    summary = deadline_summary([("late<script>", "lgpd_bra", date(2025, 6, 1), "processing"),
                                ("soon", "gdpr", date(2025, 6, 3), "submitted")], TODAY)
    png, page = tmp_path / "deadlines.png", tmp_path / "deadlines.html"
    render_deadline_chart(summary, png, page)
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    html = page.read_text()
    inlined = re.search(r'src="data:image/png;base64,([^"]+)"', html).group(1)
    assert base64.b64decode(inlined) == png.read_bytes()
    assert "late&lt;script&gt;" in html and "<script>" not in html
    assert "http" not in html  # nothing fetched from elsewhere


# ----------------------------------------------------------------------------------------- archive


def make_zip(path, members, symlink=None):
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.create_system = 3
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, "/etc/passwd")
    return path


def test_a_good_zip_passes(tmp_path):
    path = make_zip(tmp_path / "ok.zip", {"job/Analytics/data.json": "{}", "job/Profile/": ""})
    verdict = inspect_zip(path, max_uncompressed_bytes=1024)
    assert (verdict.ok, verdict.reason, verdict.members, verdict.uncompressed_bytes) == (True, None, 2, 2)


@pytest.mark.parametrize(
    ("members", "symlink", "problem"),
    [
        ({"/etc/cron.d/x": "x"}, None, "unsafe-name"),
        ({"C:/windows/x": "x"}, None, "unsafe-name"),
        ({"job/../../x": "x"}, None, "unsafe-name"),
        ({"job\\..\\x": "x"}, None, "unsafe-name"),
        ({"job/a.json": "{}"}, "job/link", "special-file"),
        ({"bomb.json": "0" * 5000}, None, "size-cap"),
    ],
)
def test_crafted_bad_zips_are_refused(tmp_path, members, symlink, problem):
    verdict = inspect_zip(make_zip(tmp_path / "bad.zip", members, symlink), max_uncompressed_bytes=4096)
    assert not verdict.ok and verdict.problem == problem and f"({problem})" in verdict.reason
    # The reason names the member by index and the class, never a name or content.
    assert all(name not in verdict.reason for name in [*members, symlink or "job/link"])


@pytest.mark.parametrize("content", [b"", b"not a zip at all", b"PK\x03\x04truncated"])
def test_non_zips_are_refused(tmp_path, content):
    path = tmp_path / "x.zip"
    path.write_bytes(content)
    verdict = inspect_zip(path, 1024)
    assert not verdict.ok and verdict.problem == "not-a-zip" and "not a readable ZIP" in verdict.reason


def test_hashing_streams():
    import hashlib

    payload = b"abc" * 100_000
    sink = io.BytesIO()
    writer = HashingWriter(sink)
    for start in range(0, len(payload), 4096):
        writer.write(payload[start : start + 4096])
    assert (writer.size, writer.sha256, sink.getvalue()) == (len(payload), hashlib.sha256(payload).hexdigest(), payload)
    reader = HashingReader(io.BytesIO(payload))
    while reader.read(5000):
        pass
    assert (reader.size, reader.sha256) == (len(payload), writer.sha256)


# ---------------------------------------------------------------------------------------- catalogue


def test_regulations_current_legacy_and_unknown():
    assert catalog.resolve_regulation(" GDPR ", map_legacy=False) == "gdpr"
    assert catalog.resolve_regulation("vcdpa_usa", map_legacy=True) == "vcdpa_va_usa"
    with pytest.raises(ValueError, match="'ucpa_ut_usa'"):
        catalog.resolve_regulation("ucpa_usa", map_legacy=False)
    with pytest.raises(ValueError, match="unknown regulation"):
        catalog.resolve_regulation("gdrp", map_legacy=True)
    assert set(catalog.LEGACY_REGULATIONS.values()) <= catalog.REGULATIONS
    assert not set(catalog.LEGACY_REGULATIONS) & catalog.REGULATIONS


def test_namespaces_products_and_types_are_case_insensitive():
    assert catalog.resolve_namespace("email") == ("Email", 6)
    assert catalog.resolve_namespace("ecid").namespace_id == 4
    assert catalog.resolve_product("AUDIENCEMANAGER") == "audienceManager"
    assert catalog.resolve_id_type("integrationcode") == "integrationCode"
    assert len(catalog.ID_TYPES) == 7
    with pytest.raises(KeyError):
        catalog.resolve_namespace("loyalty")


def test_documented_windows():
    assert {r: catalog.deadline_days(r) for r in ("gdpr", "ccpa", "lgpd_bra", "pdpa_tha")} == {
        "gdpr": 30, "ccpa": 45, "lgpd_bra": 15, "pdpa_tha": 30}
    assert catalog.deadline_days("unknown", 12) == 12
