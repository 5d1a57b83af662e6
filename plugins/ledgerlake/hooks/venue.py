"""A venue's credentials from an Airflow connection (`ledgerlake_<venue>` by default).

host = the venue's base URL (`https://api.exchange.coinbase.com`; a bare host takes `schema` or https and
`port`), login = API key, password = API secret, extra = the rest: `passphrase` (Coinbase), `recv_window`
(Binance, exchangeHubX), `rate_limit` ("off" or {"units": 15, "per_seconds": 1}), `page_size`,
`request_cost` (Pacifica credits per GET).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook

from ledgerlake.venues.base import VenueCredentials

SECRET_EXTRA_KEYS = ("passphrase", "api_passphrase")


def base_url(host: str | None, schema: str | None, port: int | None) -> str:
    if not host:
        raise ValueError("the connection has no host: set it to the venue's base URL, e.g. https://api.sunx.io")
    host = host.rstrip("/")
    if "://" in host:
        return host
    scheme = schema if schema in ("http", "https") else "https"
    return f"{scheme}://{host}{f':{port}' if port else ''}"


class VenueHook(BaseHook):
    conn_name_attr = "venue_conn_id"
    conn_type = "http"
    hook_name = "ledgerlake venue API"

    def __init__(self, venue_conn_id: str) -> None:
        super().__init__()
        self.venue_conn_id = venue_conn_id

    def credentials(self) -> VenueCredentials:
        conn = self.get_connection(self.venue_conn_id)
        extra: dict[str, Any] = dict(conn.extra_dejson or {})
        passphrase = next((extra.pop(k) for k in SECRET_EXTRA_KEYS if k in extra), None)
        try:
            url = base_url(conn.host, conn.schema, conn.port)
        except ValueError as exc:
            raise ValueError(f"connection {self.venue_conn_id}: {exc}") from None
        return VenueCredentials(
            base_url=url,
            api_key=conn.login or None,
            api_secret=conn.password or None,
            passphrase=str(passphrase) if passphrase else None,
            extra=extra,
        )
