"""ZIP verification that reads what extractors read.

A ZIP can say different things to different readers: the central directory (what `zipfile` and
`unzip` list), the local headers (what a streaming extractor walks), name-bearing extra fields (the
Info-ZIP Unicode Path that `unzip` prefers to the header name), the Unix mode bits (which `unzip` and
libarchive honour whatever host system the archive claims). Access content is filed only when every
one of those readings agrees and is safe, and when every member reads through to its declared size
and CRC. Nothing is ever extracted: members are read in bounded blocks and decompressed with a cap on
each call's output, so a bomb costs at most its declared size (itself capped) of work.

The verdict names the member (its index in the central directory) and the problem class, never a
name or a byte of content: member names are archive content too.
"""

from __future__ import annotations

import re
import stat
import struct
import unicodedata
import zlib
from dataclasses import dataclass, field
from os import PathLike
from typing import BinaryIO

LOCAL_SIG, CENTRAL_SIG, EOCD_SIG = b"PK\x03\x04", b"PK\x01\x02", b"PK\x05\x06"
ZIP64_EOCD_SIG, ZIP64_LOCATOR_SIG, DESCRIPTOR_SIG = b"PK\x06\x06", b"PK\x06\x07", b"PK\x07\x08"
_EOCD = struct.Struct("<4s4H2LH")
_ZIP64_LOCATOR = struct.Struct("<4sLQL")
_ZIP64_EOCD = struct.Struct("<4sQ2H2L4Q")
_CENTRAL = struct.Struct("<4s6H3L5H2L")
_LOCAL = struct.Struct("<4s5H3L2H")
MAX_COMMENT = 0xFFFF
MAX_NAME_BYTES = 4096
MAX_NAME_BYTES_TOTAL = 16 * 1024**2
BLOCK = 1024**2
MAX_LISTED_PROBLEMS = 32
MAX_VERSION_NEEDED = 63  # ZIP 6.3, the newest specification (and zipfile's limit)

# General-purpose flag bits: encrypted, data descriptor, strong encryption, UTF-8 names, masked headers.
FLAG_ENCRYPTED, FLAG_DESCRIPTOR, FLAG_STRONG, FLAG_UTF8, FLAG_MASKED = 0x1, 0x8, 0x40, 0x800, 0x2000
FLAG_PATCHED = 0x20  # "compressed patched data": no reader we know applies it
_COMPARED_FLAGS = FLAG_ENCRYPTED | FLAG_DESCRIPTOR | FLAG_STRONG | FLAG_UTF8 | FLAG_MASKED | FLAG_PATCHED
STORED, DEFLATED, AES = 0, 8, 99
# Extra fields we read: ZIP64 sizes, Info-ZIP Unicode Path, ASi Unix (mode + link name), PKWARE Unix
# (link target or device numbers), AES and strong encryption headers.
EXTRA_ZIP64, EXTRA_UNICODE_PATH, EXTRA_ASI_UNIX, EXTRA_PKWARE_UNIX = 0x0001, 0x7075, 0x756E, 0x000D
EXTRA_AES, EXTRA_STRONG_ENCRYPTION = 0x9901, 0x0017

PROBLEMS: dict[str, str] = {
    "not-a-zip": "not a readable ZIP file",
    "ambiguous-end": "the end of the archive reads differently to different readers",
    "multi-disk": "a multi-disk (split) archive",
    "entry-count": "too many members, or a member count that disagrees with the end record",
    "unaccounted-bytes": "bytes that no member accounts for (hidden data or headers)",
    "overlapping-members": "members that share bytes (overlapping bomb or hidden member)",
    "unsafe-name": "an unsafe name",
    "invalid-name-encoding": "a name that is not valid UTF-8 although flagged so",
    "name-mismatch": "names that differ between local header, central directory and extra fields",
    "duplicate-name": "a duplicate name (exact, by case or by Unicode normalisation)",
    "name-conflict": "a name that is both a file and a folder",
    "special-file": "a symbolic link or other non-regular file type",
    "special-permissions": "setuid or setgid permission bits",
    "type-mismatch": "a folder by its attributes that is not a folder by its name",
    "directory-with-data": "a folder entry that holds data",
    "encrypted": "an encrypted member",
    "unsupported-compression": "a compression method other than stored or deflate, or a newer ZIP version",
    "malformed-extra-field": "a malformed or repeated extra field",
    "header-mismatch": "a local header that disagrees with the central directory",
    "descriptor-mismatch": "a data descriptor that is missing or disagrees with the central directory",
    "ratio-bomb": "a compression ratio above the limit",
    "size-cap": "an uncompressed size above the cap",
    "size-mismatch": "data whose size differs from the declared size",
    "crc-mismatch": "data that fails its CRC-32",
    "corrupt-data": "compressed data that does not decompress",
}


