"""results.json -> results.md (a Markdown table per section, targets beside the figures) and throughput.png."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TARGET_E2E_ROWS_S = 100_000
TARGET_ROWS = 1_000_000  # the throughput targets are for one account-day of a million entries
TARGET_MEMORY_ROWS = 10_000_000  # the memory target is for a ten-million-entry interval
TARGET_FLOOR_FACTOR = 2.0
TARGET_PEAK_MIB = 512
TARGET_ALLOWANCE_PCT = 90.0

# Published stage -> (label, the engine's stages it sums: engine.stages.STAGES). Each engine stage runs on one
# thread, so a stage's rows/s is what that thread achieved while it did that work.
STAGES = (
    (
        "fetch+parse",
        "fetch+parse (sign, HTTP, JSON, paging; per fetcher thread)",
        ("rate_limit_wait", "request", "parse"),
    ),
    ("normalize", "normalize (pages to Arrow, casts, details, order, entry_seq)", ("normalize", "spill")),
    ("write Parquet to S3", "write Parquet to S3 (Parquet thread, upload wait)", ("write_parquet", "upload_wait")),
    ("raw archive", "raw archive (pages to S3)", ("raw_archive",)),
)


def stage_seconds(v: dict[str, Any], kind: str = "wall_s") -> dict[str, float]:
    """Seconds per published stage, from the engine's own report."""
    engine = v["extract"]["stages"]
    return {key: sum(engine.get(s, {}).get(kind, 0.0) for s in parts) for key, _label, parts in STAGES}


def _ordered(venues: dict[str, Any]) -> list[str]:
    """The venues in the project's order (results.json sorts its keys)."""
    order = ("exchangehubx", "pacifica", "coinbase", "sunx", "binance")
    return sorted(venues, key=lambda v: order.index(v) if v in order else len(order))


