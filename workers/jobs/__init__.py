"""The actors' work: one bounded, leased run of a site's import (``scan``) or export."""
