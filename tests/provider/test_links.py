"""Extra links: the URLs a person can open, and the buttons of a real run (`dag.test()`, moto over HTTP)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from adobe_privacy.links import (
    DEFAULT_PRIVACY_UI_URL,
    EXTRA_LINK_CLASSES,
    LinkTarget,
    browsable_url,
    format_link_lines,
    privacy_ui_url,
    publish_links,
)

LINK_DAGS = Path(__file__).parent / "link_dags"


@pytest.mark.parametrize(
    ("uri", "kwargs", "expected"),
    [
        (
            "s3://privacy-archive/privacy/runs/2026-11-22/manual__x/report.json",
            {"region": "eu-west-1"},
            "https://s3.console.aws.amazon.com/s3/object/privacy-archive?region=eu-west-1"
            "&prefix=privacy%2Fruns%2F2026-11-22%2Fmanual__x%2Freport.json",
        ),
        (
            "s3://privacy-archive/privacy/runs/2026-11-22/manual__x/",
            {},
            "https://s3.console.aws.amazon.com/s3/buckets/privacy-archive"
            "?prefix=privacy%2Fruns%2F2026-11-22%2Fmanual__x%2F&showversions=false",
        ),
        ("s3://b/k", {"region": "cn-north-1"}, "https://s3.console.amazonaws.cn/s3/object/b?region=cn-north-1&prefix=k"),
        (
            "s3://b/k",
            {"region": "us-gov-west-1"},
            "https://s3.console.amazonaws-us-gov.com/s3/object/b?region=us-gov-west-1&prefix=k",
        ),
        # the demo's and the tests' moto on loopback: a URL a local browser opens
        ("s3://b/runs/a b/report.json", {"endpoint_url": "http://127.0.0.1:5000/"},
         "http://127.0.0.1:5000/b/runs/a%20b/report.json"),
        ("s3://b/runs/x/", {"endpoint_url": "http://localhost:9000"},
         "http://localhost:9000/b?list-type=2&prefix=runs%2Fx%2F"),
        ("s3://b/runs/x/", {"endpoint_url": "http://[::1]:9000"}, "http://[::1]:9000/b?list-type=2&prefix=runs%2Fx%2F"),
        # any other custom endpoint: the plain URI (no console URL scheme to rely on)
        ("s3://b/runs/x/report.json", {"endpoint_url": "http://minio:9000"}, "s3://b/runs/x/report.json"),
        ("s3://b/k", {"endpoint_url": "https://s3.example.org", "region": "eu-west-1"}, "s3://b/k"),
    ],
)
def test_browsable_url(uri, kwargs, expected):
    assert browsable_url(uri, **kwargs) == expected


@pytest.mark.parametrize("uri", ["https://b/k", "s3://", "s3:///key", "/tmp/x"])
def test_browsable_url_refuses_what_is_not_an_s3_uri(uri):
    with pytest.raises(ValueError):
        browsable_url(uri)


def test_a_key_cannot_smuggle_a_query_or_another_host():
    url = browsable_url("s3://b/x?prefix=../&@evil.example/#y", region="eu-west-1")
    assert url.startswith("https://s3.console.aws.amazon.com/s3/object/b?region=eu-west-1&prefix=")
    assert "?" not in url.split("prefix=", 1)[1] and "#" not in url and "@" not in url


def test_privacy_ui_url_is_https_only():
    assert privacy_ui_url() == DEFAULT_PRIVACY_UI_URL
    assert privacy_ui_url(" https://experience.adobe.com/#/@acme/privacy/ui ") == (
        "https://experience.adobe.com/#/@acme/privacy/ui"
    )
    with pytest.raises(ValueError):
        privacy_ui_url("javascript:alert(1)")


def test_log_lines_show_the_uri_and_the_url_to_open():
    targets = [
        LinkTarget("Run report", "report_url", "s3://b/r.json", "http://127.0.0.1:1/b/r.json"),
        LinkTarget("Run folder", "run_folder_url", "s3://b/run/", "s3://b/run/"),
    ]
    assert format_link_lines(targets) == [
        "Run report: s3://b/r.json  (open: http://127.0.0.1:1/b/r.json)",
        "Run folder: s3://b/run/",
    ]


def test_publish_links_pushes_each_url_under_its_key_and_logs_them(caplog):
    pushed = {}

    class TI:
        def xcom_push(self, key, value):
            pushed[key] = value

    targets = [LinkTarget("Run report", "report_url", "s3://b/r.json", "https://console/r")]
    with caplog.at_level(logging.INFO):
        publish_links({"ti": TI()}, targets, logging.getLogger("links-test"))
    assert pushed == {"report_url": "https://console/r"}
    assert "Run report: s3://b/r.json  (open: https://console/r)" in caplog.text


def test_every_link_class_is_importable_by_its_path():
    import importlib

    for path in EXTRA_LINK_CLASSES:
        module, _, name = path.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        assert cls().name and cls.key


@pytest.mark.slow
def test_a_real_run_stores_each_link_also_for_a_task_that_failed(
    airflow_db, s3_server, airflow_connections, monkeypatch, capfd
):
    import boto3
    from airflow import settings
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    bucket = "links-probe"
    boto3.client(
        "s3", endpoint_url=s3_server.endpoint_url, region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    ).create_bucket(Bucket=bucket)
    monkeypatch.setenv("AIRFLOW_VAR_LINKS_ARCHIVE_URI", f"s3://{bucket}/privacy")
    monkeypatch.setattr(settings, "DAGS_FOLDER", str(LINK_DAGS))
    from tests.provider.link_dags.privacy_links_probe import dag

    run = dag.test()
    task_logs = capfd.readouterr().out
    assert run.state == "failed"  # fails_after_publishing did as told
    # The links head each task's log; every declared link had its URL pushed (no "XCom not found").
    assert task_logs.count("Run report: s3://links-probe/privacy/runs/2026-11-22/manual/report.json  (open: http") == 2
    assert "XCom not found" not in task_logs

    endpoint = s3_server.endpoint_url.rstrip("/")
    run_root = f"{endpoint}/{bucket}/privacy/runs/2026-11-22/manual"
    expected = {
        "_link_RunFolderLink": f"{endpoint}/{bucket}?list-type=2&prefix=privacy%2Fruns%2F2026-11-22%2Fmanual%2F",
        "_link_RunReportLink": f"{run_root}/report.json",
        "_link_RejectedRowsLink": f"{run_root}/rejects.csv",
        "_link_PrivacyServiceJobsLink": DEFAULT_PRIVACY_UI_URL,
    }
    for task_id in ("publishes", "fails_after_publishing"):
        with create_session() as session:
            stored = {
                xcom.key: XComModel.deserialize_value(xcom)
                for xcom in session.scalars(XComModel.get_many(run_id=run.run_id, dag_ids=dag.dag_id, task_ids=task_id))
            }
        links = {key: value for key, value in stored.items() if key.startswith("_link_")}
        assert links == expected, task_id
        assert stored["report_url"] == f"{run_root}/report.json"
