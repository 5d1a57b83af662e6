"""The engine against a small stub venue over HTTP and the moto S3 server: streaming, reversal, exact
intervals, date partitions, idempotent re-runs, retries, quarantine. (The sandbox tests cover the venues.)"""

from __future__ import annotations

import gzip
import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ledgerlake.config import AccountConfig
from ledgerlake.engine import (
    AuthError,
    BadRecordError,
    BanError,
    ExtractOptions,
    RetentionError,
    TransientExtractError,
    VenueCredentials,
    extract,
)
from ledgerlake.engine.ratelimit import SlidingWindowLimiter
from ledgerlake.engine.rows import order_violation
from ledgerlake.interval import Interval
from ledgerlake.lake import Lake
from ledgerlake.schema import LEDGER_SCHEMA
from ledgerlake.venues.base import RateLimit

from .stub import StubLedger, entries, serve, serve_fixed

SECRET = "c2VjcmV0LXN0dWItc2VjcmV0LXZhbHVl"
KEY = "stub-api-key-0001"
PASSPHRASE = "stub-passphrase-0001"
ACCOUNT = AccountConfig("coinbase", "acc-1", "ledgerlake_coinbase", {"currency": "USD"})
# Pages of 100 (not Coinbase's 1000): the stub's few hundred entries still take several pages.
FAST = ExtractOptions(rate_limit="off", backoff_base_s=0.01, backoff_max_s=0.05, max_retries=3, batch_rows=50,
                      raw_pages_per_object=3, read_timeout_s=5, page_size=100)  # fmt: skip


def creds(url: str) -> VenueCredentials:
    return VenueCredentials(url, KEY, SECRET, PASSPHRASE)


def read_ledger(lake: Lake, manifest_key: str) -> pa.Table:
    manifest = json.loads(lake.get_bytes(manifest_key))
    tables = []
    for f in manifest["files"]:
        if f["dataset"] == "ledger":
            data = lake.get_bytes(f["key"])
            tables.append(pq.read_table(pa.BufferReader(data)))
    return pa.concat_tables(tables).sort_by("entry_seq") if tables else LEDGER_SCHEMA.empty_table()


@pytest.fixture
def stub_rows() -> list[dict]:
    # 400 entries from 2026-11-01 23:00 every 20 s: they cross midnight, and some sit exactly on the bounds.
    return entries(datetime(2026, 11, 1, 23, 0, tzinfo=UTC), 400, timedelta(seconds=20))


def expected(rows: list[dict], interval: Interval) -> list[dict]:
    def ts(r: dict) -> datetime:
        return datetime.fromisoformat(r["created_at"].replace("Z", "+00:00"))

    inside = [r for r in rows if interval.start <= ts(r) < interval.end]
    return sorted(inside, key=lambda r: (ts(r), int(r["id"])))


def test_newest_first_rows_come_back_in_order_exactly_the_interval(lake: Lake, stub_rows: list[dict]) -> None:
    interval = Interval.parse("2026-11-01T23:10:00Z", "2026-11-02T01:00:00Z")
    stub = StubLedger(stub_rows)
    with serve(stub) as url:
        summary = extract("coinbase", ACCOUNT, creds(url), interval, lake, options=FAST)
    table = read_ledger(lake, summary.manifest_key)
    want = expected(stub_rows, interval)
    assert table.column("entry_id").to_pylist() == [r["id"] for r in want]
    assert table.column("entry_seq").to_pylist() == list(range(len(want)))
    assert table.column("amount").to_pylist() == [Decimal(r["amount"]) for r in want]
    assert table.schema.equals(LEDGER_SCHEMA)
    assert summary.rows["ledger"] == len(want) and summary.pages == stub.requests
    # rows are partitioned by their UTC date; raw pages sit under the interval's start date
    manifest = json.loads(lake.get_bytes(summary.manifest_key))
    ledger_keys = [f["key"] for f in manifest["files"] if f["dataset"] == "ledger"]
    assert {k.split("/")[3] for k in ledger_keys} == {"date=2026-11-01", "date=2026-11-02"}
    raw_keys = [f["key"] for f in manifest["files"] if f["dataset"] == "raw"]
    assert all("/date=2026-11-01/" in k for k in raw_keys)
    assert sum(f["rows"] for f in manifest["files"] if f["dataset"] == "raw") >= len(want)
    first_raw = json.loads(gzip.decompress(lake.get_bytes(raw_keys[0])))
    assert first_raw["pages"][0]["request"]["params"]["limit"] == "100"


