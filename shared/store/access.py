"""How the fleet reaches a customer's bucket: its own credentials, or a role assumed per site.

Assumed-role clients are cached per (role, external id) until a few minutes before their
credentials expire.  Credentials never leave this module; messages carry only the site id.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import botocore.exceptions

from shared.clock import Clock
from shared.errors import AccessDenied, StorageUnavailable
from shared.store.s3 import S3, make_client
from shared.store.sites import SiteConfig

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

logger = logging.getLogger(__name__)

REFRESH_BEFORE_EXPIRY_S = 300.0
SESSION_DURATION_S = 3600


@dataclass
class _Cached:
    s3: S3
    expires_at_s: float


class SiteAccess:
    def __init__(self, fleet: S3, sts: STSClient, clock: Clock, endpoint_url: str | None = None,
                 client_factory: Callable[..., Any] = make_client) -> None:
        self.fleet = fleet
        self.sts = sts
        self.clock = clock
        self.endpoint_url = endpoint_url
        self.client_factory = client_factory
        self._cache: dict[tuple[str, str], _Cached] = {}
        self._lock = threading.Lock()

    def for_site(self, site: SiteConfig) -> S3:
        """The S3 access to use for ``site``'s own buckets."""
        if site.role_arn is None or site.external_id is None:
            return self.fleet
        key = (site.role_arn, site.external_id)
        with self._lock:
            cached = self._cache.get(key)
            if cached and cached.expires_at_s - self.clock.now_s() > REFRESH_BEFORE_EXPIRY_S:
                return cached.s3
            cached = self._assume(site)
            self._cache[key] = cached
            return cached.s3

    def _assume(self, site: SiteConfig) -> _Cached:
        assert site.role_arn is not None and site.external_id is not None
        try:
            r = self.sts.assume_role(RoleArn=site.role_arn, ExternalId=site.external_id,
                                     RoleSessionName=f"bucketbridge-{site.site_id}",
                                     DurationSeconds=SESSION_DURATION_S)
        except botocore.exceptions.ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
            if status >= 500 or code in {"Throttling", "ServiceUnavailable"}:
                raise StorageUnavailable(f"STS unavailable for site {site.site_id}: {code}") \
                    from None
            raise AccessDenied(f"cannot assume role {site.role_arn} for site {site.site_id}: "
                               f"{code}") from None
        except (botocore.exceptions.EndpointConnectionError,
                botocore.exceptions.ConnectionClosedError) as exc:
            raise StorageUnavailable(f"STS unreachable: {exc}") from None
        creds = r["Credentials"]
        logger.info("site=%s assumed role %s until %s", site.site_id, site.role_arn,
                    creds["Expiration"])
        client = self.client_factory(self.endpoint_url, credentials={
            "AccessKeyId": creds["AccessKeyId"], "SecretAccessKey": creds["SecretAccessKey"],
            "SessionToken": creds["SessionToken"]})
        return _Cached(s3=S3(client), expires_at_s=creds["Expiration"].timestamp())
