"""The whole local stack wired together: local S3, the venue sandbox, and Airflow pointed at both.

    with LocalStack(StackOptions(home=Path(".airflow"))) as stack:   # starts everything
        backfills = stack.backfill(start, end)                        # one backfill per DAG, over REST
        stack.wait(backfills, timeout=600)

Connections (`ledgerlake_s3`, `ledgerlake_warehouse`, one per venue account) reach Airflow as environment
variables only; the account config the DAGs read is written into AIRFLOW_HOME (it holds no secrets).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import yaml

from ledgerlake.config import ACCOUNTS_ENV, PROJECT_ROOT
from ledgerlake.local.api import AirflowClient, RunProgress
from ledgerlake.local.runner import ADMIN_USER, AirflowSetup, LocalAirflow
from ledgerlake.local.services import LocalS3
from ledgerlake.schema import VENUES

WAREHOUSE_CONN_ID = "ledgerlake_warehouse"
S3_CONN_ID = "ledgerlake_s3"
# What every ledgerlake task imports; loaded once in the processes tasks are forked from.
TASK_MODULES = (
    "ledgerlake.operators.extract",
    "ledgerlake.operators.validate",
    "ledgerlake.operators.load",
    "ledgerlake.quality",
    "ledgerlake.warehouse.duckdb_backend",
    "ledgerlake.warehouse.postgres_backend",
    "great_expectations",
)


def warehouse_connection(target: str) -> dict[str, Any]:
    """The `ledgerlake_warehouse` connection for a DuckDB file path or a postgresql:// DSN."""
    if not target.startswith(("postgresql://", "postgres://")):
        return {"conn_type": "duckdb", "host": str(Path(target).resolve())}
    parts = urlsplit(target)
    conn: dict[str, Any] = {
        "conn_type": "postgres",
        "host": parts.hostname or "127.0.0.1",
        "port": parts.port or 5432,
        "schema": parts.path.lstrip("/"),
        "login": unquote(parts.username or ""),
    }
    if parts.password:
        conn["password"] = unquote(parts.password)
    return conn


POOLS_FILE = PROJECT_ROOT / "include" / "pools.json"


def client_rate_limits(spec: Any) -> dict[str, Any]:
    """Each venue's `rate_limit` connection extra matching the sandbox's budgets (a RateLimitSpec).

    The extraction engine keeps to a venue's documented limits unless its connection says otherwise; when
    the sandbox runs with other budgets (the demo's one-second windows, or none), its connections say so,
    as a real deployment's would for an account with a different tier."""
    if not spec.enabled:
        return {venue: "off" for venue in VENUES}
    return {
        "binance": {"units": spec.binance_weight_budget, "per_seconds": spec.binance_window_s},
        "coinbase": {"units": spec.coinbase_rate, "per_seconds": 1, "burst": spec.coinbase_burst},
        "pacifica": {"units": spec.pacifica_credits, "per_seconds": spec.pacifica_window_s},
        "sunx": {"units": spec.sunx_reads, "per_seconds": spec.sunx_window_s},
        "exchangehubx": {"units": spec.exchangehubx_rate, "per_seconds": 1},
    }


def pools() -> dict[str, dict[str, Any]]:
    """The pools every deployment has (include/pools.json): one per venue, one for warehouse loads."""
    result: dict[str, dict[str, Any]] = json.loads(POOLS_FILE.read_text())
    return result


@dataclass
class StackOptions:
    home: Path  # AIRFLOW_HOME
    sandbox: Any = None  # SandboxOptions; None: the sandbox's defaults
    warehouse: str = str(PROJECT_ROOT / ".demo" / "warehouse.duckdb")  # DuckDB file or postgresql:// DSN
    database: str | None = None  # Airflow metadata DB URL; None: SQLite in home
    executor: str = "LocalExecutor"
    celery_broker_url: str | None = None
    celery_result_backend: str | None = None
    dags_folder: Path = PROJECT_ROOT / "dags"
    dag_ids: set[str] | None = None  # the DAGs to wait for and backfill; None: ledger_<venue> per venue
    api_port: int = 0
    s3_port: int = 0
    bucket: str = "ledgerlake"
    parallelism: int = 6
    scheduled_runs: bool = False  # False: only backfills and manual runs (demo, tests)
    paused_at_creation: bool = False
    admin_password: str | None = None
    preload: bool = True  # import the tasks' modules once in the scheduler / celery worker (see preload.py)
    env: dict[str, str] = field(default_factory=dict)


