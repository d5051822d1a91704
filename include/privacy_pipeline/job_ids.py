"""Job ids come from Adobe's API: untrusted until checked, and checked before they touch a path or a key.

Adobe's privacy job ids are UUIDs (`6fc09b53-c24f-4a6c-9ca2-c6076b0842b6`) and Data Hygiene work
orders `DI-<uuid>`. A checked id is ASCII letters, digits, `-` and `_`, starts with a letter or digit,
and is at most 128 characters: it can be a file name or an S3 key segment as it is, with no `/`,
`\\`, `.`, `..`, NUL, drive letter, or absolute path possible.
"""

from __future__ import annotations

import re

MAX_JOB_ID_LENGTH = 128
_JOB_ID = re.compile(rf"[A-Za-z0-9][A-Za-z0-9_-]{{0,{MAX_JOB_ID_LENGTH - 1}}}", re.ASCII)


def checked_job_id(value: str) -> str:
    """`value` unchanged if it is a safe job id, else ValueError (whose message does not echo it)."""
    if not isinstance(value, str):
        raise ValueError(f"a job id must be a string, not {type(value).__name__}")
    if _JOB_ID.fullmatch(value) is None:
        # The value itself is not shown: it is attacker-controlled and may be long or hold control bytes.
        raise ValueError(
            f"unsafe job id ({len(value)} characters): a job id is 1-{MAX_JOB_ID_LENGTH} ASCII letters, "
            "digits, '-' or '_', starting with a letter or digit"
        )
    return value
