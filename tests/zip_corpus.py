"""A corpus of malicious and benign ZIPs, built byte by byte so every case is deterministic.

`zipfile` cannot write most of these (different local and central names, Unicode Path fields that
disagree, symlinks claimed by BeOS, overlapping members, hidden local headers, lying sizes), so
`build_zip` lays out local headers, data, descriptors, central directory and end record itself.
Each `Case` names the problem class `privacy_pipeline.zipcheck` must find (`None`: must pass).
`python -m tests.zip_corpus OUT_DIR` writes every case as `<name>.zip` to look at with other tools.
"""

from __future__ import annotations

import functools
import random
import stat
import struct
import sys
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from privacy_pipeline.zipcheck import ZipLimits

MIB = 1024**2
LIMITS = ZipLimits(max_uncompressed_bytes=8 * MIB, max_members=200, max_ratio=100, ratio_floor_bytes=256 * 1024)
DOS_TIME, DOS_DATE = 0, (2020 - 1980) << 9 | 1 << 5 | 14
UNIX, FAT, ATARI, BEOS = 3, 0, 5, 16
REGULAR, FOLDER = (stat.S_IFREG | 0o644) << 16, (stat.S_IFDIR | 0o755) << 16 | 0x10


@dataclass
class Entry:
    name: bytes
    data: bytes = b""
    method: int = 0
    flags: int = 0
    host: int = UNIX
    ext_attr: int | None = None  # default: a regular file, or a folder for names ending in "/"
    local_extra: bytes = b""
    central_extra: bytes = b""
    local_name: bytes | None = None
    local_method: int | None = None
    local_flags: int | None = None
    local_sizes: tuple[int, int, int] | None = None  # crc, csize, usize written in the local header
    crc: int | None = None  # declared; default: the real CRC of `data`
    usize: int | None = None
    payload: bytes | None = None  # the member's stored bytes; default: `data`, compressed by `method`
    descriptor: bytes | None = None  # bit 3 members: the bytes after the data (default: a true one)
    version: int = 20  # version needed to extract, in local and central headers


@dataclass
class Layout:
    entries: list[Entry]
    before: dict[int, bytes] = field(default_factory=dict)  # bytes placed before entry i's local header
    central_order: list[int] | None = None  # which entries the central directory lists (repeats allowed)
    offsets: dict[int, int] = field(default_factory=dict)  # central-directory offset overrides
    comment: bytes = b""
    trailing: bytes = b""
    count: int | None = None
    disk: int = 0


def extra(header_id: int, data: bytes) -> bytes:
    return struct.pack("<2H", header_id, len(data)) + data


def unicode_path(name: str, header_name: bytes) -> bytes:
    return extra(0x7075, b"\x01" + struct.pack("<L", zlib.crc32(header_name)) + name.encode())


def deflate(data: bytes) -> bytes:
    packer = zlib.compressobj(6, zlib.DEFLATED, -15)
    return packer.compress(data) + packer.flush()


def build_zip(layout: Layout) -> bytes:
    out = bytearray()
    offsets = []
    facts = []
    for index, entry in enumerate(layout.entries):
        out += layout.before.get(index, b"")
        payload = entry.payload if entry.payload is not None else (
            deflate(entry.data) if entry.method == 8 else entry.data)
        crc = zlib.crc32(entry.data) if entry.crc is None else entry.crc
        usize = len(entry.data) if entry.usize is None else entry.usize
        facts.append((crc, len(payload), usize))
        described = entry.flags & 0x8
        local_sizes = entry.local_sizes or ((0, 0, 0) if described else (crc, len(payload), usize))
        local_name = entry.name if entry.local_name is None else entry.local_name
        offsets.append(len(out))
        out += struct.pack(
            "<4s5H3L2H", b"PK\x03\x04", entry.version,
            entry.flags if entry.local_flags is None else entry.local_flags,
            entry.method if entry.local_method is None else entry.local_method,
            DOS_TIME, DOS_DATE, *local_sizes, len(local_name), len(entry.local_extra),
        ) + local_name + entry.local_extra + payload
        if described:
            out += entry.descriptor if entry.descriptor is not None else struct.pack(
                "<4s3L", b"PK\x07\x08", crc, len(payload), usize)
    cd_offset = len(out)
    order = layout.central_order if layout.central_order is not None else range(len(layout.entries))
    for index in order:
        entry = layout.entries[index]
        crc, csize, usize = facts[index]
        attr = entry.ext_attr if entry.ext_attr is not None else (
            FOLDER if entry.name.endswith(b"/") else REGULAR)
        out += struct.pack(
            "<4s6H3L5H2L", b"PK\x01\x02", entry.host << 8 | 20, entry.version, entry.flags, entry.method, DOS_TIME,
            DOS_DATE, crc, csize, usize, len(entry.name), len(entry.central_extra), 0, 0, 0, attr,
            layout.offsets.get(index, offsets[index]),
        ) + entry.name + entry.central_extra
    count = len(order) if layout.count is None else layout.count
    out += struct.pack("<4s4H2LH", b"PK\x05\x06", layout.disk, layout.disk, count, count,
                       len(out) - cd_offset, cd_offset, len(layout.comment)) + layout.comment
    return bytes(out + layout.trailing)


