"""Fast checks of ledgerlake.local's set-up (no Airflow process): what reaches Airflow's environment and
what is written to disk."""

from __future__ import annotations

import json
from pathlib import Path

from ledgerlake.local.runner import PASSWORDS_FILE, AirflowSetup, LocalAirflow, admin_password, connection_env
from ledgerlake.local.stack import pools, warehouse_connection


def test_connections_become_json_environment_variables() -> None:
    env = connection_env({"ledgerlake_coinbase_0": {"conn_type": "http", "host": "h", "extra": {"passphrase": "p"}}})
    assert list(env) == ["AIRFLOW_CONN_LEDGERLAKE_COINBASE_0"]
    assert json.loads(env["AIRFLOW_CONN_LEDGERLAKE_COINBASE_0"])["extra"] == {"passphrase": "p"}


def test_warehouse_connection_for_duckdb_and_postgres(tmp_path: Path) -> None:
    assert warehouse_connection(str(tmp_path / "w.duckdb")) == {
        "conn_type": "duckdb",
        "host": str((tmp_path / "w.duckdb").resolve()),
    }
    conn = warehouse_connection("postgresql://ana%40x:s%3Acret@db.example:6543/wh")
    assert conn == {
        "conn_type": "postgres",
        "host": "db.example",
        "port": 6543,
        "schema": "wh",
        "login": "ana@x",
        "password": "s:cret",
    }


def test_admin_password_is_made_once_and_kept(tmp_path: Path) -> None:
    setup = AirflowSetup(home=tmp_path)
    first = admin_password(setup)
    assert len(first) >= 12 and admin_password(AirflowSetup(home=tmp_path)) == first
    assert json.loads((tmp_path / PASSWORDS_FILE).read_text()) == {"admin": first}
    assert oct((tmp_path / PASSWORDS_FILE).stat().st_mode)[-3:] == "600"
    assert admin_password(AirflowSetup(home=tmp_path, admin_password="given-one")) == "given-one"


def test_environment_overrides_inherited_airflow_settings(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "SomethingElse")
    monkeypatch.setenv("AIRFLOW_CONN_STALE", "http://x")
    setup = AirflowSetup(home=tmp_path, database="postgresql://postgres@127.0.0.1/af", connections={"a": {}})
    env = LocalAirflow(setup).env()
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor"
    assert "AIRFLOW_CONN_STALE" not in env and "AIRFLOW_CONN_A" in env
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg://postgres@127.0.0.1/af"
    assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] == f"{setup.api_url}/execution/"
    assert env["AIRFLOW_HOME"] == str(tmp_path.resolve())
    # Two instances never share the secrets that sign tokens.
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] != LocalAirflow(setup).env()["AIRFLOW__API_AUTH__JWT_SECRET"]


def test_pools_come_from_the_one_declaration() -> None:
    declared = pools()
    assert {f"ledgerlake_{v}" for v in ("exchangehubx", "binance", "pacifica", "coinbase", "sunx")} <= set(declared)
    assert declared["ledgerlake_warehouse"]["slots"] == 1
