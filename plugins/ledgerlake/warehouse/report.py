"""`ledgerlake report`: one self-contained HTML page of balances, flows and reconciliation.

Everything is inline (CSS and SVG charts, no scripts, no external assets), so the file can be mailed,
attached to a ticket or opened offline. Each chart has the exact figures behind it in a table below.
"""

from __future__ import annotations

import argparse
import decimal
import sys
from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any

from ledgerlake.config import PROJECT_ROOT
from ledgerlake.warehouse.charts import STATUS_COLOURS, TYPE_COLOURS, balance_chart, flow_chart, status_grid
from ledgerlake.warehouse.cli import plain
from ledgerlake.warehouse.settings import WAREHOUSE_ENV, WarehouseSettings

DEFAULT_OUT = PROJECT_ROOT / ".demo" / "report.html"
Row = dict[str, Any]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"the HTML file to write (default {DEFAULT_OUT})")
    parser.add_argument(
        "--warehouse",
        help=f"a DuckDB file or a postgresql:// DSN (default: ${WAREHOUSE_ENV}, else .demo/warehouse.duckdb)",
    )
    parser.add_argument("--since", type=date.fromisoformat, help="first day to show (YYYY-MM-DD; default: all)")
    parser.add_argument("--until", type=date.fromisoformat, help="last day to show (YYYY-MM-DD; default: all)")
    parser.add_argument("--venue", action="append", help="only this venue (repeatable)")