def test_adjacent_intervals_share_no_row_and_miss_none(lake: Lake, stub_rows: list[dict]) -> None:
    a = Interval.parse("2026-11-01T23:00:00Z", "2026-11-02T00:00:00Z")
    b = Interval.parse("2026-11-02T00:00:00Z", "2026-11-02T03:00:00Z")
    with serve(StubLedger(stub_rows)) as url:
        ta = read_ledger(lake, extract("coinbase", ACCOUNT, creds(url), a, lake, options=FAST).manifest_key)
        tb = read_ledger(lake, extract("coinbase", ACCOUNT, creds(url), b, lake, options=FAST).manifest_key)
    ids_a, ids_b = ta.column("entry_id").to_pylist(), tb.column("entry_id").to_pylist()
    assert not set(ids_a) & set(ids_b)
    assert sorted(ids_a + ids_b, key=int) == [r["id"] for r in stub_rows if r["created_at"] < "2026-11-02T03"]


def test_three_runs_leave_the_same_objects(lake: Lake, stub_rows: list[dict]) -> None:
    interval = Interval.parse("2026-11-01T23:00:00Z", "2026-11-02T01:00:00Z")
    snapshots = []
    with serve(StubLedger(stub_rows)) as url:
        for _ in range(3):
            extract("coinbase", ACCOUNT, creds(url), interval, lake, options=FAST)
            objects = {}
            for key in lake.list_keys(""):
                data = lake.get_bytes(key)
                if key.endswith(".parquet"):
                    objects[key] = pq.read_table(pa.BufferReader(data)).drop(["ingested_at"]).to_pylist()
                elif key.startswith("manifests/"):
                    objects[key] = sorted((f["key"], f["rows"]) for f in json.loads(data)["files"])
                else:
                    objects[key] = data
            snapshots.append(objects)
    assert snapshots[0] == snapshots[1] == snapshots[2]


def test_faults_are_retried_and_the_result_stays_exact(lake: Lake, stub_rows: list[dict]) -> None:
    interval = Interval.parse("2026-11-01T23:00:00Z", "2026-11-02T02:00:00Z")
    stub = StubLedger(stub_rows)
    stub.faults = ["500", "ok", "429", "truncate", "ok", "bad-json", "ok", "500"]
    with serve(stub) as url:
        summary = extract("coinbase", ACCOUNT, creds(url), interval, lake, options=FAST)
    assert summary.retries == 5
    table = read_ledger(lake, summary.manifest_key)
    assert table.column("entry_id").to_pylist() == [r["id"] for r in expected(stub_rows, interval)]


def test_a_body_that_never_heals_gives_up_with_a_transient_error(lake: Lake, stub_rows: list[dict]) -> None:
    stub = StubLedger(stub_rows)
    stub.faults = ["bad-json"] * 10
    interval = Interval.parse("2026-11-01T23:00:00Z", "2026-11-02T00:00:00Z")
    with serve(stub) as url, pytest.raises(TransientExtractError, match="malformed JSON") as err:
        extract("coinbase", ACCOUNT, creds(url), interval, lake, options=FAST)
    assert "acc-1" in str(err.value) and "coinbase" in str(err.value)
    assert not list(lake.list_keys("manifests/"))


