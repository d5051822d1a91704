"""The naive reference for B2: a sequential client with no list endpoint and no concurrency.

One POST per 1000 subjects (of one job shape, like ours, so that Adobe would accept them), then a GET
per job, pass after pass, until every job is final, then one download per complete access job, each
uploaded to S3. It submits exactly the subjects our intake accepts (it reuses intake and batching:
validation is not what B2 compares) and does less work than the pipeline, which also stages, keeps a
ledger, inspects every ZIP and encrypts.

Each kind of call is timed on its own (`NaiveRun.seconds_by_kind`) so that a run on a sample can be
extrapolated per call to a size the naive client is too slow to run whole (`extrapolate`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

FINAL_STATUSES = ("complete", "error")
PRIVACY_PATH = "/data/core/privacy"
DOWNLOAD_CHUNK = 1 << 16
CALL_KINDS = ("post", "get", "download")


@dataclass
class NaiveRun:
    seconds: float = 0.0
    subjects: int = 0
    jobs: int = 0
    access_jobs: int = 0
    posts: int = 0
    status_gets: int = 0
    passes: int = 0
    downloads: int = 0
    downloaded_bytes: int = 0
    intake_seconds: float = 0.0
    #: Wall seconds spent in each kind of call: POST, status GET, download + S3 upload.
    seconds_by_kind: dict[str, float] = field(default_factory=lambda: dict.fromkeys(CALL_KINDS, 0.0))
    statuses: dict[str, int] = field(default_factory=dict)

    def per_call(self) -> dict[str, float]:
        counts = {"post": self.posts, "get": self.status_gets, "download": self.downloads}
        return {kind: self.seconds_by_kind[kind] / counts[kind] for kind in CALL_KINDS if counts[kind]}


@dataclass(frozen=True)
class Workload:
    """What the naive client would send for an input: POSTs, jobs, complete access jobs to download."""

    subjects: int
    posts: int
    jobs: int
    access_jobs: int


def workload(input_path: Path, include: tuple[str, ...]) -> tuple[Workload, float]:
    """The input's workload (our intake and batching, as the naive client uses) and the intake's seconds."""
    from privacy_pipeline.batching import plan_batches

    started = time.perf_counter()
    subjects = _read_subjects(input_path, include)
    batches = plan_batches(subjects)
    seconds = time.perf_counter() - started
    pairs = [pair for batch in batches for pair in batch.user_actions]
    jobs, access = len(pairs), sum(1 for _key, action in pairs if action == "access")
    return Workload(subjects=len(subjects), posts=len(batches), jobs=jobs, access_jobs=access), seconds


def extrapolate(sample: NaiveRun, full: Workload, intake_seconds: float) -> float:
    """Seconds the naive client would take on `full`: each call at the sample's mean time per call.

    One status GET per job (every job final by its first GET): a lower bound, so the naive figure is
    never flattered.
    """
    per_call = sample.per_call()
    return (intake_seconds + full.posts * per_call["post"] + full.jobs * per_call["get"]
            + full.access_jobs * per_call.get("download", 0.0))


def expected_user_actions(input_path: Path, include: tuple[str, ...]) -> set[str]:
    """The `userKey|action` pairs (the emulator's stats keys) the input must create exactly once each."""
    from privacy_pipeline.batching import plan_batches

    return {f"{key}|{action}" for batch in plan_batches(_read_subjects(input_path, include))
            for key, action in batch.user_actions}


def _read_subjects(input_path: Path, include: tuple[str, ...]) -> list[Any]:
    from privacy_pipeline.intake import InputSource, IntakeOptions, read_requests

    intake = read_requests(
        [InputSource(name=str(input_path), open=lambda: open(input_path, "rb"))],
        IntakeOptions(default_include=include),
    )
    return intake.subjects


def run_naive(emulator, input_path: Path, include: tuple[str, ...], *, s3_client=None, bucket: str = "",
              max_passes: int = 1000) -> NaiveRun:
    """Submit, wait and download (and upload to `bucket` when an S3 client is given) as a naive client would."""
    from privacy_pipeline.batching import batch_payload, plan_batches

    result = NaiveRun()
    started = time.perf_counter()
    subjects = _read_subjects(input_path, include)
    result.intake_seconds = time.perf_counter() - started
    result.subjects = len(subjects)
    with requests.Session() as http:
        http.headers.update(emulator.headers())
        jobs: dict[str, str] = {}  # jobId -> action
        for batch in plan_batches(subjects):
            call = time.perf_counter()
            response = http.post(f"{emulator.base_url}{PRIVACY_PATH}/jobs", json=batch_payload(batch, emulator.org_id))
            response.raise_for_status()
            result.seconds_by_kind["post"] += time.perf_counter() - call
            result.posts += 1
            jobs.update((job["jobId"], job["customer"]["user"]["action"][0]) for job in response.json()["jobs"])
        result.jobs = len(jobs)
        result.access_jobs = sum(1 for action in jobs.values() if action == "access")
        final: dict[str, dict] = {}
        while len(final) < len(jobs) and result.passes < max_passes:
            result.passes += 1
            for job_id in jobs.keys() - final.keys():
                call = time.perf_counter()
                response = http.get(f"{emulator.base_url}{PRIVACY_PATH}/jobs/{job_id}")
                response.raise_for_status()
                result.seconds_by_kind["get"] += time.perf_counter() - call
                result.status_gets += 1
                detail = response.json()
                if str(detail.get("status", "")).lower() in FINAL_STATUSES:
                    final[job_id] = detail
        for job_id, detail in final.items():
            if jobs[job_id] == "access" and str(detail["status"]).lower() == "complete":
                call = time.perf_counter()
                with http.get((detail.get("downloadUrl") or detail["downloadURL"]), stream=True) as download:
                    download.raise_for_status()
                    body = b"".join(download.iter_content(DOWNLOAD_CHUNK))
                if s3_client is not None:
                    s3_client.put_object(Bucket=bucket, Key=f"naive/content/{job_id}.zip", Body=body)
                result.seconds_by_kind["download"] += time.perf_counter() - call
                result.downloaded_bytes += len(body)
                result.downloads += 1
    result.seconds = time.perf_counter() - started
    for detail in final.values():
        status = str(detail["status"]).lower()
        result.statuses[status] = result.statuses.get(status, 0) + 1
    return result
