"""A backfill of every venue's DAG through real Airflow (ledgerlake.local: api-server, scheduler with the
LocalExecutor, dag-processor; PostgreSQL metadata database), with few entries per day so that what is
measured is Airflow's own cost.

Per task instance (from the REST API and the task's log):
- work: what the task's own code reports in its log: the engine's "done: ... N s" (extract), the quality
  gate's "timings (s): {... total}" (validate), the warehouse's "loaded ... in N s" per account (load);
- in_task_overhead = duration - work: the task process (start, DAG file parse, imports, connections
  through the execution API, XCom, log upload) around the work;
- queued_to_start = start_date - queued_when: executor hand-off to a worker;
- ready_to_queued = queued_when - ready, ready being the run's start (extract) or the end of the last
  upstream task instance: scheduler latency, including waits for pool slots (deliberate throttling);
- airflow_s = queued_to_start + in_task_overhead (the time per task instance Airflow itself costs once a
  task is allowed to run); reported with ready_to_queued beside it. queued_to_start also holds waits for a
  free executor slot (parallelism), so in_task_overhead is the cleaner per-task-instance cost.
Both sides' rate limits are off here (the client limiter is per task process, and Pacifica's paging from
the newest entry and Binance's 2 requests a minute would otherwise turn this into a rate-limit benchmark).
"""

from __future__ import annotations

import ast
import json
import re
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ledgerlake.bench.services import scratch_database
from ledgerlake.local.services import free_port
from ledgerlake.schema import VENUES

_EXTRACT_DONE = re.compile(r"done: .*?([\d.]+) s; manifest")
_VALIDATE_TIMINGS = re.compile(r"timings \(s\): (\{[^}]*\})")
_LOADED = re.compile(r"loaded .*? in ([\d.]+)s")


