"""In-memory stand-ins for the S3 store and the job API, for millisecond tests of the operator classes.

The emulator and moto tests (tests/dags, tests/companion) run the same classes over real HTTP; these
fakes only make the protocol's edge cases (a dropped response, a 503, a crash between two writes)
cheap to reach and to repeat.
"""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from adobe_privacy.exceptions import PrivacyOutcomeUnknownError
from adobe_privacy.protocol import CreatedJob


class FakeTaskInstance(SimpleNamespace):
    """What our operators read of a task instance when `execute` is called directly: its ids, and its XCom
    pushes (the extra links), kept in `xcoms`."""

    def __init__(self, *, dag_id: str, task_id: str, run_id: str, map_index: int = -1) -> None:
        super().__init__(dag_id=dag_id, task_id=task_id, run_id=run_id, map_index=map_index, dag_version_id=None,
                         xcoms={})

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


class MemoryStore:
    """The `PrivacyArchiveStore` calls the ledger, budget and archiver use, over a dict."""

    bucket = "bucket"
    encryption_args: dict[str, str] = {"ServerSideEncryption": "AES256"}

    def __init__(self, prefix: str = "root") -> None:
        self.prefix = prefix
        self.objects: dict[str, bytes] = {}
        self.versions: dict[str, int] = {}
        self.client = MemoryS3Client(self)

    def uri(self, key: str) -> str:
        return f"s3://bucket/{key}"

    def put_bytes(self, key: str, data: bytes, *, content_type: str = "") -> None:
        self.objects[key] = bytes(data)
        self.versions[key] = self.versions.get(key, 0) + 1

    def put_json(self, key: str, document: Any) -> None:
        self.put_bytes(key, json.dumps(document, sort_keys=True, default=str).encode())

    def put_file(self, path: str | Path, key: str, *, content_type: str = "") -> None:
        self.put_bytes(key, Path(path).read_bytes())

    def get_bytes(self, key: str) -> bytes | None:
        return self.objects.get(key)

    def get_json(self, key: str) -> Any | None:
        body = self.objects.get(key)
        return None if body is None else json.loads(body)

    def get_json_versioned(self, key: str) -> tuple[Any | None, str | None]:
        if key not in self.objects:
            return None, None
        return self.get_json(key), str(self.versions[key])

    def put_json_if(self, key: str, document: Any, *, etag: str | None) -> bool:
        current = str(self.versions[key]) if key in self.objects else None
        if current != etag:
            return False
        self.put_json(key, document)
        return True

    def delete(self, key: str) -> None:
        self.objects.pop(key, None)

    def list_keys(self, prefix: str) -> list[str]:
        return sorted(k for k in self.objects if k.startswith(prefix.rstrip("/") + "/"))


class MemoryS3Client:
    """The few boto3 S3 calls the content pipeline makes (PutObject and multipart), over a MemoryStore."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.uploads: dict[str, dict[int, bytes]] = {}

    def put_object(self, *, Key: str, Body: bytes, **_: Any) -> dict[str, Any]:  # noqa: N803
        self.store.put_bytes(Key, Body if isinstance(Body, bytes) else Body.read())
        return {}

    def create_multipart_upload(self, *, Key: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        upload_id = f"upload-{len(self.uploads)}"
        self.uploads[upload_id] = {}
        return {"UploadId": upload_id}

    def upload_part(self, *, UploadId: str, PartNumber: int, Body: Any, **_: Any) -> dict[str, Any]:  # noqa: N803
        self.uploads[UploadId][PartNumber] = Body if isinstance(Body, bytes) else Body.read()
        return {"ETag": f"etag-{PartNumber}"}

    def complete_multipart_upload(self, *, Key: str, UploadId: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        parts = self.uploads.pop(UploadId)
        self.store.put_bytes(Key, b"".join(parts[n] for n in sorted(parts)))
        return {}

    def abort_multipart_upload(self, *, UploadId: str, **_: Any) -> dict[str, Any]:  # noqa: N803
        self.uploads.pop(UploadId, None)
        return {}


class FakeJobsApi:
    """Adobe's job API as the protocol sees it: POSTs create jobs; the list shows what was created.

    `faults` is a list consumed one per POST: None (a clean call), "drop" (the jobs are created, the
    response is lost) or "503" (refused before anything was created).
    """

    def __init__(self, clock: Any, faults: list[str | None] | None = None) -> None:
        self.clock = clock
        self.faults = list(faults or [])
        self.jobs: list[dict[str, Any]] = []
        self.posts = 0

    def payload(self, batch: Any, only: set[tuple[str, str]]) -> dict[str, Any]:
        users = [{"key": s.key, "action": [a for a in s.actions if (s.key, a) in only]} for s in batch.subjects]
        return {"regulation": batch.shape.regulation, "users": [u for u in users if u["action"]]}

    def create(self, payload: dict[str, Any]) -> list[CreatedJob]:
        self.posts += 1
        fault = self.faults.pop(0) if self.faults else None
        if fault == "503":
            raise PrivacyOutcomeUnknownError("503", operation="create_jobs")
        created = []
        for user in payload["users"]:
            for action in user["action"]:
                job = CreatedJob(f"job-{len(self.jobs) + 1}", user["key"], action)
                created.append(job)
                self.jobs.append({"jobId": job.job_id, "userKey": job.user_key, "action": action,
                                  "regulation": payload["regulation"], "status": "processing",
                                  "createdDate": _adobe_date(self.clock.now())})
        if fault == "drop":
            raise PrivacyOutcomeUnknownError("dropped", operation="create_jobs")
        if fault == "timeout":  # committed, but the client gave up waiting: the answer never came
            try:
                raise TimeoutError("read timed out")
            except TimeoutError as cause:
                raise PrivacyOutcomeUnknownError("timed out", operation="create_jobs") from cause
        return created

    def listed(self, regulation: str, from_date: Any, to_date: Any) -> list[dict[str, Any]]:
        return [job for job in self.jobs if job["regulation"] == regulation]

    def jobs_per_pair(self) -> dict[tuple[str, str], int]:
        counts: dict[tuple[str, str], int] = {}
        for job in self.jobs:
            pair = (job["userKey"], job["action"])
            counts[pair] = counts.get(pair, 0) + 1
        return counts


class FakeContentHook:
    """The two calls `JobArchiver` makes of `PrivacyServiceHook`: the job's detail and its content."""

    def __init__(self, details: dict[str, dict[str, Any]], contents: dict[str, Path]) -> None:
        self.details = details
        self.contents = contents
        self.detail_reads = 0
        self.downloads = 0
        self.list_calls = 0

    def get_job(self, job_id: str) -> dict[str, Any]:
        self.detail_reads += 1
        return self.details[job_id]

    def iter_jobs(self, regulation: str, *, from_date: Any = None, to_date: Any = None):
        self.list_calls += 1
        for job_id, detail in self.details.items():
            yield {"jobId": job_id, "status": detail["status"], "regulation": regulation}

    @contextmanager
    def stream_content(self, detail: dict[str, Any]):
        self.downloads += 1
        path = self.contents[detail["jobId"]]

        def chunks():
            with open(path, "rb") as stream:
                while chunk := stream.read(1024):
                    yield chunk

        yield chunks()


def copy_file(source: Path, target: Path) -> Path:
    shutil.copyfile(source, target)
    return target


def _adobe_date(moment: datetime) -> str:
    return moment.strftime("%m/%d/%Y %I:%M %p GMT")
