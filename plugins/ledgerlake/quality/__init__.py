"""Data-quality gate: expectation suites (include/expectations) and ledger invariants for one partition.

Plain Python; Great Expectations is imported only when a suite runs.
"""

from ledgerlake.quality.partition import (
    CheckResult,
    PartitionNotFound,
    QualityError,
    ValidationOutcome,
    data_docs_url,
    default_data_docs_dir,
    validate_partition,
    validation_result_key,
)

__all__ = [
    "CheckResult",
    "PartitionNotFound",
    "QualityError",
    "ValidationOutcome",
    "data_docs_url",
    "default_data_docs_dir",
    "validate_partition",
    "validation_result_key",
]
