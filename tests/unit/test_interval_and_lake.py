from datetime import UTC, datetime, timedelta

import pytest

from ledgerlake.interval import Interval, from_ms, to_ms
from ledgerlake.lake import Lake, Manifest, ManifestFile, S3Settings, data_file_key, raw_page_key


def test_interval_id_split_and_contains() -> None:
    iv = Interval.parse("2026-11-01", "2026-11-04T12:00:00Z")
    assert iv.id == "20261101T000000Z-20261104T120000Z"
    parts = list(iv.split(timedelta(hours=48)))
    assert [p.end - p.start for p in parts] == [timedelta(hours=48), timedelta(hours=36)]
    assert parts[0].end == parts[1].start and parts[-1].end == iv.end
    assert iv.contains(iv.start) and not iv.contains(iv.end)
    assert [d.start.day for d in iv.days()] == [1, 2, 3, 4]


def test_interval_refuses_naive_and_empty() -> None:
    with pytest.raises(ValueError, match="time zone"):
        Interval(datetime(2026, 1, 1), datetime(2026, 1, 2))
    with pytest.raises(ValueError, match="empty interval"):
        Interval.parse("2026-01-02", "2026-01-01")


def test_ms_round_trip_is_exact() -> None:
    t = datetime(2026, 3, 1, 23, 59, 59, 999000, tzinfo=UTC)
    assert from_ms(to_ms(t)) == t
    assert to_ms(datetime(2026, 3, 1, 0, 0, 0, 999, tzinfo=UTC)) == to_ms(datetime(2026, 3, 1, tzinfo=UTC))


def test_sse_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="encryption"):
        S3Settings(bucket="b", sse="rot13")


def test_manifest_written_last_removes_stale_objects(lake: Lake) -> None:
    iv = Interval.parse("2026-11-01", "2026-11-02")
    other = Interval.parse("2026-11-02", "2026-11-03")
    keep = data_file_key("ledger", "sunx", "main", iv, "2026-11-01", 0)
    stale = data_file_key("ledger", "sunx", "main", iv, "2026-11-01", 1)
    neighbour = data_file_key("ledger", "sunx", "main", other, "2026-11-02", 0)
    raw = raw_page_key("sunx", "main", iv, 0)
    for key in (keep, stale, neighbour, raw):
        lake.put_bytes(key, b"x")
    files = [ManifestFile(key=keep, dataset="ledger", rows=1, bytes=1, sha256="0" * 64)]
    lake.write_manifest(Manifest.build("sunx", "main", iv, files))
    assert lake.exists(keep) and lake.exists(neighbour)
    assert not lake.exists(stale) and not lake.exists(raw)
    manifest = lake.read_manifest("sunx", "main", iv)
    assert manifest is not None and manifest.row_counts == {"ledger": 1} and manifest.interval == iv
    assert lake.read_manifest("sunx", "main", other) is None
