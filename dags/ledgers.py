"""One DAG per venue: extract each account's ledger for the data interval -> validate -> load the warehouse.

This file only wires tasks; what each task does lives in ledgerlake.operators. Nothing here touches the
network, S3 or a database: the account config is a local YAML file.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, Param

from ledgerlake.config import load_config
from ledgerlake.operators.extract import EXTRACT_OPERATORS
from ledgerlake.operators.load import LoadWarehouseOperator
from ledgerlake.operators.validate import ValidatePartitionOperator

DEFAULT_ARGS = {
    "owner": "ledgerlake",
    "retries": 3,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=15),
}

DOC = """
### {venue} ledger

For each account in `include/accounts.yaml`, every ledger record with
`data_interval_start <= time < data_interval_end` is pulled from {venue}'s API into the lake
(raw pages and Parquet, then a manifest), checked by the quality gate, and loaded into the warehouse.

* Re-running or backfilling any interval is safe: objects and warehouse rows are replaced, never added.
* Manual runs: give `interval_start` and `interval_end` (ISO dates) when the run has no data interval.
* Failed checks: open the task's **Data Docs** link on the `validate` task.
"""

for venue, venue_config in load_config().items():
    accounts = [a.account for a in venue_config.accounts]
    with DAG(
        dag_id=f"ledger_{venue}",
        description=f"{venue} account ledger -> lake -> checks -> warehouse",
        schedule=CronDataIntervalTimetable(venue_config.schedule, timezone="UTC"),
        start_date=datetime.fromisoformat(str(venue_config.options.get("start_date", "2025-01-01"))).replace(
            tzinfo=UTC
        ),
        catchup=False,
        max_active_runs=int(venue_config.options.get("max_active_runs", 4)),
        default_args=DEFAULT_ARGS,
        tags=["ledgerlake", venue],
        doc_md=DOC.format(venue=venue),
        params={
            "interval_start": Param(None, type=["null", "string"], description="manual runs: interval start"),
            "interval_end": Param(None, type=["null", "string"], description="manual runs: interval end"),
        },
    ) as dag:
        extract = (
            EXTRACT_OPERATORS[venue].partial(task_id="extract", pool=f"ledgerlake_{venue}").expand(account=accounts)
        )
        validate = ValidatePartitionOperator.partial(task_id="validate", venue=venue).expand(account=accounts)
        load = LoadWarehouseOperator(
            task_id="load_warehouse",
            venue=venue,
            accounts=accounts,
            pool="ledgerlake_warehouse",
            outlets=[Asset(name=f"ledgerlake_{venue}", uri=f"ledgerlake://warehouse/{venue}")],
        )
        extract >> validate >> load
    globals()[dag.dag_id] = dag
