"""ValidatePartitionOperator: no Great Expectations import at DAG parse time, and a real Airflow run (dag.test()
in a child process with its own SQLite home) mapped over a clean and a broken account: the broken one fails
with the summary, both get the "Data Docs" link."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

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

RUNNER = """
import json, sys
from datetime import datetime, UTC
from airflow.dag_processing.dagbag import DagBag
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
dag = bag.get_dag("validate_only_coinbase")
run = dag.test(logical_date=datetime(2026, 11, 2, tzinfo=UTC),
               run_conf={"interval_start": "2026-11-01", "interval_end": "2026-11-02"})
with create_session() as session:
    rows = session.query(XComModel).filter(XComModel.dag_id == dag.dag_id).all()
    def value(v):
        try:
            return json.loads(v) if isinstance(v, (str, bytes)) else v
        except ValueError:
            return v
    xcom = [{"key": r.key, "map_index": r.map_index, "value": value(r.value)} for r in rows]
    states = {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in run.get_task_instances(session=session)}
print("RESULT " + json.dumps({"state": str(run.state), "tasks": states, "xcom": xcom}, default=str))
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

    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "validate_only.py").write_text(DAG_FILE)
    (tmp_path / "runner.py").write_text(textwrap.dedent(RUNNER))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LEDGERLAKE"))}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "home"),
        AIRFLOW__CORE__DAGS_FOLDER=str(tmp_path / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{tmp_path / 'airflow.db'}",
        LEDGERLAKE_DATA_DOCS_DIR=str(tmp_path / "data_docs"),
        GX_ANALYTICS_ENABLED="false",
        AIRFLOW_CONN_LEDGERLAKE_S3=json.dumps(
            {
                "conn_type": "aws",
                "login": s3_settings.access_key_id,
                "password": s3_settings.secret_access_key,
                "extra": {"endpoint_url": s3_settings.endpoint_url, "bucket": s3_settings.bucket},
            }
        ),
        # A DuckDB warehouse nothing was loaded into: no previous closing balances, said in the log.
        AIRFLOW_CONN_LEDGERLAKE_WAREHOUSE=json.dumps(
            {"conn_type": "duckdb", "extra": {"path": str(tmp_path / "warehouse.duckdb")}}
        ),
    )
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=180)
    done = subprocess.run(
        [sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "dags")],
        env=env,
        capture_output=True,
        text=True,
        timeout=400,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-3000:] + done.stderr[-6000:-3000]
    result = json.loads(lines[-1][len("RESULT ") :])

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
