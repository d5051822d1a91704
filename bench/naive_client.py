"""The naive reference for B2: a sequential client with no list endpoint and no concurrency.

One POST per 1000 subjects (of one job shape, like ours, so that Adobe would accept them), then a GET
per job, pass after pass, until every job is final, then one download per complete access job. It
submits exactly the subjects our intake accepts (it reuses intake and batching: validation is not what
B2 compares) and downloads to nowhere: it does less work than the pipeline, which also stages, ledgers,
inspects and uploads to S3.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

FINAL_STATUSES = ("complete", "error")
PRIVACY_PATH = "/data/core/privacy"
DOWNLOAD_CHUNK = 1 << 16


@dataclass
class NaiveRun:
    seconds: float = 0.0
    subjects: int = 0
    jobs: int = 0
    posts: int = 0
    status_gets: int = 0
    passes: int = 0
    downloads: int = 0
    downloaded_bytes: int = 0
    statuses: dict[str, int] = field(default_factory=dict)


def run_naive(emulator, input_path: Path, include: tuple[str, ...], *, max_passes: int = 1000) -> NaiveRun:
    """Submit, wait and download as a naive client would, against `emulator` (an EmulatorServer)."""
    from privacy_pipeline.batching import batch_payload, plan_batches
    from privacy_pipeline.intake import InputSource, IntakeOptions, read_requests

    result = NaiveRun()
    started = time.perf_counter()
    intake = read_requests(
        [InputSource(name=str(input_path), open=lambda: open(input_path, "rb"))],
        IntakeOptions(default_include=include),
    )
    result.subjects = len(intake.subjects)
    with requests.Session() as http:
        http.headers.update(emulator.headers())
        jobs: dict[str, str] = {}  # jobId -> action
        for batch in plan_batches(intake.subjects):
            response = http.post(f"{emulator.base_url}{PRIVACY_PATH}/jobs", json=batch_payload(batch, emulator.org_id))
            response.raise_for_status()
            result.posts += 1
            jobs.update((job["jobId"], job["customer"]["user"]["action"][0]) for job in response.json()["jobs"])
        result.jobs = len(jobs)
        final: dict[str, dict] = {}
        while len(final) < len(jobs) and result.passes < max_passes:
            result.passes += 1
            for job_id in jobs.keys() - final.keys():
                response = http.get(f"{emulator.base_url}{PRIVACY_PATH}/jobs/{job_id}")
                response.raise_for_status()
                result.status_gets += 1
                detail = response.json()
                if str(detail.get("status", "")).lower() in FINAL_STATUSES:
                    final[job_id] = detail
        for job_id, detail in final.items():
            if jobs[job_id] == "access" and str(detail["status"]).lower() == "complete":
                with http.get((detail.get("downloadUrl") or detail["downloadURL"]), stream=True) as download:
                    download.raise_for_status()
                    result.downloaded_bytes += sum(len(c) for c in download.iter_content(DOWNLOAD_CHUNK))
                result.downloads += 1
    result.seconds = time.perf_counter() - started
    for detail in final.values():
        status = str(detail["status"]).lower()
        result.statuses[status] = result.statuses.get(status, 0) + 1
    return result
