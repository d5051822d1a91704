"""S3 I/O for the pipeline: input objects in, evidence out, server-side encryption on every write.

The archive is what the organisation answers regulators with, so every object written here is
encrypted at rest (AES256 by default, or SSE-KMS with a given key) and written under a deterministic
key: a retry overwrites the same object instead of adding a second one.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from functools import cached_property
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    # Imported where used: boto3 costs ~0.3 s, and DAG files importing our operators must parse fast.
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

SSE_MODES = ("AES256", "aws:kms")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> (`bucket`, `some/prefix`), without leading or trailing slashes."""
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, prefix = uri[len("s3://") :].partition("/")
    if not bucket:
        raise ValueError(f"no bucket in {uri!r}")
    return bucket, prefix.strip("/")


class PrivacyArchiveStore:
    """Reads and writes the pipeline's objects under one `s3://bucket/prefix` root."""

    def __init__(
        self,
        archive_uri: str,
        *,
        aws_conn_id: str | None = "aws_default",
        sse: str = "AES256",
        kms_key_id: str | None = None,
    ) -> None:
        if sse not in SSE_MODES:
            raise ValueError(f"sse must be one of {SSE_MODES}, not {sse!r}")
        if sse == "aws:kms" and not kms_key_id:
            raise ValueError("sse 'aws:kms' needs kms_key_id")
        self.archive_uri = archive_uri.rstrip("/")
        self.bucket, self.prefix = split_s3_uri(self.archive_uri)
        self.aws_conn_id = aws_conn_id
        self.sse = sse
        self.kms_key_id = kms_key_id

    @cached_property
    def encryption_args(self) -> dict[str, str]:
        args = {"ServerSideEncryption": self.sse}
        if self.kms_key_id:
            args["SSEKMSKeyId"] = self.kms_key_id
        return args

    @cached_property
    def hook(self) -> S3Hook:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id, extra_args=self.encryption_args)

    @cached_property
    def client(self):
        return self.hook.get_conn()

    def key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    # -- writes (always encrypted) -------------------------------------------------------------------
    def put_bytes(self, key: str, data: bytes, *, content_type: str = "application/octet-stream") -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=data, ContentType=content_type, **self.encryption_args
        )

    def put_json(self, key: str, document: Any) -> None:
        self.put_bytes(key, _json_bytes(document), content_type="application/json")

    def put_json_if(self, key: str, document: Any, *, etag: str | None) -> bool:
        """Write only if the object is still the version read (`etag`), or still absent (`etag` None).

        S3 conditional writes (`If-Match` / `If-None-Match: *`): False when another writer got there
        first (412 Precondition Failed, or 409 for a racing conditional write), so the caller reads again.
        """
        from botocore.exceptions import ClientError

        condition = {"IfMatch": etag} if etag else {"IfNoneMatch": "*"}
        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=_json_bytes(document),
                                   ContentType="application/json", **self.encryption_args, **condition)
        except ClientError as err:
            if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (409, 412):
                return False
            raise
        return True

    def put_file(self, path: str | Path, key: str, *, content_type: str = "application/octet-stream") -> None:
        """Managed (multipart above the transfer threshold) upload from disk: memory stays bounded."""
        self.client.upload_file(
            str(path),
            self.bucket,
            key,
            ExtraArgs={"ContentType": content_type, **self.encryption_args},
            Config=self.hook.transfer_config,
        )

    def put_fileobj(self, fileobj: IO[bytes], key: str, *, content_type: str = "application/octet-stream") -> None:
        self.client.upload_fileobj(
            fileobj,
            self.bucket,
            key,
            ExtraArgs={"ContentType": content_type, **self.encryption_args},
            Config=self.hook.transfer_config,
        )

    def delete(self, key: str) -> None:
        """Delete one object; deleting a missing key is not an error (S3 semantics)."""
        self.client.delete_object(Bucket=self.bucket, Key=key)

    # -- reads ---------------------------------------------------------------------------------------
    def get_bytes(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def get_json(self, key: str) -> Any | None:
        body = self.get_bytes(key)
        return None if body is None else json.loads(body)

    def get_json_versioned(self, key: str) -> tuple[Any | None, str | None]:
        """`(document, etag)`, or `(None, None)` when the object does not exist: the read of a conditional write."""
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=key)
        except self.client.exceptions.NoSuchKey:
            return None, None
        return json.loads(response["Body"].read()), response["ETag"]

    def head(self, key: str) -> dict | None:
        return self.hook.head_object(key=key, bucket_name=self.bucket)

    def list_keys(self, prefix: str) -> list[str]:
        return self.hook.list_keys(bucket_name=self.bucket, prefix=prefix.rstrip("/") + "/")


def iter_input_objects(uri: str, *, aws_conn_id: str | None = "aws_default") -> Iterator[tuple[str, Any]]:
    """Yield `(name, opener)` for every input object under a local path or an s3:// prefix.

    Local: a file, or every file under a directory (sorted). S3: every object under the prefix (sorted;
    "directory" placeholder keys skipped). `opener()` returns a binary stream that is read once, so an
    object's bytes are streamed, never held whole by this function.
    """
    if uri.startswith("s3://"):
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        bucket, prefix = split_s3_uri(uri)
        hook = S3Hook(aws_conn_id=aws_conn_id)
        client = hook.get_conn()
        keys = hook.list_keys(bucket_name=bucket, prefix=prefix) or []
        for key in sorted(k for k in keys if not k.endswith("/")):
            yield f"s3://{bucket}/{key}", _s3_opener(client, bucket, key)
        return
    path = Path(uri.removeprefix("file://"))
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and not p.name.startswith("."))
    elif path.exists():
        files = [path]
    else:
        raise FileNotFoundError(f"input not found: {uri}")
    for file in files:
        yield str(file), _file_opener(file)


def _json_bytes(document: Any) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()


def _s3_opener(client, bucket: str, key: str):
    return lambda: client.get_object(Bucket=bucket, Key=key)["Body"]


def _file_opener(path: Path):
    return lambda: open(path, "rb")  # noqa: SIM115 - the caller closes it


def pooled(store: PrivacyArchiveStore, connections: int) -> PrivacyArchiveStore:
    """`store` with an S3 client whose connection pool fits `connections` calls at once.

    botocore keeps 10 connections per client: more threads than that would open and throw away a
    connection per call. The same store (same root, encryption) otherwise; a store without an S3 hook
    (tests' in-memory one) or a pool already large enough is returned as it is.
    """
    hook = getattr(store, "hook", None)
    config = getattr(hook, "config", None)
    if hook is None or config is None or connections <= (config.max_pool_connections or 10):
        return store
    import copy

    from botocore.config import Config

    larger = copy.copy(store)
    larger.client = hook.get_client_type(config=config.merge(Config(max_pool_connections=connections)))
    return larger
