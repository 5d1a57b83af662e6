"""ValidatePartitionOperator: no Great Expectations import at DAG parse time, and a real Airflow run (dag.test()
in a child process with its own SQLite home) mapped over a clean and a broken account: the broken one fails
with the summary, both get the "Data Docs" link."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from airflow_child import run_dag_test

from ledgerlake.lake import Lake, S3Settings, read_validation

from .partitions import INTERVAL, ledger_rows, write_ledger


def test_importing_the_operator_does_not_import_great_expectations() -> None:
    code = (
        "import sys, ledgerlake.operators.validate, ledgerlake.quality; "
        "bad = [m for m in sys.modules if m.startswith(('great_expectations', 'pandas'))]; "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_operator_declares_the_data_docs_link_and_templated_account() -> None:
    from ledgerlake.operators.validate import DataDocsLink, ValidatePartitionOperator

    assert "account" in ValidatePartitionOperator.template_fields
    [link] = ValidatePartitionOperator.operator_extra_links
    assert isinstance(link, DataDocsLink) and link.name == "Data Docs"


DAG_FILE = """
from datetime import datetime, UTC
from airflow.sdk import DAG, Param, CronDataIntervalTimetable
from ledgerlake.operators.validate import ValidatePartitionOperator

with DAG(
    dag_id="validate_only_coinbase",
    schedule=CronDataIntervalTimetable("@daily", timezone="UTC"),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    params={
        "interval_start": Param(None, type=["null", "string"]),
        "interval_end": Param(None, type=["null", "string"]),
    },
) as dag:
    ValidatePartitionOperator.partial(task_id="validate", venue="coinbase", retries=0).expand(account=["good", "gap"])
"""


@pytest.mark.slow
def test_operator_in_airflow_fails_the_broken_account_and_links_data_docs(
    lake: Lake, s3_settings: S3Settings, tmp_path: Path
) -> None:
    write_ledger(lake, ledger_rows("coinbase", account="good"))
    broken = ledger_rows("coinbase", account="gap", n=20)
    del broken[7]
    for seq, row in enumerate(broken):
        row["entry_seq"] = seq
    write_ledger(lake, broken)

    env = {
        "LEDGERLAKE_DATA_DOCS_DIR": str(tmp_path / "data_docs"),
        "GX_ANALYTICS_ENABLED": "false",
        # A DuckDB warehouse nothing was loaded into: no previous closing balances, said in the log.
        "AIRFLOW_CONN_LEDGERLAKE_WAREHOUSE": json.dumps(
            {"conn_type": "duckdb", "extra": {"path": str(tmp_path / "warehouse.duckdb")}}
        ),
    }
    result, done = run_dag_test(
        tmp_path, DAG_FILE, "validate_only_coinbase", ("2026-11-01", "2026-11-02"), s3_settings, env
    )

    assert result["state"] == "failed"
    assert result["tasks"] == {"validate[0]": "success", "validate[1]": "failed"}
    by_key: dict[tuple[str, int], object] = {(x["key"], x["map_index"]): x["value"] for x in result["xcom"]}
    summary = by_key[("return_value", 0)]
    assert isinstance(summary, dict) and summary["passed"] is True and summary["account"] == "good"
    assert len(json.dumps(summary)) < 2000
    for index, account in enumerate(["good", "gap"]):
        url = by_key[("data_docs_url", index)]
        assert isinstance(url, str) and url.startswith(f"{s3_settings.endpoint_url}/{s3_settings.bucket}/data_docs/")
        assert by_key[("_link_DataDocsLink", index)] == url  # what the UI shows on the task
        assert (tmp_path / "data_docs" / url.split("/data_docs/", 1)[1]).is_file()
        record = read_validation(lake, "coinbase", account, INTERVAL)
        assert record is not None and record.passed == (account == "good")

    logs = done.stdout + done.stderr  # dag.test() runs the tasks in the runner's process
    assert "FAILED 1 of" in logs and "invariant_running_balance" in logs and "entry_id=1009" in logs
    assert "no previous closing balances" in logs
