"""The content pipeline over real HTTP: a download server and the emulator -> hook -> spool -> moto S3.

Every ZIP of the malicious corpus is served by a small HTTP server on 127.0.0.1, fetched through
`PrivacyServiceHook.stream_content` (an allow-listed download host, no credentials), archived by
`archive_once` into moto over HTTP: quarantined ZIPs never appear under the content prefix (not even
as an unfinished multipart upload), and a retry keeps the verdict and writes the record once.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import threading
import zipfile

import pytest
from adobe_privacy.content import archive_content, archive_once
from adobe_privacy.hooks import PrivacyServiceHook
from adobe_privacy.storage import PrivacyArchiveStore
from privacy_pipeline.zipcheck import ZipLimits

from tests.conftest import privacy_connection, s3_connection
from tests.provider.helpers import make_payload
from tests.zip_corpus import CASES, LIMITS, Entry, Layout, build_zip, text

BUCKET = "privacy-content-tests"
ROOT = "privacy"
MIB = 1024**2
PART = 5 * MIB


class _ZipServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _ZipHandler)
        self.files: dict[str, bytes] = {}
        self.requests: list[dict] = []

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def url(self, name: str) -> str:
        return f"http://{self.host}/{name}.zip"


class _ZipHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.server.requests.append({"path": self.path, "headers": dict(self.headers)})
        body = self.server.files.get(self.path.lstrip("/").removesuffix(".zip"))
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "application/zip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def zip_server():
    server = _ZipServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def connections(emulator, s3_server, zip_server):
    """Module-wide connections: the corpus tests need no emulator state, so no per-test reset."""
    privacy = json.loads(privacy_connection(emulator)["AIRFLOW_CONN_ADOBE_PRIVACY_DEFAULT"])
    privacy["extra"]["download_hosts"] = [emulator.blob_host, zip_server.host]
    with pytest.MonkeyPatch.context() as patch:
        for name, value in {**s3_connection(s3_server), "AWS_ACCESS_KEY_ID": "testing",
                            "AWS_SECRET_ACCESS_KEY": "testing",
                            "AIRFLOW_CONN_ADOBE_PRIVACY_CONTENT": json.dumps(privacy)}.items():
            patch.setenv(name, value)
        yield "adobe_privacy_content"


@pytest.fixture(scope="module")
def store(connections):
    store = PrivacyArchiveStore(f"s3://{BUCKET}/{ROOT}")
    try:
        store.client.create_bucket(Bucket=BUCKET)
    except store.client.exceptions.BucketAlreadyOwnedByYou:
        pass
    return store


@pytest.fixture(scope="module")
def download_hook(connections) -> PrivacyServiceHook:
    return PrivacyServiceHook(adobe_privacy_conn_id=connections)


def _keys(store, job_id):
    return {
        "key": store.key("content", f"{job_id}.zip"),
        "quarantine_key": store.key("quarantine", f"{job_id}.zip"),
        "record_key": store.key("ledger", "jobs", f"{job_id}.json"),
    }


def _listing(store, prefix: str) -> list[str]:
    answer = store.client.list_objects_v2(Bucket=BUCKET, Prefix=store.key(prefix) + "/")
    uploads = store.client.list_multipart_uploads(Bucket=BUCKET, Prefix=store.key(prefix) + "/")
    return [item["Key"] for item in answer.get("Contents", [])] + [u["Key"] for u in uploads.get("Uploads", [])]


def _object(store, key: str) -> bytes:
    return store.client.get_object(Bucket=BUCKET, Key=key)["Body"].read()


def _archive(store, hook, job_id, url, tmp_path, **overrides):
    keys = _keys(store, job_id)
    args = dict(
        job_id=job_id, record_key=keys["record_key"], s3_client=store.client, bucket=BUCKET,
        encryption_args=store.encryption_args, key=keys["key"], quarantine_key=keys["quarantine_key"],
        limits=LIMITS, spool_root=str(tmp_path), part_size=PART,
    )
    args.update(overrides)
    return archive_once(lambda: hook.stream_content({"jobId": job_id, "downloadUrl": url}), **args)


@pytest.fixture
def s3_calls(store):
    """Every S3 operation the store's client sends, in order, with its URL path (an event hook, nothing patched)."""
    calls: list[tuple[str, str]] = []

    def record(params, model, **_):
        calls.append((model.name, params["url_path"]))

    store.client.meta.events.register("before-call.s3", record, unique_id="content-pipeline-tests")
    yield calls
    store.client.meta.events.unregister("before-call.s3", unique_id="content-pipeline-tests")