def test_auth_error_fails_at_once_with_the_venue_message(lake: Lake, stub_rows: list[dict]) -> None:
    stub = StubLedger(stub_rows)
    stub.faults = ["auth"] * 5
    interval = Interval.parse("2026-11-01T23:00:00Z", "2026-11-02T00:00:00Z")
    with serve(stub) as url, pytest.raises(AuthError, match="Invalid API Key") as err:
        extract("coinbase", ACCOUNT, creds(url), interval, lake, options=FAST)
    assert stub.requests == 1
    for secret in (KEY, SECRET, PASSPHRASE):
        assert secret not in str(err.value)


def test_bad_record_is_quarantined_and_stops_the_partition(lake: Lake, stub_rows: list[dict]) -> None:
    rows = [dict(r) for r in stub_rows]
    rows[50]["amount"] = "12.5.1"
    del rows[60]["balance"]
    interval = Interval.parse("2026-11-01T23:00:00Z", "2026-11-02T03:00:00Z")
    with serve(StubLedger(rows)) as url, pytest.raises(BadRecordError) as err:
        extract("coinbase", ACCOUNT, creds(url), interval, lake, options=FAST)
    message = str(err.value)
    assert "coinbase account acc-1 interval [2026-11-01T23:00:00+00:00" in message
    quarantined = list(lake.list_keys("quarantine/venue=coinbase/account=acc-1/"))
    assert len(quarantined) == 1
    body = json.loads(lake.get_bytes(quarantined[0]))
    assert (body["field"], body["record"]["id"]) in {("balance", "1060"), ("amount", "1050")}
    assert f"'{body['field']}'" in message
    assert not list(lake.list_keys("manifests/"))


def test_a_failed_rerun_withdraws_the_old_manifest(lake: Lake, stub_rows: list[dict]) -> None:
    interval = Interval.parse("2026-11-01T23:00:00Z", "2026-11-02T01:00:00Z")
    with serve(StubLedger(stub_rows)) as url:
        summary = extract("coinbase", ACCOUNT, creds(url), interval, lake, options=FAST)
    assert lake.exists(summary.manifest_key)
    stub = StubLedger(stub_rows)
    stub.faults = ["ok"] + ["500"] * 10
    with serve(stub) as url, pytest.raises(TransientExtractError):
        extract("coinbase", ACCOUNT, creds(url), interval, lake, options=FAST)
    assert not lake.exists(summary.manifest_key)


def test_retention_is_checked_before_any_request(lake: Lake) -> None:
    stub = StubLedger([])
    account = AccountConfig("sunx", "uid-1", "ledgerlake_sunx")
    with serve(stub) as url, pytest.raises(RetentionError, match="90 days"):
        extract("sunx", account, creds(url), Interval.parse("2020-01-01", "2020-01-02"), lake, options=FAST)
    assert stub.requests == 0


