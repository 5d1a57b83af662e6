"""Run ledgerlake's whole stack on one machine: local S3 (moto), the venue sandbox and real Airflow.

Used by `make airflow` (`python -m ledgerlake.local airflow`), `ledgerlake demo` and the end-to-end
tests. Plain processes and threads; nothing here imports Airflow.
"""

from ledgerlake.local.api import AirflowApiError, AirflowClient, RunProgress
from ledgerlake.local.runner import AirflowError, AirflowSetup, LocalAirflow
from ledgerlake.local.services import LocalS3, export_bucket, free_port

__all__ = [
    "AirflowApiError",
    "AirflowClient",
    "AirflowError",
    "AirflowSetup",
    "LocalAirflow",
    "LocalS3",
    "RunProgress",
    "export_bucket",
    "free_port",
]
