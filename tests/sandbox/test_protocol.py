"""Each venue over real HTTP, driven by the independent client in sandbox_client.py."""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sandbox_client import (
    DOCS,
    binance_get,
    binance_rows,
    call,
    coinbase_get,
    collect_coinbase,
    collect_exchangehubx,
    collect_pacifica,
    collect_sunx,
    ms,
    pacifica_get,
    sunx_post,
    xhx_get,
    xhx_headers,
)

from ledgerlake.interval import Interval
from ledgerlake.sandbox import Sandbox
from ledgerlake.sandbox.pytest_plugin import SANDBOX_NOW

DAY = datetime(2026, 11, 18, tzinfo=UTC)  # a whole day inside the test sandboxes' history
EXAMPLES = Path(DOCS) / "examples"


def example(name: str) -> dict[str, Any]:
    path = next(EXAMPLES.glob(f"*{name}*.json"))
    return json.loads(path.read_text(), parse_float=Decimal)


def shape(value: Any) -> Any:
    """Keys and JSON types, recursively (lists by their first element)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def rows(table: Any) -> list[dict[str, Any]]:
    return table.to_pylist()


# --- signatures ----------------------------------------------------------------------------------------------
def test_exchangehubx_signature_test_vector() -> None:
    from ledgerlake.sandbox.exchangehubx import sign

    vec = example("exchangehubx")["_signature_test_vector"]
    ours = xhx_headers(
        vec["headers"]["validate-appkey"], vec["secret"], vec["method"], vec["path"], {}, vec["body"],
        ts=int(vec["headers"]["validate-timestamp"]), recv=vec["headers"]["validate-recvwindow"],
    )  # fmt: skip
    assert ours["validate-signature"] == vec["expected_signature_hex"]
    assert (
        sign(vec["method"], vec["path"], "", vec["body"], vec["headers"], vec["secret"])
        == vec["expected_signature_hex"]
    )


# --- shapes of the documents' examples ---------------------------------------------------------------------
def test_exchangehubx_matches_example(sandbox: Sandbox) -> None:
    acc = sandbox.accounts("exchangehubx")[0]
    page = xhx_get(sandbox.base_url("exchangehubx"), acc, {"change_type": 4, "limit": 50}).json()
    assert shape(page) == shape(example("exchangehubx")["response"])
    assert {it["change_type"] for it in page["data"]["items"]} == {4}


def test_binance_matches_examples(sandbox: Sandbox) -> None:
    ex = example("binance")
    acc = sandbox.accounts("binance")[0]
    base = sandbox.base_url("binance")
    spot = binance_get(base, acc, {"type": "SPOT"})
    assert spot.status == 200 and "x-mbx-used-weight-1m" in spot.headers
    assert shape(spot.json()) == shape(ex["accountSnapshot_spot"])
    assert shape(binance_get(base, acc, {"type": "FUTURES"}).json()) == shape(ex["accountSnapshot_futures"])
    margin_doc = {  # the MARGIN example of the document page (not in examples/)
        "code": 200, "msg": "", "snapshotVos": [{"data": {
            "marginLevel": "", "totalAssetOfBtc": "", "totalLiabilityOfBtc": "", "totalNetAssetOfBtc": "",
            "userAssets": [{"asset": "", "borrowed": "", "free": "", "interest": "", "locked": "", "netAsset": ""}]},
            "type": "margin", "updateTime": 1576281599000}]}  # fmt: skip
    assert shape(binance_get(base, acc, {"type": "MARGIN"}).json()) == shape(margin_doc)
    stale = binance_get(base, acc, {"type": "SPOT"}, ts=int(time.time() * 1000) - 120_000)
    assert stale.status == 400 and stale.json() == ex["error_examples"]["recvWindow"]


def test_pacifica_matches_examples(sandbox_factory: Any) -> None:
    ex = example("pacifica")
    for mode in ("offset", "cursor"):
        sb = sandbox_factory(pacifica_paging=mode)
        acc = sb.accounts("pacifica")[0]
        page = pacifica_get(sb.base_url("pacifica"), {"account": acc.account, "limit": 10}).json()
        expected = shape(ex["response"])
        if mode == "offset":  # the document here: success + data only
            expected = {k: v for k, v in expected.items() if k in ("success", "data")}
        assert shape(page) == expected
    err = pacifica_get(sb.base_url("pacifica"), {"limit": 10})
    assert err.status == 400 and shape(err.json()) == shape(ex["error_examples"]["items"][0])


def test_coinbase_matches_examples(sandbox: Sandbox) -> None:
    ex = example("coinbaseexchange")
    acc = sandbox.accounts("coinbase")[0]
    got = coinbase_get(sandbox.base_url("coinbase"), acc, {"start_date": "2026-11-17", "limit": 1000}).json()
    for want in ex["response"] + ex["docs_example"]:
        same_kind = [it for it in got if it["type"] == want["type"] and set(it["details"]) == set(want["details"])]
        assert same_kind, f"no {want['type']} entry with details {sorted(want['details'])}"
        assert shape(same_kind[0]) == shape(want)
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", same_kind[0]["created_at"])
        assert re.fullmatch(r"-?\d+\.\d{16}", same_kind[0]["amount"])


def test_sunx_matches_example_with_exact_bare_numbers(sandbox: Sandbox) -> None:
    ex = example("sunx")
    acc = sandbox.accounts("sunx")[0]
    answer = sunx_post(sandbox.base_url("sunx"), acc, {"mar_acct": "USDT", "direct": "next"})
    page = answer.json()
    assert shape(page) == shape(json.loads(ex["response_raw_text"], parse_float=Decimal))
    # amounts are bare JSON numbers with 18 decimals in the text itself
    assert re.search(r'"amount":-?\d+\.\d{18},', answer.text)
    assert all(isinstance(it["amount"], Decimal) for it in page["data"])


# --- authentication ------------------------------------------------------------------------------------------
def test_wrong_credentials_are_refused_with_each_venues_answer(sandbox: Sandbox) -> None:
    from dataclasses import replace

    old = time.time() - 600
    xb, xa = sandbox.base_url("exchangehubx"), sandbox.accounts("exchangehubx")[0]
    for bad in (replace(xa, api_key="ak_nope"), replace(xa, api_secret="sk_nope")):
        r = xhx_get(xb, bad, {"limit": 5})
        assert r.status == 401 and r.json()["code"] == 401 and r.json()["data"] is None
    assert xhx_get(xb, xa, {"limit": 5}, ts=int(old * 1000)).status == 401

    bb, ba = sandbox.base_url("binance"), sandbox.accounts("binance")[0]
    assert binance_get(bb, replace(ba, api_key="x" * 64), {"type": "SPOT"}).json()["code"] == -2015
    bad_sig = binance_get(bb, replace(ba, api_secret="y" * 64), {"type": "SPOT"})
    assert (bad_sig.status, bad_sig.json()["code"]) == (400, -1022)
    nokey = call("GET", f"{bb}/sapi/v1/accountSnapshot?type=SPOT&timestamp=1&signature=00")
    assert (nokey.status, nokey.json()["code"]) == (401, -2014)

    cb, ca = sandbox.base_url("coinbase"), sandbox.accounts("coinbase")[0]
    cases = {
        "Invalid API Key": (replace(ca, api_key="0" * 32), {}),
        "invalid signature": (replace(ca, api_secret="c2VjcmV0"), {}),
        "Invalid Passphrase": (replace(ca, passphrase="nope"), {}),
        "request timestamp expired": (ca, {"ts": old}),
    }
    for message, (cred, kw) in cases.items():
        r = coinbase_get(cb, ca, {}, key_acc=cred, **kw)
        assert (r.status, r.json()) == (401, {"message": message})

    sb_, sa = sandbox.base_url("sunx"), sandbox.accounts("sunx")[0]
    for cred, when in ((replace(sa, api_key="k-nope"), None), (replace(sa, api_secret="nope"), None),
                       (sa, datetime.now(UTC) - timedelta(hours=1))):  # fmt: skip
        r = sunx_post(sb_, cred, {"mar_acct": "USDT"}, when)
        assert r.json()["status"] == "error" and r.json()["err-code"] == "api-signature-not-valid", r.text

    pb, pa_ = sandbox.base_url("pacifica"), sandbox.accounts("pacifica")[0]
    assert pacifica_get(pb, {"account": pa_.account}, key="pf_nope").status == 401
    assert pacifica_get(pb, {"account": pa_.account}, key=pa_.api_key).status == 200
    assert pacifica_get(pb, {"account": pa_.account}).status == 200  # unsigned GET


def test_accounts_are_separate_by_key(sandbox: Sandbox) -> None:
    base = sandbox.base_url("exchangehubx")
    a, b = sandbox.accounts("exchangehubx")
    assert a.api_key != b.api_key
    ids_a = {it["id"] for it in xhx_get(base, a, {"limit": 20}).json()["data"]["items"]}
    ids_b = {it["id"] for it in xhx_get(base, b, {"limit": 20}).json()["data"]["items"]}
    assert ids_a and ids_b and not ids_a & ids_b


# --- paging: every entry exactly once, equal to the ground truth -------------------------------------------------
@pytest.mark.parametrize("limit", [7, 100])
def test_exchangehubx_paging_equals_truth(sandbox: Sandbox, limit: int) -> None:
    for acc in sandbox.accounts("exchangehubx"):
        got = collect_exchangehubx(sandbox.base_url("exchangehubx"), acc, DAY, DAY + timedelta(days=1), limit)
        assert got == rows(sandbox.truth("exchangehubx", acc.account, Interval(DAY, DAY + timedelta(days=1))))
        assert len(got) == 300


def test_coinbase_paging_equals_truth(sandbox: Sandbox) -> None:
    start, end = DAY - timedelta(hours=6), DAY + timedelta(days=1, hours=6)
    for acc in sandbox.accounts("coinbase"):
        got = collect_coinbase(sandbox.base_url("coinbase"), acc, start, end, limit=37)
        want = rows(sandbox.truth("coinbase", acc.account, Interval(start, end)))
        assert got == want and len(got) > 300


@pytest.mark.parametrize("mode", ["offset", "cursor"])
def test_pacifica_paging_equals_truth(sandbox_factory: Any, mode: str) -> None:
    sb = sandbox_factory(pacifica_paging=mode)
    for acc in sb.accounts("pacifica"):
        got = collect_pacifica(sb.base_url("pacifica"), acc, DAY, DAY + timedelta(days=1), 250, cursor=mode == "cursor")
        assert got == rows(sb.truth("pacifica", acc.account, Interval(DAY, DAY + timedelta(days=1))))


def test_sunx_paging_equals_truth_across_48h_windows(sandbox: Sandbox) -> None:
    start, end = DAY - timedelta(days=1), SANDBOX_NOW  # 3.5 days: several 48 h windows, today partial
    for acc in sandbox.accounts("sunx"):
        got = collect_sunx(sandbox.base_url("sunx"), acc, start, end)
        want = rows(sandbox.truth("sunx", acc.account, Interval(start, end)))
        assert got == want and len(got) > 900


# --- venue particulars -------------------------------------------------------------------------------------------
def test_coinbase_dates_cursors_and_defaults(sandbox: Sandbox) -> None:
    base, acc = sandbox.base_url("coinbase"), sandbox.accounts("coinbase")[0]
    default = coinbase_get(base, acc, {"limit": 1000}).json()
    times = [it["created_at"] for it in default]
    assert times == sorted(times, reverse=True)  # newest first
    assert min(times) >= (SANDBOX_NOW - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%S")  # only the last day
    # inclusive end: the entry stamped exactly at midnight of the next day is included
    day_end = coinbase_get(base, acc, {"start_date": "2026-11-18", "end_date": "2026-11-19", "limit": 1000}).json()
    assert day_end[0]["created_at"] == "2026-11-19T00:00:00.000000Z"
    assert day_end[-1]["created_at"] == "2026-11-18T00:00:00.000000Z"
    for fmt in ("2026-11-18T00:00:00", "2026-11-18T00:00:00.000000Z", "2026-11-18T01:00:00+01:00"):
        at_midnight = coinbase_get(base, acc, {"start_date": fmt, "end_date": fmt}).json()
        assert at_midnight and {it["created_at"] for it in at_midnight} == {"2026-11-18T00:00:00.000000Z"}, fmt
    for bad in ("18/11/2026", "2026-11-18 00:00", "1969-12-31", "yesterday"):
        r = coinbase_get(base, acc, {"start_date": bad})
        assert r.status == 400 and "message" in r.json()
    # before= pages back towards newer entries, still listed newest first
    first = coinbase_get(base, acc, {"start_date": "2026-11-18", "end_date": "2026-11-19", "limit": 10})
    second = coinbase_get(base, acc, {"start_date": "2026-11-18", "end_date": "2026-11-19", "limit": 10,
                                      "after": first.headers["cb-after"]})  # fmt: skip
    back = coinbase_get(base, acc, {"limit": 10, "start_date": "2026-11-18", "before": second.headers["cb-before"]})
    assert back.json() == first.json()
    assert coinbase_get(base, acc, {"limit": 1001}).status == 400
    other = type(acc)(account="00000000-0000-4000-a000-000000000000", api_key="", api_secret="")
    r = coinbase_get(base, other, {}, key_acc=acc)
    assert r.status == 404 and "message" in r.json()


def test_binance_windows_and_limits(sandbox_factory: Any) -> None:
    sb = sandbox_factory(days=40)
    base, acc = sb.base_url("binance"), sb.accounts("binance")[0]
    default = binance_get(base, acc, {"type": "SPOT"}).json()
    assert default["code"] == 200 and len(default["snapshotVos"]) == 7  # last 7 days
    stamps = [v["updateTime"] for v in default["snapshotVos"]]
    assert all(s % 86_400_000 == 86_399_000 for s in stamps)  # 23:59:59.000 UTC
    for limit in (6, 31):
        r = binance_get(base, acc, {"type": "SPOT", "limit": limit})
        assert r.status == 400 and r.json()["code"] == -1130
    span = binance_get(base, acc, {"type": "SPOT", "startTime": ms(SANDBOX_NOW - timedelta(days=30)),
                                   "endTime": ms(SANDBOX_NOW)})  # fmt: skip
    assert span.status == 400 and span.json()["code"] == -1127
    assert binance_get(base, acc, {"type": "spotty"}).json()["code"] == -1130
    assert binance_get(base, acc, {}).json()["code"] == -1102
    # one month only: a window reaching further back silently yields the last month's snapshots
    old = binance_get(base, acc, {"type": "SPOT", "startTime": ms(SANDBOX_NOW - timedelta(days=39)),
                                  "endTime": ms(SANDBOX_NOW - timedelta(days=29)), "limit": 30}).json()  # fmt: skip
    assert old["snapshotVos"] and min(v["updateTime"] for v in old["snapshotVos"]) >= ms(SANDBOX_NOW) - 30 * 86_400_000
    # consistent with the truth (an independent mapping of the answers) and internally
    window = {"startTime": ms(DAY - timedelta(days=5)), "endTime": ms(DAY + timedelta(days=1)), "limit": 30}
    truth = sb.snapshot_truth(acc.account, Interval(DAY - timedelta(days=5), DAY + timedelta(days=1)))
    got_bal: list[dict[str, Any]] = []
    got_pos: list[dict[str, Any]] = []
    for kind in ("SPOT", "MARGIN", "FUTURES"):
        for vo in binance_get(base, acc, {"type": kind, **window}).json()["snapshotVos"]:
            balances, positions = binance_rows(acc.account, vo)
            got_bal += balances
            got_pos += positions
            data = vo["data"]
            for u in data.get("userAssets", []):
                parts = [Decimal(u[k]) for k in ("free", "locked", "borrowed", "interest")]
                assert Decimal(u["netAsset"]) == parts[0] + parts[1] - parts[2] - parts[3]
            for p in data.get("position", []):
                profit = (Decimal(p["markPrice"]) - Decimal(p["entryPrice"])) * Decimal(p["positionAmt"])
                assert abs(profit - Decimal(p["unRealizedProfit"])) < Decimal("0.00000001")
            if kind == "FUTURES":
                usdt = next(a for a in data["assets"] if a["asset"] == "USDT")
                unreal = sum((Decimal(p["unRealizedProfit"]) for p in data["position"]), Decimal(0))
                assert Decimal(usdt["marginBalance"]) == Decimal(usdt["walletBalance"]) + unreal

    def order(r: dict[str, Any]) -> tuple[str, ...]:
        return (r.get("snapshot_type", ""), str(r["snapshot_at"]), r.get("asset") or r.get("symbol"))

    assert sorted(got_bal, key=order) == sorted(truth["snapshots/balances"].to_pylist(), key=order)
    assert sorted(got_pos, key=order) == sorted(truth["snapshots/positions"].to_pylist(), key=order)
    assert len(got_bal) == 6 * 9 and got_pos


def test_out_of_range_parameters_get_the_venues_error(sandbox: Sandbox) -> None:
    xb, xa = sandbox.base_url("exchangehubx"), sandbox.accounts("exchangehubx")[0]
    for q in ({"limit": 101}, {"limit": 0}, {"change_type": 17}, {"start_time": 5, "end_time": 1}):
        r = xhx_get(xb, xa, q)
        assert r.status == 400 and r.json()["code"] == 400 and r.json()["data"] is None, q
    sb_, sa = sandbox.base_url("sunx"), sandbox.accounts("sunx")[0]
    now = ms(SANDBOX_NOW)
    for body in ({"direct": "next"},  # mar_acct missing
                 {"mar_acct": "USDT", "start_time": now - 49 * 3_600_000, "end_time": now},
                 {"mar_acct": "USDT", "start_time": now - 91 * 86_400_000, "end_time": now - 90 * 86_400_000},
                 {"mar_acct": "USDT", "direct": "sideways"}):  # fmt: skip
        page = sunx_post(sb_, sa, body).json()
        assert page["code"] != 200 and page["msg"] and "data" not in page, body
    pb, pa_ = sandbox.base_url("pacifica"), sandbox.accounts("pacifica")[0]
    for q in ({"limit": 0}, {"limit": 100_000}, {"offset": -1}):
        r = pacifica_get(pb, {"account": pa_.account, **q})
        assert r.status == 400 and r.json()["success"] is False and r.json()["code"] == 400


def test_sunx_prev_direction_and_contract_filter(sandbox: Sandbox) -> None:
    base, acc = sandbox.base_url("sunx"), sandbox.accounts("sunx")[0]
    window = {"mar_acct": "USDT", "start_time": ms(DAY), "end_time": ms(DAY + timedelta(days=1)) - 1}
    newest = sunx_post(base, acc, {**window, "direct": "prev"}).json()["data"]
    ids = [it["query_id"] for it in newest]
    assert ids == sorted(ids, reverse=True) and len(ids) == 100
    older = sunx_post(base, acc, {**window, "direct": "prev", "from_id": ids[-1]}).json()["data"]
    assert older[0]["query_id"] < ids[-1]
    btc = sunx_post(base, acc, {**window, "direct": "next", "contract": "btc-usdt"}).json()["data"]
    assert btc and {it["contract_code"] for it in btc} == {"BTC-USDT"}


def test_pacifica_offsets_shift_when_entries_arrive(sandbox: Sandbox) -> None:
    base, acc = sandbox.base_url("pacifica"), sandbox.accounts("pacifica")[0]
    first = pacifica_get(base, {"account": acc.account, "limit": 5}).json()["data"]
    before_truth = rows(sandbox.truth("pacifica", acc.account, Interval(DAY, DAY + timedelta(days=1))))
    sandbox.arrive("pacifica", 2)
    second = pacifica_get(base, {"account": acc.account, "limit": 5, "offset": 5}).json()["data"]
    assert second[:2] == first[3:]  # the same rows again, two offsets later
    newest = pacifica_get(base, {"account": acc.account, "limit": 2}).json()["data"]
    assert all(it["created_at"] > ms(SANDBOX_NOW) for it in newest)  # arrivals are after now
    assert rows(sandbox.truth("pacifica", acc.account, Interval(DAY, DAY + timedelta(days=1)))) == before_truth
