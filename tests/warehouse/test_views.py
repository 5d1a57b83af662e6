"""The analyst views against figures computed here, independently, from the rows put in the lake."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from warehouse_lakedata import day_interval, in_interval, ledger_history, snapshot_history, write_partition

from ledgerlake.lake import Lake, S3Settings
from ledgerlake.warehouse import Warehouse, WarehouseSettings, open_warehouse
from ledgerlake.warehouse.sql import SQL_DIR

Row = dict[str, Any]
ZERO = Decimal(0)
EXAMPLES = SQL_DIR / "examples"
README = Path(SQL_DIR).parents[1] / "README.md"

# Three days ending on this month's first day: two in last month, one in this one (for "last month").
TODAY = datetime.now(UTC).date()
THIS_MONTH = TODAY.replace(day=1)
D0 = datetime.combine(THIS_MONTH - timedelta(days=2), datetime.min.time(), UTC)
DAYS = 3


def utc_day(t: datetime) -> date:
    return t.astimezone(UTC).date()


@dataclass
class Views:
    warehouse: Warehouse
    data: dict[str, Any]


@pytest.fixture(scope="module", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def views(
    request: pytest.FixtureRequest, s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Views]:
    """Loaded once per backend for the whole module: the tests here only read."""
    lake = Lake(
        S3Settings(
            bucket=f"views-{uuid.uuid4().hex[:10]}",
            endpoint_url=s3_endpoint,
            access_key_id="testing",
            secret_access_key="testing",
        )
    )
    lake.ensure_bucket()
    with ExitStack() as stack:
        if request.param == "duckdb":
            settings = WarehouseSettings(kind="duckdb", path=str(tmp_path_factory.mktemp("views") / "wh.duckdb"))
        else:
            settings = WarehouseSettings(
                kind="postgres", dsn=stack.enter_context(request.getfixturevalue("pg_databases")())
            )
        warehouse = stack.enter_context(open_warehouse(settings))
        yield Views(warehouse, load_everything(lake, warehouse))


def load_everything(lake: Lake, warehouse: Warehouse) -> dict[str, Any]:
    """Five venues' worth of partitions, loaded day by day; returns the rows as stored."""
    ledger: list[Row] = []

    def load(venue: str, account: str, rows: list[Row], days: int = DAYS) -> None:
        for d in range(days):
            interval = day_interval(D0 + timedelta(days=d))
            ledger.extend(write_partition(lake, venue, account, interval, in_interval(rows, interval)))
            warehouse.load_partition(lake, venue, account, interval)

    load("exchangehubx", "main", ledger_history("exchangehubx", "main", D0, DAYS, 30, assets=("USDT", "BTC")))
    # coinbase trades on days 0 and 2 only: day 1 is loaded empty, and a fourth day is loaded empty too
    coinbase = ledger_history("coinbase", "c-1", D0, DAYS, 12, assets=("USDT",), quiet_days=[1])
    load("coinbase", "c-1", coinbase, days=DAYS + 1)
    # pacifica's venue lost an entry on day 1: its balances stop chaining there
    pacifica = ledger_history("pacifica", "wallet", D0, DAYS, 10, assets=("USDC",))
    lost = next(
        i for i, r in enumerate(pacifica) if utc_day(r["occurred_at"]) == utc_day(D0 + timedelta(days=1)) and i > 0
    )
    del pacifica[lost + 1]
    load("pacifica", "wallet", pacifica)
    load("sunx", "uid", ledger_history("sunx", "uid", D0, DAYS, 15, assets=("USDT", "TRX")))

    snapshots: list[Row] = []
    for d in range(DAYS):
        interval = day_interval(D0 + timedelta(days=d))
        rows = in_interval(snapshot_history("spot-1", D0, DAYS), interval, "snapshot_at")
        snapshots.extend(write_partition(lake, "binance", "spot-1", interval, {"snapshots/balances": rows}))
        warehouse.load_partition(lake, "binance", "spot-1", interval)
    # a second coinbase account active yesterday, for the "what moved yesterday" example, and today too: a run
    # that crosses midnight UTC asks the database for "yesterday" after it has become today
    yesterday = datetime.combine(TODAY - timedelta(days=1), datetime.min.time(), UTC)
    rows = ledger_history("coinbase", "c-2", yesterday, 2, 15, assets=("USDT",))
    for d in range(2):
        interval = day_interval(yesterday + timedelta(days=d))
        ledger.extend(write_partition(lake, "coinbase", "c-2", interval, in_interval(rows, interval)))
        warehouse.load_partition(lake, "coinbase", "c-2", interval)
    loaded_through = {("coinbase", "c-1"): utc_day(D0) + timedelta(days=DAYS), ("coinbase", "c-2"): TODAY}
    return {"ledger": ledger, "snapshots": snapshots, "loaded_through": loaded_through}


