"""Fixtures of the console tests: a moto S3 bucket holding a fixture archive, and its request index."""

from __future__ import annotations

import uuid

import pytest

from tests.console.archive_fixture import write_archive


@pytest.fixture
def s3_env(s3_server, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AIRFLOW_CONN_AWS_DEFAULT", (
        '{"conn_type": "aws", "login": "testing", "password": "testing", '
        f'"extra": {{"endpoint_url": "{s3_server.endpoint_url}", "region_name": "us-east-1"}}}}'))
    return s3_server


@pytest.fixture
def s3_client(s3_env):
    import boto3

    return boto3.client("s3", endpoint_url=s3_env.endpoint_url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def archive(s3_client, tmp_path):
    """A fresh bucket with the fixture archive; yields (store, ids)."""
    from adobe_privacy.storage import PrivacyArchiveStore

    bucket = f"archive-{uuid.uuid4().hex[:10]}"
    s3_client.create_bucket(Bucket=bucket)
    ids = write_archive(s3_client, bucket)
    return PrivacyArchiveStore(f"s3://{bucket}/privacy"), ids
