"""Defence in depth: before a job acts for a site, the site must hold its locations.

``sites add`` and ``sites update`` claim a site's locations, but a site.json can be edited by
hand.  A job verifies the configuration it is about to act on: never the store bucket, and no
location (or role and external id) that another site holds.  A configuration whose locations
nobody holds is claimed for its site here and keeps working.  Verified configurations are
remembered for a while (``IsolationMemo``), so an idle site pays nothing for this.
"""

from __future__ import annotations

from shared.fleet.isolationmemo import IsolationMemo
from shared.store.claims import ClaimStore, Locations
from shared.store.sites import SiteConfig


class IsolationGuard:
    def __init__(self, claims: ClaimStore, memo: IsolationMemo) -> None:
        self.claims = claims
        self.memo = memo

    def verify(self, site: SiteConfig) -> None:
        """``IsolationError`` when the fleet must not act for ``site`` as configured."""
        wanted = Locations.of(site)
        fingerprint = wanted.fingerprint()
        if self.memo.verified(site.site_id, fingerprint):
            return
        self.claims.hold(wanted)
        self.memo.remember(site.site_id, fingerprint)
