"""Location claims: which site holds which place in customers' buckets, in the store bucket.

```
claims/buckets/<bucket>.json   the import and export locations sites hold in <bucket>
claims/roles/<digest>.json     the site holding a role ARN + external id pair (only a digest
                               of the pair is stored)
```

Every change of a claims document is a conditional write on the version read (``If-Match``, or
``If-None-Match: *`` for the first claim), so two operators claiming overlapping locations at
once cannot both win: the second re-reads, sees the first's claim and is refused.  One
document per bucket holds every import and export claim there, so overlaps of any kind are
decided on one version.

A claim is *live* while its site's configuration names that location, or while it is younger
than ``CLAIM_GRACE_S`` (a ``sites add`` or ``update`` between its claim and its write of
site.json).  A claim that is neither (its writer died, or the site was removed or moved without
releasing it) no longer holds anything and is dropped when it is in the way.  A configuration
nobody claimed for (written by hand, or before claims existed) is claimed when the fleet first
acts for it, if nobody else holds its locations.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from shared.clock import Clock
from shared.errors import (
    BucketbridgeError,
    IsolationError,
    PreconditionFailed,
    SiteConfigError,
    SiteNotFound,
)
from shared.formats.locations import ExportLocation, ImportLocation, refuse_store_bucket
from shared.store.s3 import S3
from shared.store.sites import SiteConfig, SiteRegistry

logger = logging.getLogger(__name__)

CLAIMS_PREFIX = "claims/"
# Longer than any sites add/update takes between its claim and its site.json write.
CLAIM_GRACE_S = 900.0
_ATTEMPTS = 8


def bucket_claims_key(bucket: str) -> str:
    return f"{CLAIMS_PREFIX}buckets/{bucket}.json"


def role_claims_key(location: RoleLocation) -> str:
    return f"{CLAIMS_PREFIX}roles/{location.digest}.json"


@dataclass(frozen=True)
class RoleLocation:
    """A role ARN and external id pair, known by a digest (the external id is not stored)."""

    role_arn: str
    digest: str

    @classmethod
    def of(cls, role_arn: str, external_id: str) -> RoleLocation:
        pair = f"{role_arn}\n{external_id}".encode()
        return cls(role_arn, hashlib.sha256(pair).hexdigest())

    def __str__(self) -> str:
        return f"role {self.role_arn} with this external id"


Location = ImportLocation | ExportLocation | RoleLocation


def conflict(mine: Location, other: Location, owner: str) -> str | None:
    """Why ``mine`` cannot be held beside ``other`` (site ``owner``'s), or ``None``."""
    theirs = f"site {owner}'s {other}"
    if isinstance(mine, ImportLocation):
        if isinstance(other, ImportLocation) and mine.overlaps(other):
            return f"import location {mine} overlaps {theirs}"
        if isinstance(other, ExportLocation) and mine.clashes_with(other):
            return f"import location {mine} matches the export files of {theirs}"
    if isinstance(mine, ExportLocation):
        if isinstance(other, ExportLocation) and mine.overlaps(other):
            return f"export location {mine} overlaps {theirs}"
        if isinstance(other, ImportLocation) and other.clashes_with(mine):
            return f"export location {mine} writes files matched by {theirs}"
    if isinstance(mine, RoleLocation) and mine == other:
        return f"{mine} belongs to site {owner}"
    return None


@dataclass(frozen=True)
class Locations:
    """Everything a site's configuration claims."""

    site: str
    imports: ImportLocation
    export: ExportLocation | None
    role: RoleLocation | None

    @classmethod
    def of(cls, config: SiteConfig) -> Locations:
        export = (ExportLocation(config.export_bucket, config.export_prefix)
                  if config.export_bucket is not None else None)
        role = (RoleLocation.of(config.role_arn, config.external_id)
                if config.role_arn is not None and config.external_id is not None else None)
        return cls(config.site_id, ImportLocation.of(config.import_bucket, config.pattern),
                   export, role)

    @property
    def all(self) -> list[Location]:
        found: list[Location] = [self.imports]
        if self.export is not None:
            found.append(self.export)
        if self.role is not None:
            found.append(self.role)
        return found

    def fingerprint(self) -> str:
        """Changes whenever any location does (the fleet's memo of a verified site)."""
        return hashlib.sha256(repr(self).encode()).hexdigest()[:32]

    def check_rules(self, store_bucket: str) -> None:
        """The rules that need no other site: never the store bucket, and a site's import
        never matches its own export's files."""
        refuse_store_bucket(self.imports.bucket, store_bucket, "import bucket")
        if self.export is not None:
            refuse_store_bucket(self.export.bucket, store_bucket, "export bucket")
            if self.imports.clashes_with(self.export):
                raise IsolationError(f"import location {self.imports} matches the files the "
                                     f"site's own export writes to {self.export}")


@dataclass(frozen=True)
class Claim:
    site: str
    location: Location
    claimed_at_s: float

    def to_json(self) -> dict[str, Any]:
        loc = self.location
        out: dict[str, Any] = {"site": self.site, "claimed_at_s": self.claimed_at_s}
        if isinstance(loc, ImportLocation):
            out.update(kind="import", folder=loc.folder, stem=loc.stem,
                       extensions=list(loc.extensions))
        elif isinstance(loc, ExportLocation):
            out.update(kind="export", prefix=loc.prefix)
        else:
            out.update(kind="role", role_arn=loc.role_arn, digest=loc.digest)
        return out

    @classmethod
    def from_json(cls, raw: dict[str, Any], bucket: str) -> Claim:
        kind = raw["kind"]
        location: Location
        if kind == "import":
            location = ImportLocation(bucket, str(raw["folder"]), str(raw["stem"]),
                                      tuple(str(e) for e in raw["extensions"]))
        elif kind == "export":
            location = ExportLocation(bucket, str(raw["prefix"]))
        else:
            location = RoleLocation(str(raw["role_arn"]), str(raw["digest"]))
        return cls(str(raw["site"]), location, float(raw["claimed_at_s"]))


class ClaimStore:
    """Claims in the store bucket; ``sites`` tells whether a claim is still its site's."""

    def __init__(self, s3: S3, bucket: str, sites: SiteRegistry, clock: Clock) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.sites = sites
        self.clock = clock

    # -- what callers do ----------------------------------------------------------------------

    def hold(self, wanted: Locations) -> list[Claim]:
        """Make sure ``wanted.site`` holds every location of ``wanted``; ``IsolationError``
        (one line, naming the other site) if a rule forbids one or another site holds an
        overlapping one, in which case nothing new stays claimed.  Returns the claims added
        (none when the site held them all already: no write)."""
        wanted.check_rules(self.bucket)
        added: list[Claim] = []
        try:
            for key, bucket, mine in self._documents(wanted.all):
                added += self._hold(key, bucket, wanted.site, mine)
        except BaseException:
            if added:
                self._undo(wanted.site, added)
            raise
        return added

    def _undo(self, site: str, added: list[Claim]) -> None:
        try:
            self.release(site, [c.location for c in added])
        except BucketbridgeError as exc:  # they lapse by themselves (CLAIM_GRACE_S)
            logger.warning("site=%s could not release claims it just made: %s", site, exc)

    def check(self, wanted: Locations) -> None:
        """What ``hold`` would refuse, refused without writing anything (``hold`` decides:
        another operator may claim in between)."""
        wanted.check_rules(self.bucket)
        for key, bucket, mine in self._documents(wanted.all):
            self._hold(key, bucket, wanted.site, mine, write=False)

    def release(self, site: str, locations: list[Location]) -> None:
        """Drop ``site``'s claims of ``locations`` (others' claims are left alone)."""
        for key, bucket, mine in self._documents(locations):
            gone = set(mine)

            def without(claims: list[Claim], gone: set[Location] = gone) -> list[Claim] | None:
                kept = [c for c in claims if not (c.site == site and c.location in gone)]
                return kept if len(kept) != len(claims) else None

            self._change(key, bucket, without)

    def holders(self, locations: list[Location]) -> Iterator[Claim]:
        """Every claim in the documents of ``locations`` (for tests and diagnostics)."""
        for key, bucket, _ in self._documents(locations):
            yield from self._read(key, bucket)[0]

    # -- documents ----------------------------------------------------------------------------

    def _documents(self, locations: list[Location]
                   ) -> Iterator[tuple[str, str, list[Location]]]:
        """(document key, bucket, the locations it holds) for ``locations``."""
        by_key: dict[str, tuple[str, list[Location]]] = {}
        for loc in locations:
            if isinstance(loc, RoleLocation):
                key, bucket = role_claims_key(loc), ""
            else:
                key, bucket = bucket_claims_key(loc.bucket), loc.bucket
            by_key.setdefault(key, (bucket, []))[1].append(loc)
        for key, (bucket, locs) in by_key.items():
            yield key, bucket, locs

    def _read(self, key: str, bucket: str) -> tuple[list[Claim], str | None]:
        """The claims of one document and the version they were read from (``None``: there
        is no document yet)."""
        for _ in range(_ATTEMPTS):
            info = self.s3.head(self.bucket, key)
            if info is None:
                return [], None
            try:
                with self.s3.open(self.bucket, key, if_match=info.etag) as stream:
                    raw = orjson.loads(stream.read())
                return [Claim.from_json(c, bucket) for c in raw["claims"]], info.etag
            except PreconditionFailed:
                continue  # replaced between the two requests: read the new version
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
                raise SiteConfigError(f"unreadable claims s3://{self.bucket}/{key}: "
                                      f"{exc}") from None
        raise PreconditionFailed(f"claims s3://{self.bucket}/{key} kept changing; try again")

    def _change(self, key: str, bucket: str,
                change: Callable[[list[Claim]], list[Claim] | None]) -> None:
        """Apply ``change`` (``None``: nothing to write) on the version read; again if
        another writer got there first."""
        for _ in range(_ATTEMPTS):
            claims, etag = self._read(key, bucket)
            new = change(claims)
            if new is None:
                return
            body = orjson.dumps({"claims": [c.to_json() for c in new]},
                                option=orjson.OPT_INDENT_2)
            try:
                self.s3.put(self.bucket, key, body, if_match=etag, if_none_match=etag is None,
                            content_type="application/json")
            except PreconditionFailed:
                continue
            return
        raise PreconditionFailed(f"claims s3://{self.bucket}/{key} kept changing; try again")

    def _hold(self, key: str, bucket: str, site: str, mine: list[Location], *,
              write: bool = True) -> list[Claim]:
        added: list[Claim] = []
        owners: dict[str, SiteConfig | None] = {}

        def change(claims: list[Claim]) -> list[Claim] | None:
            now_s = self.clock.now_s()
            stale: list[Claim] = []
            for other in claims:
                if other.site == site:
                    continue
                for loc in mine:
                    why = conflict(loc, other.location, other.site)
                    if why is None:
                        continue
                    if self._live(other, now_s, owners):
                        raise IsolationError(why)
                    stale.append(other)
                    break
            held = {c.location for c in claims if c.site == site}
            added[:] = [Claim(site, loc, now_s) for loc in mine if loc not in held]
            if not write or (not added and not stale):
                return None
            for claim in stale:
                logger.info("site=%s takes over a stale claim of site %s: %s", site, claim.site,
                            claim.location)
            return [c for c in claims if c not in stale] + added

        self._change(key, bucket, change)
        return list(added)

    def _live(self, claim: Claim, now_s: float, owners: dict[str, SiteConfig | None]) -> bool:
        """Whether ``claim`` still holds its location (see the module's docstring)."""
        if now_s - claim.claimed_at_s < CLAIM_GRACE_S:
            return True
        if claim.site not in owners:
            try:
                owners[claim.site] = self.sites.get(claim.site)
            except SiteNotFound:
                owners[claim.site] = None
            except SiteConfigError:
                return True  # cannot tell what it names: it keeps what it claimed
        owner = owners[claim.site]
        return owner is not None and claim.location in Locations.of(owner).all

    def bucket_claims(self, bucket: str) -> tuple[list[Claim], str | None]:
        """Every claim held in ``bucket`` and the version of its document (``None``: no
        document), for readers that keep a copy (the listener)."""
        return self._read(bucket_claims_key(bucket), bucket)
