"""The pipeline on real Airflow as a deployment runs it: api-server, scheduler with the LocalExecutor and
dag-processor as separate processes on a fresh PostgreSQL metadata database; backfills created through the
REST API the UI calls (POST /api/v2/backfills, logged in with a JWT from POST /auth/token); the warehouse
(DuckDB here, PostgreSQL in the Celery test) compared with the sandbox's ground truth row for row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from e2e_support import lake_keys, run_backfill, warehouse_differences, warehouse_state

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, module_database) -> Iterator:
    from ledgerlake.local.stack import LocalStack, StackOptions
    from ledgerlake.sandbox import SandboxOptions

    home = tmp_path_factory.mktemp("e2e-local")
    options = StackOptions(
        home=home / "airflow",
        sandbox=SandboxOptions(seed=11, accounts_per_venue=2, days=5, entries_per_day=300, rate_limits="fast"),
        warehouse=str(home / "warehouse.duckdb"),
        database=module_database("airflow"),
        env={"LEDGERLAKE_DATA_DOCS_DIR": str(home / "data_docs")},
    )
    stack = LocalStack(options)
    stack.start()
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
def first_backfill(stack, last_three_days: tuple[datetime, datetime]) -> list:
    return run_backfill(stack, *last_three_days)


def test_real_dags_import_without_errors(stack) -> None:
    assert stack.client.import_errors() == []
    assert stack.client.dag_ids() >= stack.dag_ids


def test_no_venue_secret_is_written_to_disk(stack, first_backfill) -> None:
    """Connections reach Airflow as environment variables only: no file under AIRFLOW_HOME (configuration,
    account config, task logs, SQLite) holds an API secret or passphrase."""
    secrets = {
        str(value)
        for conn in stack.sandbox.connections().values()
        for value in (conn["password"], *conn["extra"].values())
        if value and len(str(value)) >= 8
    }
    assert secrets
    for path in stack.options.home.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            leaked = [s for s in secrets if s.encode() in data]
            assert not leaked, f"{path} holds a venue secret"


def test_backfill_of_every_venue_matches_ground_truth(stack, first_backfill, last_three_days) -> None:
    assert sorted((p.dag_id, p.total, p.states) for p in first_backfill) == [
        (dag_id, 3, {"success": 3}) for dag_id in sorted(stack.dag_ids)
    ]
    assert warehouse_differences(stack, *last_three_days) == []
    state = warehouse_state(stack)
    assert len(state["ledger_entries"]) > 0 and len(state["balance_snapshots"]) > 0


def test_reprocessing_all_runs_changes_nothing(stack, first_backfill, last_three_days) -> None:
    before, keys_before = warehouse_state(stack), lake_keys(stack)
    progress = run_backfill(stack, *last_three_days, reprocess_behavior="completed")
    assert sum(p.states.get("success", 0) for p in progress) == 3 * len(stack.dag_ids)
    assert warehouse_state(stack) == before
    assert lake_keys(stack) == keys_before


def test_backfill_with_venue_faults_ends_exact(stack, first_backfill, last_three_days) -> None:
    before = stack.sandbox.stats()
    stack.sandbox.set_faults("flaky")
    try:
        run_backfill(stack, *last_three_days, reprocess_behavior="completed")
    finally:
        stack.sandbox.set_faults("none")
    after = stack.sandbox.stats()
    injected = sum(after[v][k] - before[v][k] for v in after for k in ("429s", "5xx_injected"))
    assert injected > 0, "the fault profile injected nothing; the test would prove nothing"
    assert warehouse_differences(stack, *last_three_days) == []