def _n(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value < 100:
        return f"{value:,.2f}"
    return f"{value:,.0f}"


def _met(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _met_at(ok: bool, rows: int, target_rows: int) -> str:
    """The verdict, or why there is none: a target set for a size says nothing of a smaller run (--quick)."""
    if rows < target_rows:
        return f"not judged: set for {target_rows:,} rows, this run had {rows:,}"
    return _met(ok)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def stage_rates(v: dict[str, Any]) -> dict[str, float]:
    """rows/s of each stage on its own (rows / seconds spent in that stage)."""
    rows = v["rows"]
    out = {key: rows / secs if secs else 0.0 for key, secs in stage_seconds(v).items()}
    out["extract"] = v["extract"]["rows_per_s"]
    out["validate"] = v["validate"]["rows_per_s"]
    out["load DuckDB"] = v["load_duckdb"]["rows_per_s"]
    if "load_postgres" in v:
        out["load PostgreSQL"] = v["load_postgres"]["rows_per_s"]
    out["end to end"] = v["end_to_end"]["rows_per_s"]
    out["floor"] = v["floor"]["rows_per_s"]
    return out


def _waited(v: dict[str, Any]) -> float:
    return float(v["extract"]["stages"].get("wait_for_pages", {}).get("wall_s", 0.0)) / v["extract"]["seconds"]


def _parse_only_rate(v: dict[str, Any]) -> float | None:
    steps = v["floor"].get("steps_s", {})
    secs = steps.get("parse", 0.0) + steps.get("arrow+parquet", 0.0)
    return v["floor"]["rows"] / secs if secs else None


def throughput_md(t: dict[str, Any]) -> str:
    venues = t["venues"]
    names = _ordered(venues)
    rates = {n: stage_rates(venues[n]) for n in names}
    rows: list[list[Any]] = []
    for key, label, _parts in STAGES:
        rows.append([label] + [_n(rates[n][key]) for n in names] + [""])
    rows.append(["**extract** (all of the above, wall)"] + [_n(rates[n]["extract"]) for n in names] + [""])
    rows.append(["validate (quality gate, GX + Data Docs)"] + [_n(rates[n]["validate"]) for n in names] + [""])
    rows.append(["load to DuckDB (load_partition)"] + [_n(rates[n]["load DuckDB"]) for n in names] + [""])
    rows.append(["load to PostgreSQL (load_partition)"] + [_n(rates[n].get("load PostgreSQL")) for n in names] + [""])
    e2e = [venues[n]["end_to_end"]["rows_per_s"] for n in names]
    measured_rows = min(int(venues[n]["rows"]) for n in names)
    rows.append(
        ["**end to end** (sandbox pages -> DuckDB, checks included)"]
        + [f"**{_n(x)}**" for x in e2e]
        + [f">= {TARGET_E2E_ROWS_S:,}: " + _met_at(min(e2e) >= TARGET_E2E_ROWS_S, measured_rows, TARGET_ROWS)]
    )
    runs = [venues[n].get("end_to_end_runs_rows_per_s") or [] for n in names]
    if any(len(r) > 1 for r in runs):
        rows.append(
            [f"end to end, each of the {max(map(len, runs))} runs in order (the median run's figures are shown)"]
            + [" / ".join(_n(x) for x in r) for r in runs]
            + [""]
        )
    rows.append(
        ["end to end per CPU second of the pipeline process"]
        + [_n(venues[n]["end_to_end"]["rows_per_cpu_s"]) for n in names]
        + [""]
    )
    rows.append(
        ["floor (one thread: fetch the same pages, orjson, pyarrow -> Parquet on S3)"]
        + [_n(rates[n]["floor"]) for n in names]
        + [""]
    )
    rows.append(
        ["floor without fetching (parse the same pages + Parquet only)"]
        + [_n(_parse_only_rate(venues[n])) for n in names]
        + [""]
    )
    factors = [venues[n]["end_to_end"]["seconds"] / max(venues[n]["floor"]["seconds"], 1e-9) for n in names]
    rows.append(
        ["end to end time / floor time"]
        + [f"{f:.1f}x" for f in factors]
        + [f"<= {TARGET_FLOOR_FACTOR:g}x: " + _met_at(max(factors) <= TARGET_FLOOR_FACTOR, measured_rows, TARGET_ROWS)]
    )
    ex_factors = [venues[n]["extract"]["seconds"] / max(venues[n]["floor"]["seconds"], 1e-9) for n in names]
    rows.append(
        ["extract time / floor time (same work minus checks and loads)"] + [f"{f:.1f}x" for f in ex_factors] + [""]
    )
    header = ["rows/s", *names, "target"]
    secs = _table(
        ["seconds", *names],
        [
            ["rows (one account-day)"] + [_n(venues[n]["rows"]) for n in names],
            ["pages"] + [_n(venues[n]["pages"]) for n in names],
            ["extract"] + [_n(venues[n]["extract"]["seconds"]) for n in names],
            ["extract: CPU of the pipeline process"] + [_n(venues[n]["extract"].get("cpu_s")) for n in names],
            ["extract: CPU of the sandbox process"] + [_n(venues[n]["extract"].get("sandbox_cpu_s")) for n in names],
            ["extract: CPU of the S3 server process"]
            + [_n(venues[n]["extract"].get("s3_server_cpu_s")) for n in names],
            ["extract: CPU of fetch+parse / normalize / Parquet / raw archive"]
            + [
                "{fetch+parse:.2f} / {normalize:.2f} / {write Parquet to S3:.2f} / {raw archive:.2f}".format(
                    **stage_seconds(venues[n], "cpu_s")
                )
                for n in names
            ],
            ["extract: row building waited for pages (share of extract)"]
            + [f"{100 * _waited(venues[n]):.0f}%" for n in names],
            ["validate"] + [_n(venues[n]["validate"]["seconds"]) for n in names],
            ["open DuckDB + load"] + [_n(venues[n]["load_duckdb"]["seconds"]) for n in names],
            ["end to end"] + [_n(venues[n]["end_to_end"]["seconds"]) for n in names],
            ["floor"] + [_n(venues[n]["floor"]["seconds"]) for n in names],
        ],
    )
    imports = ", ".join(f"{k} {v} s" for k, v in t.get("imports_s", {}).items())
    text = [
        "## Throughput: one account-day per ledger venue, rate limits off",
        "",
        _table(header, rows),
        "",
        secs,
        "",
        "How measured: one process runs the pipeline; the sandbox and the S3 server (moto) run in their own. "
        "Stage rows/s = rows / wall seconds of that stage on its own thread, as the engine reports them for every "
        "run (engine.stages: exclusive times; fetching runs on fetcher threads ahead of the thread that builds "
        "rows, two at once for the venues that filter by time (exchangehubx, coinbase, sunx: lanes), whose seconds "
        "are summed, so fetch+parse is per fetcher thread; Parquet encoding runs on its own thread, so the stages "
        "overlap and extract is less than their sum; S3 "
        "uploads run on upload threads and count only where the run waits for them). Before each venue, the "
        "sandbox prepares the day (generates and serialises it), so its generation is not in any figure. "
        "validate = `validate_partition()` wall time; loads = `load_partition()`'s "
        "own time; end to end = wall time of extract + validate + open DuckDB and load, one after the other. "
        f"Imports paid once per process and left out (an Airflow task pays them per task): {imports}. "
        "A small warm-up run precedes the measurements.",
    ]
    b = t.get("binance")
    if b:
        text += [
            "",
            "### Binance (one snapshot a day per type): per-request figures, limits off",
            "",
            _table(
                [
                    "interval",
                    "requests",
                    "rows",
                    "extract s",
                    "ms per request",
                    "rows per request",
                    "validate",
                    "load DuckDB s",
                ],
                [
                    [
                        b["interval"],
                        b["requests"],
                        ", ".join(f"{k} {v}" for k, v in b["rows"].items()),
                        _n(b["extract_s"]),
                        _n(b["ms_per_request"]),
                        _n(b["rows_per_request"]),
                        b.get("error") or f"{_n(b.get('validate_s'))} s",
                        _n(b.get("load_duckdb_s")),
                    ]
                ],
            ),
        ]
    serving_rows = []
    for n in names:
        s = venues[n]["serving"]
        e2e_rate = venues[n]["end_to_end"]["rows_per_s"]
        serving_rows.append(
            [
                n,
                _n(s["requests_per_s"]),
                _n(s["entries_per_s"]),
                _n(s["requests_per_sandbox_cpu_s"]),
                _n(s["entries_per_sandbox_cpu_s"]),
                f"{s['entries_per_sandbox_cpu_s'] / max(e2e_rate, 1):.1f}x",
            ]
        )
    text += [
        "",
        "## The sandbox's own serving rate",
        "",
        _table(
            [
                "venue",
                "requests/s (one client)",
                "entries/s (one client)",
                "requests per sandbox CPU s",
                "entries per sandbox CPU s",
                "sandbox capacity / pipeline end to end",
            ],
            serving_rows,
        ),
        "",
        "Measured during the floor run (one client, one connection, the venue's default page size: 100, Coinbase "
        "1000; the sandbox prepared the day first): the client's time from sending "
        "a request to holding its answer, and the sandbox process's CPU time (psutil) for the same requests. "
        "Entries per sandbox CPU second is what one core of the sandbox serves; above the pipeline's end-to-end "
        "rate it is not the bottleneck.",
    ]
    return "\n".join(text)


def memory_md(m: dict[str, Any]) -> str:
    runs = m["runs"]
    rows = []
    for r in runs:
        target = ""
        if r["rows"] >= TARGET_MEMORY_ROWS or r is runs[-1]:
            target = f"< {TARGET_PEAK_MIB} MiB: " + _met_at(
                r["peak_rss_mib"] < TARGET_PEAK_MIB, int(r["rows"]), TARGET_MEMORY_ROWS
            )
        rows.append(
            [
                r["venue"],
                r["interval"],
                _n(r["rows"]),
                _n(r["seconds"]),
                _n(r["rss_after_imports_mib"]),
                _n(r["peak_rss_mib"]),
                target,
            ]
        )
    growth = runs[-1]["peak_rss_mib"] - runs[0]["peak_rss_mib"] if len(runs) > 1 else 0.0
    return "\n".join(
        [
            "## Memory: peak RSS of one extraction, each size in a fresh process",
            "",
            _table(["venue", "interval", "rows", "seconds", "RSS after imports MiB", "peak RSS MiB", "target"], rows),
            "",
            f"Growth from the smallest to the largest interval: {growth:+.1f} MiB "
            f"({runs[-1]['rows'] / max(runs[0]['rows'], 1):.0f}x the rows). Peak = VmHWM (/proc/self/status) of a "
            "fresh child process that runs `extract()` (limits off) against the sandbox and S3 processes; not "
            "ru_maxrss, "
            "which Linux carries over from the parent's size at fork.",
        ]
    )


def ratelimits_md(r: dict[str, Any]) -> str:
    rows = []
    for venue in _ordered(r):
        x = r[venue]
        pct = x.get("pct_of_allowance")
        ok = pct is not None and pct >= TARGET_ALLOWANCE_PCT and x["over_limit_answers"] == 0 and "error" not in x
        pct_text = f"{pct}%" if pct is not None else "-"
        if "pct_of_budget" in x:
            pct_text += f" ({x['pct_of_budget']}% of the weight budget)"
        rows.append(
            [
                venue,
                x["allowance"],
                x["requests"],
                _n(x.get("run_s")),
                x.get("whole_windows", "-"),
                x.get("requests_in_windows", "-"),
                _n(x.get("requests_per_s")),
                _n(x.get("allowance_per_s")),
                pct_text,
                x["over_limit_answers"],
                f">= {TARGET_ALLOWANCE_PCT:g}%, 0: " + _met(ok) + (f" ({x['error']})" if "error" in x else ""),
            ]
        )
    return "\n".join(
        [
            "## Rate limits: documented limits on, on the client and in the sandbox",
            "",
            _table(
                [
                    "venue",
                    "allowance",
                    "requests",
                    "run s",
                    "whole windows",
                    "requests in them",
                    "achieved req/s",
                    "allowance req/s",
                    "% of usable allowance",
                    "429 / over-limit answers",
                    "target",
                ],
                rows,
            ),
            "",
            "All venues at once, each in a process of its own (as Airflow runs tasks). Achieved = requests sent in "
            "the whole windows the run covered, counted from its first request (the most a venue admits there is "
            "the windows' allowance), "
            "divided by their length; usable allowance = whole requests per window (Binance: 6000 weight / 2400 "
            "per request = 2 per minute, 80% of the weight budget is the most any client can use). Runs go on "
            "past their last whole window so that a burst at a window boundary would show as a 429. Over-limit "
            "answers: HTTP 429/418, or SunX's over-limit body with HTTP 200, as the client classified them "
            "(the sandbox's own 429/418 counters agree or are higher).",
        ]
    )


def _triple(s: dict[str, Any] | None) -> str:
    s = s or {}
    return f"{s.get('mean', '-')} / {s.get('median', '-')} / {s.get('p95', '-')} s"


def backfill_md(b: dict[str, Any]) -> str:
    rows = []
    for task, s in b.get("per_task", {}).items():
        rows.append(
            [
                task,
                s["count"],
                _n(s["duration"].get("median")),
                _n(s["work"].get("median")),
                _n(s["in_task"].get("median")),
                _n(s["queued_to_start"].get("median")),
                _n(s["ready_to_queued"].get("median")),
                _n(s["airflow"].get("median")),
                _n(s["airflow"].get("p95")),
            ]
        )
    a = b.get("airflow_per_ti", {})
    head = _table(
        ["what", "value"],
        [
            [
                "DAGs x days x accounts",
                f"5 x {b['days']} (Binance {b.get('binance_days')}) x {b['accounts_per_venue']}",
            ],
            ["entries per account-day", b["entries_per_day"]],
            ["executor / metadata DB / warehouse", f"{b['executor']} / {b['metadata_db']} / {b['warehouse']}"],
            ["parallelism / pool slots", f"{b.get('parallelism')} / {b.get('pools')}"],
            ["task instances (states)", f"{b.get('task_instances')} ({b.get('ti_states')})"],
            [
                "runs finished / total (within the time budget)",
                f"{b.get('runs_finished')} / {b.get('runs_total')} in {_n(b.get('elapsed_s'))} s "
                f"(budget {_n(b.get('budget_s'))} s)",
            ],
            [
                "wall time: backfills created -> last task done",
                f"{_n(b.get('wall_s'))} s"
                + (
                    ""
                    if b.get("complete")
                    else f" so far; whole backfill projected at {_n(b.get('projected_wall_s'))} s at the pace of the "
                    f"task instances done ({b.get('ti_states', {}).get('success', 0)} of {b.get('ti_expected')})"
                ),
            ],
            ["Airflow start-up before that (db migrate, components, DAG parse)", f"{_n(b.get('stack_start_s'))} s"],
            [
                "in-task overhead per task instance (duration - own work): mean / median / p95",
                _triple(b.get("in_task_overhead_per_ti")),
            ],
            [
                "queued -> start per task instance (hand-off + waits for a free executor slot): mean / median / p95",
                _triple(b.get("queued_to_start_per_ti")),
            ],
            ["Airflow time per task instance (the two above): mean / median / p95", _triple(a)],
            [
                "sum of task durations / of their own work",
                f"{_n(b.get('sum_ti_duration_s'))} s / {_n(b.get('sum_work_s'))} s",
            ],
            ["work share of task time", f"{b.get('work_share_of_ti_time_pct')}%"],
        ],
    )
    failures = [
        f"- {f['dag_id']} {f['run']} {f['task']}[{f['map_index']}]: {f['error'] or '(no error line in the log)'}"
        for f in b.get("failed", [])
    ]
    return "\n".join(
        [
            "## Backfill through Airflow: every venue, every account, small days",
            "",
            head,
            *(["", "Failed task instances:", *failures] if failures else []),
            "",
            _table(
                [
                    "task",
                    "instances",
                    "duration s (median)",
                    "own work s",
                    "in-task overhead s",
                    "queued -> start s",
                    "ready -> queued s",
                    "Airflow s per TI (median)",
                    "p95",
                ],
                rows,
            ),
            "",
            "Airflow s per task instance = (start_date - queued_when) + (duration - own work), own work being "
            "what the task's code reports in its log (engine `done: ... s`, quality gate `timings total`, warehouse "
            "`loaded ... in s`); in-task overhead is the task process around the work (start, DAG file parse, "
            "imports, connections over the execution API, XCom). ready -> queued is the scheduler's latency from "
            "the run's start or the upstream tasks' end, including deliberate waits for pool slots. Rate limits "
            "off on both sides (per-process client limiter; this measures Airflow, not the venues).",
        ]
    )


def markdown(results: dict[str, Any]) -> str:
    meta = results["meta"]
    parts = [
        "# ledgerlake benchmarks",
        "",
        f"Measured {meta['finished_at']} with `{meta['command']}` on {meta['cpus']} CPUs "
        f"({meta['cpu_model']}), {meta['memory_gib']} GiB; load average at start {meta['load_start']}, "
        f"at end {meta['load_end']} (the machine is shared: wall-time figures include others' load; CPU-second "
        f"figures do not). Total time of that run {meta['seconds']:.0f} s (sections: "
        f"{', '.join(meta.get('sections_run', []))}).",
    ]
    sections = (
        ("throughput", throughput_md),
        ("memory", memory_md),
        ("ratelimits", ratelimits_md),
        ("backfill", backfill_md),
    )
    for name, render in sections:
        if name not in results:
            continue
        parts += ["", render(results[name])]
        when = results.get("section_meta", {}).get(name)
        if when:
            parts += [
                "",
                f"_This section: measured {when['finished_at']} in {when['seconds']:.0f} s; load average "
                f"{when['load_start'][0]} at its start, {when['load_end'][0]} at its end{_reference(when)}._",
            ]
    for section, error in results.get("errors", {}).items():
        parts += ["", f"## {section}: FAILED", "", "```", error, "```"]
    return "\n".join(parts) + "\n"


def _reference(when: dict[str, Any]) -> str:
    ref = when.get("machine_reference")
    if not ref:
        return ""
    return (
        f"; machine speed at its start (bench.machine_reference): a fixed Python loop {ref['python_loop_s']:.3f} s, "
        f"fixed JSON parse {ref.get('json_parse_s', 0):.3f} s, 64 MiB of fresh memory {ref['fresh_64mib_s']:.3f} s"
    )


def chart(results: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    venues = results["throughput"]["venues"]
    names = _ordered(venues)
    rates = {n: stage_rates(venues[n]) for n in names}
    stages = [k for k, _label, _parts in STAGES] + [
        "extract",
        "validate",
        "load DuckDB",
        "load PostgreSQL",
        "end to end",
        "floor",
    ]
    stages = [s for s in stages if all(s in rates[n] for n in names)]
    fig, ax = plt.subplots(figsize=(12, 5.5))
    width = 0.8 / len(names)
    for i, n in enumerate(names):
        xs = [j + i * width for j in range(len(stages))]
        ax.bar(xs, [rates[n][s] for s in stages], width, label=n)
    ax.axhline(TARGET_E2E_ROWS_S, color="black", linestyle="--", linewidth=1, label="end-to-end target 100k rows/s")
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(stages))])
    ax.set_xticklabels(stages, rotation=20, ha="right")
    ax.set_yscale("log")
    ax.set_ylabel("rows per second (log scale)")
    rows = max(v["rows"] for v in venues.values())
    ax.set_title(f"ledgerlake throughput per stage, one account-day of {rows:,} entries per venue")
    ax.legend(fontsize=8)
    ax.grid(axis="y", which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
