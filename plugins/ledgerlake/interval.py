"""The data interval every task works on: [start, end) in UTC."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError(f"interval bound {value.isoformat()} has no time zone; ledgerlake works in UTC")
    v = value.astimezone(UTC)
    # A plain datetime even when Airflow hands over pendulum's subclass: its arithmetic differs
    # (pendulum's Interval // timedelta fails), and the rest of ledgerlake is written for the stdlib type.
    return datetime(v.year, v.month, v.day, v.hour, v.minute, v.second, v.microsecond, tzinfo=UTC)


def parse_instant(text: str) -> datetime:
    """An ISO 8601 instant or date; a date or a naive time is taken as UTC."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@dataclass(frozen=True, order=True)
class Interval:
    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", _utc(self.start))
        object.__setattr__(self, "end", _utc(self.end))
        if self.end <= self.start:
            raise ValueError(f"empty interval: end {self.end.isoformat()} is not after start {self.start.isoformat()}")

    @classmethod
    def parse(cls, start: str, end: str) -> Interval:
        return cls(parse_instant(start), parse_instant(end))

    @property
    def id(self) -> str:
        """Stable name used in object keys: 20260101T000000Z-20260102T000000Z."""
        return f"{self.start:%Y%m%dT%H%M%SZ}-{self.end:%Y%m%dT%H%M%SZ}"

    @property
    def start_ms(self) -> int:
        return to_ms(self.start)

    @property
    def end_ms(self) -> int:
        return to_ms(self.end)

    def contains(self, instant: datetime) -> bool:
        return self.start <= instant < self.end

    def split(self, most: timedelta) -> Iterator[Interval]:
        """Consecutive sub-intervals no longer than `most`, covering this one exactly."""
        cursor = self.start
        while cursor < self.end:
            nxt = min(cursor + most, self.end)
            yield Interval(cursor, nxt)
            cursor = nxt

    def days(self) -> Iterator[Interval]:
        """The interval cut at UTC midnights."""
        cursor = self.start
        while cursor < self.end:
            midnight = (cursor + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
            nxt = min(midnight, self.end)
            yield Interval(cursor, nxt)
            cursor = nxt

    def __str__(self) -> str:
        return f"[{self.start.isoformat()}, {self.end.isoformat()})"


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_ms(instant: datetime) -> int:
    """Milliseconds since the epoch, rounded down (exact integer arithmetic, no float)."""
    return (_utc(instant) - _EPOCH) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return _EPOCH + timedelta(milliseconds=ms)
