"""Each venue's extraction against the sandbox over HTTP and the moto S3 server: exact rows, idempotent
re-runs, adjacent intervals, faults, rate limits, errors, and no secret anywhere."""

from __future__ import annotations

import gzip
import json
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import urllib3

from ledgerlake.config import AccountConfig
from ledgerlake.engine import (
    AuthError,
    BadRecordError,
    ExtractOptions,
    ExtractSummary,
    RateLimit,
    RetentionError,
    TransientExtractError,
    VenueCredentials,
    extract,
)
from ledgerlake.interval import Interval
from ledgerlake.lake import Lake
from ledgerlake.sandbox import FaultSpec, Sandbox
from ledgerlake.sandbox.pytest_plugin import SANDBOX_NOW
from ledgerlake.schema import DATASETS, RUN_COLUMNS

LEDGER_VENUES = ("exchangehubx", "pacifica", "coinbase", "sunx")
TWO_DAYS = Interval.parse("2026-11-18", "2026-11-20")
FAST_RETRIES = dict(backoff_base_s=0.01, backoff_max_s=0.1, max_retries=6, read_timeout_s=1.0, connect_timeout_s=1.0)


def options(**changes: Any) -> ExtractOptions:
    base: dict[str, Any] = dict(now=SANDBOX_NOW, rate_limit="off", batch_rows=200, raw_pages_per_object=4)
    return ExtractOptions(**{**base, **FAST_RETRIES, **changes})


def account_config(sb: Sandbox, venue: str, index: int = 0) -> AccountConfig:
    spec = dict(sb.accounts_config()["venues"][venue]["accounts"][index])
    name, conn_id = spec.pop("account"), spec.pop("conn_id")
    return AccountConfig(venue, name, conn_id, spec)


def credentials(sb: Sandbox, venue: str, index: int = 0, base_url: str | None = None, **wrong: str) -> VenueCredentials:
    acc = sb.accounts(venue)[index]
    values = {"api_key": acc.api_key, "api_secret": acc.api_secret, "passphrase": acc.passphrase, **wrong}
    return VenueCredentials(base_url or sb.base_url(venue), **values)


def run(
    sb: Sandbox, lake: Lake, venue: str, interval: Interval = TWO_DAYS, index: int = 0, **opts: Any
) -> ExtractSummary:
    return extract(
        venue, account_config(sb, venue, index), credentials(sb, venue, index), interval, lake, options=options(**opts)
    )


def read_dataset(lake: Lake, manifest_key: str, dataset: str) -> pa.Table:
    manifest = json.loads(lake.get_bytes(manifest_key))
    parts = [
        pq.read_table(pa.BufferReader(lake.get_bytes(f["key"]))) for f in manifest["files"] if f["dataset"] == dataset
    ]
    return pa.concat_tables(parts) if parts else DATASETS[dataset][0].empty_table()


def without_run_columns(table: pa.Table) -> pa.Table:
    return table.drop([c for c in RUN_COLUMNS if c in table.column_names])


def assert_ledger_equals_truth(
    sb: Sandbox, lake: Lake, venue: str, summary: ExtractSummary, interval: Interval
) -> None:
    got = without_run_columns(read_dataset(lake, summary.manifest_key, "ledger")).sort_by("entry_seq")
    want = sb.truth(venue, summary.account, interval)
    assert got.num_rows == want.num_rows > 0
    got = got.select(want.column_names).cast(want.schema)
    for name in want.column_names:  # column by column, so a failure names the column
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), f"{venue}: column {name} differs"


@pytest.mark.parametrize("venue", LEDGER_VENUES)
def test_ledger_rows_equal_the_sandbox_truth(sandbox: Sandbox, lake: Lake, venue: str) -> None:
    summary = run(sandbox, lake, venue)
    assert_ledger_equals_truth(sandbox, lake, venue, summary, TWO_DAYS)
    assert summary.unknown_codes == {} and summary.manifest_key


def test_binance_snapshots_equal_the_sandbox_truth(sandbox: Sandbox, lake: Lake) -> None:
    interval = Interval.parse("2026-11-15", "2026-11-20")
    summary = run(sandbox, lake, "binance", interval)
    truth = sandbox.snapshot_truth(summary.account, interval)
    for dataset, want in truth.items():
        keys = [(k, "ascending") for k in DATASETS[dataset][1]]
        got = without_run_columns(read_dataset(lake, summary.manifest_key, dataset)).select(want.column_names)
        assert want.num_rows > 0
        assert got.cast(want.schema).sort_by(keys).to_pylist() == want.sort_by(keys).to_pylist(), dataset
    assert summary.rows["snapshots/balances"] == truth["snapshots/balances"].num_rows


