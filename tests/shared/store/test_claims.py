"""Location claims against moto's S3 server: who holds what, stale claims, and a race that only
one of two writers can win."""

from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from shared.clock import FrozenClock
from shared.errors import IsolationError
from shared.services import Services
from shared.store.claims import CLAIM_GRACE_S, ClaimStore, Locations, bucket_claims_key
from shared.store.s3 import S3
from shared.store.sites import SiteConfig

pytestmark = pytest.mark.timeout(60)

ROLE = "arn:aws:iam::123456789012:role/reader"


def config(site: str, bucket: str, base: str = "accounts.csv", **kw: Any) -> SiteConfig:
    return SiteConfig(site_id=site, import_bucket=bucket, base_filename=base, **kw)


def holders(claims: ClaimStore, cfg: SiteConfig) -> set[tuple[str, str]]:
    return {(c.site, str(c.location)) for c in claims.holders(Locations.of(cfg).all)}


def test_a_site_holds_its_locations_and_others_are_refused_in_one_line(
        services: Services, import_bucket: str, export_bucket: str) -> None:
    claims = services.claims
    acme = config("acme", import_bucket, "acc.csv", export_bucket=export_bucket)
    assert [str(c.location) for c in claims.hold(Locations.of(acme))] == [
        f"s3://{import_bucket}/acc*.csv or acc*.csv.gz", f"s3://{export_bucket}/"]
    assert claims.hold(Locations.of(acme)) == []  # held already: nothing written
    beta = config("beta", import_bucket, "accounts.csv")
    with pytest.raises(IsolationError) as caught:
        claims.hold(Locations.of(beta))
    assert str(caught.value) == (
        f"import location s3://{import_bucket}/accounts*.csv or accounts*.csv.gz overlaps "
        f"site acme's s3://{import_bucket}/acc*.csv or acc*.csv.gz")
    # (refused before anything of beta was claimed)
    assert holders(claims, beta) == holders(claims, acme) - {("acme", f"s3://{export_bucket}/")}


def test_a_refusal_in_a_second_document_leaves_nothing_of_the_first(
        services: Services, import_bucket: str, export_bucket: str) -> None:
    claims = services.claims
    claims.hold(Locations.of(config("acme", import_bucket, export_bucket=export_bucket)))
    other = f"{import_bucket}-x"
    beta = config("beta", other, export_bucket=export_bucket, export_prefix="km/")
    with pytest.raises(IsolationError, match=r"export location .* overlaps site acme's"):
        claims.hold(Locations.of(beta))
    assert [c.site for c in claims.holders(Locations.of(beta).all) if c.site == "beta"] == []


def test_released_locations_can_be_claimed_by_another_site(
        services: Services, import_bucket: str) -> None:
    claims = services.claims
    acme = Locations.of(config("acme", import_bucket))
    claims.hold(acme)
    claims.release("acme", acme.all)
    claims.hold(Locations.of(config("beta", import_bucket)))
    assert {c.site for c in claims.holders(acme.all)} == {"beta"}


def test_a_role_and_external_id_pair_belongs_to_one_site(
        services: Services, import_bucket: str) -> None:
    claims = services.claims
    claims.hold(Locations.of(config("acme", import_bucket, "a.csv", role_arn=ROLE,
                                    external_id="secret-1")))
    with pytest.raises(IsolationError, match=f"role {ROLE} with this external id belongs to "
                                             "site acme"):
        claims.hold(Locations.of(config("beta", import_bucket, "b.csv", role_arn=ROLE,
                                        external_id="secret-1")))
    # another external id for the same role is another pair
    claims.hold(Locations.of(config("beta", import_bucket, "b.csv", role_arn=ROLE,
                                    external_id="secret-2")))
    # and the external id itself is not stored
    stored = [services.store_s3.read_bytes(services.settings.store_bucket, i.key)
              for i in services.store_s3.list(services.settings.store_bucket, "claims/")]
    assert stored and not [body for body in stored if b"secret-" in body]


def test_a_claim_whose_site_never_named_it_lapses_after_the_grace_period(
        services: Services, import_bucket: str) -> None:
    # Given a claim by a site whose site.json was never written (its sites add died)
    claims = services.claims
    claims.hold(Locations.of(config("ghost", import_bucket)))
    beta = Locations.of(config("beta", import_bucket))
    # Then it holds the location during the grace period
    with pytest.raises(IsolationError, match="site ghost's"):
        claims.hold(beta)
    # And not after: another site takes the location over
    clock = services.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(CLAIM_GRACE_S + 1)
    claims.hold(beta)
    assert {c.site for c in claims.holders(beta.all)} == {"beta"}


def test_a_claim_named_by_its_sites_configuration_never_lapses(
        services: Services, import_bucket: str) -> None:
    acme = config("acme", import_bucket)
    services.sites.create(acme)
    services.claims.hold(Locations.of(acme))
    clock = services.clock
    assert isinstance(clock, FrozenClock)
    clock.advance(365 * 86400)
    with pytest.raises(IsolationError, match="site acme's"):
        services.claims.hold(Locations.of(config("beta", import_bucket, "acc.csv")))


class _MeetingS3(S3):
    """Holds every claims write until both writers have read the same version."""

    def __init__(self, s3: S3, barrier: threading.Barrier) -> None:
        super().__init__(s3.client)
        self.barrier = barrier

    def put(self, bucket: str, key: str, body: Any, **kwargs: Any) -> str:
        if key.startswith("claims/"):
            # (the loser's second attempt has nobody to meet)
            with contextlib.suppress(threading.BrokenBarrierError):
                self.barrier.wait(timeout=10)
        return super().put(bucket, key, body, **kwargs)


@pytest.mark.parametrize(("first", "second"), [
    ("acc.csv", "accounts.csv"), ("accounts.csv", "accounts.csv")])
def test_two_operators_claiming_overlapping_locations_at_once_one_wins(
        services: Services, s3: S3, import_bucket: str, first: str, second: str) -> None:
    # Given two operators whose checks both passed (nobody held anything yet)
    barrier = threading.Barrier(2)
    stores = [ClaimStore(_MeetingS3(s3, barrier), services.settings.store_bucket,
                         services.sites, services.clock) for _ in range(2)]
    wanted = [Locations.of(config("acme", import_bucket, first)),
              Locations.of(config("beta", import_bucket, second))]
    for store, locs in zip(stores, wanted, strict=True):
        store.check(locs)
    # When both claim at once (both read the same version, both write on it)

    def claim(i: int) -> str:
        try:
            stores[i].hold(wanted[i])
        except IsolationError as exc:
            return f"refused: {exc}"
        return "won"

    with ThreadPoolExecutor(2) as pool:
        outcomes = list(pool.map(claim, [0, 1]))
    # Then exactly one wins, and the document names only the winner
    assert sorted(o.split(":")[0] for o in outcomes) == ["refused", "won"], outcomes
    winner = "acme" if outcomes[0] == "won" else "beta"
    assert {c.site for c in services.claims.holders(wanted[0].all)} == {winner}
    assert s3.head(services.settings.store_bucket, bucket_claims_key(import_bucket))