@dataclass(frozen=True, slots=True)
class ZipLimits:
    """What a content ZIP may declare: total uncompressed bytes, member count, compression ratio."""

    max_uncompressed_bytes: int
    max_members: int = 100_000
    max_ratio: float = 200.0
    ratio_floor_bytes: int = 1024**2  # smaller members may compress as well as they like


@dataclass(frozen=True, slots=True)
class ZipProblem:
    problem: str  # a key of PROBLEMS
    member: int | None = None  # index in the central directory; None for the archive as a whole
    detail: str = ""  # numbers and fixed words only: never a name or content

    def describe(self) -> str:
        where = "archive" if self.member is None else f"member {self.member}"
        text = f"{where}: {PROBLEMS[self.problem]}"
        return f"{text}, {self.detail} ({self.problem})" if self.detail else f"{text} ({self.problem})"


@dataclass(frozen=True, slots=True)
class ZipVerdict:
    ok: bool
    reason: str | None
    members: int
    uncompressed_bytes: int
    problems: tuple[ZipProblem, ...] = ()

    @property
    def problem(self) -> str | None:
        return self.problems[0].problem if self.problems else None

    @property
    def member(self) -> int | None:
        return self.problems[0].member if self.problems else None


class _Unreadable(Exception):
    """The structure runs off the file or lacks its signature: the archive is not readable as a ZIP."""


@dataclass(slots=True)
class _Member:
    index: int
    host: int
    flags: int
    method: int
    crc: int
    csize: int
    usize: int
    offset: int
    ext_attr: int
    name_bytes: bytes
    names: list[str] = field(default_factory=list)  # every reading of the name (header, extra fields)
    effective: str = ""  # the reading extractors use
    data_start: int = 0
    local_sizes: tuple[int, int, int] = (0, 0, 0)  # crc, csize, usize as the local header says


def verify_zip(source: str | PathLike[str] | BinaryIO, limits: ZipLimits) -> ZipVerdict:
    """Verify a ZIP from a path or a seekable binary file; `ok=False` names each problem found."""
    if isinstance(source, str | PathLike):
        with open(source, "rb") as handle:
            return verify_zip(handle, limits)
    check = _Check(source, limits)
    try:
        check.run()
    except _Unreadable as err:
        check.add("not-a-zip", None, str(err))
    except (struct.error, ValueError, OverflowError) as err:  # a structure no rule foresaw: refuse, never crash
        check.add("not-a-zip", None, err.__class__.__name__)
    problems = tuple(check.problems[:MAX_LISTED_PROBLEMS])
    declared = sum(m.usize for m in check.members)
    reason = problems[0].describe() if problems else None
    return ZipVerdict(not problems, reason, len(check.members), declared, problems)


