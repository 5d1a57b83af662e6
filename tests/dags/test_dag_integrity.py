"""Every DAG file imports through Airflow's own loading, and every DAG is shaped as users expect."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {"ledger_exchangehubx", "ledger_binance", "ledger_pacifica", "ledger_coinbase", "ledger_sunx"}


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(ROOT / "dags"))


def test_dag_files_import_without_errors(dagbag) -> None:
    assert dagbag.import_errors == {}


def test_one_dag_per_venue(dagbag) -> None:
    assert set(dagbag.dag_ids) >= EXPECTED


def test_every_dag_has_owner_tags_retries_and_interval(dagbag) -> None:
    for dag_id in dagbag.dag_ids:
        dag = dagbag.dags[dag_id]
        assert dag.tags, dag_id
        # A real [start, end) interval: a plain cron string would give runs with an empty one.
        assert type(dag.timetable).__name__ == "CronDataIntervalTimetable", dag_id
        for task in dag.tasks:
            assert task.owner and task.owner != "airflow", (dag_id, task.task_id)
            assert task.retries >= 1, (dag_id, task.task_id)


def test_pipeline_shape(dagbag) -> None:
    dag = dagbag.dags["ledger_coinbase"]
    assert dag.get_task("extract").downstream_task_ids == {"validate"}
    assert dag.get_task("validate").downstream_task_ids == {"load_warehouse"}
    assert dag.get_task("extract").pool == "ledgerlake_coinbase"


def test_parsing_touches_no_network(monkeypatch) -> None:
    """Parse the DAG folder with sockets, S3 clients and DuckDB disabled: touching them fails the parse."""
    from airflow.dag_processing.dagbag import DagBag

    def refuse(*args, **kwargs):
        raise AssertionError("a DAG file opened a network connection at parse time")

    import boto3
    import duckdb

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(boto3, "client", refuse)
    monkeypatch.setattr(duckdb, "connect", refuse)
    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    assert set(bag.dag_ids) >= EXPECTED


def test_every_pool_a_task_uses_is_declared(dagbag) -> None:
    """Pools are declared once, in include/pools.json, which the local runner and the compose init import."""
    import json

    declared = set(json.loads((ROOT / "include" / "pools.json").read_text()))
    used = {task.pool for dag in dagbag.dags.values() for task in dag.tasks} - {"default_pool"}
    assert used <= declared, used - declared
