"""The local Airflow harness itself, on a throw-away DAG: real api-server, scheduler (LocalExecutor) and
dag-processor on a fresh PostgreSQL metadata database; connections only as environment variables; a
backfill created over REST; tasks that reach the sandbox and the S3 endpoint through Airflow connections."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from ledgerlake.interval import Interval
from ledgerlake.lake import Lake

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

PROBE_DAG = textwrap.dedent(
    '''
    """Throw-away DAG for the harness test: per account, read its venue connection, call the venue, and
    write what came back to the lake under probe/."""
    from datetime import UTC, datetime

    from airflow.sdk import DAG, BaseHook, CronDataIntervalTimetable, task

    from ledgerlake.config import load_config

    accounts = [(v, a.account, a.conn_id) for v, c in load_config().items() for a in c.accounts if v == "coinbase"]

    with DAG(
        "harness_probe",
        schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
        start_date=datetime(2025, 1, 1, tzinfo=UTC),
        catchup=False,
        default_args={"owner": "ledgerlake", "retries": 0},
        tags=["test"],
    ):

        @task(pool="ledgerlake_coinbase")
        def probe(spec, data_interval_start=None, data_interval_end=None):
            import json
            import urllib.error
            import urllib.request

            from ledgerlake.hooks.lake import LakeHook
            from ledgerlake.interval import Interval
            from ledgerlake.lake import Lake

            venue, account, conn_id = spec
            conn = BaseHook.get_connection(conn_id)
            try:  # any answer at all shows the connection leads to the venue
                with urllib.request.urlopen(conn.host.rstrip("/") + "/", timeout=10) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            interval = Interval(data_interval_start, data_interval_end)
            body = {"venue": venue, "account": account, "status": status, "has_secret": bool(conn.password)}
            Lake(LakeHook().settings()).put_bytes(f"probe/{account}/{interval.id}.json", json.dumps(body).encode())
            return status

        probe.expand(spec=accounts)
    '''
)


def test_backfill_over_rest_runs_tasks_with_env_connections(tmp_path: Path, module_database, last_three_days) -> None:
    from ledgerlake.local.stack import LocalStack, StackOptions
    from ledgerlake.sandbox import SandboxOptions

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "probe.py").write_text(PROBE_DAG)
    options = StackOptions(
        home=tmp_path / "airflow",
        sandbox=SandboxOptions(accounts_per_venue=2, days=5, entries_per_day=20, rate_limits="off"),
        warehouse=str(tmp_path / "warehouse.duckdb"),
        database=module_database("airflow"),
        dags_folder=dags,
        dag_ids={"harness_probe"},
    )
    stack = LocalStack(options)
    stack.start()
    try:
        assert stack.client.import_errors() == []
        start, end = last_three_days
        backfills = stack.backfill(start, end, dag_ids=["harness_probe"])
        try:
            progress = stack.wait(backfills, timeout=240)
        except Exception:
            print(stack.diagnostics())
            raise
        assert [(p.total, p.states) for p in progress] == [(3, {"success": 3})], stack.diagnostics()
        lake = Lake(stack.s3.settings)
        accounts = [a.account for a in stack.sandbox.accounts("coinbase")]
        expected = {f"probe/{account}/{day.id}.json" for account in accounts for day in Interval(start, end).days()}
        assert set(lake.list_keys("probe/")) == expected
        for key in expected:
            body = json.loads(lake.get_bytes(key))
            assert 200 <= body["status"] < 500 and body["has_secret"] is True
        # Nothing secret went to disk: the connections exist only in the components' environment.
        for path in options.home.rglob("*"):
            if path.is_file() and path.suffix in (".cfg", ".yaml", ".json", ".ini"):
                text = path.read_text(errors="replace")
                for conn in stack.sandbox.connections().values():
                    for secret in (conn["password"], *conn["extra"].values()):
                        assert not secret or str(secret) not in text, path
    finally:
        stack.stop()
