"""One module per venue: what is particular to it (auth, paging, limits, type codes, mapping)."""

from __future__ import annotations

from ledgerlake.venues.base import Venue, VenueCredentials
from ledgerlake.venues.binance import Binance
from ledgerlake.venues.coinbase import Coinbase
from ledgerlake.venues.exchangehubx import ExchangeHubX
from ledgerlake.venues.pacifica import Pacifica
from ledgerlake.venues.sunx import SunX

VENUE_CLASSES: dict[str, type[Venue]] = {v.name: v for v in (ExchangeHubX, Binance, Pacifica, Coinbase, SunX)}

__all__ = ["VENUE_CLASSES", "Venue", "VenueCredentials"]