def _objects(lake: Lake) -> dict[str, Any]:
    """Every object's content, except what legitimately changes per run: ingested_at, the manifest's time
    stamps, and the venue's own response time stamp inside raw pages (SunX's top-level `ts`)."""
    out: dict[str, Any] = {}
    for key in lake.list_keys(""):
        data = lake.get_bytes(key)
        if key.endswith(".json.gz"):
            pages = json.loads(gzip.decompress(data))["pages"]
            for page in pages:
                if isinstance(page["body"], dict):
                    page["body"].pop("ts", None)
            out[key] = pages
        elif key.endswith(".parquet"):
            out[key] = pq.read_table(pa.BufferReader(data)).drop(["ingested_at"]).to_pylist()
        elif key.startswith("manifests/"):
            out[key] = sorted((f["key"], f["rows"], f["dataset"]) for f in json.loads(data)["files"])
        else:
            out[key] = data
    return out


@pytest.mark.parametrize("venue", ["sunx", "pacifica", "coinbase"])
def test_the_same_interval_three_times_leaves_the_same_objects(sandbox: Sandbox, lake: Lake, venue: str) -> None:
    seen = []
    for _ in range(3):
        run(sandbox, lake, venue)
        seen.append(_objects(lake))
    assert seen[0] == seen[1] == seen[2]
    assert any(k.startswith("ledger/") for k in seen[0]) and any(k.startswith("raw/") for k in seen[0])


@pytest.mark.parametrize("venue", ["exchangehubx", "coinbase", "sunx"])
def test_fetching_parts_of_a_window_at_once_changes_no_row(sandbox: Sandbox, lake: Lake, venue: str) -> None:
    """Lanes (parts of each window fetched at once) must give the rows, their order and entry_seq, and the counts
    of one sequential fetch: only the raw archive's page numbering, so raw_uri, may differ."""
    seen = []
    for lanes in (1, 3):
        summary = run(sandbox, lake, venue, fetch_lanes=lanes)
        table = read_dataset(lake, summary.manifest_key, "ledger").drop(["ingested_at", "raw_uri"])
        seen.append((table.sort_by("entry_seq").to_pylist(), summary.rows, summary.outside_interval, summary.pages))
    assert seen[0][:3] == seen[1][:3] and seen[0][1]["ledger"] > 0
    assert seen[1][3] >= seen[0][3]  # each lane pages on its own: the same pages or a few more


@pytest.mark.parametrize("venue", ["exchangehubx", "coinbase", "sunx", "pacifica"])
def test_pages_read_straight_into_arrow_write_the_rows_of_the_usual_way(
    sandbox: Sandbox, lake: Lake, venue: str
) -> None:
    """The fast path (engine.pages) must write exactly what reading the records writes, and be the path taken
    on the venue's usual pages (else this test would compare the usual way with itself)."""
    seen = []
    for arrow in (False, True):
        summary = run(sandbox, lake, venue, arrow_pages=arrow, batch_rows=97)  # many batches, odd sizes
        table = read_dataset(lake, summary.manifest_key, "ledger").drop(["ingested_at"])
        seen.append((table.sort_by("entry_seq"), summary.rows, summary.outside_interval, summary.unknown_codes))
        assert summary.batches_from_records == 0
        # Every page reaches the row thread without its parsed records (skimmed, or let go by the fetcher)
        # where the layout is flat: all but Coinbase, whose nested details come from the records.
        assert summary.pages_skimmed == (summary.pages if arrow and venue != "coinbase" else 0)
    assert seen[0][0].num_rows > 0
    assert seen[0][0].equals(seen[1][0]), "the fast path wrote other rows"
    assert seen[0][1:] == seen[1][1:]


@pytest.mark.parametrize("venue", LEDGER_VENUES)
def test_adjacent_intervals_share_no_row_and_miss_none(sandbox: Sandbox, lake: Lake, venue: str) -> None:
    first, second = Interval.parse("2026-11-18", "2026-11-19"), Interval.parse("2026-11-19", "2026-11-19T13:30:00Z")
    a = read_dataset(lake, run(sandbox, lake, venue, first).manifest_key, "ledger")
    b = read_dataset(lake, run(sandbox, lake, venue, second).manifest_key, "ledger")
    ids_a, ids_b = set(a.column("entry_id").to_pylist()), set(b.column("entry_id").to_pylist())
    assert not ids_a & ids_b
    whole = sandbox.truth(venue, account_config(sandbox, venue).account, Interval(first.start, second.end))
    assert ids_a | ids_b == set(whole.column("entry_id").to_pylist())


