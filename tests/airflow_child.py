"""dag.test() of a small DAG file in a child process: its own AIRFLOW_HOME and SQLite metadata database,
connections only as AIRFLOW_CONN_* JSON (the lake's S3 from this process's moto server, plus what the test
adds), so the operators run through real Airflow without touching this process's state."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from ledgerlake.lake import S3Settings

# argv: dags folder, dag_id, logical date, interval start, interval end. Prints one RESULT line.
RUNNER = """
import json, sys
from datetime import datetime
from airflow.dag_processing.dagbag import DagBag
from airflow.models.xcom import XComModel
from airflow.utils.session import create_session

folder, dag_id, logical_date, start, end = sys.argv[1:6]
bag = DagBag(dag_folder=folder)
assert not bag.import_errors, bag.import_errors
dag = bag.get_dag(dag_id)
conf = {"interval_start": start, "interval_end": end}
run = dag.test(logical_date=datetime.fromisoformat(logical_date), run_conf=conf)

def value(v):
    try:
        return json.loads(v) if isinstance(v, (str, bytes)) else v
    except ValueError:
        return v

with create_session() as session:
    rows = session.query(XComModel).filter(XComModel.dag_id == dag.dag_id).all()
    xcom = [{"key": r.key, "map_index": r.map_index, "value": value(r.value)} for r in rows]
    states = {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in run.get_task_instances(session=session)}
print("RESULT " + json.dumps({"state": str(run.state), "tasks": states, "xcom": xcom}, default=str))
"""


def run_dag_test(
    tmp_path: Path,
    dag_file: str,
    dag_id: str,
    interval: tuple[str, str],
    s3_settings: S3Settings,
    env: dict[str, str],
    timeout: float = 400,
) -> tuple[dict[str, Any], subprocess.CompletedProcess[str]]:
    """Run the DAG once for `interval` (its end is the logical date); returns the RESULT and the process.
    The RESULT holds the run's state, each task instance's state and every XCom (key, map_index, value)."""
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / f"{dag_id}.py").write_text(dag_file)
    (tmp_path / "runner.py").write_text(RUNNER)
    child = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LEDGERLAKE"))}
    child.update(
        AIRFLOW_HOME=str(tmp_path / "home"),
        AIRFLOW__CORE__DAGS_FOLDER=str(tmp_path / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{tmp_path / 'airflow.db'}",
        AIRFLOW_CONN_LEDGERLAKE_S3=json.dumps(
            {
                "conn_type": "aws",
                "login": s3_settings.access_key_id,
                "password": s3_settings.secret_access_key,
                "extra": {"endpoint_url": s3_settings.endpoint_url, "bucket": s3_settings.bucket},
            }
        ),
    )
    child.update(env)
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run([airflow, "db", "migrate"], env=child, check=True, capture_output=True, timeout=180)
    logical_date = f"{interval[1]}T00:00:00+00:00"
    done = subprocess.run(
        [sys.executable, str(tmp_path / "runner.py"), str(tmp_path / "dags"), dag_id, logical_date, *interval],
        env=child,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, done.stdout[-3000:] + done.stderr[-6000:]
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result, done
