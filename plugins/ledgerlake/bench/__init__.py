"""Benchmarks (`make bench`): throughput per stage, the floor, memory, rate-limit use, Airflow backfill overhead
and the sandbox's serving rate, against the sandbox and a local S3 server, each in its own process.

Entry point: `python -m ledgerlake.bench` (see __main__.py). Results: include/benchmarks/.
"""
