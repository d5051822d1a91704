"""Job lifecycle on the emulator clock, job detail (reference 4.1) and the content ZIP (reference 5)."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import httpx
import pytest
from privacy_emulator.testing import EmulatorServer

from tests.emulator.conftest import COMPLETE_AFTER, FINISHED, JOBS, PROCESSING_AFTER, job_request

ADOBE_CODES = {"PRVCY-6000-200", "PRVCY-6052-200", "PRVCY-6054-200"}


def submit_example(api, org_id: str) -> dict[str, str]:
    """Job ids of the reference example by (key, action)."""
    jobs = api.post(JOBS, json=job_request(org_id)).json()["jobs"]
    return {
        f"{job['customer']['user']['key']}|{job['customer']['user']['action'][0]}": job["jobId"]
        for job in jobs
    }


def test_status_progresses_with_the_clock(api, clean_emulator):
    clean_emulator.configure(jitter_ratio=0.0)
    job_id = submit_example(api, clean_emulator.org_id)["DavidSmith|access"]
    detail = api.get(f"{JOBS}/{job_id}").json()
    assert detail["status"] == "submitted"
    assert detail["productResponses"][0]["productStatusResponse"] == {"status": "submitted"}
    assert "downloadUrl" not in detail and "downloadURL" not in detail
    clean_emulator.advance_clock((PROCESSING_AFTER + COMPLETE_AFTER) / 2)
    processing = api.get(f"{JOBS}/{job_id}").json()
    assert processing["status"] == "processing"
    assert processing["productResponses"][0]["productStatusResponse"]["status"] == "processing"
    clean_emulator.advance_clock(COMPLETE_AFTER)
    assert api.get(f"{JOBS}/{job_id}").json()["status"] == "complete"


def test_complete_detail_has_the_documented_shape(api, clean_emulator):
    job_ids = submit_example(api, clean_emulator.org_id)
    clean_emulator.advance_clock(FINISHED)
    detail = api.get(f"{JOBS}/{job_ids['DavidSmith|access']}").json()
    assert detail["status"] == "complete"
    assert detail["regulation"] == "ccpa"
    assert detail["userKey"] == "DavidSmith" and detail["action"] == "access"
    assert [identity["namespaceId"] for identity in detail["userIds"]] == [6, 4]
    assert [product["product"] for product in detail["productResponses"]] == [
        "Analytics",
        "AudienceManager",
        "Profile",
    ]
    for product in detail["productResponses"]:
        status = product["productStatusResponse"]
        assert status["status"] == "complete"
        assert status["responseMsgCode"] in ADOBE_CODES
        assert product["processedDate"].endswith(" GMT")
        assert ("results" in status) == (status["responseMsgCode"] == "PRVCY-6054-200")
    assert "downloadURL" not in detail  # one spelling per setting; downloadUrl by default
    assert detail["downloadUrl"] == f"{clean_emulator.base_url}{JOBS}/{detail['jobId']}/content"
    delete_detail = api.get(f"{JOBS}/{job_ids['user12345|delete']}").json()
    assert delete_detail["status"] == "complete" and "downloadUrl" not in delete_detail


def test_outcomes_follow_weights_and_error_rate(api, clean_emulator):
    clean_emulator.configure(error_rate=1.0, product_outcome_weights={"6054": 1.0})
    job_id = submit_example(api, clean_emulator.org_id)["DavidSmith|access"]
    clean_emulator.advance_clock(FINISHED)
    detail = api.get(f"{JOBS}/{job_id}").json()
    assert detail["status"] == "error"
    statuses = [product["productStatusResponse"] for product in detail["productResponses"]]
    assert sum(status["status"] == "error" for status in statuses) == 1
    assert {status["responseMsgCode"] for status in statuses} == {"PRVCY-1021-400", "PRVCY-6054-200"}
    assert "downloadUrl" not in detail
    assert api.get(f"{JOBS}/{job_id}/content").status_code == 404
    assert api.get(JOBS, params={"regulation": "ccpa", "status": "error"}).json()["totalRecords"] == 3


def test_list_and_detail_agree_on_status(api, clean_emulator):
    clean_emulator.configure(jitter_ratio=1.0, error_rate=0.5)
    api.post(
        JOBS,
        json=job_request(
            clean_emulator.org_id,
            users=[
                {
                    "key": f"k{i}",
                    "action": ["access"],
                    "userIDs": [{"namespace": "ECID", "value": str(i), "type": "standard"}],
                }
                for i in range(30)
            ],
        ),
    )
    clean_emulator.advance_clock(FINISHED)
    listed = api.get(JOBS, params={"regulation": "ccpa"}).json()["jobDetails"]
    assert len({job["status"] for job in listed}) > 1
    for job in listed[:10]:
        assert api.get(f"{JOBS}/{job['jobId']}").json()["status"] == job["status"]


def test_unknown_job_is_404(api):
    response = api.get(f"{JOBS}/00000000-0000-0000-0000-000000000000")
    assert response.status_code == 404
    assert response.json()["title"] == "Not found"


def read_zip(content: bytes, job_id: str) -> dict[str, list[str]]:
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert archive.testzip() is None
    folders: dict[str, list[str]] = {}
    for name in archive.namelist():
        top, product, *rest = name.split("/")
        assert top == job_id
        folders.setdefault(product, [])
        if rest and rest[0]:
            folders[product].append(rest[0])
            json.loads(archive.read(name))
    return folders


def test_content_zip_has_one_folder_per_product_of_json(api, clean_emulator):
    # The filler (content_bytes) goes only to products that found data (6000/6054); a 6052 product has
    # its folder and response.json alone. Fix the outcomes so the size below is a promise, not luck.
    clean_emulator.configure(product_outcome_weights={"6000": 1.0})
    job_ids = submit_example(api, clean_emulator.org_id)
    early = api.get(f"{JOBS}/{job_ids['DavidSmith|access']}/content")
    assert early.status_code == 404 and early.json()["error_code"] == "PRVCY-4040-404"
    clean_emulator.advance_clock(FINISHED)
    response = api.get(f"{JOBS}/{job_ids['DavidSmith|access']}/content")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/zip"
    assert (
        response.headers["content-disposition"]
        == f'attachment; filename="{job_ids["DavidSmith|access"]}.zip"'
    )
    folders = read_zip(response.content, job_ids["DavidSmith|access"])
    assert set(folders) == {"Analytics", "AudienceManager", "Profile"}
    assert all("response.json" in files for files in folders.values())
    assert all(any(name.startswith("data-") for name in files) for files in folders.values())
    assert len(response.content) >= 16384
    again = api.get(f"{JOBS}/{job_ids['DavidSmith|access']}/content")
    assert hashlib.sha256(again.content).digest() == hashlib.sha256(response.content).digest()
    delete = api.get(f"{JOBS}/{job_ids['user12345|delete']}/content")
    assert delete.status_code == 400 and delete.json()["error_code"] == "PRVCY-1000-400"


def test_content_zip_of_products_without_data_has_no_filler(api, clean_emulator):
    clean_emulator.configure(product_outcome_weights={"6052": 1.0})
    job_id = submit_example(api, clean_emulator.org_id)["DavidSmith|access"]
    clean_emulator.advance_clock(FINISHED)
    response = api.get(f"{JOBS}/{job_id}/content")
    folders = read_zip(response.content, job_id)
    assert set(folders) == {"Analytics", "AudienceManager", "Profile"}
    assert all(files == ["response.json"] for files in folders.values())
    assert len(response.content) < 16384


def peak_rss_kib(pid: int) -> int | None:
    """The process's peak resident set (VmHWM) on Linux, else None."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


