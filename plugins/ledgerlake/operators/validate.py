"""ValidatePartitionOperator: the quality gate of one (venue, account, interval) partition.

Mapped per account: `ValidatePartitionOperator.partial(task_id=..., venue=...).expand(account=[...])`.
Great Expectations is imported only when the task runs (ledgerlake.quality imports it lazily), never when
the DAG file is parsed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, BaseOperatorLink
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from ledgerlake.hooks.lake import DEFAULT_AWS_CONN_ID, LakeHook
from ledgerlake.operators.common import interval_from_context

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

    from ledgerlake.quality.partition import PreviousClosing

DATA_DOCS_XCOM_KEY = "data_docs_url"
DEFAULT_WAREHOUSE_CONN_ID = "ledgerlake_warehouse"


class DataDocsLink(BaseOperatorLink):
    """ "Data Docs" on the task in the Airflow UI: the published Data Docs page of this validation.

    Airflow 3 calls get_link in the worker when the task ends (also when it fails) and keeps the URL in XCom
    under `xcom_key`; the UI reads it from there, so no plugin registration is needed.
    """

    name = "Data Docs"

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        from airflow.sdk.execution_time.xcom import XCom

        url = XCom.get_value(ti_key=ti_key, key=DATA_DOCS_XCOM_KEY)
        return str(url) if url else ""


class ValidatePartitionOperator(BaseOperator):
    """Validate the lake partition of `account` for the run's interval; fail (without retry) when it does not
    pass, naming each failed expectation with a few offending rows. Returns a small summary for XCom."""

    template_fields: Sequence[str] = ("account",)
    operator_extra_links = (DataDocsLink(),)
    ui_color = "#fff3cd"

    def __init__(
        self,
        *,
        venue: str,
        account: str,
        aws_conn_id: str = DEFAULT_AWS_CONN_ID,
        warehouse_conn_id: str | None = DEFAULT_WAREHOUSE_CONN_ID,
        data_docs_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.venue = venue
        self.account = account
        self.aws_conn_id = aws_conn_id
        self.warehouse_conn_id = warehouse_conn_id
        self.data_docs_dir = data_docs_dir

    def execute(self, context: Any) -> dict[str, Any]:
        from ledgerlake.lake import Lake
        from ledgerlake.quality import PartitionNotFound, QualityError, validate_partition

        interval = interval_from_context(context)
        lake = Lake(LakeHook(self.aws_conn_id).settings())
        self.log.info("validating %s/%s %s", self.venue, self.account, interval)
        try:
            outcome = validate_partition(
                lake,
                self.venue,
                self.account,
                interval,
                previous_closing=self._previous_closing(),
                data_docs_dir=Path(self.data_docs_dir) if self.data_docs_dir else None,
            )
        except PartitionNotFound as exc:
            raise AirflowFailException(str(exc)) from None
        except QualityError as exc:
            raise AirflowException(str(exc)) from None  # the warehouse or GX may work on a retry
        if outcome.data_docs_url:
            context["ti"].xcom_push(key=DATA_DOCS_XCOM_KEY, value=outcome.data_docs_url)
        for note in outcome.notes:
            self.log.info("note: %s", note)
        for warning in outcome.warnings:
            self.log.warning("%s", warning.line())
        self.log.info("timings (s): %s", {k: round(v, 3) for k, v in outcome.seconds.items()})
        if not outcome.passed:
            raise AirflowFailException(outcome.report())
        self.log.info("%s", outcome.summary)
        return outcome.to_dict()

    def _previous_closing(self) -> PreviousClosing | None:
        """Warehouse.closing_balances over the warehouse connection, read-only; None (with a warning) when the
        warehouse modules are not installed or no connection is configured."""
        if not self.warehouse_conn_id:
            return None
        try:
            from ledgerlake.hooks.warehouse import WarehouseHook
            from ledgerlake.warehouse import open_warehouse
        except ImportError as exc:
            self.log.warning("no warehouse (%s): continuity with the previous interval is not checked", exc)
            return None
        settings = WarehouseHook(self.warehouse_conn_id).settings()
        log = self.log

        def closing_balances(venue: str, account: str, before: datetime) -> dict[str, Decimal]:
            try:
                with open_warehouse(settings, read_only=True) as warehouse:
                    return warehouse.closing_balances(venue, account, before)
            except Exception as exc:
                # A warehouse nothing was loaded into has no previous interval; anything else is an error.
                if "does not exist" in str(exc).lower():
                    log.warning(
                        "warehouse %s holds nothing yet (%s): no previous closing balances", settings.describe(), exc
                    )
                    return {}
                raise

        return closing_balances
