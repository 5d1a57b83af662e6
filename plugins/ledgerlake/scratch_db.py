"""Throw-away PostgreSQL databases, for tests and benchmarks that need a real server but a clean slate."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator


@contextlib.contextmanager
def scratch_database(server_dsn: str, purpose: str) -> Iterator[str]:
    """A new, empty database on the server of `server_dsn`, dropped on exit (even with open connections);
    yields its DSN."""
    import psycopg

    name = f"ledgerlake_{purpose}_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server_dsn, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_dsn.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