def ordered(ledger: list[Row]) -> list[Row]:
    return sorted(ledger, key=lambda r: (r["venue"], r["account"], r["asset"], r["occurred_at"], r["entry_seq"]))


def expected_daily_balances(data: dict[str, Any]) -> list[Row]:
    groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for r in ordered(data["ledger"]):
        groups[(r["venue"], r["account"], r["asset"])].append(r)
    out = []
    for (venue, account, asset), rows in groups.items():
        reported = rows[0]["balance_after"] is not None
        first = utc_day(rows[0]["occurred_at"])
        last = data["loaded_through"].get((venue, account), utc_day(D0) + timedelta(days=DAYS - 1))
        balance, as_of, i = ZERO, None, 0
        day = first
        while day <= last:
            entries = 0
            while i < len(rows) and utc_day(rows[i]["occurred_at"]) == day:
                r = rows[i]
                balance = r["balance_after"] if reported else balance + r["amount"]
                as_of, entries, i = r["occurred_at"], entries + 1, i + 1
            out.append(
                {
                    "venue": venue,
                    "account": account,
                    "asset": asset,
                    "day": day,
                    "closing_balance": balance,
                    "source": "balance_after" if reported else "running_sum",
                    "entries": entries,
                    "as_of": as_of,
                }
            )
            day += timedelta(days=1)
    totals: dict[tuple[str, str, str, date], Decimal] = defaultdict(Decimal)
    stamps: dict[tuple[str, str, str, date], datetime] = {}
    for s in data["snapshots"]:
        key = (s["venue"], s["account"], s["asset"], utc_day(s["snapshot_at"]))
        totals[key] += s["total"]
        stamps[key] = max(stamps.get(key, s["snapshot_at"]), s["snapshot_at"])
    for (venue, account, asset, day), total in totals.items():
        out.append(
            {
                "venue": venue,
                "account": account,
                "asset": asset,
                "day": day,
                "closing_balance": total,
                "source": "snapshot",
                "entries": None,
                "as_of": stamps[(venue, account, asset, day)],
            }
        )
    return out


