"""Airflow hands tasks pendulum DateTimes as data_interval_start/end; intervals must work on them exactly."""

from __future__ import annotations

from datetime import UTC, datetime

import pendulum

from ledgerlake.interval import Interval, to_ms


def test_interval_from_pendulum_bounds_is_plain_and_exact() -> None:
    start = pendulum.datetime(2026, 11, 20, tz="UTC")
    end = pendulum.datetime(2026, 11, 21, tz="UTC")
    interval = Interval(start, end)
    assert type(interval.start) is datetime and type(interval.end) is datetime
    assert interval.start_ms == 1_795_132_800_000
    assert interval.end_ms - interval.start_ms == 86_400_000
    assert to_ms(pendulum.datetime(2026, 11, 20, 0, 0, 0, 999, tz="Europe/Berlin")) == 1_795_129_200_000
    assert interval == Interval(datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 21, tzinfo=UTC))
