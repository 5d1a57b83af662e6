"""Run real Airflow 3 locally: an AIRFLOW_HOME, configuration through environment variables, and the
components (api-server, scheduler, dag-processor, triggerer, celery worker) as child processes.

Nothing secret is written to disk: connections reach every component as `AIRFLOW_CONN_<ID>` environment
variables, and the JWT and API secrets are made up per start. The only file with a password is the
simple auth manager's password file for the local admin user, inside AIRFLOW_HOME (git-ignored).

This module starts Airflow as processes and never imports it (importing Airflow costs seconds and reads
its configuration once, at import).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from ledgerlake.config import PROJECT_ROOT
from ledgerlake.local.services import free_port, wait_for_port

ADMIN_USER = "admin"
PASSWORDS_FILE = "simple_auth_manager_passwords.json.generated"
SERVER_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")


class AirflowError(RuntimeError):
    """A local Airflow component failed; the message says which and where its log is."""


@dataclass
class AirflowSetup:
    """How to run Airflow here. Every field has the local default; tests override what they need."""

    home: Path
    dags_folder: Path = PROJECT_ROOT / "dags"
    plugins_folder: Path = PROJECT_ROOT / "plugins"
    database: str | None = None  # SQLAlchemy URL; None: SQLite file in `home`
    executor: str = "LocalExecutor"
    host: str = "127.0.0.1"
    api_port: int = 0  # 0: a free port
    connections: dict[str, dict[str, Any]] = field(default_factory=dict)  # conn_id -> JSON form
    env: dict[str, str] = field(default_factory=dict)  # extra environment for every component
    parallelism: int = 8
    scheduled_runs: bool = True  # False: the scheduler only runs what is queued (backfills, triggers)
    paused_at_creation: bool = True
    celery_broker_url: str | None = None  # with executor CeleryExecutor
    celery_result_backend: str | None = None  # SQLAlchemy URL; "db+" is added
    admin_password: str | None = None  # None: kept from the password file, or made up once
    # Imported once by the components that fork task processes (scheduler, celery worker): see preload.py.
    preload: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        self.home = Path(self.home).resolve()
        if not self.api_port:
            self.api_port = free_port(self.host)

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def logs_folder(self) -> Path:
        return self.home / "logs"

    @property
    def database_url(self) -> str:
        if self.database:
            return self.database
        return f"sqlite:///{self.home / 'airflow.db'}"


def _psycopg_url(dsn: str) -> str:
    """postgresql://... as SQLAlchemy wants it with psycopg 3 (the driver installed here)."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg://" + dsn[len(prefix) :]
    return dsn


def connection_env(connections: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """`AIRFLOW_CONN_<ID>` variables in Airflow's JSON form (extra may be a dict)."""
    return {f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(dict(spec)) for conn_id, spec in connections.items()}


def admin_password(setup: AirflowSetup) -> str:
    """The local admin's password: given, or kept in AIRFLOW_HOME's password file, or made up now."""
    path = setup.home / PASSWORDS_FILE
    passwords: dict[str, str] = {}
    if path.exists() and path.read_text().strip():
        passwords = json.loads(path.read_text())
    wanted = setup.admin_password or passwords.get(ADMIN_USER) or secrets.token_urlsafe(12)
    if passwords.get(ADMIN_USER) != wanted:
        passwords[ADMIN_USER] = wanted
        setup.home.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(passwords) + "\n")
        path.chmod(0o600)
    return wanted