def expected_reconciliation(data: dict[str, Any]) -> list[Row]:
    groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for r in ordered(data["ledger"]):
        groups[(r["venue"], r["account"], r["asset"])].append(r)
    out = []
    for (venue, account, asset), rows in groups.items():
        reported = rows[0]["balance_after"] is not None
        by_day: dict[date, list[Row]] = defaultdict(list)
        for r in rows:
            by_day[utc_day(r["occurred_at"])].append(r)
        closing: Decimal | None = None
        running = ZERO
        previous_after: Decimal | None = None
        for day, day_rows in sorted(by_day.items()):
            net = sum((r["amount"] for r in day_rows), ZERO)
            breaks = 0
            for r in day_rows:
                before = (
                    r["balance_before"]
                    if r["balance_before"] is not None
                    else (r["balance_after"] - r["amount"] if r["balance_after"] is not None else None)
                )
                given = r["balance_before"]
                own_sum_wrong = given is not None and given + r["amount"] != r["balance_after"]
                chain_broken = before is not None and previous_after is not None and before != previous_after
                breaks += own_sum_wrong or chain_broken
                previous_after = r["balance_after"]
            if reported:
                first = day_rows[0]
                opening = (
                    closing
                    if closing is not None
                    else (
                        first["balance_before"]
                        if first["balance_before"] is not None
                        else first["balance_after"] - first["amount"]
                    )
                )
                closing = day_rows[-1]["balance_after"]
                implied = opening + net
                row = {
                    "opening_balance": opening,
                    "implied_closing": implied,
                    "reported_closing": closing,
                    "reported_change": closing - opening,
                    "difference": closing - implied,
                    "status": "ok" if closing == implied and breaks == 0 else "mismatch",
                }
            else:
                row = {
                    "opening_balance": running,
                    "implied_closing": running + net,
                    "reported_closing": None,
                    "reported_change": None,
                    "difference": None,
                    "status": "not_reported",
                }
            running += net
            out.append(
                {
                    "venue": venue,
                    "account": account,
                    "asset": asset,
                    "day": day,
                    "entries": len(day_rows),
                    "net_amount": net,
                    "entry_breaks": breaks,
                    **row,
                }
            )
    previous: dict[tuple[str, str, str], Decimal] = {}
    for b in sorted((b for b in expected_daily_balances(data) if b["source"] == "snapshot"), key=lambda b: b["day"]):
        key = (b["venue"], b["account"], b["asset"])
        opening = previous.get(key)
        out.append(
            {
                "venue": b["venue"],
                "account": b["account"],
                "asset": b["asset"],
                "day": b["day"],
                "entries": None,
                "opening_balance": opening,
                "net_amount": None,
                "implied_closing": None,
                "reported_closing": b["closing_balance"],
                "reported_change": None if opening is None else b["closing_balance"] - opening,
                "difference": None,
                "entry_breaks": None,
                "status": "report_only",
            }
        )
        previous[key] = b["closing_balance"]
    return out


def expected_flows(ledger: list[Row]) -> list[Row]:
    sums: dict[tuple[Any, ...], Row] = {}
    for r in ledger:
        key = (r["venue"], r["account"], r["asset"], utc_day(r["occurred_at"]), r["entry_type"])
        s = sums.setdefault(key, {"entries": 0, "inflow": ZERO, "outflow": ZERO, "net_amount": ZERO})
        s["entries"] += 1
        s["inflow"] += max(r["amount"], ZERO)
        s["outflow"] += max(-r["amount"], ZERO)
        s["net_amount"] += r["amount"]
    names = ("venue", "account", "asset", "day", "entry_type")
    return [{**dict(zip(names, k, strict=True)), **v} for k, v in sums.items()]


def expected_fees_and_funding(ledger: list[Row]) -> list[Row]:
    sums: dict[tuple[Any, ...], Row] = {}
    for r in ledger:
        if r["entry_type"] not in ("fee", "rebate", "funding"):
            continue
        key = (r["venue"], r["account"], r["asset"], utc_day(r["occurred_at"]))
        s = sums.setdefault(
            key,
            dict(
                entries=0,
                fees_paid=ZERO,
                rebates_received=ZERO,
                funding_received=ZERO,
                funding_paid=ZERO,
                funding_net=ZERO,
                net_amount=ZERO,
            ),
        )
        a = r["amount"]
        s["entries"] += 1
        s["net_amount"] += a
        if r["entry_type"] == "fee":
            s["fees_paid"] -= a
        elif r["entry_type"] == "rebate":
            s["rebates_received"] += a
        else:
            s["funding_net"] += a
            s["funding_received"] += max(a, ZERO)
            s["funding_paid"] += max(-a, ZERO)
    names = ("venue", "account", "asset", "day")
    return [{**dict(zip(names, k, strict=True)), **v} for k, v in sums.items()]


