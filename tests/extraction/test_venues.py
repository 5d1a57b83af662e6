"""Known answers for each venue module: signatures, doc examples -> unified rows, paging state machines."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import orjson
import pytest

from ledgerlake.config import AccountConfig
from ledgerlake.engine.rows import records_batch
from ledgerlake.interval import Interval
from ledgerlake.venues import VENUE_CLASSES, binance, coinbase, exchangehubx, sunx
from ledgerlake.venues.base import LedgerColumns, Request, VenueCredentials, Window

DOCS = Path("/work/shared/venue-docs/examples")
ALL_TIME = (0, 2**62)


def example(name: str) -> dict:
    path = next(DOCS.glob(f"*_{name}.json"))
    return json.loads(path.read_text())


def venue(name: str, account: str = "acct-1", **options):
    creds = VenueCredentials("https://venue.test", "key-123456", "c2VjcmV0LWtleS1mb3ItdGVzdHM=", "pass-phrase")
    return VENUE_CLASSES[name](AccountConfig(name, account, f"ledgerlake_{name}", options), creds)


def rows(v, records) -> list[dict]:
    cols = LedgerColumns()
    v.append(records, cols)
    batch = records_batch(v, cols, ["s3://b/raw"] * len(cols), *ALL_TIME)
    return batch.table.to_pylist()


# --- signatures ----------------------------------------------------------------------------------------


def test_exchangehubx_signature_matches_the_published_test_vector() -> None:
    vector = example("exchangehubx_account_logs")["_signature_test_vector"]
    text = exchangehubx.string_to_sign(vector["method"], vector["path"], vector["headers"], {}, vector["body"])
    assert text == vector["string_to_sign"]
    assert exchangehubx.signature(vector["secret"], text) == vector["expected_signature_hex"]


def test_exchangehubx_signs_sorted_unencoded_query_and_headers() -> None:
    v = venue("exchangehubx")
    req = Request("GET", "/fapi/v1/account/logs", {"start_time": "1", "limit": "100", "cursor": "a b"})
    signed = v.sign(req, datetime.fromtimestamp(1666026215.729, UTC))
    h = signed.headers
    assert h["validate-timestamp"] == "1666026215729" and h["validate-appkey"] == "key-123456"
    expected = (
        "validate-algorithms=HmacSHA256&validate-appkey=key-123456&validate-recvwindow=5000"
        "&validate-timestamp=1666026215729#GET#/fapi/v1/account/logs#cursor=a b&limit=100&start_time=1"
    )
    assert h["validate-signature"] == exchangehubx.signature("c2VjcmV0LWtleS1mb3ItdGVzdHM=", expected)


def test_binance_signature_matches_the_documented_example() -> None:
    # Binance's API docs: "SIGNED Endpoint Examples for POST /api/v3/order".
    secret = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"
    query = (
        "symbol=LTCBTC&side=BUY&type=LIMIT&timeInForce=GTC&quantity=1&price=0.1&recvWindow=5000&timestamp=1499827319559"
    )
    assert binance.sign_query(secret, query) == "c8db56825ae71d6d79447849e617115f4a920fa2acdcab2b053c4b2838bd6b71"


def test_binance_signature_is_the_last_parameter_and_the_key_a_header() -> None:
    v = venue("binance")
    req = v.first_request(Window(Interval.parse("2026-11-01", "2026-11-02"), "SPOT"))
    signed = v.sign(req, datetime.fromtimestamp(1700000000, UTC))
    query = urlsplit(signed.url).query
    body, _, sig = query.rpartition("&signature=")
    assert sig == binance.sign_query("c2VjcmV0LWtleS1mb3ItdGVzdHM=", body)
    params = dict(parse_qsl(body))
    assert params["type"] == "SPOT" and params["timestamp"] == "1700000000000" and params["limit"] == "30"
    assert params["endTime"] == str(Interval.parse("2026-11-01", "2026-11-02").end_ms - 1)
    assert signed.headers == {"X-MBX-APIKEY": "key-123456"}


def test_coinbase_signature_hand_computed() -> None:
    # printf '%s' '1700000000.000GET/accounts/acc-1/ledger?limit=100' | openssl dgst -sha256 -mac HMAC
    #   -macopt hexkey:<base64-decoded secret> -binary | base64
    sig = coinbase.signature(
        "c2VjcmV0LWtleS1mb3ItdGVzdHM=", "1700000000.000", "GET", "/accounts/acc-1/ledger?limit=100"
    )
    assert sig == "1HgjFGZuhfvtMXUdIEdTF63Lnb08BTn2pTmuS+ru3r8="
    v = venue("coinbase", account="acc-1", currency="USD")
    signed = v.sign(Request("GET", "/accounts/acc-1/ledger", {"limit": "100"}), datetime.fromtimestamp(1700000000, UTC))
    assert signed.headers["CB-ACCESS-SIGN"] == sig
    assert signed.headers["CB-ACCESS-PASSPHRASE"] == "pass-phrase" and signed.url.endswith("/ledger?limit=100")


def test_sunx_signature_v2_hand_computed() -> None:
    # printf 'POST\napi.sunx.io\n/sapi/v1/account/bill_record\nAccessKeyId=ak-test-1&SignatureMethod=HmacSHA256&'
    #   'SignatureVersion=2&Timestamp=2025-09-16T07%3A16%3A15' |
    #   openssl dgst -sha256 -mac HMAC -macopt key:sk-test-secret -binary | base64
    creds = VenueCredentials("https://API.sunx.io", "ak-test-1", "sk-test-secret")
    v = sunx.SunX(AccountConfig("sunx", "uid-1", "ledgerlake_sunx"), creds)
    req = Request("POST", sunx.PATH, {}, {"mar_acct": "USDT"})
    signed = v.sign(req, datetime(2025, 9, 16, 7, 16, 15, tzinfo=UTC))
    query = dict(parse_qsl(urlsplit(signed.url).query))
    assert query["Signature"] == "/HCNKe82EaucZGfH1e7EJDOLwkHMxgRjKV2j+FHCKek="
    assert query["Timestamp"] == "2025-09-16T07:16:15" and "Timestamp=2025-09-16T07%3A16%3A15" in signed.url
    assert json.loads(signed.body) == {"mar_acct": "USDT"}  # business parameters travel unsigned in the body


# --- doc examples -> unified rows ------------------------------------------------------------------------


def test_exchangehubx_doc_example_row() -> None:
    v = venue("exchangehubx")
    payload = example("exchangehubx_account_logs")["response"]
    assert v.check(200, payload, {}).kind == "ok"
    [row] = rows(v, v.records(payload))
    assert row == {
        "entry_id": "123456",
        "occurred_at": datetime(2024, 4, 1, tzinfo=UTC),
        "asset": "USDT",
        "amount": Decimal("150.50"),
        "balance_before": Decimal("9850.00"),
        "balance_after": Decimal("10000.50"),
        "entry_type": "realized_pnl",
        "venue_entry_type": "4",
        "reference_id": "789012",
        "instrument": None,
        "details": '{"related_type":2,"remark":"Profit from closing position"}',
        "raw_uri": "s3://b/raw",
    }


def test_coinbase_doc_example_rows() -> None:
    v = venue("coinbase", account="acc-1", currency="DAI")
    payload = example("coinbaseexchange_ledger")["response"]
    assert v.check(200, payload, {}).kind == "ok"
    transfer, fee = rows(v, payload)
    assert transfer["entry_id"] == "12087495079"
    assert transfer["occurred_at"] == datetime(2021, 10, 28, 17, 14, 32, 593168, tzinfo=UTC)
    assert transfer["asset"] == "DAI" and transfer["amount"] == Decimal("-0.01")
    assert transfer["balance_after"] == Decimal("0.06454199") and transfer["balance_before"] is None
    assert (transfer["entry_type"], transfer["venue_entry_type"]) == ("transfer", "transfer")
    assert transfer["reference_id"] == "3ef093ad-2482-40d1-8ede-2f89cff5099e" and transfer["instrument"] is None
    assert transfer["details"] == (
        '{"details":{"from":"2f74edf7-1440-4586-86dc-ae58c5693691",'
        '"profile_transfer_id":"3ef093ad-2482-40d1-8ede-2f89cff5099e","to":"dda99503-4980-4b60-9549-0b770ee51336"}}'
    )
    assert fee["amount"] == Decimal("-1.7565669701255") and fee["entry_type"] == "fee"
    assert fee["reference_id"] == "1740617" and fee["instrument"] == "ETH-DAI"


def test_coinbase_needs_the_account_currency() -> None:
    from ledgerlake.config import ConfigError

    with pytest.raises(ConfigError, match="currency"):
        venue("coinbase")


def test_pacifica_doc_example_row_and_derived_id() -> None:
    wallet = "42trU9A5wallet"
    v = venue("pacifica", account=wallet)
    payload = example("pacifica_balance_history")["response"]
    assert v.check(200, payload, {}).kind == "ok"
    [row] = rows(v, v.records(payload))
    text = f"{wallet}|1716200000000|deposit|100.000000|1200.000000|0.000000"
    assert row["entry_id"] == hashlib.sha256(text.encode()).hexdigest()[:32]
    assert row["asset"] == "USDC" and row["amount"] == Decimal(100) and row["balance_after"] == Decimal(1200)
    assert row["balance_before"] is None and row["entry_type"] == "deposit" and row["reference_id"] is None
    assert row["details"] == '{"pending_balance":"0.000000"}'
    assert venue("pacifica", account=wallet, settlement_asset="USDT").asset == "USDT"


def test_sunx_doc_example_row_reads_the_bare_number_as_decimal() -> None:
    v = venue("sunx")
    text = example("sunx_bill_record")["response_raw_text"].encode()
    payload = v.parse(text)
    assert payload["data"][0]["amount"] == "18.800000000000000000"  # quoted before orjson, never a float
    assert v.check(200, payload, {}).kind == "ok"
    [row] = rows(v, v.records(payload))
    assert row["entry_id"] == "235" and row["amount"] == Decimal("18.8")
    assert row["occurred_at"] == datetime(2025, 9, 15, 11, 29, 11, 532000, tzinfo=UTC)
    assert (row["entry_type"], row["venue_entry_type"], row["instrument"]) == ("transfer", "14", None)
    assert row["details"] == '{"face_margin_account":"","id":235,"margin_account":"USDT","trade_partition":"USDT"}'


@pytest.mark.parametrize(
    "number",
    [
        "0.123456789012345678",
        "-1234567890123.000000000000000001",
        "99999999999999999999.999999999999999999",
        "7",
        "1e-18",
    ],
)
def test_sunx_amount_precision_survives_parsing(number: str) -> None:
    v = venue("sunx")
    body = (
        '{"code":200,"msg":"ok","data":[{"query_id":1,"id":1,"ts":1757935751532,"asset":"USDT","type":5,'
        f'"amount": {number},"contract_code":"BTC-USDT","margin_account":"USDT","face_margin_account":"",'
        '"trade_partition":"USDT","remark":"amount: 1.5"}],"ts":1}'
    ).encode()
    [row] = rows(v, v.records(v.parse(body)))
    assert row["amount"] == Decimal(number) and row["instrument"] == "BTC-USDT" and row["entry_type"] == "fee"
    assert json.loads(row["details"])["remark"] == "amount: 1.5"


def test_binance_snapshot_examples() -> None:
    v = venue("binance")
    ex = example("binance_account_snapshot")
    spot = v.records(ex["accountSnapshot_spot"])
    fut = v.records(ex["accountSnapshot_futures"])
    assert v.check(200, ex["accountSnapshot_spot"], {}).kind == "ok"
    bal, pos = v.snapshot_columns(spot + fut)
    assert bal["asset"] == ["BTC", "USDT", "USDT"]
    assert bal["total"] == ["0.09905021", "1.89109409", "120.23811389"]
    assert bal["details"][0] == '{"totalAssetOfBtc":"0.09942700"}' and bal["details"][2] == "{}"
    assert bal["snapshot_type"] == ["spot", "spot", "futures"]
    assert bal["margin_balance"][2] == "118.99782335" and bal["free"][2] is None
    assert pos == {
        "snapshot_at": [1576281599000],
        "symbol": ["BTCUSDT"],
        "position_amt": ["0.01000000"],
        "entry_price": ["7130.41000000"],
        "mark_price": ["7257.66239673"],
        "unrealized_profit": ["1.24029054"],
    }


# --- envelopes ------------------------------------------------------------------------------------------


def test_envelopes_are_checked_not_only_the_status() -> None:
    assert venue("exchangehubx").check(200, {"code": 10001, "message": "bad", "data": None}, {}).kind == "fatal"
    assert venue("binance").check(200, {"code": -1121, "msg": "Invalid symbol."}, {}).kind == "fatal"
    assert venue("binance").check(400, {"code": -2015, "msg": "Invalid API-key"}, {}).kind == "auth"
    assert venue("binance").check(400, {"code": -1021, "msg": "Timestamp outside"}, {}).kind == "retry"
    ban = venue("binance").check(418, example("binance_account_snapshot")["error_examples"]["ip_ban_418"], {})
    assert (ban.kind, ban.ban_until_ms) == ("ban", 1620286253180)
    assert venue("pacifica").check(200, {"success": False, "data": None, "error": "x", "code": 400}, {}).kind == "fatal"
    assert venue("pacifica").check(200, {"success": False, "data": None, "error": "x", "code": 500}, {}).kind == "retry"
    for err in example("sunx_bill_record")["error_examples"]["items"]:
        kind = venue("sunx").check(200, err, {}).kind
        assert kind == ("retry" if "frequency" in str(err) else "auth"), err
    assert venue("sunx").check(200, {"code": 1001, "msg": "param error"}, {}).kind == "fatal"
    cb = venue("coinbase", currency="USD")
    assert cb.check(401, {"message": "invalid signature"}, {}).kind == "auth"
    assert cb.check(429, {"message": "Private rate limit exceeded"}, {}).kind == "retry"


# --- paging ---------------------------------------------------------------------------------------------


def test_exchangehubx_cursor_paging_stops_on_has_more_false_or_a_stuck_cursor() -> None:
    v = venue("exchangehubx")
    w = Window(Interval.parse("2026-11-01", "2026-11-02"))
    first = v.first_request(w)
    assert first.params["start_time"] == str(w.interval.start_ms - 1) and first.params["end_time"] == str(
        w.interval.end_ms
    )
    page = {"data": {"has_more": True, "next_cursor": "c2", "items": []}}
    second = v.next_request(first, page, {}, [], w)
    assert second is not None and second.params["cursor"] == "c2"
    assert v.next_request(second, page, {}, [], w) is None  # the same cursor again would loop
    third = v.first_request(w)
    assert v.next_request(third, {"data": {"has_more": False, "next_cursor": "c9", "items": []}}, {}, [], w) is None


def test_coinbase_pages_older_with_cb_after_and_always_sends_dates() -> None:
    v = venue("coinbase", account="acc-1", currency="USD")
    w = Window(Interval.parse("2026-11-01", "2026-11-02"))
    first = v.first_request(w)
    assert first.params["start_date"] == "2026-11-01T00:00:00.000000Z"
    assert first.params["end_date"] == "2026-11-02T00:00:00.000000Z"
    second = v.next_request(first, [{}], {"cb-after": "900", "cb-before": "999"}, [{}], w)
    assert second is not None and second.params["after"] == "900"
    assert v.next_request(second, [], {"cb-after": "800"}, [], w) is None  # empty page: done


def test_pacifica_offsets_and_stop_when_older_than_the_window() -> None:
    v = venue("pacifica", account="w")
    w = Window(Interval.parse("2026-11-01", "2026-11-02"))
    first = v.first_request(w)
    full = [{"created_at": w.interval.end_ms + i} for i in range(v.page_size)]
    second = v.next_request(first, {"success": True, "data": full}, {}, full, w)
    assert second is not None and second.params["offset"] == str(v.page_size)
    assert not v.stop_after(full, w)
    assert v.stop_after([{"created_at": w.interval.start_ms - 1}], w)
    assert v.next_request(second, {"success": True, "data": full[:3]}, {}, full[:3], w) is None  # short page
    cursor_page = {"success": True, "data": full, "next_cursor": "abc", "has_more": True}
    third = v.next_request(v.first_request(w), cursor_page, {}, full, w)
    assert third is not None and third.params["cursor"] == "abc"


def test_sunx_windows_stay_under_48_hours_and_page_next_by_max_query_id() -> None:
    v = venue("sunx")
    windows = list(v.windows(Interval.parse("2026-11-01", "2026-11-06")))
    assert windows[0].interval.start == datetime(2026, 11, 1, tzinfo=UTC)
    assert windows[-1].interval.end == datetime(2026, 11, 6, tzinfo=UTC)
    for w in windows:
        req = v.first_request(w)
        assert req.body is not None and req.body["end_time"] - req.body["start_time"] < 48 * 3600 * 1000
        assert req.body["direct"] == "next" and req.body["mar_acct"] == "USDT"
    w = windows[0]
    first = v.first_request(w)
    second = v.next_request(first, None, {}, [{"query_id": 5}, {"query_id": 9}], w)
    assert second is not None and second.body is not None and second.body["from_id"] == 9
    assert v.next_request(second, None, {}, [], w) is None


def test_retention_limits_are_named() -> None:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    old = Interval.parse("2026-08-01", "2026-08-02")
    assert "90 days" in venue("sunx").retention_problem(old, now)
    assert "month" in venue("binance").retention_problem(Interval.parse("2026-10-01", "2026-10-02"), now)
    assert venue("binance").retention_problem(Interval.parse("2026-11-10", "2026-11-11"), now) is None
    assert venue("coinbase", currency="USD").retention_problem(old, now) is None


def test_paginators_keep_the_request_cost() -> None:
    v = venue("pacifica", account="w")
    w = Window(Interval.parse("2026-11-01", "2026-11-02"))
    first = v.first_request(w)
    full = [{"created_at": w.interval.end_ms}] * v.page_size
    second = v.next_request(first, {"success": True, "data": full}, {}, full, w)
    assert first.cost == 12 and second is not None and second.cost == 12


def test_bare_decimals_read_as_their_exact_text_whatever_the_page_looks_like() -> None:
    """The fast path (the numbers after the key in the body, in record order) and the fallback (quote the body,
    parse again) give the text the venue sent, never a float; records without a bare number are left as they are."""
    import random
    import re

    from ledgerlake.venues.base import BareDecimals

    quote_all = re.compile(rb'("(?:amount|balance)"\s*:\s*)(-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)')
    bare = BareDecimals(("amount", "balance"))
    numbers = [b"1", b"-0.5", b"12.34e-5", b"1E+3", b"0.1000000000000000055511151231257827"]
    forms = [b'"amount":%s', b'"amount": %s', b'"amount" : %s', b'"amount":"%s"', b'"balance":%s',
             b'"remark":"amount\\":5"', b'"amount":null', b'"n":{"amount":"%s"}']  # fmt: skip
    rng = random.Random(7)
    for _ in range(3000):
        records = []
        for _ in range(rng.randint(1, 5)):
            if rng.random() < 0.5:  # the usual page: the key once per record
                records.append(b'{"a":1,"amount":%s,"balance":"2"}' % rng.choice([*numbers, b'"3.25"']))
            else:
                parts = [f.replace(b"%s", rng.choice(numbers)) for f in rng.sample(forms, rng.randint(1, 3))]
                records.append(b"{" + b",".join(parts) + b"}")
        body = b'{"data":[' + b",".join(records) + b"]}"
        payload = orjson.loads(body)
        assert bare.fix(body, payload, payload["data"]) == orjson.loads(quote_all.sub(rb'\1"\2"', body)), body
    nested = b'{"data":[{"amount":"1","n":{"amount":2.5}}]}'
    assert bare.fix(nested, orjson.loads(nested), orjson.loads(nested)["data"]) == orjson.loads(nested)


def test_the_fast_query_string_is_urllib_s_text() -> None:
    """venues.base.urlencode skips quoting only where urllib would change nothing: signatures cover this text."""
    import random
    import string
    from urllib.parse import urlencode as stdlib_urlencode

    from ledgerlake.venues.base import urlencode

    rng = random.Random(7)
    alphabet = string.ascii_letters + "0123456789-_.~ &=+%/:#?é\u00a0"
    for _ in range(5_000):
        params = {
            "".join(rng.choices(alphabet, k=rng.randint(0, 6))): "".join(rng.choices(alphabet, k=rng.randint(0, 9)))
            for _ in range(rng.randint(0, 4))
        }
        assert urlencode(params) == stdlib_urlencode(params), params
        assert urlencode(sorted(params.items())) == stdlib_urlencode(sorted(params.items()))
    assert urlencode({"cursor": "abc-1_2.3~", "limit": "100"}) == "cursor=abc-1_2.3~&limit=100"