def run(args: argparse.Namespace) -> int:
    from ledgerlake.warehouse import WarehouseError, open_warehouse

    try:
        settings = WarehouseSettings.parse(args.warehouse) if args.warehouse else WarehouseSettings.default()
        with open_warehouse(settings, read_only=True) as warehouse:
            data = gather(warehouse, since=args.since, until=args.until, venues=args.venue)
    except WarehouseError as exc:
        print(f"ledgerlake report: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        print(f"ledgerlake report: reading the warehouse failed: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1
    html = render(data, source=settings.describe())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(html, encoding="utf-8")
    print(f"wrote {args.out} ({len(html) // 1024} KiB): open it in a browser")
    return 0


# Data -------------------------------------------------------------------------------------------------


def gather(
    warehouse: Any, since: date | None = None, until: date | None = None, venues: list[str] | None = None
) -> dict[str, Any]:
    def keep(rows: list[Row]) -> list[Row]:
        return [
            r
            for r in rows
            if (since is None or r["day"] >= since)
            and (until is None or r["day"] <= until)
            and (not venues or r["venue"] in venues)
        ]

    loads = warehouse.query(
        "SELECT venue, account, MIN(interval_start) AS loaded_from, MAX(interval_end) AS loaded_to, "
        "COUNT(*) AS intervals, SUM(rows) AS rows, MAX(loaded_at) AS last_load "
        "FROM loads GROUP BY venue, account ORDER BY venue, account"
    ).to_pylist()
    return {
        "loads": [r for r in loads if not venues or r["venue"] in venues],
        "balances": keep(
            warehouse.query("SELECT * FROM daily_balances ORDER BY venue, account, asset, day").to_pylist()
        ),
        "flows": keep(
            warehouse.query(
                "SELECT venue, asset, day, entry_type, SUM(entries) AS entries, SUM(inflow) AS inflow, "
                "SUM(outflow) AS outflow, SUM(net_amount) AS net_amount FROM daily_flows "
                "GROUP BY venue, asset, day, entry_type ORDER BY venue, asset, day, entry_type"
            ).to_pylist()
        ),
        "reconciliation": keep(
            warehouse.query("SELECT * FROM reconciliation ORDER BY venue, account, asset, day").to_pylist()
        ),
        "fees": keep(warehouse.query("SELECT * FROM fees_and_funding ORDER BY venue, account, asset, day").to_pylist()),
        "since": since,
        "until": until,
    }


# Formatting -------------------------------------------------------------------------------------------


def amount(value: Any) -> str:
    """Thousands separators, no exponent, exact digits (trailing zeros dropped)."""
    if value is None:
        return "–"
    text = plain(value)
    sign = "-" if text.startswith("-") else ""
    whole, _, frac = text.lstrip("-").partition(".")
    whole = f"{int(whole):,}" if whole.isdigit() else whole
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def rounded(value: Any) -> str:
    """Headline figures: rounded for reading (the tables beside them stay exact)."""
    if value is None:
        return "–"
    magnitude = abs(value)
    places = 2 if magnitude >= 1000 else 4 if magnitude >= 1 else 8
    return amount(Decimal(value).quantize(Decimal(1).scaleb(-places)))


def table(headers: list[str], rows: list[list[Any]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f'<th class="{"num" if i in numeric else ""}">{escape(h)}</th>' for i, h in enumerate(headers))
    body = "".join(
        "<tr>"
        + "".join(f'<td class="{"num" if i in numeric else ""}">{cell}</td>' for i, cell in enumerate(r))
        + "</tr>"
        for r in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def badge(status: str) -> str:
    colour = STATUS_COLOURS.get(status, "#ccc")
    return f'<span class="badge" style="background:{colour}">{escape(status.replace("_", " "))}</span>'


# Page -------------------------------------------------------------------------------------------------


def render(data: dict[str, Any], source: str) -> str:
    # Sums of decimal(38,18) values need more than Python's default 28 significant digits.
    with decimal.localcontext(prec=80):
        return _render(data, source)


def _render(data: dict[str, Any], source: str) -> str:
    recon: list[Row] = data["reconciliation"]
    counts: dict[str, int] = defaultdict(int)
    for r in recon:
        counts[r["status"]] += 1
    checked = counts["ok"] + counts["mismatch"]
    days = sorted({r["day"] for r in data["balances"]} | {r["day"] for r in recon})
    entries = sum(int(r["rows"] or 0) for r in data["loads"])
    accounts = {(r["venue"], r["account"]) for r in data["loads"]}
    period = f"{days[0]:%d %b %Y} – {days[-1]:%d %b %Y}" if days else "no data loaded yet"

    if counts["mismatch"]:
        verdict = (
            f'<div class="tile bad"><b>{counts["mismatch"]}</b><span>account-days disagree with the venue</span></div>'
        )
    elif checked:
        verdict = f'<div class="tile good"><b>✓</b><span>all {checked} checked account-days reconcile</span></div>'
    else:
        verdict = '<div class="tile"><b>–</b><span>nothing to reconcile yet</span></div>'
    tiles = (
        f'<div class="tile"><b>{len({v for v, _ in accounts})}</b><span>venues</span></div>'
        f'<div class="tile"><b>{len(accounts)}</b><span>accounts</span></div>'
        f'<div class="tile"><b>{entries:,}</b><span>rows loaded</span></div>'
        f'<div class="tile"><b>{len(days)}</b><span>days</span></div>{verdict}'
    )
    sections = [
        _reconciliation_section(recon, days),
        _balances_section(data["balances"]),
        _flows_section(data["flows"]),
        _fees_section(data["fees"]),
        _coverage_section(data["loads"]),
    ]
    generated = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    return PAGE.format(
        title="ledgerlake: balances, flows and reconciliation",
        period=escape(period),
        source=escape(source),
        generated=generated,
        tiles=tiles,
        body="\n".join(sections),
    )


def _series_name(r: Row) -> str:
    return f"{r['venue']} · {_short(r['account'])} · {r['asset']}"


def _short(account: str) -> str:
    return account if len(account) <= 18 else f"{account[:8]}…{account[-6:]}"


def _reconciliation_section(recon: list[Row], days: list[date]) -> str:
    if not recon:
        return '<section><h2>Reconciliation</h2><p class="note">Nothing loaded yet.</p></section>'
    names = sorted({_series_name(r) for r in recon})
    status = {(_series_name(r), r["day"]): r["status"] for r in recon}
    legend = " ".join(badge(s) for s in STATUS_COLOURS) + ' <span class="badge empty">no entries</span>'
    problems = [r for r in recon if r["status"] == "mismatch"]
    if problems:
        detail = table(
            [
                "day",
                "venue",
                "account",
                "asset",
                "opening",
                "net amount",
                "implied closing",
                "reported closing",
                "difference",
                "entry breaks",
            ],
            [
                [
                    r["day"].isoformat(),
                    escape(r["venue"]),
                    escape(r["account"]),
                    escape(r["asset"]),
                    amount(r["opening_balance"]),
                    amount(r["net_amount"]),
                    amount(r["implied_closing"]),
                    amount(r["reported_closing"]),
                    f'<b class="bad-text">{amount(r["difference"])}</b>',
                    r["entry_breaks"],
                ]
                for r in problems
            ],
            numeric={4, 5, 6, 7, 8, 9},
        )
        problem_text = (
            f"<h3>Where the ledger and the venue disagree ({len(problems)})</h3>"
            '<p class="note">implied closing = opening + the day\'s amounts; difference = reported − implied. '
            "Entry breaks count entries whose balances do not follow from the one before (a lost or altered "
            "entry). Query: <code>SELECT * FROM reconciliation WHERE status = 'mismatch'</code></p>" + detail
        )
    else:
        problem_text = '<p class="good-text">Every day with reported balances reconciles with the ledger.</p>'
    rows_table = table(
        [
            "day",
            "venue",
            "account",
            "asset",
            "entries",
            "opening",
            "net amount",
            "implied closing",
            "reported closing",
            "difference",
            "status",
        ],
        [
            [
                r["day"].isoformat(),
                escape(r["venue"]),
                escape(r["account"]),
                escape(r["asset"]),
                "" if r["entries"] is None else r["entries"],
                amount(r["opening_balance"]),
                amount(r["net_amount"]),
                amount(r["implied_closing"]),
                amount(r["reported_closing"]),
                amount(r["difference"]),
                badge(r["status"]),
            ]
            for r in recon
        ],
        numeric={4, 5, 6, 7, 8, 9},
    )
    return (
        "<section><h2>Reconciliation</h2>"
        '<p class="note">Each square is one day of one account and asset: does the ledger (opening balance plus '
        "the day's amounts) end where the venue says the balance ended? SunX reports no balances (grey); "
        "Binance has daily snapshots, not a ledger (blue, shown day over day).</p>"
        f'<div class="legend">{legend}</div><div class="scroll">{status_grid(names, days, status)}</div>'
        f"{problem_text}<details><summary>All reconciliation figures ({len(recon)} rows)</summary>"
        f"{rows_table}</details>"
        "</section>"
    )


def _balances_section(balances: list[Row]) -> str:
    if not balances:
        return ""
    groups: dict[tuple[str, str, str], list[Row]] = defaultdict(list)
    for r in balances:
        groups[(r["venue"], r["account"], r["asset"])].append(r)
    cards = []
    palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9"]
    for i, ((venue, account, asset), rows) in enumerate(sorted(groups.items())):
        last = rows[-1]
        first = rows[0]["closing_balance"]
        change = last["closing_balance"] - first if first is not None and last["closing_balance"] is not None else None
        arrow = "" if change is None else ("▲" if change > 0 else "▼" if change < 0 else "■")
        figures = table(
            ["day", "closing balance", "entries", "as of"],
            [
                [
                    r["day"].isoformat(),
                    amount(r["closing_balance"]),
                    "" if r["entries"] is None else r["entries"],
                    plain(r["as_of"]),
                ]
                for r in rows
            ],
            numeric={1, 2},
        )
        source = {
            "balance_after": "venue's balance_after",
            "running_sum": "running sum of amounts",
            "snapshot": "daily snapshot",
        }[last["source"]]
        cards.append(
            f'<div class="card"><div class="card-head"><span class="venue">{escape(venue)}</span> '
            f'<span class="account" title="{escape(account)}">{escape(_short(account))}</span> '
            f'<span class="asset">{escape(asset)}</span></div>'
            f'<div class="big">{rounded(last["closing_balance"])} <small>{escape(asset)}</small></div>'
            f'<div class="sub">{arrow} {rounded(change)} over {len(rows)} days · {escape(source)}</div>'
            f"{balance_chart([(r['day'], r['closing_balance']) for r in rows], palette[i % len(palette)])}"
            f"<details><summary>figures</summary>{figures}</details></div>"
        )
    return (
        "<section><h2>Daily balances</h2>"
        '<p class="note">Closing balance per day (UTC). Days without entries carry the previous balance. '
        "Query: <code>SELECT * FROM daily_balances</code></p>"
        f'<div class="cards">{"".join(cards)}</div></section>'
    )


def _flows_section(flows: list[Row]) -> str:
    if not flows:
        return ""
    groups: dict[tuple[str, str], list[Row]] = defaultdict(list)
    for r in flows:
        groups[(r["venue"], r["asset"])].append(r)
    types_seen = sorted(
        {r["entry_type"] for r in flows}, key=lambda t: list(TYPE_COLOURS).index(t) if t in TYPE_COLOURS else 99
    )
    legend = " ".join(
        f'<span class="key"><i style="background:{TYPE_COLOURS.get(t, "#888")}"></i>{escape(t)}</span>'
        for t in types_seen
    )
    cards = []
    for (venue, asset), rows in sorted(groups.items()):
        days = sorted({r["day"] for r in rows})
        series: dict[str, dict[date, tuple[Decimal, Decimal]]] = defaultdict(dict)
        totals: dict[str, list[Any]] = defaultdict(lambda: [0, Decimal(0), Decimal(0), Decimal(0)])
        for r in rows:
            series[r["entry_type"]][r["day"]] = (r["inflow"], r["outflow"])
            t = totals[r["entry_type"]]
            t[0] += int(r["entries"])
            t[1] += r["inflow"]
            t[2] += r["outflow"]
            t[3] += r["net_amount"]
        summary = table(
            ["entry type", "entries", "inflow", "outflow", "net"],
            [
                [
                    f'<i class="dot" style="background:{TYPE_COLOURS.get(k, "#888")}"></i>{escape(k)}',
                    v[0],
                    amount(v[1]),
                    amount(v[2]),
                    amount(v[3]),
                ]
                for k, v in sorted(totals.items(), key=lambda kv: -abs(kv[1][3]))
            ],
            numeric={1, 2, 3, 4},
        )
        daily = table(
            ["day", "entry type", "entries", "inflow", "outflow", "net"],
            [
                [
                    r["day"].isoformat(),
                    escape(r["entry_type"]),
                    r["entries"],
                    amount(r["inflow"]),
                    amount(r["outflow"]),
                    amount(r["net_amount"]),
                ]
                for r in rows
            ],
            numeric={2, 3, 4, 5},
        )
        cards.append(
            f'<div class="card wide"><div class="card-head"><span class="venue">{escape(venue)}</span> '
            f'<span class="asset">{escape(asset)}</span></div>'
            f'<div class="flow">{flow_chart(days, series, width=560)}<div class="flow-table">{summary}</div></div>'
            f"<details><summary>figures per day</summary>{daily}</details></div>"
        )
    return (
        "<section><h2>Flows by type</h2>"
        '<p class="note">What moved the balances each day, all accounts of a venue together: money in above the '
        "line, money out below, by unified entry type. Query: <code>SELECT * FROM daily_flows</code></p>"
        f'<div class="legend">{legend}</div><div class="cards">{"".join(cards)}</div></section>'
    )


def _fees_section(fees: list[Row]) -> str:
    if not fees:
        return ""
    totals: dict[tuple[str, str, str], list[Decimal]] = defaultdict(lambda: [Decimal(0)] * 5)
    for r in fees:
        t = totals[(r["venue"], r["account"], r["asset"])]
        for i, k in enumerate(("fees_paid", "rebates_received", "funding_received", "funding_paid", "net_amount")):
            t[i] += r[k]
    rows = [
        [escape(v), f'<span title="{escape(a)}">{escape(_short(a))}</span>', escape(s), *(amount(x) for x in t)]
        for (v, a, s), t in sorted(totals.items())
    ]
    return (
        "<section><h2>Fees and funding</h2>"
        '<p class="note">Totals over the period. Net = rebates + funding received − fees − funding paid. '
        "Query: <code>SELECT * FROM fees_and_funding</code></p>"
        + table(
            ["venue", "account", "asset", "fees paid", "rebates", "funding received", "funding paid", "net"],
            rows,
            numeric={3, 4, 5, 6, 7},
        )
        + "</section>"
    )


def _coverage_section(loads: list[Row]) -> str:
    if not loads:
        return ""
    rows = [
        [
            escape(r["venue"]),
            escape(r["account"]),
            plain(r["loaded_from"]),
            plain(r["loaded_to"]),
            r["intervals"],
            f"{int(r['rows'] or 0):,}",
            plain(r["last_load"].replace(microsecond=0)),
        ]
        for r in loads
    ]
    return (
        "<section><h2>What is loaded</h2>"
        + table(["venue", "account", "from", "to", "intervals", "rows", "last load"], rows, numeric={4, 5})
        + "</section>"
    )


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
:root {{ --ink:#1f2933; --muted:#7b8794; --line:#e4e7eb; --bg:#f7f9fb; --good:#2e9e5b; --bad:#d64545; }}
* {{ box-sizing: border-box; }}
body {{ margin:0; font:14px/1.45 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color:var(--ink); background:var(--bg); }}
header {{ background:#102a43; color:#fff; padding:24px 32px 20px; }}
header h1 {{ margin:0 0 4px; font-size:22px; font-weight:600; }}
header p {{ margin:0; color:#bcccdc; }}
main {{ padding:8px 32px 40px; max-width:1500px; }}
.tiles {{ display:flex; gap:12px; flex-wrap:wrap; margin:20px 0 8px; }}
.tile {{ background:#fff; border:1px solid var(--line); border-radius:10px; padding:12px 18px; min-width:120px; }}
.tile b {{ display:block; font-size:26px; font-weight:600; }}
.tile span {{ color:var(--muted); }}
.tile.good {{ border-color:var(--good); }} .tile.good b {{ color:var(--good); }}
.tile.bad {{ border-color:var(--bad); background:#fff5f5; }} .tile.bad b {{ color:var(--bad); }}
section {{ margin-top:28px; }}
h2 {{ font-size:18px; margin:0 0 4px; }}
h3 {{ font-size:15px; margin:18px 0 4px; }}
.note {{ color:var(--muted); margin:0 0 10px; max-width:900px; }}
code {{ background:#eef2f6; padding:1px 5px; border-radius:4px; font-size:12px; }}
.cards {{ display:flex; flex-wrap:wrap; gap:14px; }}
.card {{ background:#fff; border:1px solid var(--line); border-radius:10px; padding:12px 14px; width:350px; }}
.card.wide {{ width:100%; max-width:980px; }}
.card-head {{ display:flex; gap:8px; align-items:baseline; }}
.venue {{ font-weight:600; }} .account {{ color:var(--muted); font-size:12px; }}
.asset {{ margin-left:auto; font-weight:600; color:#334e68; }}
.big {{ font-size:20px; font-weight:600; margin-top:4px; }} .big small {{ font-size:12px; color:var(--muted); }}
.sub {{ color:var(--muted); font-size:12px; margin-bottom:4px; }}
.flow {{ display:flex; gap:16px; flex-wrap:wrap; align-items:flex-start; }}
.flow-table table {{ font-size:12px; }}
.legend {{ margin:6px 0 10px; display:flex; gap:10px; flex-wrap:wrap; align-items:center; }}
.key i, i.dot {{ display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:5px;
                 vertical-align:-1px; }}
.badge {{ display:inline-block; color:#fff; border-radius:10px; padding:0 8px; font-size:12px; }}
.badge.empty {{ background:#f5f7fa; color:var(--muted); border:1px solid var(--line); }}
.good-text {{ color:var(--good); font-weight:600; }} .bad-text {{ color:var(--bad); }}
.scroll {{ overflow-x:auto; background:#fff; border:1px solid var(--line); border-radius:10px; padding:10px; }}
table {{ border-collapse:collapse; background:#fff; margin:6px 0; font-size:12.5px; }}
th, td {{ padding:3px 10px; border-bottom:1px solid var(--line); text-align:left; white-space:nowrap; }}
th {{ color:var(--muted); font-weight:600; }}
td.num, th.num {{ text-align:right; font-variant-numeric:tabular-nums; }}
details summary {{ cursor:pointer; color:#486581; margin-top:6px; font-size:12px; }}
details[open] {{ overflow-x:auto; }}
svg text {{ font-family:inherit; }}
@media print {{ details {{ display:none; }} body {{ background:#fff; }} }}
</style></head>
<body>
<header><h1>{title}</h1><p>{period} · {source} · generated {generated}</p></header>
<main>
<div class="tiles">{tiles}</div>
{body}
</main></body></html>
"""