def keyed(rows: list[Row], *key: str) -> list[Row]:
    return sorted(rows, key=lambda r: tuple(str(r[k]) for k in key))


def test_daily_balances(views: Views) -> None:
    warehouse, loaded = views.warehouse, views.data
    got = warehouse.query("SELECT * FROM daily_balances").to_pylist()
    expected = expected_daily_balances(loaded)
    assert keyed(got, "venue", "account", "asset", "day") == keyed(expected, "venue", "account", "asset", "day")
    coinbase = sorted((r for r in got if (r["venue"], r["account"]) == ("coinbase", "c-1")), key=lambda r: r["day"])
    assert [r["entries"] == 0 for r in coinbase] == [False, True, False, True], "quiet days carried forward"
    assert coinbase[1]["closing_balance"] == coinbase[0]["closing_balance"]


def test_daily_flows(views: Views) -> None:
    warehouse, loaded = views.warehouse, views.data
    got = warehouse.query("SELECT * FROM daily_flows").to_pylist()
    key = ("venue", "account", "asset", "day", "entry_type")
    assert keyed(got, *key) == keyed(expected_flows(loaded["ledger"]), *key)


def test_fees_and_funding(views: Views) -> None:
    warehouse, loaded = views.warehouse, views.data
    got = warehouse.query("SELECT * FROM fees_and_funding").to_pylist()
    key = ("venue", "account", "asset", "day")
    expected = expected_fees_and_funding(loaded["ledger"])
    assert keyed(got, *key) == keyed(expected, *key)
    assert any(r["fees_paid"] > 0 for r in got) and any(r["funding_paid"] > 0 for r in got)


def test_reconciliation(views: Views) -> None:
    warehouse, loaded = views.warehouse, views.data
    got = warehouse.query("SELECT * FROM reconciliation").to_pylist()
    key = ("venue", "account", "asset", "day")
    assert keyed(got, *key) == keyed(expected_reconciliation(loaded), *key)
    status = {(r["venue"], r["day"]): r["status"] for r in got}
    day1 = utc_day(D0) + timedelta(days=1)
    assert status[("pacifica", day1)] == "mismatch", "the lost entry shows on its day"
    assert {s for (v, _), s in status.items() if v in ("exchangehubx", "coinbase")} == {"ok"}
    assert {s for (v, _), s in status.items() if v == "sunx"} == {"not_reported"}
    assert {s for (v, _), s in status.items() if v == "binance"} == {"report_only"}


def database_today(warehouse: Warehouse) -> date:
    """current_date as the examples read it: the database's, which may have passed midnight since TODAY."""
    today: date = warehouse.query("SELECT current_date AS today").to_pylist()[0]["today"]
    return today


def run_example(warehouse: Warehouse, name: str) -> list[Row]:
    return warehouse.query((EXAMPLES / f"{name}.sql").read_text()).to_pylist()


def test_readme_example_fees_paid_last_month(views: Views) -> None:
    warehouse, loaded = views.warehouse, views.data
    # The example's month is the database's (current_date), which a run crossing a month boundary may have moved.
    this_month = database_today(warehouse).replace(day=1)
    assert this_month in (THIS_MONTH, (THIS_MONTH + timedelta(days=31)).replace(day=1))
    last_month_start = (this_month - timedelta(days=1)).replace(day=1)
    sums: dict[tuple[str, str], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO, ZERO])
    for r in loaded["ledger"]:
        if last_month_start <= utc_day(r["occurred_at"]) < this_month:
            s = sums[(r["venue"], r["asset"])]
            if r["entry_type"] in ("fee", "rebate", "funding"):
                s[0] -= r["amount"] if r["entry_type"] == "fee" else ZERO
                s[1] += r["amount"] if r["entry_type"] == "rebate" else ZERO
                s[2] += r["amount"] if r["entry_type"] == "funding" else ZERO
    expected = [
        {"venue": v, "asset": a, "fees_paid": f, "rebates_received": rb, "net_fees": f - rb, "funding_net": fu}
        for (v, a), (f, rb, fu) in sorted(sums.items())
    ]
    got = run_example(warehouse, "fees_last_month")
    assert got == expected
    if this_month == THIS_MONTH:  # the two days of last month hold fees of every venue
        assert {r["venue"] for r in got} == {"exchangehubx", "coinbase", "pacifica", "sunx"}
    else:  # the data's one day of this month, now last month
        assert got, "last month has fees to sum"


