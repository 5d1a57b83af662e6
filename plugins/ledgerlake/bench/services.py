"""What the benchmarks run against, each in its own process: the venue sandbox, the local S3 endpoint (moto
server) and a scratch PostgreSQL database. The pipeline under measurement stays alone in its process."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

import psutil

from ledgerlake.config import AccountConfig
from ledgerlake.lake import Lake, S3Settings
from ledgerlake.local.services import free_port, wait_for_port
from ledgerlake.sandbox import SandboxOptions
from ledgerlake.scratch_db import scratch_database as _scratch_database
from ledgerlake.venues.base import VenueCredentials

PG_SERVER_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


class SandboxProcess:
    """`python -m ledgerlake.bench.sandbox_process` as a child; its accounts, statistics and CPU time."""

    def __init__(self, options: SandboxOptions) -> None:
        fields = {k: v for k, v in asdict(options).items() if k != "extra"}
        fields = {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in fields.items()}
        self.options = options
        self.process = subprocess.Popen(
            [sys.executable, "-m", "ledgerlake.bench.sandbox_process", json.dumps(fields)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"the sandbox process exited ({self.process.wait()}) before it started")
        self.described: dict[str, Any] = json.loads(line)
        self.ps = psutil.Process(self.process.pid)

    def _ask(self, command: str) -> Any:
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return json.loads(self.process.stdout.readline())

    def stats(self) -> dict[str, dict[str, int]]:
        answer: dict[str, dict[str, int]] = self._ask("stats")
        return answer

    def set_rate_limits(self, profile: str) -> None:
        self._ask(f"limits {profile}")

    def prepare(self, venue: str, index: int, start: datetime, end: datetime) -> int:
        """Have the sandbox generate and serialise account `index`'s entries of [start, end) now, outside any
        measurement; returns how many entries."""
        answer = self._ask(f"prepare {venue} {index} {start.isoformat()} {end.isoformat()}")
        if "error" in answer:
            raise RuntimeError(f"the sandbox could not prepare {venue} account {index}: {answer['error']}")
        return int(answer["prepared"])

    def cpu_seconds(self) -> float:
        t = self.ps.cpu_times()
        return float(t.user + t.system)

    def base_url(self, venue: str) -> str:
        return str(self.described[venue]["base_url"])

    def account(self, venue: str, index: int = 0) -> AccountConfig:
        acc = self.described[venue]["accounts"][index]
        return AccountConfig(venue, acc["account"], acc["conn_id"], dict(acc["options"] or {}))

    def credentials(self, venue: str, index: int = 0) -> VenueCredentials:
        acc = self.described[venue]["accounts"][index]
        return VenueCredentials(
            self.base_url(venue), api_key=acc["api_key"], api_secret=acc["api_secret"], passphrase=acc["passphrase"]
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(Exception):
                self._ask("quit")
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> SandboxProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class MotoProcess:
    """moto's S3 server (`moto_server`) as a child process on a free port."""

    host: str = "127.0.0.1"
    port: int = 0
    process: Any = None

    def start(self) -> MotoProcess:
        self.port = self.port or free_port(self.host)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", self.host, "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.host, self.port)
        return self

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def lake(self, bucket: str | None = None) -> Lake:
        lake = Lake(
            S3Settings(
                bucket=bucket or f"bench-{uuid.uuid4().hex[:8]}",
                endpoint_url=self.endpoint_url,
                access_key_id="bench",
                secret_access_key="bench-secret",
            )
        )
        lake.ensure_bucket()
        return lake

    def cpu_seconds(self) -> float:
        t = psutil.Process(self.process.pid).cpu_times()
        return float(t.user + t.system)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self) -> MotoProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def empty_lake(lake: Lake) -> None:
    """Delete every object, so the S3 server's memory does not grow from one measurement to the next."""
    keys = list(lake.list_keys(""))
    for i in range(0, len(keys), 1000):
        lake.delete_keys(keys[i : i + 1000])


def scratch_database(server_dsn: str = PG_SERVER_DSN, purpose: str = "bench") -> contextlib.AbstractContextManager[str]:
    """A new PostgreSQL database for one benchmark, dropped afterwards; yields its DSN."""
    return _scratch_database(server_dsn, f"bench_{purpose}")


class Stopwatch:
    def __init__(self) -> None:
        self.started = time.perf_counter()

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.started
