"""Local stand-ins for the outside world: moto's S3 server (the lake) and the venue sandbox.

Both run in this process on threads, so whoever starts them (the demo, `make airflow`, the end-to-end
tests) also stops them, and the tests can read the sandbox's ground truth directly.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledgerlake.lake import Lake, S3Settings

# moto accepts any key pair; these are not secrets, only the names the local lake connection uses.
LOCAL_S3_KEY = "ledgerlake-local"
LOCAL_S3_SECRET = "ledgerlake-local-secret"
DEFAULT_BUCKET = "ledgerlake"


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def wait_for_port(host: str, port: int, timeout: float = 30.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout:.0f} s") from None
            time.sleep(0.1)


@dataclass
class LocalS3:
    """moto's S3 server on 127.0.0.1, with the lake bucket created. Objects live in memory until stop()."""

    port: int = 0
    bucket: str = DEFAULT_BUCKET
    host: str = "127.0.0.1"
    _server: Any = field(default=None, repr=False)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def settings(self) -> S3Settings:
        return S3Settings(
            bucket=self.bucket,
            endpoint_url=self.endpoint_url,
            access_key_id=LOCAL_S3_KEY,
            secret_access_key=LOCAL_S3_SECRET,
        )

    def connection(self) -> dict[str, Any]:
        """The `ledgerlake_s3` Airflow connection (JSON form) for this endpoint."""
        return {
            "conn_type": "aws",
            "login": LOCAL_S3_KEY,
            "password": LOCAL_S3_SECRET,
            "extra": {"endpoint_url": self.endpoint_url, "region_name": "us-east-1", "bucket": self.bucket},
        }

    def start(self) -> LocalS3:
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
        self.port = self.port or free_port(self.host)
        self._server = ThreadedMotoServer(ip_address=self.host, port=self.port, verbose=False)
        self._server.start()
        wait_for_port(self.host, self.port)
        Lake(self.settings).ensure_bucket()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def export_bucket(settings: S3Settings, target: Path) -> int:
    """Copy every object of the bucket into `target/<key>` (what was there before is replaced).

    moto keeps objects in memory; this keeps the demo's lake readable after the server is gone.
    Returns the number of objects copied.
    """
    import shutil

    lake = Lake(settings)
    if target.exists():
        shutil.rmtree(target)
    count = 0
    for key in lake.list_keys(""):
        path = target / key
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(lake.get_bytes(key))
        count += 1
    return count