@dataclass
class Component:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path
    log_file: TextIO

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class LocalAirflow:
    """One local Airflow: `prepare()` (home, database, password), `start(components)`, `stop()`.

    Components run in their own process groups so that stop() ends each one with all its children
    (executor workers, API workers, task processes), and a Ctrl-C in the terminal reaches only us.
    """

    def __init__(self, setup: AirflowSetup) -> None:
        self.setup = setup
        self.components: list[Component] = []
        self.password = ""
        # Per start, shared by all components: tasks and the api-server must agree on them.
        self._jwt_secret = secrets.token_urlsafe(32)
        self._api_secret = secrets.token_urlsafe(32)
        self._log_server_port = free_port(setup.host)
        self._triggerer_log_port = free_port(setup.host)

    # Configuration ---------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        s = self.setup
        env = {k: v for k, v in os.environ.items() if not (k.startswith("AIRFLOW__") or k.startswith("AIRFLOW_CONN_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(s.home),
                "AIRFLOW__CORE__DAGS_FOLDER": str(s.dags_folder),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(s.plugins_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": s.executor,
                "AIRFLOW__CORE__PARALLELISM": str(s.parallelism),
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": str(s.paused_at_creation),
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{s.api_url}/execution/",
                "AIRFLOW__CORE__AUTH_MANAGER": (
                    "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager"
                ),
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(s.home / PASSWORDS_FILE),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": _psycopg_url(s.database_url),
                "AIRFLOW__API__HOST": s.host,
                "AIRFLOW__API__PORT": str(s.api_port),
                "AIRFLOW__API__BASE_URL": s.api_url,
                "AIRFLOW__API__SECRET_KEY": self._api_secret,
                "AIRFLOW__API_AUTH__JWT_SECRET": self._jwt_secret,
                "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(s.logs_folder),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(self._log_server_port),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(self._triggerer_log_port),
                "AIRFLOW__SCHEDULER__USE_JOB_SCHEDULE": str(s.scheduled_runs),
                # A new DAG file shows up within seconds rather than the default five minutes.
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
                "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "True",
                "GX_ANALYTICS_ENABLED": "false",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if s.celery_broker_url:
            env["AIRFLOW__CELERY__BROKER_URL"] = s.celery_broker_url
        if s.celery_result_backend:
            env["AIRFLOW__CELERY__RESULT_BACKEND"] = "db+" + _psycopg_url(s.celery_result_backend)
        env.update(connection_env(s.connections))
        env.update(s.env)
        return env

    def airflow_command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "airflow", *args]

    def run_cli(self, *args: str, timeout: float = 300) -> str:
        """Run one `airflow ...` command to completion; its output, or AirflowError with the output."""
        result = subprocess.run(
            self.airflow_command(*args),
            env=self.env(),
            cwd=self.setup.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise AirflowError(
                f"`airflow {' '.join(args)}` failed ({result.returncode}):\n{result.stdout[-3000:]}"
                f"\n{result.stderr[-3000:]}"
            )
        return result.stdout

    def prepare(self) -> None:
        """AIRFLOW_HOME, the admin's password file and the metadata database (migrated)."""
        self.setup.home.mkdir(parents=True, exist_ok=True)
        self.setup.logs_folder.mkdir(parents=True, exist_ok=True)
        self.password = admin_password(self.setup)
        self.run_cli("db", "migrate")

    # Processes -------------------------------------------------------------------------------------

    def start(self, components: Iterable[str] = ("api-server", "scheduler", "dag-processor")) -> None:
        if not self.password:
            self.prepare()
        env = self.env()
        for name in components:
            args = {
                "api-server": [
                    "api-server",
                    *("--host", self.setup.host, "--port", str(self.setup.api_port), "--workers", "1"),
                ],
                "scheduler": ["scheduler"],
                "dag-processor": ["dag-processor"],
                "triggerer": ["triggerer"],
                "celery-worker": ["celery", "worker", "--concurrency", str(self.setup.parallelism)],
            }[name]
            command = self.airflow_command(*args)
            if name in ("scheduler", "celery-worker") and self.setup.preload:
                command = [sys.executable, "-m", "ledgerlake.local.preload", ",".join(self.setup.preload), *args]
            log_path = self.setup.logs_folder / f"{name}.out"
            log_file = log_path.open("a")
            process = subprocess.Popen(
                command,
                env=env,
                cwd=self.setup.home,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self.components.append(Component(name, process, log_path, log_file))
        if "api-server" in components:
            self.wait_api()

    def wait_api(self, timeout: float = 120) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        wait_for_port(self.setup.host, self.setup.api_port, timeout=timeout)
        while True:
            self.check_alive()
            try:
                if httpx.get(f"{self.setup.api_url}/api/v2/monitor/health", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AirflowError(f"the api-server did not answer in {timeout:.0f} s\n{self.tails()}")
            time.sleep(0.5)

    def check_alive(self) -> None:
        """AirflowError naming the first component that exited, with the end of its log."""
        for c in self.components:
            code = c.process.poll()
            if code is not None:
                raise AirflowError(f"airflow {c.name} exited with code {code}; log {c.log_path}:\n{c.tail()}")

    def tails(self, lines: int = 30) -> str:
        return "\n".join(f"--- airflow {c.name} ({c.log_path}) ---\n{c.tail(lines)}" for c in self.components)

    def stop(self, timeout: float = 20) -> None:
        """SIGTERM each component's process group, then SIGKILL what is left after `timeout`."""
        for c in self.components:
            if c.process.poll() is None:
                _signal_group(c.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for c in self.components:
            with contextlib.suppress(subprocess.TimeoutExpired):
                c.process.wait(max(0.1, deadline - time.monotonic()))
            # Task processes and workers may outlive their parent; the group takes them all.
            _signal_group(c.process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                c.process.wait(5)
            c.log_file.close()
        self.components.clear()

    def __enter__(self) -> LocalAirflow:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
