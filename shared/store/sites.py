"""The site registry: each site's configuration as ``sites/<site>/site.json`` in the store bucket.

Writes are conditional (create only if absent; update only the version read), so two operators
or two replicas can never silently overwrite each other's change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

import orjson

from shared.errors import (
    BucketbridgeError,
    ObjectMissing,
    PreconditionFailed,
    SiteConfigError,
    SiteExists,
    SiteNotFound,
    UserError,
)
from shared.formats.importkeys import FilePattern
from shared.formats.locations import validate_export_prefix
from shared.formats.names import (
    is_site_id,
    validate_bucket,
    validate_external_id,
    validate_role_arn,
    validate_site_id,
)
from shared.store.s3 import S3

logger = logging.getLogger(__name__)

_UPDATE_ATTEMPTS = 5


def site_config_key(site: str) -> str:
    return f"sites/{site}/site.json"


@dataclass(frozen=True)
class SiteConfig:
    site_id: str
    import_bucket: str
    base_filename: str
    export_bucket: str | None = None
    export_prefix: str = ""
    role_arn: str | None = None
    external_id: str | None = None
    paused: bool = False

    def __post_init__(self) -> None:
        validate_site_id(self.site_id)
        validate_bucket(self.import_bucket, "import bucket")
        FilePattern.from_base_filename(self.base_filename)
        if self.export_bucket is not None:
            validate_bucket(self.export_bucket, "export bucket")
        object.__setattr__(self, "export_prefix", validate_export_prefix(self.export_prefix))
        if (self.role_arn is None) != (self.external_id is None):
            raise UserError("--role-arn and --external-id go together")
        if self.role_arn is not None and self.external_id is not None:
            validate_role_arn(self.role_arn)
            validate_external_id(self.external_id)

    @property
    def pattern(self) -> FilePattern:
        return FilePattern.from_base_filename(self.base_filename)

    @property
    def exports(self) -> bool:
        return self.export_bucket is not None

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes) -> SiteConfig:
        try:
            raw: Any = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise SiteConfigError(f"unreadable site configuration: {exc}") from None
        return cls.from_dict(raw)

    @classmethod
    def from_dict(cls, raw: Any) -> SiteConfig:
        """A configuration from its JSON object (unknown fields are ignored)."""
        try:
            known = {k: v for k, v in raw.items() if k in cls.__dataclass_fields__}
            return cls(**known)
        except (AttributeError, TypeError, UserError) as exc:
            raise SiteConfigError(f"unreadable site configuration: {exc}") from None


class SiteRegistry:
    """``on_change(site)`` is called after each change of a site's configuration (the site
    index follows it; ``shared.store.siteindex``)."""

    def __init__(self, s3: S3, bucket: str,
                 on_change: Callable[[str], None] = lambda _site: None) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.on_change = on_change
        # Sites whose change the index could not follow, with why (the CLI says so, exit 1).
        self.index_behind: dict[str, str] = {}

    def _changed(self, site: str) -> None:
        try:
            self.on_change(site)
        except BucketbridgeError as exc:
            # site.json changed already: the index catches up at the site's next change, or
            # when it is rebuilt (``bucketbridge sites reindex``).
            logger.warning("site=%s the site index could not follow a change: %s", site, exc)
            self.index_behind[site] = str(exc)

    def create(self, config: SiteConfig) -> None:
        try:
            self.s3.put(self.bucket, site_config_key(config.site_id), config.to_json(),
                        if_none_match=True, content_type="application/json")
        except PreconditionFailed:
            raise SiteExists(f"site {config.site_id} exists already") from None
        self._changed(config.site_id)

    def exists(self, site: str) -> bool:
        return self.s3.head(self.bucket, site_config_key(validate_site_id(site))) is not None

    def get_versioned(self, site: str) -> tuple[SiteConfig, str]:
        """The configuration and its ETag, in one request.  ``SiteConfigError`` (naming the
        site) when ``site.json`` cannot be read or accepted."""
        validate_site_id(site)
        try:
            found = self.s3.read_versioned(self.bucket, site_config_key(site))
        except ObjectMissing:
            raise SiteNotFound(f"no site {site!r}") from None
        assert found is not None  # read without a condition
        data, etag = found
        try:
            config = SiteConfig.from_json(data)
        except SiteConfigError as exc:
            raise SiteConfigError(f"site {site}: {exc}") from None
        if config.site_id != site:
            raise SiteConfigError(f"site {site}: unreadable site configuration: it names site "
                                  f"{config.site_id!r}")
        return config, etag

    def get(self, site: str) -> SiteConfig:
        return self.get_versioned(site)[0]

    def update(self, site: str, change: Callable[[SiteConfig], SiteConfig]) -> SiteConfig:
        """Apply ``change`` to the current configuration, retrying if another writer won."""
        for _ in range(_UPDATE_ATTEMPTS):
            current, etag = self.get_versioned(site)
            updated = change(current)
            try:
                self.s3.put(self.bucket, site_config_key(site), updated.to_json(),
                            if_match=etag, content_type="application/json")
            except PreconditionFailed:
                continue
            self._changed(site)
            return updated
        raise PreconditionFailed(f"site {site} kept changing under us; try again")

    def delete(self, site: str) -> None:
        """Remove the site's configuration: the scheduler and the jobs no longer see it.
        Its data (revisions, ledger, statuses) stays under ``sites/<site>/``."""
        self.get(site)  # SiteNotFound when there is none
        self.s3.delete(self.bucket, site_config_key(site))
        self._changed(site)

    def set_paused(self, site: str, paused: bool) -> SiteConfig:
        return self.update(site, lambda c: replace(c, paused=paused))

    def site_ids(self) -> Iterator[str]:
        for prefix in self.s3.list_prefixes(self.bucket, "sites/"):
            site = prefix[len("sites/"):].rstrip("/")
            if is_site_id(site):
                yield site

    def all(self) -> Iterator[SiteConfig]:
        """Every readable configuration (two requests per site: the site index is the cheap
        way to the whole fleet); one that cannot be read is logged and passed over."""
        for site in self.site_ids():
            try:
                yield self.get(site)
            except SiteNotFound:
                continue
            except SiteConfigError as exc:
                logger.error("site=%s skipped: %s", site, exc)
