"""End-to-end fixtures: fresh PostgreSQL databases that live as long as a test module's Airflow, the day
range the backfills cover, and failure output that explains itself (task logs of failed tasks)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

import pytest


@contextmanager
def fresh_database(server_dsn: str, purpose: str) -> Iterator[str]:
    """A new, empty PostgreSQL database (dropped afterwards) on the server of `server_dsn`."""
    import psycopg

    name = f"ledgerlake_e2e_{purpose}_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_dsn.rpartition("/")
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(server_dsn, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def module_database(pg_server_dsn: str) -> Iterator[Callable[[str], str]]:
    """Make fresh databases for one test module: `module_database("airflow")` -> DSN."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield lambda purpose: stack.enter_context(fresh_database(pg_server_dsn, purpose))


@pytest.fixture(scope="session")
def last_three_days() -> tuple[datetime, datetime]:
    """[start, end) of the last three whole UTC days: what the backfills cover."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=3), today
