"""`python -m ledgerlake.local.preload MODULES airflow-args...`: import MODULES, then run Airflow's CLI.

Run for the scheduler (LocalExecutor) and the Celery worker: their task processes are forked from them, so
what is imported here once (Great Expectations alone costs 6 to 7 s, the operators' pyarrow and DuckDB
more) is not imported again by every task. A module that fails to import is reported and skipped; the
task then imports it itself and shows the real error in its own log.
"""

from __future__ import annotations

import importlib
import sys


def main() -> int:
    modules, args = sys.argv[1], sys.argv[2:]
    for name in filter(None, modules.split(",")):
        try:
            importlib.import_module(name)
        except Exception as exc:
            print(f"ledgerlake.local.preload: could not import {name}: {exc}", file=sys.stderr, flush=True)
    from airflow.__main__ import main as airflow_main

    sys.argv = ["airflow", *args]
    airflow_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
