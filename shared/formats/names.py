"""The names users give bucketbridge: site ids, bucket names, role ARNs.  Pure checks that raise
``UserError`` with the rule, so a typo is one clear line."""

from __future__ import annotations

import re

from shared.errors import UserError

_SITE_ID = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$", re.ASCII)
# AWS: 2-1,224 characters of [\w+=,.@:/-] (ASCII word characters).
_EXTERNAL_ID = re.compile(r"^[A-Za-z0-9_+=,.@:/-]{2,1224}$")


def is_site_id(text: str) -> bool:
    return _SITE_ID.fullmatch(text) is not None


def validate_site_id(site: str) -> str:
    if not is_site_id(site):
        raise UserError(f"invalid site id {site!r}: use 1-40 lowercase letters, digits and "
                        "dashes, starting and ending with a letter or digit")
    return site


def validate_bucket(bucket: str, what: str) -> str:
    if not _BUCKET.fullmatch(bucket) or ".." in bucket:
        raise UserError(f"invalid {what} {bucket!r}: not an S3 bucket name")
    return bucket


def validate_role_arn(arn: str) -> str:
    if not _ROLE_ARN.fullmatch(arn):
        raise UserError(f"invalid role ARN {arn!r}")
    return arn


def validate_external_id(external_id: str) -> str:
    """The rule AWS applies to ``sts:ExternalId``; the value itself is never echoed."""
    if not _EXTERNAL_ID.fullmatch(external_id):
        raise UserError("invalid external id: use 2-1224 letters, digits and _+=,.@:/-")
    return external_id
