"""The Coinbase operator through real Airflow: a tiny DAG mapped over two sandbox accounts, run with
dag.test() in a child process with its own AIRFLOW_HOME (SQLite), connections from AIRFLOW_CONN_* JSON,
the sandbox and the moto S3 server of this process over HTTP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

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

RUNNER = """
import json, sys
from datetime import datetime, UTC
from airflow.dag_processing.dagbag import DagBag
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

bag = DagBag(dag_folder=sys.argv[1])
assert not bag.import_errors, bag.import_errors
dag = bag.get_dag("extract_only_coinbase")
run = dag.test(logical_date=datetime(2026, 11, 19, tzinfo=UTC),
               run_conf={"interval_start": "2026-11-18", "interval_end": "2026-11-19"})
with create_session() as session:
    rows = session.query(XComModel).filter(XComModel.dag_id == dag.dag_id, XComModel.key == "return_value").all()
    values = [json.loads(r.value) if isinstance(r.value, str) else r.value for r in rows]
    states = {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in run.get_task_instances(session=session)}
print("RESULT " + json.dumps({"state": str(run.state), "tasks": states, "xcom": values}, default=str))
"""


@pytest.mark.slow
def test_coinbase_operator_runs_mapped_in_airflow(sandbox: Sandbox, s3_settings: S3Settings, tmp_path: Path) -> None:
    accounts = [a.account for a in sandbox.accounts("coinbase")]
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "extract_only.py").write_text(DAG_FILE.replace("{accounts!r}", repr(accounts)))
    (tmp_path / "accounts.yaml").write_text(yaml.safe_dump(sandbox.accounts_config()))
    (tmp_path / "runner.py").write_text(textwrap.dedent(RUNNER))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LEDGERLAKE"))}
    env.update(
        AIRFLOW_HOME=str(tmp_path / "home"),
        AIRFLOW__CORE__DAGS_FOLDER=str(tmp_path / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{tmp_path / 'airflow.db'}",
        LEDGERLAKE_ACCOUNTS_FILE=str(tmp_path / "accounts.yaml"),
        AIRFLOW_CONN_LEDGERLAKE_S3=json.dumps(
            {
                "conn_type": "aws",
                "login": s3_settings.access_key_id,
                "password": s3_settings.secret_access_key,
                "extra": {"endpoint_url": s3_settings.endpoint_url, "bucket": s3_settings.bucket},
            }
        ),
    )
    for conn_id, conn in sandbox.connections().items():
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = json.dumps(conn)
    airflow = str(Path(sys.executable).parent / "airflow")
    t0 = time.monotonic()
    subprocess.run([airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=180)
    t1 = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "dags")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    print(f"db migrate {t1 - t0:.1f} s, dag.test {time.monotonic() - t1:.1f} s")
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(lines[-1][len("RESULT ") :])
    assert result["state"] == "success", result
    assert sorted(result["tasks"]) == ["extract[0]", "extract[1]"]

    # XCom holds only the small summary; the lake holds exactly the sandbox's rows.
    lake = Lake(s3_settings)
    interval = Interval.parse("2026-11-18", "2026-11-19")
    by_account = {x["account"]: x for x in result["xcom"]}
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