def test_readme_example_funding_by_day(views: Views) -> None:
    warehouse, loaded = views.warehouse, views.data
    sums: dict[tuple[Any, ...], list[Decimal]] = defaultdict(lambda: [ZERO, ZERO])
    for r in loaded["ledger"]:
        if r["entry_type"] == "funding" and r["amount"] != 0:
            s = sums[(utc_day(r["occurred_at"]), r["venue"], r["asset"])]
            s[0 if r["amount"] > 0 else 1] += abs(r["amount"])
    expected = [
        {"day": d, "venue": v, "asset": a, "received": rec, "paid": paid, "net": rec - paid}
        for (d, v, a), (rec, paid) in sorted(sums.items())
    ]
    assert run_example(warehouse, "funding_by_day") == expected


def test_readme_example_balance_history(views: Views) -> None:
    warehouse, loaded = views.warehouse, views.data
    expected = [
        {k: b[k] for k in ("day", "venue", "account", "closing_balance", "source")}
        for b in expected_daily_balances(loaded)
        if b["asset"] == "USDT"
    ]
    got = run_example(warehouse, "balance_history")
    assert got == sorted(expected, key=lambda r: (r["venue"], r["account"], r["day"]))
    assert {r["source"] for r in got} == {"balance_after", "running_sum", "snapshot"}


def test_readme_example_reconciliation_problems(views: Views) -> None:
    warehouse = views.warehouse
    got = run_example(warehouse, "reconciliation_problems")
    assert [(r["venue"], r["day"]) for r in got] == [("pacifica", utc_day(D0) + timedelta(days=1))]
    assert got[0]["difference"] != 0 or got[0]["entry_breaks"] > 0


def test_readme_example_flows_of_one_day(views: Views) -> None:
    warehouse, loaded = views.warehouse, views.data
    got = run_example(warehouse, "flows_of_one_day")
    # The example's "yesterday" is the database's (current_date - 1), which midnight UTC may have moved.
    yesterday = database_today(warehouse) - timedelta(days=1)
    assert yesterday in (TODAY - timedelta(days=1), TODAY)
    sums: dict[tuple[str, str, str], list[Any]] = defaultdict(lambda: [0, ZERO, ZERO, ZERO])
    for r in loaded["ledger"]:
        if utc_day(r["occurred_at"]) == yesterday:
            s = sums[(r["venue"], r["asset"], r["entry_type"])]
            s[0] += 1
            s[1] += max(r["amount"], ZERO)
            s[2] += max(-r["amount"], ZERO)
            s[3] += r["amount"]
    expected = [
        {"venue": v, "asset": a, "entry_type": t, "entries": n, "inflow": i, "outflow": o, "net_amount": net}
        for (v, a, t), (n, i, o, net) in sorted(sums.items())
    ]
    assert [{**r, "entries": int(r["entries"])} for r in got] == expected
    assert sum(r["entries"] for r in expected) >= 15, "yesterday has entries to sum"


def test_readme_shows_every_example_verbatim() -> None:
    readme = README.read_text()
    for example in sorted(EXAMPLES.glob("*.sql")):
        assert example.read_text().strip() in readme, f"{example.name} is not in the README as written"
