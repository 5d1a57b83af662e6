"""Rate limits switched on, on both sides: requests per second achieved against each venue's allowance, and
the over-limit answers received.

The five venues run at once, each in a process of its own as Airflow runs each task (limits are per venue;
on threads of one process they would share one GIL, and a slow machine would measure its CPU, not the
limiter), each on an interval sized to keep it paging for about `seconds`. Every attempt's send time is
recorded by wrapping Venue.sign; every answer the venue classifies as not ok (HTTP 429, Binance's 418, SunX's
over-limit body with HTTP 200) is counted by wrapping Venue.check, and the sandbox's own 429/418 counters are
read as a second opinion.

Fair measure: the venues count rolling (Pacifica, exchangeHubX, Coinbase) or fixed (SunX, Binance) windows
of W seconds. From the first request t0, the most any client may send in [t0, t0 + k*W) is k times the
window's allowance; achieved = requests sent in that span / k*allowance, with k the whole windows the run
covered. A run goes on past its last whole window, so a client that bursts at a window's boundary is
caught by the 429 count. Pacifica (60 s window) runs one window and a bit; Binance's 2400-weight request
against 6000 per minute admits 2 requests per minute (80% of the weight budget is the most usable).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from ledgerlake.bench.services import MotoProcess, SandboxProcess, empty_lake
from ledgerlake.interval import Interval
from ledgerlake.sandbox.options import RATE_LIMIT_PROFILES


@dataclass(frozen=True)
class Allowance:
    """What the sandbox (the independent reading of the venue documents) lets through per window."""

    requests_per_window: float  # may be fractional (Binance: 6000 / 2400 = 2.5)
    window_s: float
    text: str

    @property
    def usable_per_window(self) -> int:
        return math.floor(self.requests_per_window + 1e-9)


def allowances() -> dict[str, Allowance]:
    s = RATE_LIMIT_PROFILES["documented"]
    return {
        "exchangehubx": Allowance(
            s.exchangehubx_rate, 1.0, f"{s.exchangehubx_rate:g} req/s per key (burst {s.exchangehubx_burst:g})"
        ),
        "coinbase": Allowance(
            s.coinbase_rate, 1.0, f"{s.coinbase_rate:g} req/s per profile (burst {s.coinbase_burst:g})"
        ),
        "sunx": Allowance(s.sunx_reads, s.sunx_window_s, f"{s.sunx_reads} reads per {s.sunx_window_s:g} s per UID"),
        "pacifica": Allowance(
            s.pacifica_credits_with_key / s.pacifica_cost,
            s.pacifica_window_s,
            f"{s.pacifica_credits_with_key:g} credits per {s.pacifica_window_s:g} s with an API key, "
            f"{s.pacifica_cost:g} per request",
        ),
        "binance": Allowance(
            s.binance_weight_budget / s.binance_request_weight,
            s.binance_window_s,
            f"{s.binance_weight_budget} weight per {s.binance_window_s:g} s, {s.binance_request_weight} per request",
        ),
    }


class _Recorder:
    def __init__(self) -> None:
        self.sent: dict[str, list[float]] = defaultdict(list)
        self.refused: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()


@contextlib.contextmanager
def _recording(venues: list[str]) -> Iterator[_Recorder]:
    from ledgerlake.venues import VENUE_CLASSES

    rec = _Recorder()
    saved = []
    for venue in venues:
        cls = VENUE_CLASSES[venue]
        sign, check = cls.sign, cls.check

        def timed_sign(self: Any, request: Any, now: datetime, _sign: Any = sign, _v: str = venue) -> Any:
            with rec.lock:
                rec.sent[_v].append(time.monotonic())
            return _sign(self, request, now)

        def counted_check(
            self: Any, status: int, payload: Any, headers: Any, _check: Any = check, _v: str = venue
        ) -> Any:
            reply = _check(self, status, payload, headers)
            if reply.kind != "ok":
                with rec.lock:
                    rec.refused[_v] += 1
            return reply

        saved.append((cls, "sign" in vars(cls), sign, "check" in vars(cls), check))
        cls.sign, cls.check = timed_sign, counted_check  # type: ignore[method-assign]
    try:
        yield rec
    finally:
        for cls, own_sign, sign, own_check, check in saved:
            if own_sign:
                cls.sign = sign  # type: ignore[method-assign]
            else:
                del cls.sign
            if own_check:
                cls.check = check  # type: ignore[method-assign]
            else:
                del cls.check


def _one_venue(job: tuple[Any, ...]) -> dict[str, Any]:
    """One venue's extraction with its documented limit, in a process of its own: its requests' send times
    (time.monotonic, one clock for every process of the machine) and the over-limit answers it classified."""
    from ledgerlake.engine import ExtractOptions, extract
    from ledgerlake.lake import Lake

    venue, account, credentials, interval, lake_settings, now = job
    out: dict[str, Any] = {"sent": [], "refused": 0}
    with _recording([venue]) as rec:
        try:
            # rate_limit None: the venue's documented limit
            summary = extract(
                venue, account, credentials, interval, Lake(lake_settings), options=ExtractOptions(now=now)
            )
            out["rate_limit_wait_s"] = summary.rate_limit_wait_s
        except Exception as exc:
            out["error"] = f"{type(exc).__name__}: {exc}"[:400]
    out["sent"], out["refused"] = rec.sent.get(venue, []), rec.refused.get(venue, 0)
    return out


def plan(entries_per_day: int, seconds: float, end: datetime) -> dict[str, Interval]:
    """Intervals (ending at `end`, the sandbox's newest data) that keep each venue paging ~`seconds`."""
    from ledgerlake.venues import VENUE_CLASSES

    a = allowances()
    out: dict[str, Interval] = {}
    for venue in ("exchangehubx", "coinbase", "sunx"):
        requests = a[venue].requests_per_window / a[venue].window_s * seconds
        page = VENUE_CLASSES[venue].default_page_size  # Coinbase: 1000 a page
        out[venue] = Interval(end - timedelta(seconds=86_400 * requests * page / entries_per_day), end)
    # one full window then a few requests into the next one (the boundary is where a client gets a 429)
    pacifica_requests = a["pacifica"].usable_per_window + (6 if seconds >= 20 else -3)
    page = VENUE_CLASSES["pacifica"].default_page_size
    out["pacifica"] = Interval(end - timedelta(seconds=86_400 * pacifica_requests * page / entries_per_day), end)
    # one day = one request per snapshot type (3): two in the first minute, the third in the next one
    out["binance"] = Interval(end - timedelta(days=1), end)
    return {v: Interval(i.start.replace(microsecond=0), i.end) for v, i in out.items()}


def run(
    sandbox: SandboxProcess, moto: MotoProcess, entries_per_day: int, seconds: float, end: datetime, now: datetime
) -> dict[str, Any]:
    intervals = plan(entries_per_day, seconds, end)
    if seconds < 20:  # quick: Binance's and Pacifica's windows take a minute; measure the first window only
        intervals.pop("binance")
    venues = list(intervals)
    sandbox.set_rate_limits("documented")
    before = sandbox.stats()
    lake = moto.lake()
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}

    jobs = {v: (v, sandbox.account(v, 0), sandbox.credentials(v, 0), intervals[v], lake.settings, now) for v in venues}
    rec = _Recorder()
    try:
        context = multiprocessing.get_context("spawn")
        with context.Pool(len(venues)) as pool:
            for venue, answer in zip(venues, pool.map(_one_venue, jobs.values()), strict=True):
                rec.sent[venue], rec.refused[venue] = answer["sent"], answer["refused"]
                if answer.get("error"):
                    errors[venue] = answer["error"]
                else:
                    results[venue] = answer
    finally:
        sandbox.set_rate_limits("off")
    after = sandbox.stats()
    empty_lake(lake)
    out: dict[str, Any] = {}
    for venue, allowance in allowances().items():
        if venue not in intervals:
            continue
        sent = sorted(rec.sent.get(venue, []))
        server_refusals = sum(after[venue].get(k, 0) - before[venue].get(k, 0) for k in ("429s", "418s"))
        row: dict[str, Any] = {
            "allowance": allowance.text,
            "interval": str(intervals[venue]),
            "requests": len(sent),
            "over_limit_answers": max(rec.refused.get(venue, 0), server_refusals),
            "sandbox_429_418": server_refusals,
        }
        if venue in errors:
            row["error"] = errors[venue]
        if sent:
            t0 = sent[-1] if len(sent) == 1 else sent[0]
            run_s = sent[-1] - sent[0]
            windows = max(1, math.floor(run_s / allowance.window_s + 1e-9))
            if venue in ("pacifica", "binance"):
                windows = 1 if run_s < 2 * allowance.window_s else windows
            span = windows * allowance.window_s
            in_span = sum(1 for t in sent if t < t0 + span)
            achieved = in_span / span
            usable = allowance.usable_per_window / allowance.window_s
            row.update(
                {
                    "run_s": round(run_s, 1),
                    "whole_windows": windows,
                    "requests_in_windows": in_span,
                    "requests_per_s": round(achieved, 3),
                    "allowance_per_s": round(allowance.requests_per_window / allowance.window_s, 3),
                    "pct_of_allowance": round(100 * achieved / usable, 1),
                    "rate_limit_wait_s": results[venue]["rate_limit_wait_s"] if venue in results else None,
                }
            )
            if allowance.usable_per_window != allowance.requests_per_window:
                row["pct_of_budget"] = round(100 * achieved / (allowance.requests_per_window / allowance.window_s), 1)
        out[venue] = row
    return out
