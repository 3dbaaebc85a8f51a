"""The S3 adapter: the only module that talks to boto3 for object storage.

Every botocore error is translated here into bucketbridge's hierarchy (``shared.errors``),
classified by error code and HTTP status, so nothing above this module sees a ``ClientError``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any, BinaryIO, NoReturn

import botocore.exceptions
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from urllib3.exceptions import HTTPError as Urllib3HTTPError

from shared.errors import (
    AccessDenied,
    BucketMissing,
    ObjectMissing,
    PreconditionFailed,
    StorageUnavailable,
)
from shared.store import awssession

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

    from shared.formats.streams import ByteSource
    from shared.store.sts import RoleCredentials

logger = logging.getLogger(__name__)

SINGLE_COPY_LIMIT_BYTES = 5 * 1024**3
# An upload in low memory holds about two 5 MiB parts: one in flight and the next one read
# (boto3's default: ten 8 MiB parts in flight and ten read ahead, for a stream that reads faster
# than it uploads).
_PART_BYTES = 5 * 1024 * 1024  # S3's smallest part
_LOW_MEMORY_UPLOAD = TransferConfig(max_concurrency=1, multipart_threshold=_PART_BYTES,
                                  multipart_chunksize=_PART_BYTES)
_LOW_MEMORY_UPLOAD.max_in_memory_upload_chunks = 1  # s3transfer's setting, not in boto3's init

_MISSING_KEY_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
_DENIED_CODES = frozenset({"AccessDenied", "403", "Forbidden", "InvalidAccessKeyId",
                           "SignatureDoesNotMatch", "AllAccessDisabled", "AccountProblem"})
_PRECONDITION_CODES = frozenset({"PreconditionFailed", "412"})
_NOT_MODIFIED = frozenset({"304", "NotModified"})
_RETRYABLE_CODES = frozenset({"SlowDown", "InternalError", "ServiceUnavailable", "RequestTimeout",
                              "ConditionalRequestConflict", "Throttling", "RequestTimeTooSkewed"})

# Transport-level failures: the request may not have reached S3, or its answer did not reach us.
_TRANSPORT_ERRORS = (
    botocore.exceptions.EndpointConnectionError,
    botocore.exceptions.ConnectionClosedError,
    botocore.exceptions.ReadTimeoutError,
    botocore.exceptions.ConnectTimeoutError,
    botocore.exceptions.ResponseStreamingError,
    botocore.exceptions.IncompleteReadError,
    botocore.exceptions.HTTPClientError,
    Urllib3HTTPError,
    ConnectionError,
)


def translate(exc: Exception, bucket: str, key: str | None = None) -> NoReturn:
    """Raise the bucketbridge error that ``exc`` (from boto3) means; call inside ``except``."""
    where = f"s3://{bucket}/{key}" if key else f"s3://{bucket}"
    if isinstance(exc, botocore.exceptions.ClientError):
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if code == "NoSuchBucket":
            raise BucketMissing(f"bucket {bucket} does not exist") from None
        if code in _DENIED_CODES or status == 403:
            raise AccessDenied(f"access denied to {where} ({code or status})") from None
        if code in _PRECONDITION_CODES or status == 412:
            raise PreconditionFailed(f"precondition failed on {where}") from None
        if code in _MISSING_KEY_CODES or status == 404:
            if key is None:
                raise BucketMissing(f"bucket {bucket} does not exist") from None
            raise ObjectMissing(f"{where} does not exist") from None
        if code in _RETRYABLE_CODES or status >= 500 or status == 429:
            raise StorageUnavailable(f"S3 error on {where}: {code or status}") from None
        raise AccessDenied(f"S3 refused a request on {where}: {code} {error.get('Message', '')}"
                           .rstrip()) from None
    if isinstance(exc, _TRANSPORT_ERRORS):
        raise StorageUnavailable(f"S3 unreachable for {where}: {type(exc).__name__}") from None
    if isinstance(exc, botocore.exceptions.NoCredentialsError):
        raise AccessDenied(f"no AWS credentials found for {where}") from None
    raise exc


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size_bytes: int
    etag: str
    last_modified: datetime | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


class ObjectStream:
    """A read-only binary stream of an object's bytes; transport errors become retryable."""

    def __init__(self, body: Any, bucket: str, key: str) -> None:
        self._body = body
        self._bucket = bucket
        self._key = key

    def read(self, size_bytes: int = -1) -> bytes:
        try:
            data: bytes = self._body.read(size_bytes if size_bytes >= 0 else None)
        except Exception as exc:
            translate(exc, self._bucket, self._key)
        return data

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self._body.close()

    def __enter__(self) -> ObjectStream:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def make_client(
    endpoint_url: str | None = None,
    *,
    credentials: RoleCredentials | None = None,
    region_name: str | None = None,
    max_pool_connections: int = 32,
) -> S3Client:
    """Build a boto3 S3 client: the standard credential chain unless ``credentials`` is given.

    With no ``endpoint_url`` botocore honours ``AWS_ENDPOINT_URL_S3`` itself.
    """
    config = Config(
        retries={"mode": "standard", "max_attempts": 4},
        max_pool_connections=max_pool_connections,
        connect_timeout=5,
        read_timeout=60,
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    client: S3Client = awssession.client(
        "s3", endpoint_url=endpoint_url, config=config, region_name=region_name,
        aws_access_key_id=credentials.access_key_id if credentials else None,
        aws_secret_access_key=credentials.secret_access_key if credentials else None,
        aws_session_token=credentials.session_token if credentials else None)
    return client


class S3:
    """Object operations on any bucket, with errors translated.  Stateless beyond the client."""

    def __init__(self, client: S3Client) -> None:
        self.client = client

    def check_bucket(self, bucket: str) -> None:
        """Raise ``BucketMissing``/``AccessDenied`` unless we can list ``bucket``."""
        try:
            self.client.list_objects_v2(Bucket=bucket, MaxKeys=1)
        except Exception as exc:
            translate(exc, bucket)

    def server_time_s(self, bucket: str) -> float:
        """The endpoint's clock (its ``Date`` header, to the second), read with one request."""
        try:
            r = self.client.head_bucket(Bucket=bucket)
        except Exception as exc:
            translate(exc, bucket)
        date = r.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date", "")
        try:
            return parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            raise StorageUnavailable(f"s3://{bucket} answered without a usable Date header "
                                     f"({date!r})") from None

    def create_bucket(self, bucket: str) -> None:
        try:
            self.client.create_bucket(Bucket=bucket)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in {"BucketAlreadyOwnedByYou",
                                                             "BucketAlreadyExists"}:
                return
            translate(exc, bucket)
        except Exception as exc:
            translate(exc, bucket)

    def list(self, bucket: str, prefix: str = "", *, start_after: str = "",
             delimiter: str = "") -> Iterator[ObjectInfo]:
        """Objects under ``prefix`` in byte order of their keys, page by page (lazily)."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        if start_after:
            kwargs["StartAfter"] = start_after
        if delimiter:
            kwargs["Delimiter"] = delimiter
        try:
            for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
                for item in page.get("Contents", []):
                    yield ObjectInfo(key=item["Key"], size_bytes=int(item["Size"]),
                                     etag=item["ETag"], last_modified=item.get("LastModified"))
        except Exception as exc:
            translate(exc, bucket, prefix or None)

    def list_prefixes(self, bucket: str, prefix: str = "", delimiter: str = "/") -> Iterator[str]:
        try:
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=bucket, Prefix=prefix, Delimiter=delimiter)
            for page in pages:
                for item in page.get("CommonPrefixes", []):
                    yield item["Prefix"]
        except Exception as exc:
            translate(exc, bucket, prefix or None)

    def head(self, bucket: str, key: str) -> ObjectInfo | None:
        """The object's size, ETag and user metadata, or ``None`` if there is no such object."""
        try:
            r = self.client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:
            try:
                translate(exc, bucket, key)
            except ObjectMissing:
                return None
        return ObjectInfo(key=key, size_bytes=int(r["ContentLength"]), etag=r["ETag"],
                          last_modified=r.get("LastModified"), metadata=r.get("Metadata", {}))

    def open(self, bucket: str, key: str, *, if_match: str | None = None,
             start_byte: int = 0, end_byte: int | None = None) -> ObjectStream:
        """Stream an object's bytes from ``start_byte`` up to ``end_byte`` (inclusive).

        With ``if_match`` the read fails with ``PreconditionFailed`` if the object changed.
        """
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if if_match:
            kwargs["IfMatch"] = if_match
        if start_byte or end_byte is not None:
            kwargs["Range"] = f"bytes={start_byte}-{'' if end_byte is None else end_byte}"
        try:
            r = self.client.get_object(**kwargs)
        except botocore.exceptions.ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return ObjectStream(_EmptyBody(), bucket, key)
            translate(exc, bucket, key)
        except Exception as exc:
            translate(exc, bucket, key)
        return ObjectStream(r["Body"], bucket, key)

    def read_bytes(self, bucket: str, key: str) -> bytes:
        with self.open(bucket, key) as stream:
            return stream.read()

    def read_versioned(self, bucket: str, key: str, *,
                       if_none_match: str | None = None) -> tuple[bytes, str] | None:
        """The object's bytes and ETag in one request; ``None`` when ``if_none_match`` is
        still its ETag (not modified: nothing is transferred).  ``ObjectMissing`` when absent."""
        found = self.read_object(bucket, key, if_none_match=if_none_match)
        return None if found is None else (found[0], found[1].etag)

    def read_object(self, bucket: str, key: str, *, if_none_match: str | None = None,
                    ) -> tuple[bytes, ObjectInfo] | None:
        """The object's bytes with its size, ETag and user metadata, in one request (no HEAD
        first); ``None`` when ``if_none_match`` is still its ETag.  ``ObjectMissing`` when
        absent."""
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key}
        if if_none_match:
            kwargs["IfNoneMatch"] = if_none_match
        try:
            r = self.client.get_object(**kwargs)
            with ObjectStream(r["Body"], bucket, key) as stream:
                data = stream.read()
        except botocore.exceptions.ClientError as exc:
            if if_none_match and exc.response.get("Error", {}).get("Code") in _NOT_MODIFIED:
                return None
            translate(exc, bucket, key)
        except Exception as exc:
            translate(exc, bucket, key)
        return data, ObjectInfo(key=key, size_bytes=len(data), etag=str(r["ETag"]),
                                last_modified=r.get("LastModified"),
                                metadata=r.get("Metadata", {}))

    def put(self, bucket: str, key: str, body: bytes | bytearray | BinaryIO, *,
            metadata: Mapping[str, str] | None = None, if_none_match: bool = False,
            if_match: str | None = None, content_type: str = "application/octet-stream") -> str:
        """Write an object and return its ETag.

        ``if_none_match`` creates only (``PreconditionFailed`` if the key exists); ``if_match``
        replaces only the version with that ETag.
        """
        kwargs: dict[str, Any] = {"Bucket": bucket, "Key": key, "Body": body,
                                  "ContentType": content_type}
        if metadata:
            kwargs["Metadata"] = dict(metadata)
        if if_none_match:
            kwargs["IfNoneMatch"] = "*"
        if if_match:
            kwargs["IfMatch"] = if_match
        try:
            r = self.client.put_object(**kwargs)
        except Exception as exc:
            translate(exc, bucket, key)
        return r["ETag"]

    def copy(self, src_bucket: str, src_key: str, dst_bucket: str, dst_key: str, *,
             if_match: str | None = None, size_bytes: int | None = None,
             metadata: Mapping[str, str] | None = None) -> None:
        """Server-side copy, in one request when the size is known to be under 5 GB; otherwise
        boto3's managed copy, which switches to multipart copy for large objects.  With
        ``metadata`` the copy carries that user metadata instead of the source's."""
        extra: dict[str, Any] = {}
        if if_match:
            extra["CopySourceIfMatch"] = if_match
        if metadata is not None:
            extra["Metadata"] = dict(metadata)
            extra["MetadataDirective"] = "REPLACE"
        source: Any = {"Bucket": src_bucket, "Key": src_key}
        try:
            if size_bytes is not None and size_bytes < SINGLE_COPY_LIMIT_BYTES:
                self.client.copy_object(CopySource=source, Bucket=dst_bucket, Key=dst_key,
                                        **extra)
            else:
                self.client.copy(source, dst_bucket, dst_key,
                                 ExtraArgs=extra or None)
        except botocore.exceptions.ClientError as exc:
            # A missing key is the source's; anything else is most likely the destination's
            # (the source is bucketbridge's own store, or the same bucket).
            if exc.response.get("Error", {}).get("Code") in _MISSING_KEY_CODES:
                translate(exc, src_bucket, src_key)
            translate(exc, dst_bucket, dst_key)
        except Exception as exc:
            translate(exc, dst_bucket, dst_key)

    def upload(self, bucket: str, key: str, source: ByteSource,
               content_type: str = "application/octet-stream", *,
               metadata: Mapping[str, str] | None = None, low_memory: bool = False) -> None:
        """Stream ``source`` into an object in bounded memory (multipart above 8 MiB); with
        ``low_memory``, one 5 MiB part at a time (slower, for a process that must stay small)."""
        extra: dict[str, Any] = {"ContentType": content_type}
        if metadata:
            extra["Metadata"] = dict(metadata)
        try:
            self.client.upload_fileobj(source, bucket, key,  # type: ignore[arg-type]
                                       ExtraArgs=extra,
                                       Config=_LOW_MEMORY_UPLOAD if low_memory else None)
        except Exception as exc:
            translate(exc, bucket, key)

    def delete(self, bucket: str, key: str) -> None:
        try:
            self.client.delete_object(Bucket=bucket, Key=key)
        except Exception as exc:
            translate(exc, bucket, key)


class _EmptyBody:
    def read(self, _size: int | None = None) -> bytes:
        return b""

    def close(self) -> None:
        return None