@pytest.mark.parametrize("case", CASES, ids=lambda case: case.name)
def test_every_corpus_zip_through_the_real_archive_path(case, store, download_hook, zip_server, tmp_path):
    job_id = "case-" + case.name
    data = case.build()
    zip_server.files[job_id] = data
    keys = _keys(store, job_id)
    store.delete(keys["record_key"])

    record, written = _archive(store, download_hook, job_id, zip_server.url(job_id), tmp_path)

    assert written and record["sha256"] == hashlib.sha256(data).hexdigest() and record["size"] == len(data)
    if case.problem:
        assert record["outcome"] == "quarantined" and record["problem"], record
        assert record["content_key"] == keys["quarantine_key"] and _object(store, keys["quarantine_key"]) == data
        assert not [key for key in _listing(store, "content") if job_id in key]
    else:
        assert record["outcome"] == "archived" and record["reason"] is None, record
        assert _object(store, keys["key"]) == data
    assert json.loads(_object(store, keys["record_key"])) == record
    assert list(tmp_path.iterdir()) == []  # the spool is gone
    assert all("Authorization" not in request["headers"] for request in zip_server.requests)


@pytest.mark.parametrize(
    "name", ["symlink-host-16", "unicode-path-escapes", "local-name-escapes", "crc-mismatch-stored"]
)
def test_a_retry_keeps_the_quarantine_verdict_and_writes_the_record_once(
    name, store, download_hook, zip_server, tmp_path, s3_calls
):
    case = {case.name: case for case in CASES}[name]
    job_id = "retry-" + name
    zip_server.files[job_id] = case.build()
    keys = _keys(store, job_id)
    store.delete(keys["record_key"])

    first, written_first = _archive(store, download_hook, job_id, zip_server.url(job_id), tmp_path)
    fetched = len(zip_server.requests)
    second, written_second = _archive(store, download_hook, job_id, zip_server.url(job_id), tmp_path)

    assert (written_first, written_second) == (True, False)
    assert first == second and second["outcome"] == "quarantined"
    assert len(zip_server.requests) == fetched  # a final record is not downloaded again
    assert sum(operation == "PutObject" and keys["record_key"] in path for operation, path in s3_calls) == 1
    assert not [key for key in _listing(store, "content") if job_id in key]

    # A task killed after the upload but before the record: the rerun reaches the same verdict.
    store.delete(keys["record_key"])
    third, written_third = _archive(store, download_hook, job_id, zip_server.url(job_id), tmp_path)
    assert written_third and third["outcome"] == "quarantined" and third["problem"] == first["problem"]
    assert not [key for key in _listing(store, "content") if job_id in key]


def _big_zip(corrupt_last_member: bool) -> bytes:
    """12 MiB over three stored members (three 5 MiB parts); optionally the last member fails its CRC."""
    entries = [Entry(b"job/Analytics/data-%04d.json" % i, text(100 + i, 4 * MIB)) for i in range(3)]
    if corrupt_last_member:
        entries[-1].crc = 0
    return build_zip(Layout(entries))


@pytest.mark.parametrize("corrupt", [False, True], ids=["good", "crc-in-last-member"])
def test_a_multipart_zip_is_completed_only_when_it_verifies(
    corrupt, store, download_hook, zip_server, tmp_path, s3_calls
):
    job_id = f"big-{corrupt}".lower()
    data = _big_zip(corrupt)
    zip_server.files[job_id] = data
    keys = _keys(store, job_id)
    store.delete(keys["record_key"])
    s3_calls.clear()

    record, _ = _archive(store, download_hook, job_id, zip_server.url(job_id), tmp_path,
                         limits=ZipLimits(max_uncompressed_bytes=64 * MIB))

    assert record["outcome"] == ("quarantined" if corrupt else "archived")
    assert record["problem"] == ("crc-mismatch" if corrupt else None) and record["member"] == (2 if corrupt else None)
    stored = keys["quarantine_key"] if corrupt else keys["key"]
    head = store.client.head_object(Bucket=BUCKET, Key=stored)
    assert head["ServerSideEncryption"] == "AES256" and _object(store, stored) == data
    assert [key for key in _listing(store, "content") if job_id in key] == ([] if corrupt else [keys["key"]])
    # The content key got parts while the download went on, then exactly one of complete or abort.
    on_content = [operation for operation, path in s3_calls
                  if keys["key"] in path and operation.endswith(("MultipartUpload", "UploadPart"))]
    assert on_content[0] == "CreateMultipartUpload" and on_content.count("UploadPart") >= 2
    assert on_content[-1] == ("AbortMultipartUpload" if corrupt else "CompleteMultipartUpload")
    assert on_content.count("AbortMultipartUpload") + on_content.count("CompleteMultipartUpload") == 1


def test_an_endless_download_stops_at_the_limit_and_stores_nothing(store, tmp_path):
    def endless():
        while True:
            yield bytes(MIB)

    key = store.key("content", "endless.zip")
    result = archive_content(
        endless(), s3_client=store.client, bucket=BUCKET, key=key, quarantine_key=store.key("quarantine", "endless.zip"),
        encryption_args=store.encryption_args, limits=LIMITS, spool_root=str(tmp_path), part_size=PART,
        max_download_bytes=12 * MIB,
    )
    assert (result.outcome, result.key, result.problem) == ("quarantined", None, "size-cap")
    assert result.size == 12 * MIB + MIB
    assert not [k for k in _listing(store, "content") if "endless" in k] and list(tmp_path.iterdir()) == []


