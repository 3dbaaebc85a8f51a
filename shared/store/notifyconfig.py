"""A bucket's event notification configuration, read and written through the S3 adapter's
client with its errors translated (``shared.store.s3.translate``)."""

from __future__ import annotations

from typing import Any

from shared.store.s3 import S3, translate


def read_notifications(s3: S3, bucket: str) -> dict[str, Any]:
    """The bucket's whole notification configuration (empty when it has none)."""
    try:
        r = s3.client.get_bucket_notification_configuration(Bucket=bucket)
    except Exception as exc:
        translate(exc, bucket)
    return dict(r)


def write_notifications(s3: S3, bucket: str, configuration: dict[str, Any]) -> None:
    """Replace the bucket's whole notification configuration (S3 has no partial update: read
    it first and merge)."""
    try:
        s3.client.put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=configuration)  # type: ignore[arg-type]
    except Exception as exc:
        translate(exc, bucket)