@pytest.mark.slow
def test_large_content_is_streamed_intact(api, clean_emulator):
    size = 50 * 1024 * 1024
    clean_emulator.configure(content_bytes=size, product_outcome_weights={"6000": 1.0})
    job_id = submit_example(api, clean_emulator.org_id)["DavidSmith|access"]
    clean_emulator.advance_clock(FINISHED)
    peak_before = peak_rss_kib(clean_emulator.pid)
    digest, received = hashlib.sha256(), io.BytesIO()
    with api.stream("GET", f"{JOBS}/{job_id}/content") as response:
        assert response.status_code == 200
        assert "content-length" not in response.headers  # streamed, not built first
        for chunk in response.iter_bytes():
            digest.update(chunk)
            received.write(chunk)
    content = received.getvalue()
    assert len(content) > size
    if peak_before is not None:  # memory stays flat: the ZIP is never held whole in the server
        assert peak_rss_kib(clean_emulator.pid) - peak_before < 20 * 1024
    folders = read_zip(content, job_id)
    assert len(folders["Analytics"]) >= 17  # response.json + ~16 data parts of 1 MiB
    archive = zipfile.ZipFile(io.BytesIO(content))
    assert sum(info.file_size for info in archive.infolist()) >= size


@pytest.mark.slow
def test_legacy_download_goes_to_the_blob_host_without_credentials(tmp_path):
    with EmulatorServer(tmp_path / "legacy.sqlite", settings={"legacy_download": True}) as server:
        headers = server.headers()
        with httpx.Client(base_url=server.base_url, headers=headers) as api:
            job_id = submit_example(api, server.org_id)["DavidSmith|access"]
            server.advance_clock(FINISHED)
            detail = api.get(f"{JOBS}/{job_id}").json()
        url = detail["downloadUrl"]
        assert url.startswith(f"{server.blob_base_url}/blob/") and url.endswith(f"/{job_id}.zip")
        blob = httpx.get(url)
        assert blob.status_code == 200
        assert set(read_zip(blob.content, job_id)) == {"Analytics", "AudienceManager", "Profile"}
        assert httpx.get(url.replace("/blob/", "/blob/x")).status_code == 404
        leaked = httpx.get(url, headers={"Authorization": headers["Authorization"]})
        assert leaked.status_code == 200
        recorded = server.blob_requests()
        assert len(recorded) == 3
        assert "authorization" not in recorded[0]["headers"]
        assert recorded[2]["headers"]["authorization"] == "***"
        assert headers["Authorization"] not in json.dumps(recorded)
