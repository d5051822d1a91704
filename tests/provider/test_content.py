"""Content download: streamed in chunks, credentials only to the API host, allow-listed blob hosts."""

from __future__ import annotations

import io
import tracemalloc
import zipfile

import pytest
from adobe_privacy.exceptions import DownloadRefusedError
from adobe_privacy.hooks import PrivacyServiceHook

from tests.provider.helpers import make_payload

MB = 1024 * 1024


def _complete_access_job(emu, hook: PrivacyServiceHook) -> dict:
    emu.configure(error_rate=0.0)
    (job,) = hook.create_jobs(make_payload(emu.org_id, ["subject"]))
    emu.advance_clock(3600)
    detail = hook.get_job(job.job_id)
    assert detail["status"] == "complete"
    return detail


def test_stream_content_by_job_id_yields_a_valid_zip(emu, hook):
    detail = _complete_access_job(emu, hook)

    with hook.stream_content(detail["jobId"], chunk_size=4096) as chunks:
        data = b"".join(chunks)

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        folders = {name.split("/")[-2] for name in archive.namelist() if "/" in name}
        assert archive.testzip() is None
    assert len(folders) >= 1


@pytest.mark.slow
def test_200_mb_zip_is_streamed_with_bounded_memory(emu, hook):
    # Only products that found data (6000/6054) carry filler: fix the outcome so the ZIP is 200 MB.
    emu.configure(content_bytes=200 * MB, product_outcome_weights={"6000": 1.0})
    detail = _complete_access_job(emu, hook)

    total = 0
    tracemalloc.start()
    try:
        with hook.stream_content(detail, chunk_size=1 * MB) as chunks:
            for chunk in chunks:
                total += len(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert total >= 200 * MB
    assert peak < 16 * MB, f"peak {peak / MB:.1f} MiB while streaming {total / MB:.0f} MiB"


def test_legacy_download_url_never_receives_credentials(emu, hook):
    emu.configure(legacy_download=True)
    detail = _complete_access_job(emu, hook)
    assert emu.blob_host in detail["downloadUrl"]

    with hook.stream_content(detail) as chunks:
        data = b"".join(chunks)

    assert zipfile.is_zipfile(io.BytesIO(data))
    (request,) = emu.blob_requests()
    sent = {name.lower() for name in request["headers"]}
    assert not sent & {"authorization", "x-api-key", "x-gw-ims-org-id", "cookie"}


def test_download_from_a_host_not_allow_listed_is_refused_before_any_request(emu, hook, connection_with):
    emu.configure(legacy_download=True)
    detail = _complete_access_job(emu, hook)
    strict = PrivacyServiceHook(connection_with(download_hosts=[]))

    with pytest.raises(DownloadRefusedError, match="allow-list"), strict.stream_content(detail):
        pass

    assert emu.blob_requests() == []


@pytest.mark.parametrize(
    "url",
    ["http://files.example.com/a.zip", "https://evil.example.net/a.zip", "ftp://files.example.com/a.zip"],
)
def test_download_urls_must_be_https_and_allow_listed(emu, connection_with, url):
    hook = PrivacyServiceHook(connection_with(download_hosts=["files.example.com"]))

    with pytest.raises(DownloadRefusedError), hook.stream_content({"jobId": "j", "downloadUrl": url}):
        pass
