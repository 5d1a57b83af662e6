"""The Coinbase operator through real Airflow: a tiny DAG mapped over two sandbox accounts, run with
dag.test() in a child process (tests/airflow_child.py), the sandbox and the moto S3 server of this process
over HTTP."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from airflow_child import run_dag_test

from ledgerlake.interval import Interval
from ledgerlake.lake import Lake, S3Settings
from ledgerlake.sandbox import Sandbox

ROOT = Path(__file__).resolve().parents[2]

DAG_FILE = """
from datetime import datetime, UTC
from airflow.sdk import DAG, Param, CronDataIntervalTimetable
from ledgerlake.operators.extract import EXTRACT_OPERATORS

with DAG(
    dag_id="extract_only_coinbase",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    params={"interval_start": Param(None, type=["null", "string"]),
            "interval_end": Param(None, type=["null", "string"])},
) as dag:
    EXTRACT_OPERATORS["coinbase"].partial(task_id="extract", retries=0).expand(account={accounts!r})
"""


@pytest.mark.slow
def test_coinbase_operator_runs_mapped_in_airflow(sandbox: Sandbox, s3_settings: S3Settings, tmp_path: Path) -> None:
    accounts = [a.account for a in sandbox.accounts("coinbase")]
    (tmp_path / "accounts.yaml").write_text(yaml.safe_dump(sandbox.accounts_config()))
    env = {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in sandbox.connections().items()}
    env["LEDGERLAKE_ACCOUNTS_FILE"] = str(tmp_path / "accounts.yaml")
    dag_file = DAG_FILE.replace("{accounts!r}", repr(accounts))
    result, done = run_dag_test(
        tmp_path, dag_file, "extract_only_coinbase", ("2026-11-18", "2026-11-19"), s3_settings, env, timeout=300
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert result["state"] == "success", result
    assert sorted(result["tasks"]) == ["extract[0]", "extract[1]"]

    # XCom holds only the small summary; the lake holds exactly the sandbox's rows.
    lake = Lake(s3_settings)
    interval = Interval.parse("2026-11-18", "2026-11-19")
    by_account = {x["value"]["account"]: x["value"] for x in result["xcom"] if x["key"] == "return_value"}
    assert set(by_account) == set(accounts)
    for account in accounts:
        summary = by_account[account]
        assert summary["venue"] == "coinbase" and summary["interval"].startswith("2026-11-18T00:00:00+00:00")
        assert summary["rows"]["ledger"] == sandbox.truth("coinbase", account, interval).num_rows > 0
        assert lake.exists(summary["manifest_key"])
        assert len(json.dumps(summary)) < 2000

    # The task logs show progress and the summary line, and no secret appears in them or in the XCom.
    # (dag.test() runs tasks in its own process and logs to its output; task log files count too.)
    files = [p for p in (tmp_path / "home" / "logs").rglob("*") if p.is_file()]
    logs = done.stdout + done.stderr + "".join(p.read_text(errors="replace") for p in files)
    assert "done:" in logs and "rows/s" in logs
    secrets = [s for a in sandbox.accounts("coinbase") for s in (a.api_key, a.api_secret, a.passphrase) if s]
    for secret in secrets:
        assert secret not in logs and secret not in json.dumps(result)
