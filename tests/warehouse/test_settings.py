"""Where the warehouse is: parsing targets, defaults, and never showing a password."""

from __future__ import annotations

import pytest

from ledgerlake.warehouse.settings import DEFAULT_DUCKDB_PATH, WarehouseSettings, mask_dsn


def test_targets_parse_to_the_right_backend() -> None:
    assert WarehouseSettings.parse("postgresql://u:p@db/ledger").kind == "postgres"
    assert WarehouseSettings.parse("postgres://db/ledger").kind == "postgres"
    assert WarehouseSettings.parse("host=db dbname=ledger user=u").kind == "postgres"
    duck = WarehouseSettings.parse("~/data/wh.duckdb")
    assert duck.kind == "duckdb" and duck.path and not duck.path.startswith("~")


def test_default_is_the_environment_then_the_demo_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEDGERLAKE_WAREHOUSE", raising=False)
    assert WarehouseSettings.default() == WarehouseSettings(kind="duckdb", path=str(DEFAULT_DUCKDB_PATH))
    monkeypatch.setenv("LEDGERLAKE_WAREHOUSE", "postgresql://loader:hunter2@db:5432/ledger")
    assert WarehouseSettings.default().kind == "postgres"


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://loader:hunter2@db:5432/ledger",
        "postgresql://loader:hunter2@db/ledger?sslmode=require",
        "host=db user=loader password=hunter2 dbname=ledger",
        "host=db user=loader password='hunter2' dbname=ledger",
        "postgresql://loader@db/ledger?password=hunter2",
    ],
)
def test_passwords_never_show(dsn: str) -> None:
    settings = WarehouseSettings.parse(dsn)
    assert "hunter2" not in repr(settings)
    assert "hunter2" not in settings.describe()
    assert "hunter2" not in mask_dsn(dsn)
    assert "db" in settings.describe()


def test_incomplete_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="file path"):
        WarehouseSettings(kind="duckdb")
    with pytest.raises(ValueError, match="DSN"):
        WarehouseSettings(kind="postgres")
