"""Where an extraction's time goes, stage by stage, measured by the engine itself on every run.

Each thread keeps its own stack of open stages, so times are exclusive (a stage nested in another is taken
out of it) and the fetcher thread's stages (request, parse) and the row-building thread's (normalize,
write_parquet, ...) never mix. Wall seconds and the thread's own CPU seconds are both kept: the first says
where a run waits, the second where it works. The cost is two clock reads per stage entered (about 1 µs),
paid per page, never per row.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

# Stages in the order a page meets them. request and parse run on the fetcher thread, write_parquet on the
# Parquet thread, the rest on the thread that builds the rows, which waits in wait_for_pages when the venue
# (or the fetcher) is the slower side and in wait_for_parquet when Parquet encoding is.
STAGES = (
    "rate_limit_wait",
    "request",  # sign, send, the venue's answer (its serving time included)
    "parse",  # JSON -> Python, envelope checks, paging
    "wait_for_pages",
    "raw_archive",
    "normalize",  # records -> typed Arrow batches: columns, casts, details, order, entry_seq
    "spill",  # newest-first venues: batches to the local spill file, read back last to first
    "wait_for_parquet",  # the Parquet thread is behind
    "write_parquet",  # on the Parquet thread: encoding, files rolled, uploads queued
    "upload_wait",  # waiting at the end for the background S3 uploads
    "manifest",
)


class StageClock:
    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self._local = threading.local()

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        stack: list[list[float]] = self._local.__dict__.setdefault("stack", [])
        frame = [0.0, 0.0]  # wall and CPU of nested stages
        stack.append(frame)
        wall0, cpu0 = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            wall, cpu = time.perf_counter() - wall0, time.thread_time() - cpu0
            stack.pop()
            self.wall[stage] += wall - frame[0]
            self.cpu[stage] += cpu - frame[1]
            if stack:
                stack[-1][0] += wall
                stack[-1][1] += cpu

    def report(self) -> dict[str, dict[str, float]]:
        """{stage: {"wall_s": .., "cpu_s": ..}} in STAGES order, to a tenth of a millisecond."""
        names = [s for s in STAGES if s in self.wall] + sorted(set(self.wall) - set(STAGES))
        return {s: {"wall_s": round(self.wall[s], 4), "cpu_s": round(self.cpu[s], 4)} for s in names}
