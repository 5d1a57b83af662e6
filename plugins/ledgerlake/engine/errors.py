"""How an extraction fails. Fatal errors mean a retry cannot help (auth, ban, retention, a bad record, a
refusal by the venue); transient ones mean retries ran out and a later attempt may pass."""

from __future__ import annotations


class ExtractError(RuntimeError):
    """Base: the message names venue, account and interval, never a secret."""

    fatal = False


class TransientExtractError(ExtractError):
    """Retries ran out on timeouts, dropped connections, 429/5xx or malformed bodies."""


class FatalExtractError(ExtractError):
    fatal = True


class AuthError(FatalExtractError):
    """The venue refused the credentials; the message carries the venue's own words."""


class BanError(FatalExtractError):
    """Binance 418: the IP is banned until `until_ms`."""

    def __init__(self, message: str, until_ms: int | None = None) -> None:
        super().__init__(message)
        self.until_ms = until_ms


class RetentionError(FatalExtractError):
    """The interval is older than the venue keeps: no request was sent."""


class VenueRefusedError(FatalExtractError):
    """The venue answered with an error a retry will not change (bad parameter, unknown account, ...)."""


class BadRecordError(FatalExtractError):
    """A record misses a required field or has a value that does not parse; it is in quarantine."""

    def __init__(self, message: str, field: str, quarantine_uri: str | None) -> None:
        super().__init__(message)
        self.field = field
        self.quarantine_uri = quarantine_uri


class OrderError(FatalExtractError):
    """The venue listed entries out of its documented order, so entry_seq cannot be assigned."""
