"""The one extraction engine every venue shares (plain Python, knows nothing of Airflow).

    from ledgerlake.engine import extract, ExtractOptions, VenueCredentials
    summary = extract("coinbase", account_config, credentials, interval, lake, options=ExtractOptions())

See engine/run.py for what happens to a page on its way to the lake.
"""

from __future__ import annotations

from ledgerlake.engine.errors import (
    AuthError,
    BadRecordError,
    BanError,
    ExtractError,
    FatalExtractError,
    OrderError,
    RetentionError,
    TransientExtractError,
    VenueRefusedError,
)
from ledgerlake.engine.run import ExtractOptions, ExtractSummary, extract
from ledgerlake.venues.base import RateLimit, VenueCredentials

__all__ = [
    "AuthError",
    "BadRecordError",
    "BanError",
    "ExtractError",
    "ExtractOptions",
    "ExtractSummary",
    "FatalExtractError",
    "OrderError",
    "RateLimit",
    "RetentionError",
    "TransientExtractError",
    "VenueCredentials",
    "VenueRefusedError",
    "extract",
]
