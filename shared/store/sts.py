"""The STS adapter: assuming a customer's role, with botocore's errors translated here.

Beside ``shared.store.s3`` the only module that talks to boto3; credentials it returns never
leave ``shared.store``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import botocore.exceptions

from shared.errors import AccessDenied, StorageUnavailable
from shared.store import awssession

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

_RETRYABLE_CODES = frozenset({"Throttling", "ServiceUnavailable", "InternalFailure"})


@dataclass(frozen=True)
class RoleCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_at_s: float

    def __repr__(self) -> str:  # never print a secret, not even in a traceback
        return f"RoleCredentials(access_key_id={self.access_key_id!r}, expires_at_s=" \
               f"{self.expires_at_s})"


def make_sts_client() -> STSClient:
    """botocore honours ``AWS_ENDPOINT_URL_STS`` itself, as it does ``AWS_ENDPOINT_URL_S3``."""
    client: STSClient = awssession.client("sts",
                                          region_name=awssession.region_name() or "us-east-1")
    return client


def assume_role(sts: STSClient, role_arn: str, external_id: str, session_name: str,
                duration_s: int) -> RoleCredentials:
    """Temporary credentials for ``role_arn``; ``AccessDenied`` when the role may not be
    assumed with this external id, ``StorageUnavailable`` when STS is unreachable or busy."""
    try:
        r = sts.assume_role(RoleArn=role_arn, ExternalId=external_id,
                            RoleSessionName=session_name, DurationSeconds=duration_s)
    except botocore.exceptions.ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
        if status >= 500 or status == 429 or code in _RETRYABLE_CODES:
            raise StorageUnavailable(f"STS unavailable for role {role_arn}: {code or status}") \
                from None
        raise AccessDenied(f"cannot assume role {role_arn}: {code or status}") from None
    except (botocore.exceptions.EndpointConnectionError,
            botocore.exceptions.ConnectionClosedError,
            botocore.exceptions.ReadTimeoutError,
            botocore.exceptions.ConnectTimeoutError) as exc:
        raise StorageUnavailable(f"STS unreachable: {type(exc).__name__}") from None
    except botocore.exceptions.NoCredentialsError:
        raise AccessDenied("no AWS credentials found to assume a role with") from None
    creds = r["Credentials"]
    return RoleCredentials(access_key_id=creds["AccessKeyId"],
                           secret_access_key=creds["SecretAccessKey"],
                           session_token=creds["SessionToken"],
                           expires_at_s=creds["Expiration"].timestamp())
