"""One extract operator per venue, each a thin layer over ledgerlake.engine.extract.

Used mapped over the accounts of the config:
    CoinbaseLedgerOperator.partial(task_id="extract", pool="ledgerlake_coinbase").expand(account=[...])
execute() resolves the interval, the account's config, the venue connection and the lake, runs the engine,
and returns its small summary to XCom. Failures a retry cannot fix (auth, ban, retention, a bad record,
a refusal) fail the task at once; transient ones (retries exhausted) let Airflow retry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from ledgerlake.hooks.lake import DEFAULT_AWS_CONN_ID
from ledgerlake.operators.common import interval_from_context


class VenueExtractOperator(BaseOperator):
    """Extract one account's ledger (or snapshots) of the run's data interval into the lake."""

    venue: ClassVar[str] = ""
    template_fields: Sequence[str] = ("account",)
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        account: str,
        venue_conn_id: str | None = None,
        aws_conn_id: str = DEFAULT_AWS_CONN_ID,
        extract_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.account = account
        self.venue_conn_id = venue_conn_id
        self.aws_conn_id = aws_conn_id
        self.extract_options = dict(extract_options or {})

    def execute(self, context: Any) -> dict[str, Any]:
        # Imported here: DAG files import this module at parse time and must stay light.
        from ledgerlake.config import ConfigError, load_config
        from ledgerlake.engine import ExtractOptions, FatalExtractError, extract
        from ledgerlake.hooks.lake import LakeHook
        from ledgerlake.hooks.venue import VenueHook
        from ledgerlake.lake import Lake

        interval = interval_from_context(context)
        try:
            venue_config = load_config().get(self.venue)
            accounts = {a.account: a for a in (venue_config.accounts if venue_config else ())}
            if self.account not in accounts:
                raise ConfigError(f"account {self.account!r} is not configured for {self.venue}")
            account = accounts[self.account]
            credentials = VenueHook(self.venue_conn_id or account.conn_id).credentials()
            options = ExtractOptions(**self.extract_options)
            lake = Lake(LakeHook(self.aws_conn_id).settings())
            summary = extract(self.venue, account, credentials, interval, lake, options=options)
        except FatalExtractError as exc:
            raise AirflowFailException(str(exc)) from None
        except (ConfigError, TypeError, ValueError) as exc:
            raise AirflowFailException(f"{self.venue} account {self.account} interval {interval}: {exc}") from None
        return summary.to_dict()


class ExchangeHubXLedgerOperator(VenueExtractOperator):
    venue = "exchangehubx"


class BinanceSnapshotOperator(VenueExtractOperator):
    venue = "binance"


class PacificaLedgerOperator(VenueExtractOperator):
    venue = "pacifica"


class CoinbaseLedgerOperator(VenueExtractOperator):
    venue = "coinbase"


class SunXLedgerOperator(VenueExtractOperator):
    venue = "sunx"


EXTRACT_OPERATORS: dict[str, type[VenueExtractOperator]] = {
    op.venue: op
    for op in (
        ExchangeHubXLedgerOperator,
        BinanceSnapshotOperator,
        PacificaLedgerOperator,
        CoinbaseLedgerOperator,
        SunXLedgerOperator,
    )
}
