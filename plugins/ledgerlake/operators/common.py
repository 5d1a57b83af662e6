"""What every ledgerlake operator needs from the Airflow context: the data interval."""

from __future__ import annotations

from typing import Any

from airflow.sdk.exceptions import AirflowFailException

from ledgerlake.interval import Interval, parse_instant


def interval_from_context(context: Any) -> Interval:
    """The run's [data_interval_start, data_interval_end).

    Scheduled and backfill runs carry a real interval. Manual runs in Airflow 3 may carry none (or an empty
    one), so params `interval_start` / `interval_end` (ISO dates or instants) take over when given.
    """
    params = context.get("params") or {}
    start, end = params.get("interval_start"), params.get("interval_end")
    if start and end:
        return Interval(parse_instant(str(start)), parse_instant(str(end)))
    ds, de = context.get("data_interval_start"), context.get("data_interval_end")
    if ds is None or de is None or de <= ds:
        raise AirflowFailException(
            "this run has no data interval (a manual run?): trigger it with params interval_start and "
            "interval_end, e.g. {'interval_start': '2026-11-01', 'interval_end': '2026-11-02'}"
        )
    return Interval(ds, de)
