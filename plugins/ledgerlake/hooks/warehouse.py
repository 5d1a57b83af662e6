"""The warehouse's settings from an Airflow connection (`ledgerlake_warehouse` by default).

- conn_type `postgres`: host, port, login, password and schema (the database, as Airflow's postgres
  connection names it); extra keys (sslmode, sslrootcert, options, ...) go to libpq as they are.
- conn_type `duckdb` (or any other, e.g. `generic`): the DuckDB file is extra `path`, else host.
- no such connection: $LEDGERLAKE_WAREHOUSE, else the demo's DuckDB file (logged, so it is never a surprise).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException

from ledgerlake.warehouse.settings import WarehouseSettings

DEFAULT_WAREHOUSE_CONN_ID = "ledgerlake_warehouse"
POSTGRES_TYPES = ("postgres", "postgresql")
LIBPQ_EXTRA = ("sslmode", "sslrootcert", "sslcert", "sslkey", "options", "target_session_attrs", "connect_timeout")


class WarehouseHook(BaseHook):
    conn_name_attr = "warehouse_conn_id"
    default_conn_name = DEFAULT_WAREHOUSE_CONN_ID
    conn_type = "generic"
    hook_name = "ledgerlake warehouse (DuckDB file or PostgreSQL)"

    def __init__(self, warehouse_conn_id: str = DEFAULT_WAREHOUSE_CONN_ID) -> None:
        super().__init__()
        self.warehouse_conn_id = warehouse_conn_id

    def settings(self) -> WarehouseSettings:
        try:
            conn = self.get_connection(self.warehouse_conn_id)
        except AirflowNotFoundException:
            settings = WarehouseSettings.default()
            self.log.warning(
                "no Airflow connection %r: using the default warehouse %s",
                self.warehouse_conn_id,
                settings.describe(),
            )
            return settings
        return settings_from_connection(conn, self.warehouse_conn_id)


def settings_from_connection(conn: Any, conn_id: str) -> WarehouseSettings:
    extra: dict[str, Any] = conn.extra_dejson or {}
    if (conn.conn_type or "").lower() in POSTGRES_TYPES:
        from psycopg.conninfo import make_conninfo

        params = {
            "host": conn.host or None,
            "port": conn.port or None,
            "user": conn.login or None,
            "password": conn.password or None,
            "dbname": conn.schema or None,
            **{k: extra[k] for k in LIBPQ_EXTRA if extra.get(k) is not None},
        }
        return WarehouseSettings(
            kind="postgres", dsn=make_conninfo(**{k: v for k, v in params.items() if v is not None})
        )
    path = extra.get("path") or conn.host
    if not path:
        raise ValueError(
            f"Airflow connection {conn_id!r} (type {conn.conn_type}) names no DuckDB file: set extra "
            '{"path": "/data/warehouse.duckdb"} or host, or make it a postgres connection'
        )
    return WarehouseSettings(kind="duckdb", path=str(path))
