"""End-to-end fixtures: fresh PostgreSQL databases that live as long as a test module's Airflow, the day
range the backfills cover, and failure output that explains itself (task logs of failed tasks)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from ledgerlake.scratch_db import scratch_database


@pytest.fixture(scope="module")
def module_database(pg_server_dsn: str) -> Iterator[Callable[[str], str]]:
    """Make fresh databases for one test module: `module_database("airflow")` -> DSN."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        yield lambda purpose: stack.enter_context(scratch_database(pg_server_dsn, f"e2e_{purpose}"))


@pytest.fixture(scope="session")
def last_three_days() -> tuple[datetime, datetime]:
    """[start, end) of the last three whole UTC days: what the backfills cover."""
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=3), today