def one(entry: Entry, **layout) -> Callable[[], bytes]:
    return lambda: build_zip(Layout([entry], **layout))


def many(*entries: Entry, **layout) -> Callable[[], bytes]:
    return lambda: build_zip(Layout(list(entries), **layout))


@functools.cache
def text(seed: int, size: int) -> bytes:
    """Seeded JSON-ish filler that compresses about as well as real product data (~2-3x)."""
    rng = random.Random(seed)
    return b"".join(b'{"id": "%08x", "v": %d},\n' % (rng.getrandbits(32), rng.randrange(10**6))
                    for _ in range(size // 30 + 1))[:size]


def zipfile_archive(stream: bool = False, compression: int = zipfile.ZIP_DEFLATED) -> Callable[[], bytes]:
    """What Python's zipfile writes: seekable (sizes in headers) or streamed (descriptors, ZIP64)."""

    class Sink:
        def __init__(self) -> None:
            self.data = bytearray()

        def write(self, chunk: bytes) -> int:
            self.data += chunk
            return len(chunk)

        def flush(self) -> None:
            pass

    def make() -> bytes:
        import io

        sink = Sink() if stream else io.BytesIO()
        with zipfile.ZipFile(sink, "w", compression=compression, allowZip64=True) as archive:
            for product in ("Analytics", "Profile", "Data Lake"):
                folder = f"6fc09b53-c24f-4a6c-9ca2-c6076b0842b6/{product}/"
                archive.writestr(zipfile.ZipInfo(folder, (2020, 1, 14, 0, 0, 0)), b"")
                info = zipfile.ZipInfo(folder + "response.json", (2020, 1, 14, 0, 0, 0))
                archive.writestr(info, b'{"status": "complete"}', compress_type=compression)
                info = zipfile.ZipInfo(folder + "data-0001.json", (2020, 1, 14, 0, 0, 0))
                info.compress_type = compression
                with archive.open(info, "w", force_zip64=stream) as part:
                    part.write(text(len(product), 300_000))
        return bytes(sink.data) if stream else sink.getvalue()

    return make


def truncated() -> bytes:
    whole = zipfile_archive()()
    return whole[: len(whole) // 2]


@dataclass(frozen=True)
class Case:
    name: str
    problem: str | None  # the class verify_zip must report; None for a ZIP that must pass
    build: Callable[[], bytes]


SAFE = Entry(b"job/Analytics/data.json", b'{"rows": 1}')
LINK = Entry(b"job/link", b"/etc/passwd")
UTF8 = 0x800
BIG_TEXT = text(7, 400_000)

CASES: list[Case] = [
    # -- non-regular file types, whatever host system the archive claims
    *[Case(f"symlink-host-{host}", "special-file", one(replace(LINK, host=host, ext_attr=(stat.S_IFLNK | 0o777) << 16)))
      for host in (UNIX, BEOS, ATARI, FAT)],
    *[Case(f"{kind}-member", "special-file", one(replace(SAFE, ext_attr=(mode | 0o644) << 16)))
      for kind, mode in (("char-device", stat.S_IFCHR), ("block-device", stat.S_IFBLK), ("fifo", stat.S_IFIFO),
                         ("socket", stat.S_IFSOCK))],
    Case("asi-unix-extra-symlink", "special-file", one(replace(
        SAFE, central_extra=extra(0x756E, struct.pack("<LHLHH", 0, stat.S_IFLNK | 0o777, 0, 0, 0) + b"/etc")))),
    Case("pkware-unix-extra-link", "special-file", one(replace(
        SAFE, local_extra=extra(0x000D, struct.pack("<2L2H", 0, 0, 0, 0) + b"../../etc/passwd")))),
    Case("setuid-member", "special-permissions", one(replace(SAFE, ext_attr=(stat.S_IFREG | 0o4755) << 16))),
    Case("folder-with-data", "directory-with-data", one(Entry(b"job/Analytics/", b"hidden"))),
    Case("folder-mode-without-slash", "type-mismatch", one(replace(SAFE, ext_attr=FOLDER))),
    # -- names that differ between the readings extractors use
    Case("unicode-path-escapes", "unsafe-name", one(replace(SAFE, central_extra=unicode_path("../x", SAFE.name)))),
    Case("unicode-path-differs", "name-mismatch", one(replace(SAFE, central_extra=unicode_path("other", SAFE.name)))),
    Case("local-unicode-path-escapes", "unsafe-name", one(replace(SAFE, local_extra=unicode_path("../x", SAFE.name)))),
    Case("local-name-escapes", "name-mismatch", one(replace(SAFE, local_name=b"../x"))),
    Case("local-name-escapes-unsafe", "unsafe-name", one(replace(SAFE, local_name=b"../x"))),
    # -- data that fails its checks when read through
    Case("crc-mismatch-stored", "crc-mismatch", one(replace(SAFE, crc=zlib.crc32(SAFE.data) ^ 1))),
    Case("crc-mismatch-deflated", "crc-mismatch", one(replace(SAFE, data=BIG_TEXT, method=8, crc=1))),
    Case("declared-smaller-than-data", "size-mismatch", one(replace(SAFE, data=BIG_TEXT, method=8, usize=1000))),
    Case("declared-larger-than-data", "size-mismatch", one(replace(SAFE, data=BIG_TEXT, method=8, usize=500_000))),
    Case("stored-sizes-differ", "size-mismatch", one(replace(SAFE, usize=len(SAFE.data) + 1))),
    Case("deflate-ends-early", "size-mismatch", one(replace(
        SAFE, method=8, payload=deflate(SAFE.data) + b"PK\x03\x04hidden"))),
    Case("corrupt-deflate", "corrupt-data", one(replace(SAFE, method=8, payload=b"\xff" * 64))),
    # -- encryption and compression
    Case("zipcrypto-member", "encrypted", one(replace(SAFE, flags=0x1, payload=bytes(12) + SAFE.data))),
    Case("aes-member", "encrypted", one(replace(SAFE, method=99, central_extra=extra(0x9901, b"\x02\x00AE\x03\x08\x00"),
                                                 local_extra=extra(0x9901, b"\x02\x00AE\x03\x08\x00")))),
    Case("encrypted-by-local-header-only", "encrypted", one(replace(SAFE, local_flags=0x1))),
    Case("bzip2-member", "unsupported-compression", one(replace(SAFE, method=12, payload=b"BZh9"))),
    Case("needs-newer-zip-version", "unsupported-compression", one(replace(SAFE, version=64))),
    Case("patched-data-flag", "unsupported-compression", one(replace(SAFE, flags=0x20))),
    # -- duplicates and conflicts
    Case("duplicate-exact", "duplicate-name", many(SAFE, replace(SAFE, data=b"{}"))),
    Case("duplicate-by-case", "duplicate-name", many(SAFE, replace(SAFE, name=SAFE.name.upper()))),
    Case("duplicate-by-normalisation", "duplicate-name", many(
        Entry("job/café.json".encode(), flags=UTF8), Entry("job/cafe\u0301.json".encode(), flags=UTF8))),
    Case("duplicate-by-backslash", "duplicate-name", many(SAFE, replace(SAFE, name=b"job\\Analytics\\data.json"))),
    Case("file-and-folder-conflict", "name-conflict", many(Entry(b"job"), Entry(b"job/data.json", b"{}"))),
    # -- names that leave the extraction folder or confuse extractors
    *[Case(f"unsafe-name-{label}", "unsafe-name", one(replace(SAFE, name=name, flags=UTF8)))
      for label, name in (
          ("nul", b"safe.json\x00../../evil"), ("drive", b"C:/windows/x"), ("drive-backslash", b"c:\\x"),
          ("drive-relative", b"C:x"), ("absolute", b"/etc/cron.d/x"), ("unc", b"\\\\server\\share\\x"),
          ("parent", b"../x"), ("nested-parent", b"job/../../x"), ("backslash-parent", b"job\\..\\..\\x"),
          ("fullwidth-dots", "．．/x".encode()), ("dots-and-space", b".. /x"), ("three-dots", b"job/.../x"),
          ("alternate-stream", b"job/a.json:evil"), ("control-character", b"job/a\nb.json"), ("empty", b""),
          ("too-long", b"a/" * 2100))],
    Case("invalid-utf8-name", "invalid-name-encoding", one(replace(SAFE, name=b"job/\xff\xfe.json", flags=UTF8))),
    # -- bombs
    Case("entry-count-bomb", "entry-count", lambda: build_zip(Layout([Entry(b"%d" % i) for i in range(201)]))),
    Case("entry-count-disagrees", "entry-count", many(SAFE, count=2)),
    Case("ratio-bomb", "ratio-bomb", one(replace(SAFE, data=bytes(1 * MIB), method=8))),
    Case("size-cap", "size-cap", lambda: build_zip(Layout(
        [Entry(b"part-%d.json" % i, text(i, 3 * MIB)) for i in range(3)]))),
    # -- layout: every byte belongs to exactly one structure
    Case("overlapping-members", "overlapping-members", lambda: _overlapping()),
    Case("hidden-local-header", "unaccounted-bytes", lambda: build_zip(Layout(
        [SAFE, replace(SAFE, name=b"job/Profile/data.json")],
        before={1: build_zip(Layout([Entry(b"../evil", b"x")]))[:38]}))),
    Case("prepended-data", "unaccounted-bytes", lambda: build_zip(Layout([SAFE], before={0: b"MZ" + bytes(62)}))),
    Case("data-after-end-record", "ambiguous-end", many(SAFE, trailing=b"junk")),
    Case("end-record-in-comment", "ambiguous-end", many(SAFE, comment=b"PK\x05\x06" + bytes(18))),
    Case("multi-disk", "multi-disk", many(SAFE, disk=1)),
    Case("malformed-extra-field", "malformed-extra-field", one(replace(SAFE, central_extra=b"\x55\x54\xff\x00ab"))),
    Case("repeated-unicode-path", "malformed-extra-field", one(replace(
        SAFE, central_extra=unicode_path(SAFE.name.decode(), SAFE.name) * 2))),
    Case("descriptor-disagrees", "descriptor-mismatch", one(replace(
        SAFE, flags=0x8, descriptor=struct.pack("<4s3L", b"PK\x07\x08", 1, len(SAFE.data), len(SAFE.data))))),
    Case("local-method-differs", "header-mismatch", one(replace(SAFE, local_method=8))),
    Case("local-sizes-differ", "header-mismatch", one(replace(SAFE, local_sizes=(zlib.crc32(SAFE.data), 1, 1)))),
    Case("zip64-without-record", "not-a-zip", lambda: _zip64_marker_without_record()),
    Case("truncated", "not-a-zip", truncated),
    Case("empty-file", "not-a-zip", lambda: b""),
    Case("not-a-zip", "not-a-zip", lambda: random.Random(3).randbytes(4096)),
    # -- benign controls: these must pass
    Case("zipfile-deflated", None, zipfile_archive()),
    Case("zipfile-streamed-zip64-descriptors", None, zipfile_archive(stream=True, compression=zipfile.ZIP_STORED)),
    Case("zipfile-streamed-deflated", None, zipfile_archive(stream=True)),
    Case("info-zip-style-unicode-path", None, many(
        Entry(b"job/", host=UNIX), Entry("job/données.json".encode(), b"{}", central_extra=(
            unicode_path("job/données.json", "job/données.json".encode())
            + extra(0x5455, b"\x03" + bytes(4)) + extra(0x7875, b"\x01\x04" + bytes(4) + b"\x04" + bytes(4))),
            local_extra=unicode_path("job/données.json", "job/données.json".encode())))),
    Case("windows-style-attributes", None, many(
        Entry(b"job/", host=FAT, ext_attr=0x10), Entry(b"job/data.json", b"{}", host=FAT, ext_attr=0x20))),
    Case("java-style-descriptors", None, many(
        Entry(b"job/", host=FAT, ext_attr=0), Entry(b"job/a.json", BIG_TEXT, method=8, flags=0x808, host=FAT,
                                                    ext_attr=0))),
    Case("utf8-names", None, many(Entry("données/résumé.json".encode(), b"{}", flags=UTF8))),
    Case("empty-member-and-comment", None, many(Entry(b"job/empty.json"), comment=b"made by a test")),
    Case("many-members-under-limit", None, lambda: build_zip(Layout([Entry(b"m/%03d.json" % i, b"{}")
                                                                     for i in range(150)]))),
    Case("compressible-under-ratio", None, one(replace(SAFE, data=bytes(200_000), method=8))),
]


def _overlapping() -> bytes:
    """Member 1's local header and data sit inside member 0's data: one byte range, two members."""
    inner = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, DOS_TIME, DOS_DATE, zlib.crc32(b"x"), 1, 1, 5, 0)
    inner += b"inner" + b"x"
    outer = Entry(b"outer", inner + b"tail")
    hidden = Entry(b"inner", b"x")
    whole = build_zip(Layout([outer, hidden], central_order=[0, 1], offsets={1: 30 + len(b"outer")}))
    return whole


def _zip64_marker_without_record() -> bytes:
    whole = bytearray(build_zip(Layout([SAFE])))
    eocd = whole.rfind(b"PK\x05\x06")
    whole[eocd + 16 : eocd + 20] = b"\xff\xff\xff\xff"  # central directory offset: "see the ZIP64 record"
    return bytes(whole)


def by_name() -> dict[str, Case]:
    return {case.name: case for case in CASES}


if __name__ == "__main__":
    target = Path(sys.argv[1])
    target.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        (target / f"{case.name}.zip").write_bytes(case.build())
