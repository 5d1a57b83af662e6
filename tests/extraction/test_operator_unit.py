"""The operators and VenueHook in-process (execute() with a plain context; the Airflow run itself is in
test_operator_airflow.py): connection mapping, XCom summary, and which failures skip Airflow's retries."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from airflow.sdk.exceptions import AirflowFailException

from ledgerlake.engine import TransientExtractError
from ledgerlake.hooks.venue import VenueHook, base_url
from ledgerlake.interval import Interval
from ledgerlake.lake import S3Settings
from ledgerlake.operators.extract import EXTRACT_OPERATORS, SunXLedgerOperator, VenueExtractOperator
from ledgerlake.sandbox import FaultSpec, Sandbox

FAST = {"backoff_base_s": 0.01, "backoff_max_s": 0.05, "max_retries": 1, "read_timeout_s": 1.0}


def test_base_url_from_connection_fields() -> None:
    assert base_url("https://api.sunx.io/", None, None) == "https://api.sunx.io"
    assert base_url("127.0.0.1", "http", 8123) == "http://127.0.0.1:8123"
    assert base_url("api.pacifica.fi", None, None) == "https://api.pacifica.fi"
    with pytest.raises(ValueError, match="base URL"):
        base_url(None, None, None)


def test_venue_hook_reads_the_connection_and_keeps_the_passphrase_out_of_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "http", "host": "api.exchange.coinbase.com", "login": "the-key", "password": "the-secret",
            "extra": {"passphrase": "the-passphrase", "rate_limit": "off", "recv_window": 6000}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_LEDGERLAKE_COINBASE_TEST", json.dumps(conn))
    creds = VenueHook("ledgerlake_coinbase_test").credentials()
    assert creds.base_url == "https://api.exchange.coinbase.com"
    assert (creds.api_key, creds.api_secret, creds.passphrase) == ("the-key", "the-secret", "the-passphrase")
    assert creds.extra == {"rate_limit": "off", "recv_window": 6000}
    assert "the-secret" not in repr(creds) and "the-passphrase" not in repr(creds) and "the-key" not in repr(creds)


def test_one_operator_per_venue_with_templated_account() -> None:
    assert set(EXTRACT_OPERATORS) == {"exchangehubx", "binance", "pacifica", "coinbase", "sunx"}
    for venue, op in EXTRACT_OPERATORS.items():
        assert issubclass(op, VenueExtractOperator) and op.venue == venue
        assert "account" in op.template_fields


def test_importing_the_operators_stays_light() -> None:
    """DAG files import the operators at parse time: no engine, pyarrow or boto3 until a task runs."""
    code = "import sys, ledgerlake.operators.extract; print(sorted(m for m in ('pyarrow', 'boto3', 'ledgerlake.engine', 'urllib3') if m in sys.modules))"  # noqa: E501
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out.strip().replace("'", '"')) == []


def configure(sandbox: Sandbox, s3_settings: S3Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    """Accounts file and AIRFLOW_CONN_* variables for the sandbox's accounts and the test bucket."""
    (tmp_path / "accounts.yaml").write_text(yaml.safe_dump(sandbox.accounts_config()))
    monkeypatch.setenv("LEDGERLAKE_ACCOUNTS_FILE", str(tmp_path / "accounts.yaml"))
    s3 = {"conn_type": "aws", "login": "testing", "password": "testing",
          "extra": {"endpoint_url": s3_settings.endpoint_url, "bucket": s3_settings.bucket}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_LEDGERLAKE_S3", json.dumps(s3))
    for conn_id, conn in sandbox.connections().items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return sandbox


@pytest.fixture
def airflow_env(sandbox: Sandbox, s3_settings: S3Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Sandbox:
    return configure(sandbox, s3_settings, tmp_path, monkeypatch)


def context(start: str, end: str) -> dict[str, Any]:
    return {"params": {"interval_start": start, "interval_end": end}}


def sunx_op(sb: Sandbox, **kwargs: Any) -> SunXLedgerOperator:
    account = sb.accounts("sunx")[0].account
    return SunXLedgerOperator(task_id="extract", account=account, extract_options={**FAST, **kwargs})


def test_execute_returns_a_small_summary(airflow_env: Sandbox) -> None:
    from ledgerlake.sandbox.pytest_plugin import SANDBOX_NOW

    op = sunx_op(airflow_env, now=SANDBOX_NOW)
    summary = op.execute(context("2026-11-18", "2026-11-19"))
    truth = airflow_env.truth("sunx", op.account, Interval.parse("2026-11-18", "2026-11-19"))
    assert summary["rows"]["ledger"] == truth.num_rows > 0
    assert summary["manifest_key"].startswith("manifests/venue=sunx/") and len(json.dumps(summary)) < 2000


@pytest.mark.parametrize(
    ("case", "match"),
    [
        ("retention", "90 days"),
        ("unknown account", "not configured"),
        ("bad secret", "authentication refused"),
    ],
)
def test_failures_a_retry_cannot_fix_skip_airflow_retries(
    airflow_env: Sandbox, monkeypatch: pytest.MonkeyPatch, case: str, match: str
) -> None:
    from ledgerlake.sandbox.pytest_plugin import SANDBOX_NOW

    op = sunx_op(airflow_env, now=SANDBOX_NOW)
    interval = ("2026-11-18", "2026-11-19")
    if case == "retention":
        interval = ("2026-06-01", "2026-06-02")
    elif case == "unknown account":
        op.account = "nobody"
    else:
        conn_id = airflow_env.accounts("sunx")[0].conn_id
        conn = {**airflow_env.connections()[conn_id], "password": "d3Jvbmc="}
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    with pytest.raises(AirflowFailException, match=match):
        op.execute(context(*interval))


def test_transient_exhaustion_leaves_the_retry_to_airflow(
    sandbox_factory: Callable[..., Sandbox], s3_settings: S3Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from ledgerlake.sandbox.pytest_plugin import SANDBOX_NOW

    sb = sandbox_factory(faults=FaultSpec(drop=1.0))
    configure(sb, s3_settings, tmp_path, monkeypatch)
    with pytest.raises(TransientExtractError, match="gave up"):
        sunx_op(sb, now=SANDBOX_NOW).execute(context("2026-11-18", "2026-11-19"))