def test_secrets_are_nowhere(lake: Lake, stub_rows: list[dict], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    stub = StubLedger(stub_rows)
    stub.faults = ["500", "truncate"]
    interval = Interval.parse("2026-11-01T23:00:00Z", "2026-11-02T01:00:00Z")
    with serve(stub) as url:
        summary = extract("coinbase", ACCOUNT, creds(url), interval, lake, options=FAST)
    assert stub.headers_seen[0]["CB-ACCESS-KEY"] == KEY  # it was sent ...
    blobs = [json.dumps(summary.to_dict()).encode(), caplog.text.encode()]
    for key in lake.list_keys(""):
        data = lake.get_bytes(key)
        blobs.append(gzip.decompress(data) if key.endswith(".gz") else data)
    for secret in (KEY, SECRET, PASSPHRASE):
        assert not any(secret.encode() in b for b in blobs), secret  # ... and written nowhere


def test_order_violation_finds_the_first_row_out_of_order() -> None:
    import numpy as np

    us = np.array([1, 2, 2, 3])
    assert order_violation(us, np.array([1, 2, 3, 4]), False, None) is None
    assert order_violation(us, np.array([1, 3, 2, 4]), False, None) == 2
    assert order_violation(us[::-1].copy(), np.array([4, 3, 2, 1]), True, (5, 9)) is None
    assert order_violation(us, None, False, (2, None)) == 0


def test_sliding_window_limiter_never_exceeds_the_window() -> None:
    import time

    limiter = SlidingWindowLimiter(RateLimit(5, 0.2), margin_s=0.0)
    stamps = []
    for _ in range(12):
        _, ticket = limiter.acquire(1)
        stamps.append(time.monotonic())
        limiter.settle(ticket)
    for i, t in enumerate(stamps):
        assert sum(1 for u in stamps[i:] if u - t < 0.2) <= 5
    assert stamps[-1] - stamps[0] >= 0.4


def test_binance_418_stops_at_once_with_the_ban_end_time(lake: Lake) -> None:
    body = b'{"code":-1003,"msg":"Way too much request weight used; IP banned until 1763640000000. Please use WS."}'
    account = AccountConfig("binance", "binance-1", "ledgerlake_binance")
    interval = Interval.parse("2026-11-18", "2026-11-19")
    with serve_fixed(418, body, {"Retry-After": "120"}) as (url, seen), pytest.raises(BanError) as err:
        extract("binance", account, creds(url), interval, lake, options=FAST)
    assert len(seen) == 1 and err.value.until_ms == 1763640000000
    assert "banned this IP until 2025-11-20T12:00:00+00:00" in str(err.value)
    assert "signature" not in str(err.value) and SECRET not in str(err.value)


def test_retry_after_is_honoured(lake: Lake) -> None:
    import time

    account = AccountConfig("binance", "binance-1", "ledgerlake_binance")
    interval = Interval.parse("2026-11-18", "2026-11-19")
    body = b'{"code":-1003,"msg":"Too many requests"}'
    started = time.monotonic()
    with serve_fixed(429, body, {"Retry-After": "0.3"}) as (url, seen), pytest.raises(TransientExtractError):
        extract("binance", account, creds(url), interval, lake, options=FAST)
    assert len(seen) == FAST.max_retries + 1
    assert time.monotonic() - started >= 0.3 * FAST.max_retries  # the backoff alone would be ~0.1 s


def test_a_clean_rerun_clears_the_quarantine_of_a_failed_one(lake: Lake, stub_rows: list[dict]) -> None:
    rows = [dict(r) for r in stub_rows]
    rows[5]["amount"] = "not-a-number"
    interval = Interval.parse("2026-11-01T23:00:00Z", "2026-11-02T01:00:00Z")
    with serve(StubLedger(rows)) as url, pytest.raises(BadRecordError):
        extract("coinbase", ACCOUNT, creds(url), interval, lake, options=FAST)
    assert list(lake.list_keys("quarantine/"))
    with serve(StubLedger(stub_rows)) as url:
        extract("coinbase", ACCOUNT, creds(url), interval, lake, options=FAST)
    assert not list(lake.list_keys("quarantine/"))


def test_files_roll_at_file_rows_and_entry_seq_runs_on(lake: Lake, stub_rows: list[dict]) -> None:
    interval = Interval.parse("2026-11-01T23:00:00Z", "2026-11-02T02:00:00Z")
    options = ExtractOptions(**{**FAST.__dict__, "file_rows": 70, "batch_rows": 30})
    with serve(StubLedger(stub_rows)) as url:
        summary = extract("coinbase", ACCOUNT, creds(url), interval, lake, options=options)
    manifest = json.loads(lake.get_bytes(summary.manifest_key))
    ledger = [f for f in manifest["files"] if f["dataset"] == "ledger"]
    assert len(ledger) >= 4 and all(f["rows"] <= 70 for f in ledger)
    assert {f["key"].rsplit("-", 1)[1] for f in ledger} >= {"0000.parquet", "0001.parquet"}
    table = read_ledger(lake, summary.manifest_key)
    assert table.column("entry_seq").to_pylist() == list(range(table.num_rows))
    assert table.column("entry_id").to_pylist() == [r["id"] for r in expected(stub_rows, interval)]


def test_objects_are_written_with_server_side_encryption_when_asked(s3_settings, stub_rows: list[dict]) -> None:
    from dataclasses import replace

    lake = Lake(replace(s3_settings, sse="AES256"))
    interval = Interval.parse("2026-11-01T23:00:00Z", "2026-11-02T00:00:00Z")
    with serve(StubLedger(stub_rows)) as url:
        extract("coinbase", ACCOUNT, creds(url), interval, lake, options=FAST)
    keys = list(lake.list_keys(""))
    assert any(k.endswith(".parquet") for k in keys) and any(k.endswith(".json.gz") for k in keys)
    for key in keys:
        assert lake.head(key).get("ServerSideEncryption") == "AES256", key


def test_the_limiter_believes_the_venues_used_weight() -> None:
    import time

    limiter = SlidingWindowLimiter(RateLimit(10, 0.3), margin_s=0.0)
    limiter.observe_used(9)  # Binance's X-MBX-USED-WEIGHT-1M says 9 of 10 are spent already
    started = time.monotonic()
    limiter.acquire(2)
    assert time.monotonic() - started >= 0.25


@pytest.mark.parametrize("batch_rows", [7, 50, 1000])
def test_ties_listed_in_another_order_still_come_out_in_the_contract_order(
    lake: Lake, stub_rows: list[dict], batch_rows: int
) -> None:
    stub = StubLedger(stub_rows)
    stub.ties_ascending = True
    interval = Interval.parse("2026-11-01T23:00:00Z", "2026-11-02T01:00:00Z")
    options = ExtractOptions(**{**FAST.__dict__, "batch_rows": batch_rows})
    with serve(stub) as url:
        summary = extract("coinbase", ACCOUNT, creds(url), interval, lake, options=options)
    table = read_ledger(lake, summary.manifest_key)
    assert table.column("entry_id").to_pylist() == [r["id"] for r in expected(stub_rows, interval)]
    assert table.column("entry_seq").to_pylist() == list(range(table.num_rows))


def test_a_row_out_of_time_order_stops_the_run(lake: Lake, stub_rows: list[dict]) -> None:
    from ledgerlake.engine import OrderError

    rows = [dict(r) for r in stub_rows]
    rows[10]["created_at"] = rows[300]["created_at"]  # listed far from where its time belongs
    interval = Interval.parse("2026-11-01T23:00:00Z", "2026-11-02T03:00:00Z")
    options = ExtractOptions(**{**FAST.__dict__, "batch_rows": 20})

    stub = StubLedger(rows)  # lists by position: the misplaced row stays where it was
    with serve(stub) as url, pytest.raises(OrderError, match="out of its order"):
        extract("coinbase", ACCOUNT, creds(url), interval, lake, options=options)
    assert not list(lake.list_keys("manifests/"))


def test_raw_objects_are_capped_in_bytes_whatever_the_page_size(lake: Lake) -> None:
    """Big pages (Coinbase's 1000 entries) must not make 100-page raw objects of tens of MB: up to 8 wait for
    upload at once, which is how a 1M-row run once peaked at 466 MiB."""
    from ledgerlake.engine.http import Redactor
    from ledgerlake.engine.raw import OBJECT_BYTES, RawArchive
    from ledgerlake.engine.writer import Uploader

    uploader = Uploader()
    raw = RawArchive(
        lake, uploader, "coinbase", "acct-1", Interval.parse("2026-11-01", "2026-11-02"), 100, Redactor([])
    )
    page = b'{"x":"' + b"a" * (OBJECT_BYTES // 3) + b'"}'
    uris = [raw.add(n, {"method": "GET"}, 200, page, 1) for n in range(1, 8)]
    raw.flush()
    files = uploader.wait()
    uploader.shutdown()
    assert len(files) == 3 and len(set(uris)) == 3  # pages 1-3, 4-6, 7: each object closes once it holds 4 MB
    for f in files:
        pages = json.loads(gzip.decompress(lake.get_bytes(f.key)))["pages"]
        assert len(pages) <= 3 and all(p["body"] == {"x": "a" * (OBJECT_BYTES // 3)} for p in pages)
    assert sorted(f.rows for f in files) == [1, 3, 3]