class _Check:
    def __init__(self, handle: BinaryIO, limits: ZipLimits) -> None:
        self.f = handle
        self.limits = limits
        self.size = handle.seek(0, 2)
        self.members: list[_Member] = []
        self.problems: list[ZipProblem] = []

    def add(self, problem: str, member: int | None, detail: str = "") -> None:
        self.problems.append(ZipProblem(problem, member, detail))

    def read_at(self, offset: int, length: int) -> bytes:
        if offset < 0 or offset + length > self.size:
            raise _Unreadable("a structure runs past the end of the file")
        self.f.seek(offset)
        data = self.f.read(length)
        if len(data) != length:
            raise _Unreadable("short read")
        return data

    def run(self) -> None:
        cd_offset, cd_end, count = self._end_records()
        if count > self.limits.max_members:
            self.add("entry-count", None, f"{count} members, limit {self.limits.max_members}")
            return
        self._central_directory(cd_offset, cd_end, count)
        if self.problems:
            return  # the layout of a lying directory is not worth walking, and a bomb is not read
        self._local_headers(cd_offset)
        if not self.problems:
            for member in sorted(self.members, key=lambda m: m.offset):
                self._read_through(member)

    # -- end records ---------------------------------------------------------------------------------
    def _end_records(self) -> tuple[int, int, int]:
        if self.size < _EOCD.size:
            raise _Unreadable("too short for an end record")
        tail_start = max(0, self.size - _EOCD.size - MAX_COMMENT)
        tail = self.read_at(tail_start, self.size - tail_start)
        # An end record is valid where its comment ends exactly at the end of the file. Readers differ
        # in which one they take when there are two (zipfile tries "no comment" first, unzip scans back).
        valid = [position for position in _occurrences(tail, EOCD_SIG)
                 if position + _EOCD.size <= len(tail)
                 and position + _EOCD.size + _EOCD.unpack_from(tail, position)[-1] == len(tail)]
        if not valid:
            if EOCD_SIG in tail:
                self.add("ambiguous-end", None, "data after the end record")
            raise _Unreadable("no end record")
        if len(valid) > 1:
            self.add("ambiguous-end", None, f"{len(valid)} end records")
        position = valid[-1]
        eocd = tail_start + position
        _, disk, cd_disk, disk_entries, entries, cd_size, cd_offset, _ = _EOCD.unpack_from(tail, position)
        comment = tail[position + _EOCD.size :]
        if any(sig in comment for sig in (EOCD_SIG, ZIP64_EOCD_SIG, ZIP64_LOCATOR_SIG, CENTRAL_SIG, LOCAL_SIG)):
            self.add("ambiguous-end", None, "the archive comment holds ZIP structures")
        structures_end = eocd
        if eocd >= _ZIP64_LOCATOR.size and self.read_at(eocd - _ZIP64_LOCATOR.size, 4) == ZIP64_LOCATOR_SIG:
            locator = _ZIP64_LOCATOR.unpack(self.read_at(eocd - _ZIP64_LOCATOR.size, _ZIP64_LOCATOR.size))
            _, z_disk, z_offset, total_disks = locator
            record = _ZIP64_EOCD.unpack(self.read_at(z_offset, _ZIP64_EOCD.size))
            sig, record_size, _, _, disk64, cd_disk64, disk_entries64, entries64, cd_size64, cd_offset64 = record
            if sig != ZIP64_EOCD_SIG:
                raise _Unreadable("ZIP64 locator points at no ZIP64 end record")
            if z_offset + 12 + record_size != eocd - _ZIP64_LOCATOR.size:
                self.add("unaccounted-bytes", None, "around the ZIP64 end record")
            if z_disk or total_disks != 1 or disk64 or cd_disk64 or disk_entries64 != entries64:
                self.add("multi-disk", None)
            for small, big, marker in ((entries, entries64, 0xFFFF), (cd_size, cd_size64, 0xFFFFFFFF),
                                       (cd_offset, cd_offset64, 0xFFFFFFFF)):
                if small not in (marker, big):
                    self.add("ambiguous-end", None, "the end records disagree")
            entries, cd_size, cd_offset, structures_end = entries64, cd_size64, cd_offset64, z_offset
        elif 0xFFFFFFFF in (cd_size, cd_offset):
            raise _Unreadable("ZIP64 sizes without a ZIP64 end record")
        if disk or cd_disk or disk_entries != entries:
            self.add("multi-disk", None)
        if cd_offset + cd_size != structures_end:
            self.add("unaccounted-bytes", None, "between the central directory and the end record")
        if cd_offset + cd_size > structures_end:
            raise _Unreadable("the central directory overlaps the end record")
        return cd_offset, cd_offset + cd_size, entries

    # -- central directory ---------------------------------------------------------------------------
    def _central_directory(self, cd_offset: int, cd_end: int, count: int) -> None:
        position, name_bytes_total = cd_offset, 0
        self.f.seek(cd_offset)
        while position < cd_end:
            if len(self.members) >= self.limits.max_members:
                self.add("entry-count", None, f"more than {self.limits.max_members} members")
                return
            fixed = self.f.read(_CENTRAL.size)
            if len(fixed) != _CENTRAL.size or fixed[:4] != CENTRAL_SIG:
                raise _Unreadable("central directory entry without its signature")
            (_, made_by, needed, flags, method, _, _, crc, csize, usize, name_len, extra_len, comment_len,
             disk_start, _, ext_attr, offset) = _CENTRAL.unpack(fixed)
            name = self.f.read(name_len)
            extra = self.f.read(extra_len)
            self.f.seek(comment_len, 1)
            position += _CENTRAL.size + name_len + extra_len + comment_len
            if position > cd_end or len(name) != name_len or len(extra) != extra_len:
                raise _Unreadable("central directory entry runs past the directory")
            name_bytes_total += name_len
            if name_bytes_total > MAX_NAME_BYTES_TOTAL:
                self.add("entry-count", None, "names longer in total than 16 MiB")
                return
            member = _Member(len(self.members), made_by >> 8, flags, method, crc, csize, usize, offset,
                             ext_attr, name)
            fields = self._extra_fields(member, extra)
            self._zip64(member, fields.get(EXTRA_ZIP64), disk_start)
            self._judge_version(member.index, needed)
            self.members.append(member)
            self._judge_member(member, fields)
        if len(self.members) != count:
            self.add("entry-count", None, f"end record says {count}, directory holds {len(self.members)}")
        declared = sum(member.usize for member in self.members)
        if declared > self.limits.max_uncompressed_bytes:
            self.add("size-cap", None, f"{declared} bytes declared, cap {self.limits.max_uncompressed_bytes}")
        self._judge_names_together()

    def _extra_fields(self, member: _Member, extra: bytes) -> dict[int, bytes]:
        fields: dict[int, bytes] = {}
        position = 0
        while position + 4 <= len(extra):
            header_id, length = struct.unpack_from("<2H", extra, position)
            if position + 4 + length > len(extra):
                self.add("malformed-extra-field", member.index, f"field 0x{header_id:04x} overruns")
                return fields
            if header_id in fields:
                self.add("malformed-extra-field", member.index, f"field 0x{header_id:04x} repeated")
            fields[header_id] = extra[position + 4 : position + 4 + length]
            position += 4 + length
        if extra[position:].strip(b"\x00"):
            self.add("malformed-extra-field", member.index, "trailing bytes")
        return fields

    def _zip64(self, member: _Member, data: bytes | None, disk_start: int) -> None:
        wanted = [name for name, value, marker in (("usize", member.usize, 0xFFFFFFFF),
                                                   ("csize", member.csize, 0xFFFFFFFF),
                                                   ("offset", member.offset, 0xFFFFFFFF),
                                                   ("disk", disk_start, 0xFFFF)) if value == marker]
        if wanted and (data is None or len(data) < 8 * len(wanted) - 4 * ("disk" in wanted)):
            raise _Unreadable("ZIP64 sizes without their extra field")
        extra = data or b""
        for position, name in enumerate(wanted):
            if name == "disk":
                disk_start = struct.unpack_from("<L", extra, 8 * position)[0]
            else:
                setattr(member, name, struct.unpack_from("<Q", extra, 8 * position)[0])
        if disk_start:
            self.add("multi-disk", member.index)

    def _judge_member(self, member: _Member, fields: dict[int, bytes]) -> None:
        index = member.index
        member.names, member.effective = self._names(member, member.name_bytes, member.flags, fields)
        for reading in member.names:
            problem = name_problem(reading)
            if problem:
                self.add("unsafe-name", index, problem)
                break
        if len(member.name_bytes) > MAX_NAME_BYTES:
            self.add("unsafe-name", index, f"longer than {MAX_NAME_BYTES} bytes")
        self._judge_type(member, fields)
        if _encrypted(member.flags, member.method, fields):
            self.add("encrypted", index)
        elif member.method not in (STORED, DEFLATED):
            self.add("unsupported-compression", index, f"method {member.method}")
        elif member.flags & FLAG_PATCHED:
            self.add("unsupported-compression", index, "patched data")
        if member.method == STORED and member.csize != member.usize:
            self.add("size-mismatch", index, "a stored member whose sizes differ")
        limits = self.limits
        if member.usize > limits.ratio_floor_bytes and member.usize > limits.max_ratio * max(member.csize, 1):
            self.add("ratio-bomb", index, f"ratio above {limits.max_ratio:g}")

    def _names(self, member: _Member, raw: bytes, flags: int, fields: dict[int, bytes]) -> tuple[list[str], str]:
        """Every reading of a name (header decodings, Unicode Path), and the one extractors use."""
        if flags & FLAG_UTF8:
            try:
                readings = [raw.decode("utf-8")]
            except UnicodeDecodeError:
                self.add("invalid-name-encoding", member.index)
                readings = [raw.decode("utf-8", "replace")]
        else:
            readings = [raw.decode("cp437")]
            try:
                readings.insert(0, raw.decode("utf-8"))  # what most tools show for such bytes
            except UnicodeDecodeError:
                pass
        effective = readings[0]
        unicode_path = fields.get(EXTRA_UNICODE_PATH)
        if unicode_path is not None:
            if len(unicode_path) < 5:
                self.add("malformed-extra-field", member.index, "Unicode Path too short")
            else:
                try:
                    effective = unicode_path[5:].decode("utf-8")
                except UnicodeDecodeError:
                    self.add("invalid-name-encoding", member.index, "in the Unicode Path field")
                    effective = unicode_path[5:].decode("utf-8", "replace")
                if effective not in readings:
                    self.add("name-mismatch", member.index, "Unicode Path field differs from the header name")
                readings.append(effective)
        return list(dict.fromkeys(readings)), effective

    def _judge_type(self, member: _Member, fields: dict[int, bytes]) -> None:
        index = member.index
        # Whatever host system the archive claims, unzip and libarchive read these bits as a Unix mode.
        mode = member.ext_attr >> 16
        kind = stat.S_IFMT(mode)
        if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
            self.add("special-file", index, "symbolic link" if kind == stat.S_IFLNK else "device, fifo or socket")
        if mode & (stat.S_ISUID | stat.S_ISGID):
            self.add("special-permissions", index)
        self._judge_unix_extras(index, fields)
        named_folder = member.effective.endswith(("/", "\\"))
        if (kind == stat.S_IFDIR or member.ext_attr & 0x10) and not named_folder:
            self.add("type-mismatch", index)
        if (named_folder or kind == stat.S_IFDIR) and member.usize:
            self.add("directory-with-data", index)

    def _judge_version(self, index: int, needed: int) -> None:
        if needed & 0xFF > MAX_VERSION_NEEDED:  # readers refuse what they cannot know how to read
            self.add("unsupported-compression", index, f"needs ZIP version {needed & 0xFF}")

    def _judge_unix_extras(self, index: int, fields: dict[int, bytes]) -> None:
        """Extra fields that can make a member a link or a device: ASi Unix (mode, link name), PKWARE Unix."""
        asi = fields.get(EXTRA_ASI_UNIX)
        if asi is not None:
            if len(asi) < 14:
                self.add("malformed-extra-field", index, "ASi Unix field too short")
            elif stat.S_IFMT(struct.unpack_from("<H", asi, 4)[0]) not in (0, stat.S_IFREG, stat.S_IFDIR) or asi[14:]:
                self.add("special-file", index, "link or device in the ASi Unix extra field")
        pkware = fields.get(EXTRA_PKWARE_UNIX)
        if pkware is not None and len(pkware) > 12:
            self.add("special-file", index, "link or device in the PKWARE Unix extra field")

    def _judge_names_together(self) -> None:
        seen: dict[str, int] = {}
        files: dict[str, int] = {}
        for member in self.members:
            key = name_key(member.effective)
            if key in seen:
                self.add("duplicate-name", member.index, f"same as member {seen[key]}")
            seen.setdefault(key, member.index)
            if not member.effective.endswith(("/", "\\")):
                files.setdefault(key, member.index)
        for key, index in seen.items():
            parts = key.split("/")
            for depth in range(1, len(parts)):
                parent = "/".join(parts[:depth])
                if parent in files:
                    self.add("name-conflict", index, f"member {files[parent]} is a file of that name")
                    break

    # -- local headers and layout --------------------------------------------------------------------
    def _local_headers(self, cd_offset: int) -> None:
        ordered = sorted(self.members, key=lambda m: m.offset)
        expected = 0
        for position, member in enumerate(ordered):
            if member.offset < expected:
                self.add("overlapping-members", member.index)
                continue
            if member.offset > expected:
                self.add("unaccounted-bytes", member.index, "before this member")
            self._local_header(member)
            data_end = member.data_start + member.csize
            following = ordered[position + 1].offset if position + 1 < len(ordered) else cd_offset
            expected = self._descriptor(member, data_end, following) if member.flags & FLAG_DESCRIPTOR else data_end
            if expected > cd_offset:
                self.add("overlapping-members", member.index, "data runs into the central directory")
        if expected < cd_offset and not self.problems:
            self.add("unaccounted-bytes", None, "before the central directory")

    def _local_header(self, member: _Member) -> None:
        index = member.index
        (sig, needed, flags, method, _, _, crc, csize, usize, name_len, extra_len) = _LOCAL.unpack(
            self.read_at(member.offset, _LOCAL.size))
        if sig != LOCAL_SIG:
            raise _Unreadable(f"member {index} has no local header")
        self._judge_version(index, needed)
        name = self.read_at(member.offset + _LOCAL.size, name_len)
        extra = self.read_at(member.offset + _LOCAL.size + name_len, extra_len)
        member.data_start = member.offset + _LOCAL.size + name_len + extra_len
        fields = self._extra_fields(member, extra)
        if 0xFFFFFFFF in (csize, usize):
            zip64 = fields.get(EXTRA_ZIP64)
            if zip64 is None or len(zip64) < 16:
                self.add("header-mismatch", index, "ZIP64 sizes without their extra field")
            else:
                usize, csize = struct.unpack_from("<2Q", zip64)
        member.local_sizes = (crc, csize, usize)
        if name != member.name_bytes:
            self.add("name-mismatch", index, "the local header name differs from the central directory")
        readings, _ = self._names(member, name, flags, fields)
        if EXTRA_UNICODE_PATH in fields and member.effective not in readings:
            self.add("name-mismatch", index, "the local Unicode Path differs from the central directory")
        for reading in readings:
            problem = name_problem(reading)
            if problem:
                self.add("unsafe-name", index, f"in the local header: {problem}")
                break
        if _encrypted(flags, method, fields) and not _encrypted(member.flags, member.method, {}):
            self.add("encrypted", index, "by its local header")
        if (flags & _COMPARED_FLAGS, method) != (member.flags & _COMPARED_FLAGS, member.method):
            self.add("header-mismatch", index, "flags or compression method")
        central = (member.crc, member.csize, member.usize)
        if member.local_sizes != central and not (flags & FLAG_DESCRIPTOR and member.local_sizes == (0, 0, 0)):
            self.add("header-mismatch", index, "CRC or sizes")
        self._judge_unix_extras(index, fields)

    def _descriptor(self, member: _Member, data_end: int, following: int) -> int:
        """Where the member ends: after a data descriptor that matches the central directory."""
        length = following - data_end
        forms = {16: "<4s3L", 24: "<4sLQQ", 12: "<3L", 20: "<LQQ"}
        if length in forms and data_end + length <= self.size:
            values = struct.unpack(forms[length], self.read_at(data_end, length))
            signed = values[0] == DESCRIPTOR_SIG if length in (16, 24) else True
            if signed and tuple(values[-3:]) == (member.crc, member.csize, member.usize):
                return following
        self.add("descriptor-mismatch", member.index)
        return max(following, data_end)

    # -- reading every member through ----------------------------------------------------------------
    def _read_through(self, member: _Member) -> None:
        try:
            crc, produced = (self._read_stored if member.method == STORED else self._read_deflated)(member)
        except zlib.error:
            self.add("corrupt-data", member.index)
            return
        except _SizeExceeded as err:
            self.add("size-mismatch", member.index, str(err))
            return
        if produced != member.usize:
            self.add("size-mismatch", member.index, f"{produced} bytes, {member.usize} declared")
        elif crc != member.crc:
            self.add("crc-mismatch", member.index)

    def _read_stored(self, member: _Member) -> tuple[int, int]:
        buffer = memoryview(bytearray(min(BLOCK, max(member.csize, 1))))
        self.f.seek(member.data_start)
        crc, remaining = 0, member.csize
        while remaining:
            got = self.f.readinto(buffer[: min(len(buffer), remaining)])  # type: ignore[attr-defined]
            if not got:
                raise _Unreadable("member data runs past the end of the file")
            crc = zlib.crc32(buffer[:got], crc)
            remaining -= got
        return crc, member.csize

    def _read_deflated(self, member: _Member) -> tuple[int, int]:
        inflater = zlib.decompressobj(-zlib.MAX_WBITS)
        self.f.seek(member.data_start)
        crc, produced, remaining = 0, 0, member.csize
        while remaining and not inflater.eof:
            pending = self.f.read(min(BLOCK, remaining))
            if not pending:
                raise _Unreadable("member data runs past the end of the file")
            remaining -= len(pending)
            while pending and not inflater.eof:
                output = inflater.decompress(pending, BLOCK)
                pending = inflater.unconsumed_tail
                produced += len(output)
                if produced > member.usize:
                    raise _SizeExceeded("more data than declared")
                crc = zlib.crc32(output, crc)
        if not inflater.eof:
            raise zlib.error("the deflate stream is incomplete")
        if remaining or inflater.unused_data:
            raise _SizeExceeded("the compressed stream ends before its declared size")  # bytes hide behind it
        return crc, produced


