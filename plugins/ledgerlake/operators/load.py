"""LoadWarehouseOperator: load each account's validated partition of the run's interval into the warehouse."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from ledgerlake.hooks.lake import DEFAULT_AWS_CONN_ID, LakeHook
from ledgerlake.hooks.warehouse import DEFAULT_WAREHOUSE_CONN_ID, WarehouseHook
from ledgerlake.operators.common import interval_from_context


class LoadWarehouseOperator(BaseOperator):
    """Replace (venue, account, interval) in the warehouse with the lake's validated manifest, per account.

    Each account loads in its own transaction, so a refused account does not hold back the others; the task
    then fails (without retries: re-running cannot validate the partition) naming every refused account.
    Returns a small summary for XCom: rows per account, never data.
    """

    template_fields: Sequence[str] = ("accounts",)
    ui_color = "#d9f2e6"

    def __init__(
        self,
        *,
        venue: str,
        accounts: list[str] | str,
        aws_conn_id: str = DEFAULT_AWS_CONN_ID,
        warehouse_conn_id: str = DEFAULT_WAREHOUSE_CONN_ID,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.venue = venue
        self.accounts = accounts
        self.aws_conn_id = aws_conn_id
        self.warehouse_conn_id = warehouse_conn_id

    def execute(self, context: Any) -> dict[str, Any]:
        from ledgerlake.lake import Lake
        from ledgerlake.warehouse import LoadRefused, open_warehouse

        interval = interval_from_context(context)
        accounts = [self.accounts] if isinstance(self.accounts, str) else list(self.accounts)
        lake = Lake(LakeHook(self.aws_conn_id).settings())
        settings = WarehouseHook(self.warehouse_conn_id).settings()
        self.log.info(
            "loading %s %s for %d account(s) into %s", self.venue, interval, len(accounts), settings.describe()
        )
        loaded: dict[str, int] = {}
        refused: dict[str, str] = {}
        with open_warehouse(settings) as warehouse:
            for account in accounts:
                try:
                    summary = warehouse.load_partition(lake, self.venue, account, interval)
                except LoadRefused as exc:
                    self.log.error("%s", exc)
                    refused[account] = str(exc)
                    continue
                loaded[account] = summary.rows
                self.log.info(
                    "%s/%s: %d rows, replaced %s", self.venue, account, summary.rows, summary.deleted or "none"
                )
        if refused:
            raise AirflowFailException(
                f"{len(refused)} of {len(accounts)} {self.venue} partition(s) for {interval} were not loaded:\n"
                + "\n".join(refused.values())
            )
        return {
            "venue": self.venue,
            "interval_start": interval.start.isoformat(),
            "interval_end": interval.end.isoformat(),
            "warehouse": settings.describe(),
            "rows": loaded,
        }