@pytest.mark.parametrize("venue", LEDGER_VENUES)
def test_faults_injected_still_end_exact(sandbox_factory: Callable[..., Sandbox], lake: Lake, venue: str) -> None:
    sb = sandbox_factory(faults=FaultSpec(burst_429=0.05, error_5xx=0.08, slow=0.03, drop=0.05, truncate=0.05,
                                          arrivals=0.1, slow_seconds=1.5))  # fmt: skip
    summary = run(sb, lake, venue, max_retries=12, page_size=100)  # enough requests for faults to hit
    assert summary.retries > 0
    assert_ledger_equals_truth(sb, lake, venue, summary, TWO_DAYS)


# Client-side limits set to the sandbox's "fast" budgets: the venue's limit is respected, not discovered.
FAST_LIMITS = {
    "exchangehubx": RateLimit(5, 1),
    "coinbase": RateLimit(5, 1),
    "sunx": RateLimit(6, 1),
    "pacifica": RateLimit(36, 1, "ip"),
    "binance": RateLimit(4800, 1, "ip"),
}


@pytest.mark.parametrize("venue", [*LEDGER_VENUES, "binance"])
def test_client_side_limits_keep_the_venue_from_answering_429(
    sandbox_factory: Callable[..., Sandbox], lake: Lake, venue: str
) -> None:
    sb = sandbox_factory(rate_limits="fast", days=1, entries_per_day=200, sunx_page_size=20)
    interval = Interval.parse("2026-11-19", "2026-11-20")
    summary = run(sb, lake, venue, interval, rate_limit=FAST_LIMITS[venue], page_size=20)
    stats = sb.stats()[venue]
    assert stats["429s"] == 0 and stats.get("418s", 0) == 0, stats
    assert summary.requests >= 3 and summary.rate_limit_wait_s > 0


def test_coinbase_documented_limit_counted_at_send_meets_no_429(
    sandbox_factory: Callable[..., Sandbox], lake: Lake
) -> None:
    """The venue's own limit (15/s, bursts to 30), counted from each request's send time, against the sandbox's
    independent reading of it (a token bucket at arrival): paced by the limiter, never answered 429."""
    sb = sandbox_factory(rate_limits="documented", days=1, entries_per_day=2_000)
    interval = Interval.parse("2026-11-19", "2026-11-20")
    # rate_limit None: the venue's documented limit; 50 requests, the first second's 15 and more
    summary = run(sb, lake, "coinbase", interval, page_size=40, rate_limit=None)
    stats = sb.stats()["coinbase"]
    assert stats["429s"] == 0, stats
    assert summary.requests >= 45 and summary.rate_limit_wait_s > 0


@pytest.mark.parametrize("venue", [*LEDGER_VENUES, "binance"])
def test_bad_credentials_fail_at_once_with_the_venue_message(sandbox: Sandbox, lake: Lake, venue: str) -> None:
    wrong = {"api_key": "not-a-known-key-000"} if venue == "pacifica" else {"api_secret": "d3Jvbmctc2VjcmV0LXZhbHVl"}
    before = sandbox.stats()[venue]["requests"]
    with pytest.raises(AuthError) as err:
        extract(venue, account_config(sandbox, venue), credentials(sandbox, venue, **wrong), TWO_DAYS, lake,
                options=options())  # fmt: skip
    assert sandbox.stats()[venue]["requests"] - before == 1
    message = str(err.value)
    assert venue in message and account_config(sandbox, venue).account in message and "2026-11-18" in message
    assert "authentication refused" in message
    assert not list(lake.list_keys(""))


@pytest.mark.parametrize(
    ("venue", "start", "limit"), [("sunx", "2026-08-01", "90 days"), ("binance", "2026-10-01", "month")]
)
def test_retention_exceeded_fails_before_any_request(
    sandbox: Sandbox, lake: Lake, venue: str, start: str, limit: str
) -> None:
    before = sandbox.stats()[venue]["requests"]
    with pytest.raises(RetentionError, match=limit):
        run(sandbox, lake, venue, Interval.parse(start, "2026-10-02" if venue == "binance" else "2026-08-02"))
    assert sandbox.stats()[venue]["requests"] == before


