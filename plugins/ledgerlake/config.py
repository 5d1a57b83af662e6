"""Venue and account configuration (include/accounts.yaml; LEDGERLAKE_ACCOUNTS_FILE overrides the path)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ledgerlake.schema import VENUES

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INCLUDE_DIR = Path(os.environ.get("LEDGERLAKE_INCLUDE_DIR", PROJECT_ROOT / "include"))
ACCOUNTS_ENV = "LEDGERLAKE_ACCOUNTS_FILE"


class ConfigError(ValueError):
    """The account config is wrong; the message names the file and the entry."""


@dataclass(frozen=True)
class AccountConfig:
    venue: str
    account: str
    conn_id: str
    options: dict[str, Any] = field(default_factory=dict)  # venue-specific keys (currency, mar_acct, ...)


@dataclass(frozen=True)
class VenueConfig:
    venue: str
    schedule: str
    accounts: tuple[AccountConfig, ...]
    options: dict[str, Any] = field(default_factory=dict)


def accounts_file() -> Path:
    return Path(os.environ.get(ACCOUNTS_ENV, INCLUDE_DIR / "accounts.yaml"))


def load_config(path: Path | None = None) -> dict[str, VenueConfig]:
    """Read the config; cheap and network-free, so DAG files may call it at parse time."""
    path = path or accounts_file()
    try:
        body = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"account config {path} does not exist (set {ACCOUNTS_ENV})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"account config {path} is not valid YAML: {exc}") from None
    venues = body.get("venues") or {}
    if not isinstance(venues, dict):
        raise ConfigError(f"{path}: 'venues' must be a mapping of venue name to settings")
    result: dict[str, VenueConfig] = {}
    for venue, spec in venues.items():
        if venue not in VENUES:
            raise ConfigError(f"{path}: unknown venue {venue!r}; known: {', '.join(VENUES)}")
        spec = dict(spec or {})
        accounts = []
        for i, acc in enumerate(spec.pop("accounts", None) or []):
            acc = dict(acc or {})
            name = acc.pop("account", None)
            if not name or not isinstance(name, str) or "/" in name:
                raise ConfigError(f"{path}: venues.{venue}.accounts[{i}] needs an 'account' (text, no '/')")
            conn_id = acc.pop("conn_id", f"ledgerlake_{venue}")
            accounts.append(AccountConfig(venue=venue, account=name, conn_id=conn_id, options=acc))
        names = [a.account for a in accounts]
        if len(set(names)) != len(names):
            raise ConfigError(f"{path}: venues.{venue} lists an account twice")
        schedule = spec.pop("schedule", "@daily")
        result[venue] = VenueConfig(venue=venue, schedule=schedule, accounts=tuple(accounts), options=spec)
    return result
