"""pytest fixtures for the venue sandbox (registered in tests/conftest.py).

def test_something(sandbox):                 # a running sandbox, small data, limits off, fixed now
    sandbox.base_url("coinbase")

def test_other(sandbox_factory):             # any options; every sandbox is stopped after the test
    sb = sandbox_factory(rate_limits="fast", faults="flaky")
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from ledgerlake.sandbox.options import SandboxOptions
from ledgerlake.sandbox.server import Sandbox

# The instant test sandboxes treat as now: fixed, so the data (and truth) never depend on the day tests run.
SANDBOX_NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TEST_DEFAULTS: dict[str, Any] = dict(
    seed=7, accounts_per_venue=2, days=3, entries_per_day=300, rate_limits="off", now=SANDBOX_NOW
)


@pytest.fixture
def sandbox_factory() -> Iterator[Callable[..., Sandbox]]:
    started: list[Sandbox] = []

    def make(**overrides: Any) -> Sandbox:
        sb = Sandbox(SandboxOptions(**{**TEST_DEFAULTS, **overrides})).start()
        started.append(sb)
        return sb

    yield make
    for sb in started:
        sb.stop()


@pytest.fixture
def sandbox(sandbox_factory: Callable[..., Sandbox]) -> Sandbox:
    return sandbox_factory()
