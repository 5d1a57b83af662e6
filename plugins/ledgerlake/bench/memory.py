"""Peak resident memory of one extraction, each size in a fresh process (a peak never goes down).

The parent starts `python -m ledgerlake.bench.memory '<job JSON>'`; the child imports what an extraction
needs, notes its RSS, runs engine.extract() for the interval against the sandbox and the S3 server, and
prints one JSON line: peak RSS, RSS after imports, rows and seconds.

The peak is VmHWM from /proc/self/status: the high-water mark of this process's own address space.
ru_maxrss is reported beside it but is not used: Linux carries the parent's RSS at fork into the child's
ru_maxrss across exec, so a child of a large parent reports the parent's size.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from datetime import datetime
from typing import Any

from ledgerlake.config import AccountConfig
from ledgerlake.interval import Interval


def _mib_now() -> float:
    import psutil

    return float(psutil.Process().memory_info().rss) / 2**20


def _vm_hwm_mib() -> float | None:
    try:
        with open("/proc/self/status") as status:
            lines = status.read().splitlines()
        for line in lines:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def child(job: dict[str, Any]) -> dict[str, Any]:
    from ledgerlake.engine import ExtractOptions, VenueCredentials, extract
    from ledgerlake.lake import Lake, S3Settings

    lake = Lake(S3Settings(**job["s3"]))
    account = AccountConfig(**job["account"])
    credentials = VenueCredentials(**job["credentials"])
    interval = Interval.parse(job["start"], job["end"])
    before = _mib_now()
    started = time.perf_counter()
    summary = extract(
        job["venue"],
        account,
        credentials,
        interval,
        lake,
        options=ExtractOptions(rate_limit="off", now=datetime.fromisoformat(job["now"])),
    )
    return {
        "venue": job["venue"],
        "interval": str(interval),
        "rows": summary.rows.get("ledger", 0),
        "seconds": round(time.perf_counter() - started, 2),
        "rss_after_imports_mib": round(before, 1),
        "peak_rss_mib": round(_vm_hwm_mib() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "ru_maxrss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),  # KiB on Linux
    }


def measure(job: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "ledgerlake.bench.memory", json.dumps(job)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if result.returncode != 0:
        raise RuntimeError(f"memory child failed ({result.returncode}):\n{result.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return answer


if __name__ == "__main__":
    print(json.dumps(child(json.loads(sys.argv[1]))), flush=True)