def test_a_truncated_body_that_never_heals_fails_as_transient(
    sandbox_factory: Callable[..., Sandbox], lake: Lake
) -> None:
    sb = sandbox_factory(faults=FaultSpec(truncate=1.0))
    with pytest.raises(TransientExtractError, match="gave up after 2 retries") as err:
        run(sb, lake, "coinbase", max_retries=2)
    assert "coinbase account" in str(err.value)
    assert not list(lake.list_keys("manifests/"))


# --- record-level faults the sandbox has no knob for: a rewriting proxy in front of it -----------------


@contextmanager
def rewriting_proxy(target: str, rewrite: Callable[[bytes], bytes]) -> Iterator[str]:
    """Forwards requests to `target` unchanged (path, query, headers: signatures stay valid for venues that
    do not sign the host) and passes each response body through `rewrite`."""
    pool = urllib3.PoolManager(retries=False)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            resp = pool.request("GET", target + self.path, headers=headers, retries=False)
            body = rewrite(resp.data) if resp.status == 200 else resp.data
            self.send_response(resp.status)
            for k, v in resp.headers.items():
                if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _run_via(sb: Sandbox, lake: Lake, venue: str, url: str) -> ExtractSummary:
    """One lane: the proxy's "second page" is then one page, not whichever of two lanes' pages came second (the
    later lane's first page may open with entries outside the interval, which are dropped: seen flaky)."""
    return extract(venue, account_config(sb, venue), credentials(sb, venue, base_url=url), TWO_DAYS, lake,
                   options=options(fetch_lanes=1))  # fmt: skip