class LocalStack:
    def __init__(self, options: StackOptions) -> None:
        self.options = options
        self.s3 = LocalS3(port=options.s3_port, bucket=options.bucket)
        self.sandbox: Any = None
        self.airflow: LocalAirflow | None = None
        self._client: AirflowClient | None = None

    # Life cycle ------------------------------------------------------------------------------------

    def start(
        self,
        components: tuple[str, ...] = ("api-server", "scheduler", "dag-processor"),
        on_step: Callable[[str], None] | None = None,
    ) -> LocalStack:
        """Start S3, the sandbox and Airflow; returns once the DAGs are parsed and the pools exist.
        On any failure everything started so far is stopped again."""
        step = on_step or (lambda _text: None)
        try:
            self._start(components, step)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, components: tuple[str, ...], step: Callable[[str], None]) -> None:
        from ledgerlake.sandbox import Sandbox, SandboxOptions

        o = self.options
        o.home = Path(o.home).resolve()
        o.home.mkdir(parents=True, exist_ok=True)
        step("starting local S3 (moto)")
        self.s3.start()
        step("starting the venue sandbox")
        self.sandbox = Sandbox(o.sandbox or SandboxOptions()).start()
        accounts_file = o.home / "accounts.yaml"
        accounts_file.write_text(
            "# Written by ledgerlake.local for the sandbox's accounts; no secrets here.\n"
            + yaml.safe_dump(self.sandbox.accounts_config(), sort_keys=False)
        )
        connections = dict(self.sandbox.connections())
        if self.sandbox.options.rate_limits != "documented":
            limits = client_rate_limits(self.sandbox.state.limits)
            for venue in VENUES:
                for account in self.sandbox.accounts(venue):
                    conn = connections[account.conn_id]
                    connections[account.conn_id] = {**conn, "extra": {**conn["extra"], "rate_limit": limits[venue]}}
        connections[S3_CONN_ID] = self.s3.connection()
        connections[WAREHOUSE_CONN_ID] = warehouse_connection(o.warehouse)
        setup = AirflowSetup(
            home=o.home,
            dags_folder=o.dags_folder,
            database=o.database,
            executor=o.executor,
            api_port=o.api_port,
            connections=connections,
            env={ACCOUNTS_ENV: str(accounts_file), "LEDGERLAKE_WAREHOUSE": o.warehouse, **o.env},
            parallelism=o.parallelism,
            scheduled_runs=o.scheduled_runs,
            paused_at_creation=o.paused_at_creation,
            celery_broker_url=o.celery_broker_url,
            celery_result_backend=o.celery_result_backend,
            admin_password=o.admin_password,
            preload=TASK_MODULES if o.preload else (),
        )
        self.airflow = LocalAirflow(setup)
        step("preparing Airflow's metadata database (airflow db migrate)")
        self.airflow.prepare()
        step("starting Airflow: " + ", ".join(components))
        self.airflow.start(components)
        step("setting pools and waiting for the DAGs to be parsed")
        for name, pool in pools().items():
            self.client.set_pool(name, int(pool["slots"]), str(pool.get("description", "")))
        self.client.wait_for_dags(self.dag_ids)

    def stop(self) -> None:
        """Stop everything that was started, Airflow first (its tasks talk to S3 and the sandbox)."""
        if self._client is not None:
            self._client.close()
            self._client = None
        if self.airflow is not None:
            self.airflow.stop()
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        self.s3.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Using it --------------------------------------------------------------------------------------

    @property
    def client(self) -> AirflowClient:
        if self.airflow is None:
            raise RuntimeError("the stack is not started")
        if self._client is None:
            self._client = AirflowClient(self.airflow.setup.api_url, ADMIN_USER, self.airflow.password)
        return self._client

    @property
    def dag_ids(self) -> set[str]:
        if self.options.dag_ids is not None:
            return set(self.options.dag_ids)
        if self.sandbox is None:
            return {f"ledger_{v}" for v in VENUES}
        return {f"ledger_{v}" for v in self.sandbox.accounts_config()["venues"]}

    def backfill(
        self,
        start: datetime,
        end: datetime,
        *,
        reprocess_behavior: str = "none",
        dag_ids: list[str] | None = None,
        max_active_runs: int = 3,
    ) -> list[dict[str, Any]]:
        """One backfill per DAG over [start, end), created through the REST API as the UI does. Backfills
        take logical dates, both ends included: a daily DAG's last run starts on `end` minus one day."""
        from datetime import timedelta

        last = end - timedelta(days=1)
        return [
            self.client.create_backfill(
                dag_id, start, last, reprocess_behavior=reprocess_behavior, max_active_runs=max_active_runs
            )
            for dag_id in sorted(dag_ids or self.dag_ids)
        ]

    def wait(
        self,
        backfills: list[dict[str, Any]],
        timeout: float,
        on_progress: Callable[[list[RunProgress]], None] | None = None,
    ) -> list[RunProgress]:
        """Until every run of the backfills finished; checks on the Airflow processes while it waits."""

        def progress(p: list[RunProgress]) -> None:
            if self.airflow is not None:
                self.airflow.check_alive()
            if on_progress:
                on_progress(p)

        return self.client.wait_for_backfills(backfills, timeout, on_progress=progress)

    def diagnostics(self) -> str:
        """Logs of failed tasks and the ends of the component logs: what a failing test should print."""
        parts = []
        with contextlib.suppress(Exception):
            parts.append(self.client.failed_task_logs(sorted(self.dag_ids)))
        if self.airflow is not None:
            parts.append(self.airflow.tails(40))
        return "\n".join(p for p in parts if p)


@contextlib.contextmanager
def running_stack(options: StackOptions, **start_kwargs: Any) -> Iterator[LocalStack]:
    stack = LocalStack(options)
    stack.start(**start_kwargs)
    try:
        yield stack
    finally:
        stack.stop()
