"""ledgerlake: crypto venues' account ledgers into a Parquet lake on S3 and a warehouse."""

__version__ = "0.1.0"
