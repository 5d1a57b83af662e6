"""Where an extraction's time goes, stage by stage, measured by the engine itself on every run.

Each thread keeps its own stack of open stages, so times are exclusive (a stage nested in another is taken
out of it) and the fetcher thread's stages (request, parse) and the row-building thread's (normalize,
write_parquet, ...) never mix. Wall seconds and the thread's own CPU seconds are both kept: the first says
where a run waits, the second where it works. The cost is two clock reads per stage entered (about 1 µs),
paid per page, never per row; each thread adds to its own totals, summed when reported.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

# Stages in the order a page meets them. request and parse run on the fetcher thread, write_parquet on the
# Parquet thread, the rest on the thread that builds the rows, which waits in wait_for_pages when the venue
# (or the fetcher) is the slower side and in wait_for_parquet when Parquet encoding is.
STAGES = (
    "rate_limit_wait",
    "request",  # sign, send, the venue's answer (its serving time included)
    "parse",  # JSON -> Python, envelope checks, paging
    "wait_for_pages",
    "raw_archive",
    "normalize",  # pages (or records) -> typed Arrow batches: columns, casts, details, order, entry_seq
    "spill",  # newest-first venues: batches to the local spill file, read back last to first
    "wait_for_parquet",  # the Parquet thread is behind
    "write_parquet",  # on the Parquet thread: encoding, files rolled, uploads queued
    "upload_wait",  # waiting at the end for the background S3 uploads
    "manifest",
)


class _ThreadTimes:
    """One thread's totals and its stack of open stages: [wall0, cpu0, nested wall, nested CPU] each."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)
        self.stack: list[list[float]] = []


class _Stage:
    """`with clock(stage):` on one thread (a plain object: cheaper than a generator context manager)."""

    __slots__ = ("name", "times")

    def __init__(self, name: str, times: _ThreadTimes) -> None:
        self.name, self.times = name, times

    def __enter__(self) -> None:
        self.times.stack.append([time.perf_counter(), time.thread_time(), 0.0, 0.0])

    def __exit__(self, *exc: object) -> None:
        wall1, cpu1 = time.perf_counter(), time.thread_time()
        times = self.times
        wall0, cpu0, nested_wall, nested_cpu = times.stack.pop()
        wall, cpu = wall1 - wall0, cpu1 - cpu0
        times.wall[self.name] += wall - nested_wall
        times.cpu[self.name] += cpu - nested_cpu
        if times.stack:
            outer = times.stack[-1]
            outer[2] += wall
            outer[3] += cpu


class StageClock:
    def __init__(self) -> None:
        self._threads: list[_ThreadTimes] = []
        self._lock = threading.Lock()
        self._local = threading.local()

    def __call__(self, stage: str) -> _Stage:
        stages: dict[str, _Stage] | None = getattr(self._local, "stages", None)
        if stages is None:
            times = _ThreadTimes()
            with self._lock:
                self._threads.append(times)
            stages = self._local.stages = {}
            self._local.times = times
        timer = stages.get(stage)
        if timer is None:
            timer = stages[stage] = _Stage(stage, self._local.times)
        return timer

    def _sum(self, kind: str) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        with self._lock:
            for times in self._threads:
                for stage, seconds in getattr(times, kind).items():
                    out[stage] += seconds
        return dict(out)

    def report(self) -> dict[str, dict[str, float]]:
        """{stage: {"wall_s": .., "cpu_s": ..}} in STAGES order, to a tenth of a millisecond; a stage timed on
        several threads (two fetchers' requests) is their sum."""
        wall, cpu = self._sum("wall"), self._sum("cpu")
        names = [s for s in STAGES if s in wall] + sorted(set(wall) - set(STAGES))
        return {s: {"wall_s": round(wall[s], 4), "cpu_s": round(cpu[s], 4)} for s in names}
