"""Stage timings of one real `engine.extract()` run, taken by wrapping the engine's own steps.

The engine reports only its total time, so while a benchmark runs, the functions that carry each stage are
wrapped with timers (restored afterwards). Times are exclusive: a step's nested steps are subtracted from
it (VenueHttp.fetch calls Venue.sign and Venue.parse; Extraction._unspill calls the writer). Work on the
engine's upload threads (S3 PUTs) overlaps the main thread and shows only as the time spent waiting for it.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any

# step -> the stage it belongs to in the published table
STAGE_OF = {
    "http": "fetch+parse",
    "sign": "fetch+parse",
    "parse": "fetch+parse",
    "records": "fetch+parse",
    "columns": "normalize",
    "ledger_batch": "normalize",
    "complete": "normalize",
    "dedup": "normalize",
    "order+spill": "normalize",
    "unspill": "normalize",
    "parquet_write": "write Parquet to S3",
    "parquet_close": "write Parquet to S3",
    "upload_wait": "write Parquet to S3",
    "raw_archive": "raw archive",
}


class StageClock:
    """Exclusive seconds per step, for the thread that runs the extraction."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self._local = threading.local()

    def wrap(self, step: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        clock = self

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            stack: list[float] = clock._local.__dict__.setdefault("stack", [])
            stack.append(0.0)  # time of nested steps
            started = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                elapsed = time.perf_counter() - started
                nested = stack.pop()
                clock.seconds[step] += elapsed - nested
                clock.calls[step] += 1
                if stack:
                    stack[-1] += elapsed

        return timed

    def stages(self, total: float) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for step, secs in self.seconds.items():
            out[STAGE_OF[step]] += secs
        out["other"] = max(total - sum(out.values()), 0.0)
        return dict(out)


@contextlib.contextmanager
def timed_engine(venue_classes: list[type]) -> Iterator[StageClock]:
    """Wrap the engine's steps for the duration of the block; yields the clock."""
    from ledgerlake.engine import run as engine_run
    from ledgerlake.engine.http import VenueHttp
    from ledgerlake.engine.raw import RawArchive
    from ledgerlake.engine.writer import PartitionedParquetWriter, Uploader

    clock = StageClock()
    targets: list[tuple[Any, str, str]] = [
        (VenueHttp, "fetch", "http"),
        (engine_run, "ledger_batch", "ledger_batch"),
        (engine_run.Extraction, "_complete", "complete"),
        (engine_run.Extraction, "_dedup", "dedup"),
        (engine_run.Extraction, "_flush", "order+spill"),
        (engine_run.Extraction, "_unspill", "unspill"),
        (PartitionedParquetWriter, "write", "parquet_write"),
        (PartitionedParquetWriter, "close", "parquet_close"),
        (Uploader, "wait", "upload_wait"),
        (RawArchive, "add", "raw_archive"),
        (RawArchive, "flush", "raw_archive"),
    ]
    for cls in venue_classes:
        targets += [(cls, "sign", "sign"), (cls, "parse", "parse"), (cls, "records", "records")]
        if hasattr(cls, "columns"):
            targets.append((cls, "columns", "columns"))
    saved: list[tuple[Any, str, Any, bool]] = []
    try:
        for owner, name, step in targets:
            own = name in vars(owner)
            original = vars(owner)[name] if own else getattr(owner, name)
            fn = original.__func__ if isinstance(original, staticmethod) else original
            wrapped = clock.wrap(step, fn)
            setattr(owner, name, staticmethod(wrapped) if isinstance(original, staticmethod) else wrapped)
            saved.append((owner, name, original, own))
        yield clock
    finally:
        for owner, name, original, own in reversed(saved):
            if own:
                setattr(owner, name, original)
            else:
                delattr(owner, name)
