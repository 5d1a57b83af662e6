"""WarehouseHook (Airflow connection -> settings) and LoadWarehouseOperator.execute against the real lake and
warehouses. The operator runs outside a scheduler (its context is a dict with the run's interval): the DAG
runs themselves are covered by the end-to-end tests of the DAGs."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from warehouse_lakedata import day_interval, in_interval, ledger_history, write_partition

from ledgerlake.lake import Lake
from ledgerlake.warehouse import WarehouseSettings, open_warehouse

D0 = datetime(2026, 6, 1, tzinfo=UTC)


def warehouse_connection(settings: WarehouseSettings) -> dict[str, Any]:
    if settings.kind == "duckdb":
        return {"conn_type": "duckdb", "extra": {"path": settings.path}}
    from psycopg.conninfo import conninfo_to_dict

    p = conninfo_to_dict(settings.dsn or "")
    return {
        "conn_type": "postgres",
        "host": p.get("host"),
        "port": int(p.get("port", 5432)),
        "login": p.get("user"),
        "schema": p.get("dbname"),
    }


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch, lake: Lake, warehouse_settings: WarehouseSettings) -> None:
    s3 = lake.settings
    monkeypatch.setenv(
        "AIRFLOW_CONN_LEDGERLAKE_S3",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": s3.endpoint_url, "bucket": s3.bucket},
            }
        ),
    )
    monkeypatch.setenv("AIRFLOW_CONN_LEDGERLAKE_WAREHOUSE", json.dumps(warehouse_connection(warehouse_settings)))


def test_hook_reads_postgres_and_duckdb_connections(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from ledgerlake.hooks.warehouse import WarehouseHook

    monkeypatch.setenv(
        "AIRFLOW_CONN_WH_PG",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": "db.internal",
                "port": 6432,
                "login": "loader",
                "password": "pa ss'word",
                "schema": "finance",
                "extra": {"sslmode": "require"},
            }
        ),
    )
    settings = WarehouseHook("wh_pg").settings()
    assert settings.kind == "postgres"
    from psycopg.conninfo import conninfo_to_dict

    assert conninfo_to_dict(settings.dsn or "") == {
        "host": "db.internal",
        "port": "6432",
        "user": "loader",
        "password": "pa ss'word",
        "dbname": "finance",
        "sslmode": "require",
    }
    assert "pa ss" not in repr(settings) and "pa ss" not in settings.describe()

    monkeypatch.setenv(
        "AIRFLOW_CONN_WH_DUCK", json.dumps({"conn_type": "duckdb", "extra": {"path": str(tmp_path / "w.duckdb")}})
    )
    assert WarehouseHook("wh_duck").settings() == WarehouseSettings(kind="duckdb", path=str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("AIRFLOW_CONN_WH_GENERIC", json.dumps({"conn_type": "generic", "host": "/data/wh.duckdb"}))
    assert WarehouseHook("wh_generic").settings() == WarehouseSettings(kind="duckdb", path="/data/wh.duckdb")

    monkeypatch.setenv("LEDGERLAKE_WAREHOUSE", str(tmp_path / "default.duckdb"))
    assert WarehouseHook("not_defined_anywhere").settings() == WarehouseSettings(
        kind="duckdb", path=str(tmp_path / "default.duckdb")
    )


def test_operator_loads_every_account_of_the_interval(
    lake: Lake, warehouse_settings: WarehouseSettings, connections: None
) -> None:
    from ledgerlake.operators.load import LoadWarehouseOperator

    interval = day_interval(D0)
    for account in ("a-1", "a-2"):
        write_partition(
            lake, "sunx", account, interval, in_interval(ledger_history("sunx", account, D0, 1, 7), interval)
        )
    op = LoadWarehouseOperator(task_id="load_warehouse", venue="sunx", accounts=["a-1", "a-2"])
    context = {"data_interval_start": interval.start, "data_interval_end": interval.end, "params": {}}
    for _ in range(2):
        result = op.execute(context)
        assert result["rows"] == {"a-1": 7, "a-2": 7}
        assert result["interval_start"] == interval.start.isoformat()
        json.dumps(result)  # fit for XCom
    with open_warehouse(warehouse_settings) as wh:
        assert wh.query(
            "SELECT account, COUNT(*) AS n FROM ledger_entries GROUP BY account ORDER BY account"
        ).to_pylist() == [
            {"account": "a-1", "n": 7},
            {"account": "a-2", "n": 7},
        ]


def test_operator_refuses_unvalidated_partitions_clearly(
    lake: Lake, warehouse_settings: WarehouseSettings, connections: None
) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    from ledgerlake.operators.load import LoadWarehouseOperator

    interval = day_interval(D0 + timedelta(days=1))
    write_partition(
        lake,
        "coinbase",
        "good",
        interval,
        in_interval(ledger_history("coinbase", "good", interval.start, 1, 4), interval),
    )
    write_partition(
        lake,
        "coinbase",
        "bad",
        interval,
        in_interval(ledger_history("coinbase", "bad", interval.start, 1, 4), interval),
        validate=False,
    )
    op = LoadWarehouseOperator(task_id="load_warehouse", venue="coinbase", accounts=["good", "bad"])
    context = {"data_interval_start": interval.start, "data_interval_end": interval.end, "params": {}}
    with pytest.raises(
        AirflowFailException, match=r"1 of 2 coinbase partition\(s\).*\n.*coinbase/bad \[2026-06-02.*validation failed"
    ):
        op.execute(context)
    with open_warehouse(warehouse_settings) as wh:
        assert wh.query("SELECT DISTINCT account FROM ledger_entries").to_pylist() == [{"account": "good"}]

    manual = {"params": {"interval_start": "2026-06-02", "interval_end": "2026-06-03"}}
    op_good = LoadWarehouseOperator(task_id="load_good", venue="coinbase", accounts="good")
    assert op_good.execute(manual)["rows"] == {"good": 4}