def test_a_page_outside_the_arrow_layout_is_read_from_its_records(
    sandbox: Sandbox, lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    """A venue adding a field (or a type) the layout does not declare costs speed, never a row or a field.
    exchangeHubX: its pages are skimmed; the let-go pages of the other flat venues take the same way back (SunX
    pages by POST, which this proxy does not pass on; Pacifica's first pages lie after the interval)."""
    venue, field = "exchangehubx", b'"remark":'
    calls = {"n": 0}

    def rewrite(body: bytes) -> bytes:
        calls["n"] += 1
        return body.replace(field, b'"new_field":[1,{"a":null}],' + field, 1) if calls["n"] == 2 else body

    with caplog.at_level(logging.INFO, "ledgerlake.engine"), rewriting_proxy(sandbox.base_url(venue), rewrite) as url:
        summary = _run_via(sandbox, lake, venue, url)
    assert summary.batches_from_records == 1
    assert f"do not fit {venue}'s Arrow layout" in caplog.text
    # The other pages of that batch reached the row thread without their records (skimmed: exchangeHubX; let
    # go by the fetcher: the others), and the usual way parsed them in full again.
    assert summary.pages_skimmed == summary.pages - 1
    got = without_run_columns(read_dataset(lake, summary.manifest_key, "ledger")).sort_by("entry_seq")
    want = sandbox.truth(venue, summary.account, TWO_DAYS)
    got = got.select(want.column_names).cast(want.schema)
    details = [json.loads(d) for d in got.column("details").to_pylist()]
    assert [d.pop("new_field") for d in details if "new_field" in d] == [[1, {"a": None}]]
    assert details == [json.loads(d) for d in want.column("details").to_pylist()]
    for name in set(want.column_names) - {"details"}:
        assert got.column(name).to_pylist() == want.column(name).to_pylist(), name


def test_an_unknown_type_code_is_kept_as_other_and_reported(sandbox: Sandbox, lake: Lake) -> None:
    calls = {"n": 0}

    def rewrite(body: bytes) -> bytes:
        calls["n"] += 1
        return body.replace(b'"change_type":4,', b'"change_type":99,', 1) if calls["n"] == 2 else body

    with rewriting_proxy(sandbox.base_url("exchangehubx"), rewrite) as url:
        summary = _run_via(sandbox, lake, "exchangehubx", url)
    assert summary.unknown_codes == {"99": 1}
    table = read_dataset(lake, summary.manifest_key, "ledger")
    other = table.filter(pa.compute.equal(table.column("venue_entry_type"), "99")).to_pylist()
    assert len(other) == 1 and other[0]["entry_type"] == "other"
    truth = sandbox.truth("exchangehubx", summary.account, TWO_DAYS)
    assert table.num_rows == truth.num_rows


@pytest.mark.parametrize(("needle", "replacement", "field"), [
    (b'"balance_before":', b'"balance_was":', "balance_before"),
    (b'"amount":"', b'"amount":"x', "amount"),
])  # fmt: skip
def test_a_bad_record_is_quarantined_and_fails_the_partition(
    sandbox: Sandbox, lake: Lake, needle: bytes, replacement: bytes, field: str
) -> None:
    calls = {"n": 0}

    def rewrite(body: bytes) -> bytes:
        calls["n"] += 1
        return body.replace(needle, replacement, 1) if calls["n"] == 3 else body

    with rewriting_proxy(sandbox.base_url("exchangehubx"), rewrite) as url, pytest.raises(BadRecordError) as err:
        _run_via(sandbox, lake, "exchangehubx", url)
    account = account_config(sandbox, "exchangehubx").account
    message = str(err.value)
    assert f"exchangehubx account {account} interval [2026-11-18" in message and f"'{field}'" in message
    assert err.value.field == field
    [key] = list(lake.list_keys("quarantine/"))
    body = json.loads(lake.get_bytes(key))
    assert body["field"] == field and body["reason"] and body["record"]["id"]
    assert not list(lake.list_keys("manifests/"))


# --- secrets ---------------------------------------------------------------------------------------------


def test_secrets_appear_in_nothing_written(
    sandbox_factory: Callable[..., Sandbox], lake: Lake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    sb = sandbox_factory(faults=FaultSpec(error_5xx=0.1, truncate=0.05, drop=0.05), days=1, entries_per_day=200)
    interval = Interval.parse("2026-11-19", "2026-11-20")
    summaries = []
    secrets: list[str] = []
    for venue in (*LEDGER_VENUES, "binance"):
        acc = sb.accounts(venue)[0]
        secrets += [s for s in (acc.api_key, acc.api_secret, acc.passphrase) if s]
        summaries.append(run(sb, lake, venue, interval, max_retries=10).to_dict())
        wrong = {"api_key": "not-a-known-key-000"} if venue == "pacifica" else {"api_secret": "c2VjcmV0"}
        with pytest.raises(AuthError) as err:  # error messages too
            extract(venue, account_config(sb, venue), credentials(sb, venue, **wrong), interval, lake,
                    options=options())  # fmt: skip
        summaries.append({"error": str(err.value)})
    blobs = {"summaries and errors": json.dumps(summaries).encode(), "logs": caplog.text.encode()}
    for key in lake.list_keys(""):
        data = lake.get_bytes(key)
        blobs[key] = gzip.decompress(data) if key.endswith(".gz") else data
    assert len(blobs) > 10 and secrets
    for i, secret in enumerate(secrets):
        leaks = [where for where, blob in blobs.items() if secret.encode() in blob]
        assert not leaks, f"secret #{i} written to {leaks}"


@pytest.mark.parametrize("venue", LEDGER_VENUES)
def test_an_interval_without_entries_still_gets_its_manifest(sandbox: Sandbox, lake: Lake, venue: str) -> None:
    quiet = Interval.parse("2026-11-20T13:00:00Z", "2026-11-20T14:00:00Z")  # after the sandbox's now
    summary = run(sandbox, lake, venue, quiet)
    manifest = json.loads(lake.get_bytes(summary.manifest_key))
    assert summary.rows["ledger"] == 0 and not [f for f in manifest["files"] if f["dataset"] == "ledger"]
    assert manifest["files"]  # the raw pages that said "nothing" are kept


def test_pacifica_cursor_paging_equals_the_truth(sandbox_factory: Callable[..., Sandbox], lake: Lake) -> None:
    sb = sandbox_factory(pacifica_paging="cursor")
    summary = run(sb, lake, "pacifica")
    assert_ledger_equals_truth(sb, lake, "pacifica", summary, TWO_DAYS)


def test_pacifica_rows_repeated_by_shifting_offsets_are_removed(
    sandbox_factory: Callable[..., Sandbox], lake: Lake
) -> None:
    sb = sandbox_factory(faults=FaultSpec(arrivals=0.5, arrivals_count=7))
    summary = run(sb, lake, "pacifica", page_size=50)
    assert summary.duplicates_removed > 0
    assert_ledger_equals_truth(sb, lake, "pacifica", summary, TWO_DAYS)
