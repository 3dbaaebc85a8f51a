"""How the fleet reaches a customer's bucket: its own credentials, or a role assumed per site.

Assumed-role clients are cached per (role, external id) until a few minutes before their
credentials expire.  Credentials never leave ``shared.store``; messages carry only the site id.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.clock import Clock
from shared.store.s3 import S3, make_client
from shared.store.sites import SiteConfig
from shared.store.sts import RoleCredentials, assume_role

if TYPE_CHECKING:
    from mypy_boto3_sts import STSClient

logger = logging.getLogger(__name__)

REFRESH_BEFORE_EXPIRY_S = 300.0
SESSION_DURATION_S = 3600


@dataclass
class _Cached:
    s3: S3
    expires_at_s: float


def _role_s3(endpoint_url: str | None, creds: RoleCredentials) -> S3:
    return S3(make_client(endpoint_url, credentials=creds))


class SiteAccess:
    """``make_sts`` builds the STS client, on the first role assumed: a process whose sites all
    use the fleet's own credentials never builds one."""

    def __init__(self, fleet: S3, make_sts: Callable[[], STSClient], clock: Clock,
                 endpoint_url: str | None = None,
                 s3_factory: Callable[[str | None, RoleCredentials], S3] = _role_s3) -> None:
        self.fleet = fleet
        self._make_sts = make_sts
        self._sts: STSClient | None = None
        self.clock = clock
        self.endpoint_url = endpoint_url
        self.s3_factory = s3_factory
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
            if self._sts is None:
                self._sts = self._make_sts()
            creds = assume_role(self._sts, site.role_arn, site.external_id,
                                f"bucketbridge-{site.site_id}", SESSION_DURATION_S)
            logger.info("site=%s assumed role %s for %d s", site.site_id, site.role_arn,
                        int(creds.expires_at_s - self.clock.now_s()))
            cached = _Cached(s3=self.s3_factory(self.endpoint_url, creds),
                             expires_at_s=creds.expires_at_s)
            self._cache[key] = cached
            return cached.s3