def test_a_failing_download_aborts_the_upload_and_leaves_no_spool(store, tmp_path):
    def broken():
        yield bytes(6 * MIB)
        yield bytes(6 * MIB)
        raise ConnectionError("reset by peer")

    key = store.key("content", "broken.zip")
    with pytest.raises(ConnectionError):
        archive_content(broken(), s3_client=store.client, bucket=BUCKET, key=key, quarantine_key=None,
                        encryption_args=store.encryption_args, limits=LIMITS, spool_root=str(tmp_path),
                        part_size=PART)
    assert not [k for k in _listing(store, "content") if "broken" in k] and list(tmp_path.iterdir()) == []


def test_the_emulator_s_access_zip_is_archived(emu, store, download_hook, tmp_path):
    emu.configure(error_rate=0.0, content_bytes=6 * MIB)  # `emu` resets the session emulator first
    (job,) = download_hook.create_jobs(make_payload(emu.org_id, ["subject"]))
    emu.advance_clock(3600)
    detail = download_hook.get_job(job.job_id)
    keys = _keys(store, job.job_id)
    record, written = archive_once(
        lambda: download_hook.stream_content(detail), job_id=job.job_id, record_key=keys["record_key"],
        s3_client=store.client, bucket=BUCKET, encryption_args=store.encryption_args, key=keys["key"],
        quarantine_key=keys["quarantine_key"], limits=ZipLimits(max_uncompressed_bytes=64 * MIB),
        spool_root=str(tmp_path), part_size=PART,
    )
    assert written and record["outcome"] == "archived", record
    with zipfile.ZipFile(io.BytesIO(_object(store, keys["key"]))) as archive:
        assert archive.testzip() is None


def test_an_unsafe_job_id_never_reaches_a_key(store, download_hook, tmp_path):
    with pytest.raises(ValueError):
        _archive(store, download_hook, "../x", "http://127.0.0.1:1/x.zip", tmp_path)


def test_an_s3_failure_during_the_parts_fails_the_task_and_leaves_no_spool(store, tmp_path):
    good = _big_zip(corrupt_last_member=False)
    with pytest.raises(store.client.exceptions.NoSuchBucket):
        archive_content(
            iter([good[: 6 * MIB], good[6 * MIB :]]), s3_client=store.client, bucket="no-such-bucket-here",
            key="content/x.zip", quarantine_key=None, encryption_args=store.encryption_args,
            limits=ZipLimits(max_uncompressed_bytes=64 * MIB), spool_root=str(tmp_path), part_size=PART,
        )
    assert list(tmp_path.iterdir()) == []


def test_a_racing_try_s_record_wins_and_is_not_overwritten(store, download_hook, zip_server, tmp_path):
    case = {case.name: case for case in CASES}["local-name-escapes"]
    job_id = "race-local-name-escapes"
    zip_server.files[job_id] = case.build()
    keys = _keys(store, job_id)
    store.delete(keys["record_key"])
    winner = {"job_id": job_id, "outcome": "quarantined", "content_key": keys["quarantine_key"], "by": "other try"}

    def open_while_another_try_finishes():
        store.put_json(keys["record_key"], winner)
        return download_hook.stream_content({"jobId": job_id, "downloadUrl": zip_server.url(job_id)})

    record, written = archive_once(
        open_while_another_try_finishes, job_id=job_id, record_key=keys["record_key"], s3_client=store.client,
        bucket=BUCKET, encryption_args=store.encryption_args, key=keys["key"], quarantine_key=keys["quarantine_key"],
        limits=LIMITS, spool_root=str(tmp_path), part_size=PART,
    )
    assert (record, written) == (winner, False)
    assert json.loads(_object(store, keys["record_key"])) == winner


def test_the_first_archive_into_a_spool_root_sweeps_what_killed_tasks_left(store, tmp_path):
    stale = tmp_path / "privacy-spool-999999-dead"
    stale.mkdir(mode=0o700)
    (stale / "content.zip").write_bytes(b"PK personal data")
    for path in (stale / "content.zip", stale):
        os.utime(path, (0, 0))  # last changed in 1970: long dead
    good = {case.name: case for case in CASES}["zipfile-deflated"].build()
    result = archive_content(
        iter([good]), s3_client=store.client, bucket=BUCKET, key=store.key("content", "sweep.zip"),
        quarantine_key=None, encryption_args=store.encryption_args, limits=LIMITS, spool_root=str(tmp_path),
    )
    assert result.archived and list(tmp_path.iterdir()) == []
