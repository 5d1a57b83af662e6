"""Shared fixtures: a real S3 endpoint over HTTP (moto's server), a fresh bucket per test, and a real
PostgreSQL database. Airflow is pointed at a throw-away home before anything imports it."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("AIRFLOW_HOME", str(ROOT / ".test-airflow"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
# Fake credentials for the local S3 server; real ones must never be needed by tests.
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")

from ledgerlake.lake import Lake, S3Settings  # noqa: E402
from ledgerlake.scratch_db import scratch_database  # noqa: E402

pytest_plugins = ["ledgerlake.sandbox.pytest_plugin"]  # fixtures: sandbox, sandbox_factory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server, in-process, over real HTTP on a free port."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_settings(s3_endpoint: str) -> S3Settings:
    """A fresh, empty bucket for each test."""
    settings = S3Settings(
        bucket=f"lake-{uuid.uuid4().hex[:12]}",
        endpoint_url=s3_endpoint,
        access_key_id="testing",
        secret_access_key="testing",
    )
    Lake(settings).ensure_bucket()
    return settings


@pytest.fixture
def lake(s3_settings: S3Settings) -> Lake:
    return Lake(s3_settings)


def _postgres_required() -> bool:
    return bool(os.environ.get("CI") or os.environ.get("LEDGERLAKE_REQUIRE_POSTGRES"))


@pytest.fixture(scope="session")
def pg_server_dsn() -> str:
    """DSN of the PostgreSQL server's maintenance database. Skips locally when absent; fails in CI."""
    import psycopg

    dsn = os.environ.get("LEDGERLAKE_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
    try:
        with psycopg.connect(dsn, connect_timeout=5):
            pass
    except psycopg.OperationalError as exc:
        if _postgres_required():
            pytest.fail(f"PostgreSQL is required here (CI) but {dsn} is unreachable: {exc}")
        pytest.skip(f"PostgreSQL not reachable at {dsn}")
    return dsn


def fresh_pg_database(pg_server_dsn: str) -> AbstractContextManager[str]:
    """A new empty database on the server, dropped on exit; yields its DSN."""
    return scratch_database(pg_server_dsn, "t")


@pytest.fixture(scope="session")
def pg_databases(pg_server_dsn: str) -> Callable[[], AbstractContextManager[str]]:
    """For wider-scoped fixtures: `with pg_databases() as dsn:` gives a fresh database."""
    return lambda: fresh_pg_database(pg_server_dsn)


@pytest.fixture
def pg_dsn(pg_server_dsn: str) -> Iterator[str]:
    """A fresh database for one test, dropped afterwards."""
    with fresh_pg_database(pg_server_dsn) as dsn:
        yield dsn