def _t(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def work_seconds(task_id: str, log_text: str) -> float | None:
    if task_id == "extract":
        m = _EXTRACT_DONE.search(log_text)
        return float(m.group(1)) if m else None
    if task_id == "validate":
        m = _VALIDATE_TIMINGS.search(log_text)
        return float(ast.literal_eval(m.group(1)).get("total", 0.0)) if m else None
    found = _LOADED.findall(log_text)
    return sum(float(x) for x in found) if found else None


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    values = sorted(values)
    return {
        "mean": round(statistics.fmean(values), 2),
        "median": round(statistics.median(values), 2),
        "p95": round(values[min(len(values) - 1, int(0.95 * len(values)))], 2),
        "max": round(values[-1], 2),
    }


def _pools() -> dict[str, int]:
    from ledgerlake.config import INCLUDE_DIR

    try:
        pools = json.loads((INCLUDE_DIR / "pools.json").read_text())
        return {name.removeprefix("ledgerlake_"): int(spec["slots"]) for name, spec in pools.items()}
    except (OSError, ValueError, KeyError):
        return {}


def _connection_overrides(sandbox_options: Any, port_base: int) -> dict[str, str]:
    """The sandbox's venue connections with the client-side limit off (env wins over the harness's)."""
    from ledgerlake.sandbox import Sandbox

    unstarted = Sandbox(sandbox_options)  # accounts and credentials need no servers
    env = {}
    for i, venue in enumerate(VENUES):
        for acc in unstarted.accounts(venue):
            extra: dict[str, Any] = {"rate_limit": "off"}
            if acc.passphrase:
                extra["passphrase"] = acc.passphrase
            conn = {
                "conn_type": "http",
                "host": f"http://127.0.0.1:{port_base + i}",
                "login": acc.api_key,
                "password": acc.api_secret,
                "extra": extra,
            }
            env[f"AIRFLOW_CONN_{acc.conn_id.upper()}"] = json.dumps(conn)
    return env


def run(days: int, accounts: int, entries_per_day: int, budget: float, log: Any) -> dict[str, Any]:
    """Backfill `days` of every DAG; wait at most `budget` seconds, then measure what has finished (and
    project the whole backfill's wall time from the runs finished so far)."""
    from ledgerlake.local.stack import LocalStack, StackOptions
    from ledgerlake.sandbox import SandboxOptions

    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = today - timedelta(days=days), today
    port_base = free_port()
    while any(free_port() == port_base + i for i in range(1, 5)):
        port_base = free_port()
    sandbox = SandboxOptions(
        accounts_per_venue=accounts,
        days=days + 1,
        entries_per_day=entries_per_day,
        rate_limits="off",
        port_base=port_base,
    )
    result: dict[str, Any] = {
        "days": days,
        "accounts_per_venue": accounts,
        "entries_per_day": entries_per_day,
        "executor": "LocalExecutor",
        "metadata_db": "PostgreSQL",
        "warehouse": "DuckDB",
    }
    with (
        tempfile.TemporaryDirectory(prefix="ledgerlake-bench-airflow-") as tmp,
        scratch_database(purpose="airflow") as airflow_db,
    ):
        options = StackOptions(
            home=Path(tmp) / "airflow",
            sandbox=sandbox,
            warehouse=str(Path(tmp) / "warehouse.duckdb"),
            database=airflow_db,
            env=_connection_overrides(sandbox, port_base),
        )
        result["parallelism"] = options.parallelism
        result["pools"] = _pools()
        stack = LocalStack(options)
        t0 = time.monotonic()
        try:
            stack.start(on_step=lambda text: log.info("backfill: %s", text))
            result["stack_start_s"] = round(time.monotonic() - t0, 1)
            created = datetime.now(UTC)
            t1 = time.monotonic()
            ledger_dags = [f"ledger_{v}" for v in VENUES if v != "binance"]
            backfills = stack.backfill(start, end, dag_ids=ledger_dags)
            # Binance keeps 30 days: the day starting exactly 30 days ago is partly gone by now.
            binance_start = start + timedelta(days=1) if days >= 30 else start
            backfills += stack.backfill(binance_start, end, dag_ids=["ledger_binance"])
            result["binance_days"] = (end - binance_start).days

            def progress(p: list[Any]) -> None:
                log.info("backfill: %s", ", ".join(f"{x.dag_id} {x.finished}/{x.total}" for x in p))

            try:
                final = stack.wait(backfills, timeout=budget, on_progress=progress)
                result["complete"] = True
            except TimeoutError:
                final = [stack.client.progress(b) for b in backfills]
                result["complete"] = False
            elapsed = time.monotonic() - t1
            total, finished = sum(p.total for p in final), sum(p.finished for p in final)
            result.update(
                {
                    "budget_s": budget,
                    "elapsed_s": round(elapsed, 1),
                    "runs_total": total,
                    "runs_finished": finished,
                    "runs": {p.dag_id: p.states for p in final},
                }
            )
            result.update(_task_instances(stack, backfills, created))
            if not result["complete"]:
                # task instances done so far -> the whole backfill at the same pace (2 per account + 1 load)
                expected = total * (2 * accounts + 1)
                done = result["ti_states"].get("success", 0)
                result["ti_expected"] = expected
                result["projected_wall_s"] = round(elapsed * expected / done) if done else None
        except BaseException:
            log.error("backfill failed:\n%s", stack.diagnostics()[-5000:])
            raise
        finally:
            stack.stop()
    return result


def _task_instances(stack: Any, backfills: list[dict[str, Any]], created: datetime) -> dict[str, Any]:
    client = stack.client
    tis: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    for b in backfills:
        for r in client.backfill_runs(b):
            runs.append(r)
            tis += client.task_instances(b["dag_id"], r["dag_run_id"])

    def with_log(ti: dict[str, Any]) -> dict[str, Any]:
        try:
            text = client.task_log(ti)
        except Exception as exc:
            text = f"(log unavailable: {exc})"
        ti["_work"] = work_seconds(ti["task_id"], text)
        if ti["state"] == "failed":  # what went wrong, for the report: the log's error lines
            lines = [ln for ln in text.splitlines() if "error" in ln.lower() or "exception" in ln.lower()]
            ti["_error"] = " | ".join(ln.strip()[:300] for ln in lines[-3:])
        return ti

    logged = [ti for ti in tis if ti["state"] in ("success", "failed")]
    with ThreadPoolExecutor(4) as pool:
        tis = list(pool.map(with_log, logged)) + [ti for ti in tis if ti["state"] not in ("success", "failed")]
    run_start = {(r["dag_id"], r["dag_run_id"]): _t(r.get("start_date")) for r in runs}
    ended: dict[tuple[str, str, str], datetime] = {}
    for ti in tis:
        key = (ti["dag_id"], ti["dag_run_id"], ti["task_id"])
        end = _t(ti.get("end_date"))
        if end and (key not in ended or end > ended[key]):
            ended[key] = end
    upstream = {"extract": None, "validate": "extract", "load_warehouse": "validate"}
    rows: dict[str, dict[str, list[float]]] = {}
    states: dict[str, int] = {}
    starts = [t for t in (_t(r.get("start_date")) for r in runs) if t is not None]
    first_start = min(starts, default=None)
    last_end = max(ended.values(), default=None)
    for ti in tis:
        state = str(ti["state"])  # None: not scheduled yet
        states[state] = states.get(state, 0) + 1
        if ti["state"] != "success":
            continue
        task = ti["task_id"]
        up = upstream.get(task)
        ready = (
            run_start.get((ti["dag_id"], ti["dag_run_id"]))
            if up is None
            else ended.get((ti["dag_id"], ti["dag_run_id"], up))
        )
        queued, started, duration = _t(ti.get("queued_when")), _t(ti.get("start_date")), ti.get("duration")
        r = rows.setdefault(
            task, {k: [] for k in ("duration", "work", "in_task", "queued_to_start", "ready_to_queued", "airflow")}
        )
        if duration is None or started is None or queued is None:
            continue
        r["duration"].append(duration)
        q2s = max((started - queued).total_seconds(), 0.0)
        r["queued_to_start"].append(q2s)
        if ready is not None:
            r["ready_to_queued"].append(max((queued - ready).total_seconds(), 0.0))
        if ti["_work"] is not None:
            r["work"].append(ti["_work"])
            r["in_task"].append(duration - ti["_work"])
            r["airflow"].append(q2s + duration - ti["_work"])
    per_task = {task: {k: _stats(v) for k, v in r.items()} | {"count": len(r["duration"])} for task, r in rows.items()}
    all_airflow = [x for r in rows.values() for x in r["airflow"]]
    all_in_task = [x for r in rows.values() for x in r["in_task"]]
    all_q2s = [x for r in rows.values() for x in r["queued_to_start"]]
    failed = [
        {
            "dag_id": ti["dag_id"],
            "run": ti["dag_run_id"],
            "task": ti["task_id"],
            "map_index": ti.get("map_index"),
            "error": ti.get("_error", ""),
        }
        for ti in tis
        if ti["state"] == "failed"
    ]
    total_duration = sum(x for r in rows.values() for x in r["duration"])
    total_work = sum(x for r in rows.values() for x in r["work"])
    return {
        "task_instances": len(tis),
        "ti_states": states,
        "wall_s": round((last_end - created).total_seconds(), 1) if last_end else None,  # of what finished
        "first_run_start_to_last_end_s": round((last_end - first_start).total_seconds(), 1)
        if last_end and first_start
        else None,
        "per_task": per_task,
        "airflow_per_ti": _stats(all_airflow),
        "in_task_overhead_per_ti": _stats(all_in_task),
        "queued_to_start_per_ti": _stats(all_q2s),
        "failed": failed,
        "sum_ti_duration_s": round(total_duration, 1),
        "sum_work_s": round(total_work, 1),
        "work_share_of_ti_time_pct": round(100 * total_work / total_duration, 1) if total_duration else None,
    }