class _SizeExceeded(Exception):
    pass


def _occurrences(data: bytes, needle: bytes) -> list[int]:
    found, position = [], data.find(needle)
    while position >= 0:
        found.append(position)
        position = data.find(needle, position + 1)
    return found


def _encrypted(flags: int, method: int, fields: dict[int, bytes]) -> bool:
    return bool(flags & (FLAG_ENCRYPTED | FLAG_STRONG | FLAG_MASKED) or method == AES
                or EXTRA_AES in fields or EXTRA_STRONG_ENCRYPTION in fields)


_DRIVE = re.compile(r"[A-Za-z]:")


def name_problem(name: str) -> str | None:
    """Why a member name could land outside the extraction folder (or confuse extractors), if it could.

    The name is judged as written and in NFKC form (fullwidth dots and slashes fold to ASCII on some
    systems), with `\\` as a separator (Windows extractors split on it).
    """
    if not name:
        return "empty name"
    if "\x00" in name:
        return "NUL byte"
    if any(unicodedata.category(char) == "Cc" for char in name):
        return "control character"
    for form in dict.fromkeys((name, unicodedata.normalize("NFKC", name))):
        path = form.replace("\\", "/")
        if path.startswith("/"):
            return "absolute path"
        if _DRIVE.match(path):
            return "drive letter (absolute path)"
        parts = path.split("/")
        if ".." in parts:
            return "'..' component"
        if any(part not in ("", ".") and not part.strip(". ") for part in parts):
            return "component of only dots and spaces"
        if ":" in path:
            return "':' (drive or alternate data stream)"
    return None


def name_key(name: str) -> str:
    """The name as a case-insensitive, normalising file system sees it: equal keys collide on disk."""
    path = unicodedata.normalize("NFKC", name).casefold().replace("\\", "/")
    return "/".join(part for part in path.split("/") if part not in ("", "."))
