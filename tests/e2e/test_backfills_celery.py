"""The deployment of docker-compose.yaml on its real parts, without Docker: the CeleryExecutor with a
separate `airflow celery worker` process, Redis as the broker (its own database number, emptied before and
after), PostgreSQL as Airflow's metadata database and Celery's result backend, and a PostgreSQL warehouse.
A three-day backfill of every venue through the REST API ends with the warehouse equal to the ground truth."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from e2e_support import run_backfill, warehouse_differences, warehouse_state

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

REDIS_URL = os.environ.get("LEDGERLAKE_TEST_REDIS_URL", "redis://127.0.0.1:6379/13")


@pytest.fixture(scope="module")
def redis_broker() -> Iterator[str]:
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.ping()
    except redis.RedisError as exc:
        if os.environ.get("CI") or os.environ.get("LEDGERLAKE_REQUIRE_POSTGRES"):
            pytest.fail(f"Redis is required here (CI) but {REDIS_URL} is unreachable: {exc}")
        pytest.skip(f"Redis not reachable at {REDIS_URL}")
    client.flushdb()  # this database number is the test's own: no stale task messages from an earlier run
    try:
        yield REDIS_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory, module_database, redis_broker: str) -> Iterator:
    from ledgerlake.local.stack import LocalStack, StackOptions
    from ledgerlake.sandbox import SandboxOptions

    home = tmp_path_factory.mktemp("e2e-celery")
    metadata = module_database("airflow")
    options = StackOptions(
        home=home / "airflow",
        sandbox=SandboxOptions(seed=13, accounts_per_venue=2, days=5, entries_per_day=300, rate_limits="fast"),
        warehouse=module_database("warehouse"),
        database=metadata,
        executor="CeleryExecutor",
        celery_broker_url=redis_broker,
        celery_result_backend=metadata,
        env={"LEDGERLAKE_DATA_DOCS_DIR": str(home / "data_docs")},
    )
    stack = LocalStack(options)
    stack.start(("api-server", "scheduler", "dag-processor", "celery-worker"))
    try:
        yield stack
    finally:
        stack.stop()


def test_celery_backfill_of_every_venue_matches_ground_truth(celery_stack, last_three_days) -> None:
    assert celery_stack.client.import_errors() == []
    progress = run_backfill(celery_stack, *last_three_days)
    assert sorted((p.dag_id, p.total, p.states) for p in progress) == [
        (dag_id, 3, {"success": 3}) for dag_id in sorted(celery_stack.dag_ids)
    ]
    # The tasks ran in the Celery worker, not in the scheduler: its log names them.
    worker = next(c for c in celery_stack.airflow.components if c.name == "celery-worker")
    assert "ledger_" in worker.log_path.read_text(errors="replace")
    assert warehouse_differences(celery_stack, *last_three_days) == []
    assert len(warehouse_state(celery_stack)["ledger_entries"]) > 0
