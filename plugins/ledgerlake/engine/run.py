"""One extraction: (venue, account, interval) -> raw pages, Parquet rows and, last, the manifest.

What happens to a page, in order. On a fetcher thread, up to PREFETCH_RECORDS ahead: the rate limiter lets the request
go; the venue signs it; engine.client sends it (retries in engine.http); the venue parses it (or it is
skimmed, engine.pages.PageSkimmer) and checks the envelope; the paginator makes the next request; where the
fast path reads the page (engine.pages) its parsed records are let go there. On the run's own thread: the
body goes to the raw archive as received; a batch's pages are read into Arrow (or, the usual way, the venue
appends the records' values to column lists); every `batch_rows` rows that becomes one Arrow batch
(vectorized casts, `details` built column-wise, filtered to exactly [start, end) of the window), which a
Parquet thread writes as a row group and streams to S3. engine.stages times each step.

Venues whose requests filter by time at both ends have each window fetched as `fetch_lanes` consecutive
parts at once, one fetcher and one connection per part (a lane): with one request in flight the row-building
thread waited for pages 40-60% of a run. The run's thread takes a page from each lane in turn, so page
numbers and batches are the same on every run, and keeps each lane's batches and order checks apart.

entry_seq needs the contract's chronological order. Each batch is put in it (sorted by (time, id), or
the venue's listing reversed for Pacifica, whose ties keep the venue's order), holding back the rows of
the batch's last time so equal times never straddle two batches; the venue's order by time is checked
between batches. The run's first lane of an oldest-first venue then streams straight into the final files
with a running counter. Every other lane, and newest-first venues (Coinbase, Pacifica, and exchangeHubX,
whose order is undocumented and found from the data), stream their batches into a local LZ4 Arrow spill
file, read back at the end lane by lane (a newest-first lane last batch first) and numbered, so memory holds
a batch per lane whatever the interval's size.
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import shutil
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

from ledgerlake.config import AccountConfig
from ledgerlake.engine.errors import BadRecordError, ExtractError, OrderError, RetentionError
from ledgerlake.engine.http import Page, Redactor, VenueHttp
from ledgerlake.engine.pages import STAND_IN, ArrowPageReader, PageSkimmer, arrow_batch, flat_layout
from ledgerlake.engine.ratelimit import limiter_for
from ledgerlake.engine.raw import RawArchive
from ledgerlake.engine.rows import (
    BATCH_FIELDS,
    LedgerBatch,
    RecentIds,
    RowsError,
    decimals,
    order_violation,
    records_batch,
)
from ledgerlake.engine.stages import StageClock
from ledgerlake.engine.writer import BackgroundWriter, PartitionedParquetWriter, Uploader
from ledgerlake.interval import Interval, to_ms
from ledgerlake.lake import Lake, Manifest, ManifestFile, manifest_key, quarantine_prefix
from ledgerlake.schema import BALANCE_SNAPSHOT_SCHEMA, LEDGER_SCHEMA, POSITION_SNAPSHOT_SCHEMA, TIMESTAMP
from ledgerlake.venues import VENUE_CLASSES
from ledgerlake.venues.base import LedgerColumns, RateLimit, Request, Venue, VenueCredentials, Window

log = logging.getLogger("ledgerlake.engine")

# Records fetched ahead of the rows being built, per window, shared by its lanes (at least 2 pages each). While
# the row thread builds a batch (tens of ms) the fetchers go on into this. At 800 a lone fetcher (Pacifica) sat
# blocked for most of each batch: its extract took 9.3 s against 8.5 s with 6,400 (12,800: 7.7 s), A/B
# interleaved; two-lane venues gained nothing measurable. Memory decides the size: Coinbase's 1000-entry pages
# with nested details cost 2-3 KiB a record parsed; at 6,400 its peak RSS was unchanged (468 / 482 MiB at
# 1M / 10M entries), at 12,800 it rose to 490 / 498 MiB, too near the 512 MiB target.
PREFETCH_RECORDS = 6_400
# A page of a flat layout waits without its parsed records (skimmed, or let go by its fetcher), as its body
# alone, about 0.3 KiB a record, so each lane of such a venue fetches a whole batch ahead (batch_rows records;
# 2 x 25,000 is 14 MB of bodies for exchangeHubX) and a batch's flush no longer stops its fetchers. ExchangeHubX's
# extract, A/B interleaved: 7.7 s at 6,400, 6.5 s at 25,600, 5.6-5.9 s at 51,200 a window; 102,400 and more
# gained nothing further.


@dataclass(frozen=True)
class ExtractOptions:
    """Knobs of one extraction; every one has a sensible default.

    rate_limit: None = the venue's documented limit (or the connection's `rate_limit` extra),
    "off" = no client-side limit, or a RateLimit / {"units": .., "per_seconds": ..} override.
    """

    rate_limit: RateLimit | dict[str, Any] | str | None = None
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 60.0
    max_retries: int = 8
    backoff_base_s: float = 0.5
    backoff_max_s: float = 60.0
    max_retry_after_s: float = 600.0
    page_size: int | None = None
    batch_rows: int = 25_000  # rows per Arrow batch = Parquet row group
    fetch_lanes: int = 2  # parts of each window fetched at once (venues filtering by time at both ends)
    arrow_pages: bool = True  # read pages straight into Arrow where the venue declares their layout (engine.pages)
    file_rows: int = 1_000_000  # rows per Parquet file before it rolls
    raw_pages_per_object: int = 100
    progress_every_s: float = 10.0
    tmpdir: str | None = None
    now: datetime | None = None  # "now" for retention checks (tests)


@dataclass
class ExtractSummary:
    venue: str
    account: str
    interval: str
    pages: int = 0
    rows: dict[str, int] = field(default_factory=dict)
    unknown_codes: dict[str, int] = field(default_factory=dict)
    retries: int = 0
    rate_limit_wait_s: float = 0.0
    seconds: float = 0.0
    manifest_key: str | None = None
    requests: int = 0
    outside_interval: int = 0
    duplicates_removed: int = 0
    batches_from_records: int = 0  # batches of a venue with an Arrow layout that its pages did not fit
    pages_skimmed: int = 0  # pages handed on without parsed records (engine.pages.PageSkimmer, _Fetcher)
    stages: dict[str, dict[str, float]] = field(default_factory=dict)  # engine.stages: wall and CPU seconds

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_rate_limit(venue: Venue, options: ExtractOptions, credentials: VenueCredentials) -> RateLimit | None:
    chosen = options.rate_limit if options.rate_limit is not None else credentials.extra.get("rate_limit")
    if chosen is None:
        return venue.rate_limit
    if isinstance(chosen, RateLimit):
        return chosen
    if isinstance(chosen, str):
        if chosen.lower() in ("off", "none", "false"):
            return None
        raise ValueError(f"rate_limit {chosen!r}: use 'off' or {{'units': N, 'per_seconds': S[, 'burst': B]}}")
    if isinstance(chosen, dict):
        burst = chosen.get("burst")
        return RateLimit(
            float(chosen["units"]),
            float(chosen["per_seconds"]),
            str(chosen.get("scope", venue.rate_limit.scope)),
            float(burst) if burst is not None else None,
        )
    raise ValueError(f"rate_limit {chosen!r} is not understood")


class _Fetcher:
    """A thread that requests the pages of one window (rate limit, signing, retries, parsing, paging) a few
    pages ahead of the thread that turns them into rows, so the venue's answer time and our own work overlap
    instead of adding up. At most `prefetch_records` records' pages wait, so memory stays bounded; order is kept."""

    def __init__(
        self,
        venue: Venue,
        http: VenueHttp,
        window: Window,
        clock: StageClock,
        answered: threading.Event,
        wait_for_answer: bool = False,
        prefetch_records: int = PREFETCH_RECORDS,
        let_go_width: int | None = None,
    ) -> None:
        """`answered` is set once the venue has answered a page of the run; with `wait_for_answer` (further
        lanes) the first request waits for it, so a refused key or a ban costs one request, not one per lane.
        `let_go_width`: a page whose records are all objects of that many keys, once paged, is handed on without
        them (as a skimmed page: stand-ins, re-parsed only if its batch is read the usual way), so they are
        freed here, off the row thread, and the waiting pages cost their bodies alone."""
        self.venue, self.http, self.window, self.clock = venue, http, window, clock
        self.let_go_width = let_go_width
        self.answered, self.wait_for_answer = answered, wait_for_answer
        self._queue: queue.Queue[tuple[Request, Page, list[Any]] | BaseException | None] = queue.Queue(
            max(2, prefetch_records // venue.page_size)
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fetch_all, name=f"ledgerlake-fetch-{venue.name}", daemon=True)
        self._thread.start()

    def _put(self, item: tuple[Request, Page, list[Any]] | BaseException | None) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def _fetch_all(self) -> None:
        venue, window = self.venue, self.window
        try:
            while self.wait_for_answer and not self.answered.wait(0.2):
                if self._stop.is_set():
                    return
            request: Request | None = venue.first_request(window)
            while request is not None and not self._stop.is_set():
                page = self.http.fetch(request)
                with self.clock("parse"):
                    records = venue.records(page.payload)
                    nxt = venue.next_request(request, page.payload, page.headers, records, window)
                    if nxt is not None and venue.stop_after(records, window):
                        nxt = None
                    width = self.let_go_width
                    if (
                        width is not None
                        and not page.skimmed
                        and type(records) is list
                        and all(type(r) is dict and len(r) == width for r in records)
                    ):
                        page = replace(page, payload=None, skimmed=True)
                        records = [STAND_IN] * len(records)
                if not self._put((request, page, records)):
                    return
                self.answered.set()
                request = nxt
            self._put(None)
        except BaseException as exc:  # handed to the consuming thread, which raises it
            self._put(exc)

    def next(self) -> tuple[Request, Page, list[Any]] | None:
        """The next page, or None after the last; raises what the fetch raised."""
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        # A fetch in flight ends within its timeouts; the thread is a daemon, so a stuck one never holds the
        # process, and it hands nothing more to anyone once stopped.
        self._thread.join(timeout=5)


@dataclass(frozen=True)
class _HeldPage:
    """A page waiting in a batch for the fast path: its body for Arrow, its parse for the usual way (a skimmed
    page's records are stand-ins: `Extraction._full_records` parses it in full)."""

    page_no: int
    records: list[Any]
    uri: str
    body: bytes
    payload: Any
    skimmed: bool


@dataclass(eq=False)
class _Lane:
    """One part of a window, fetched by a fetcher of its own and put in chronological order on its own.

    Venues that filter by time at both ends are fetched as `fetch_lanes` consecutive parts of each window at
    once: with one request in flight, the row-building thread waited for pages 40-60% of a run. The thread
    takes one page from each lane in turn (so page numbers, raw objects and batches are the same on every
    run), keeps a batch per lane, and the lanes' chunks reach the files in time order (see `_unspill`).
    """

    number: int  # chronological place among all lanes of the run
    window: Window  # this lane's part of the venue window
    fetcher: _Fetcher
    window_us: tuple[int, int]  # the whole venue window: only rows outside it count as outside the interval
    recent: RecentIds | None
    cols: LedgerColumns = field(default_factory=LedgerColumns)
    uris: list[str] = field(default_factory=list)
    pages: list[tuple[int, list[dict[str, Any]], str]] = field(default_factory=list)
    held: list[_HeldPage] = field(default_factory=list)  # the batch's pages, for the fast path (engine.pages)
    held_rows: int = 0
    last_key: tuple[int, int | None] | None = None  # listing-order check (ties kept as listed)
    bound: tuple[int, int] | None = None  # (time, id) the next sorted chunk must lie beyond
    carry: LedgerBatch | None = None  # rows of the last time seen, held for the next batch
    spilled: list[int] = field(default_factory=list)  # this lane's record batches in the spill file, as listed

    def new_batch(self) -> None:
        self.cols, self.uris, self.pages = LedgerColumns(), [], []
        self.held, self.held_rows = [], 0

    @property
    def start_us(self) -> int:
        return self.window.interval.start_ms * 1000

    @property
    def end_us(self) -> int:
        return self.window.interval.end_ms * 1000


def lane_windows(window: Window, lanes: int) -> list[Window]:
    """`window` cut into up to `lanes` consecutive parts of whole milliseconds (fewer for a short window)."""
    span_ms = window.interval.end_ms - window.interval.start_ms
    if lanes <= 1 or span_ms < 2 * lanes:
        return [window]
    step = timedelta(milliseconds=-(-span_ms // lanes))
    return [Window(part, window.label) for part in window.interval.split(step)]


class Extraction:
    def __init__(
        self,
        venue_name: str,
        account: AccountConfig,
        credentials: VenueCredentials,
        interval: Interval,
        lake: Lake,
        options: ExtractOptions,
    ) -> None:
        if venue_name not in VENUE_CLASSES:
            raise ValueError(f"unknown venue {venue_name!r}; known: {', '.join(VENUE_CLASSES)}")
        self.venue = VENUE_CLASSES[venue_name](account, credentials, options.page_size)
        layout = self.venue.arrow_layout if options.arrow_pages else None
        self._page_reader = ArrowPageReader(layout) if layout is not None else None
        self._skimmer = PageSkimmer(self.venue) if layout is not None and PageSkimmer.takes(self.venue) else None
        # Pages of a flat layout reach the row thread without their parsed records (see _Fetcher). Coinbase's
        # nested details come from its records: keeping only those measured slower (extract 8.7 against 7.4 s).
        self._let_go_width = len(layout.fields) if layout is not None and flat_layout(layout) else None
        self.venue.defer_exact_decimals = self._page_reader is not None
        self.credentials = credentials
        self.account = account
        self.interval = interval
        self.lake = lake
        self.options = options
        self.context = f"{venue_name} account {account.account} interval {interval}"
        self.redact = Redactor(credentials.secrets())
        limit = resolve_rate_limit(self.venue, options, credentials)
        self.limit = limit
        self.clock = StageClock()
        self._https: list[VenueHttp] = []
        self.http = self._http_for(self.venue)
        self._venue_answered = threading.Event()
        self.summary = ExtractSummary(
            venue_name, account.account, f"{interval.start.isoformat()}/{interval.end.isoformat()}"
        )
        self.ingested_at = datetime.now(UTC)
        self._started = time.monotonic()
        self._last_progress = self._started
        self._uploads_started = False

    def _http_for(self, venue: Venue) -> VenueHttp:
        """A connection of its own for one fetcher; all of them share the venue's rate limiter."""
        limit, options = self.limit, self.options
        http = VenueHttp(
            venue,
            limiter_for(venue.rate_limit_scope_key(), limit) if limit else None,
            self.redact,
            self.context,
            connect_timeout=options.connect_timeout_s,
            read_timeout=options.read_timeout_s,
            max_retries=options.max_retries,
            backoff_base_s=options.backoff_base_s,
            backoff_max_s=options.backoff_max_s,
            max_retry_after_s=options.max_retry_after_s,
            clock=self.clock,
            skim=self._skimmer.skim if self._skimmer is not None else None,
        )
        self._https.append(http)
        return http

    def _http_stats(self) -> tuple[int, int, float]:
        """(requests, retries, seconds waited for the rate limit) over every fetcher's connection."""
        stats = [h.stats for h in self._https]
        return sum(s.requests for s in stats), sum(s.retries for s in stats), sum(s.rate_limit_wait_s for s in stats)

    # ---------------------------------------------------------------------------------------------

    def run(self) -> ExtractSummary:
        now = self.options.now or datetime.now(UTC)
        problem = self.venue.retention_problem(self.interval, now)
        if problem:
            raise RetentionError(f"{self.context}: {problem}; nothing was requested")
        if self.interval.end > now:
            log.warning("%s: the interval is not over yet; entries after now will be missing", self.context)
        log.info(
            "%s: extracting (rate limit %s, page size %d)",
            self.context,
            self.limit or "off",
            self.venue.page_size,
        )
        # pyarrow imports pandas, if installed, on its first array made from Python objects: 1.4-1.9 s here. Paid
        # mid-run it stalls the fetchers, with the rate limit's slots going unused; paid here, nothing waits.
        pa.array([0])
        tmp = tempfile.mkdtemp(prefix="ledgerlake-", dir=self.options.tmpdir)
        self.uploader = Uploader()
        self.raw = RawArchive(
            self.lake,
            self.uploader,
            self.venue.name,
            self.account.account,
            self.interval,
            self.options.raw_pages_per_object,
            self.redact,
        )
        # The cyclic GC would keep walking every parsed record held in the current batch and the page queue (a
        # third of a nested-record venue's parse time, measured on Coinbase). Records are freed by reference
        # counting; garbage cycles are collected once per batch instead (_collect_garbage), over only the objects
        # made during the run: what the process held before (imports, Airflow) is frozen meanwhile.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        gc.freeze()
        self._batches = 0
        try:
            if self.venue.dataset == "snapshots":
                self._run_snapshots()
            else:
                self._run_ledger(tmp)
            with self.clock("raw_archive"):
                self.raw.flush()
            with self.clock("upload_wait"):
                files = self.uploader.wait()
            with self.clock("manifest"):
                return self._finish(files)
        except BaseException:
            self._abandon()
            raise
        finally:
            gc.unfreeze()
            if gc_was_enabled:
                gc.enable()
            self.uploader.shutdown()
            for http in self._https:
                http.close()
            shutil.rmtree(tmp, ignore_errors=True)

    def _abandon(self) -> None:
        """A failed run may have overwritten objects a previous manifest lists: withdraw that manifest so
        readers never see a half-replaced interval."""
        if not self._uploads_started:
            return
        try:
            self.lake.delete_keys([manifest_key(self.venue.name, self.account.account, self.interval)])
        except Exception as exc:  # the original failure matters more
            log.warning("%s: could not withdraw the old manifest: %s", self.context, exc)

    def _begin_uploads(self) -> None:
        if not self._uploads_started:
            self._uploads_started = True
            self.lake.delete_keys([manifest_key(self.venue.name, self.account.account, self.interval)])

    def _finish(self, files: list[ManifestFile]) -> ExtractSummary:
        s = self.summary
        s.requests, s.retries, waited = self._http_stats()
        s.rate_limit_wait_s = round(waited, 3)
        s.seconds = round(time.monotonic() - self._started, 3)
        s.stages = self.clock.report()
        s.rows["raw"] = sum(f.rows for f in files if f.dataset == "raw")
        manifest = Manifest.build(
            self.venue.name,
            self.account.account,
            self.interval,
            files,
            # Only what a re-run reproduces: timings would make identical runs write different manifests.
            summary={k: v for k, v in s.to_dict().items() if k not in ("manifest_key", "seconds", "stages")},
        )
        self._begin_uploads()
        s.manifest_key = self.lake.write_manifest(manifest)
        # A clean run leaves no quarantine behind: records kept aside by an earlier failed attempt are resolved.
        stale = list(self.lake.list_keys(quarantine_prefix(self.venue.name, self.account.account, self.interval)))
        if stale:
            self.lake.delete_keys(stale)
            log.info("%s: removed %d quarantine record(s) of an earlier failed run", self.context, len(stale))
        total = sum(v for k, v in s.rows.items() if k != "raw")
        log.info(
            "%s: done: %d pages, rows %s, %.0f rows/s, %d requests, %d retries, %.1f s waiting for the rate limit, "
            "unknown codes %s, %d outside the interval, %d duplicates removed, %.1f s; manifest %s",
            self.context,
            s.pages,
            {k: v for k, v in s.rows.items() if k != "raw"},
            total / max(s.seconds, 1e-9),
            s.requests,
            s.retries,
            s.rate_limit_wait_s,
            s.unknown_codes or "none",
            s.outside_interval,
            s.duplicates_removed,
            s.seconds,
            s.manifest_key,
        )
        log.info(
            "%s: time by stage (wall / CPU s; fetcher, row-building and Parquet threads overlap): %s",
            self.context,
            ", ".join(f"{k} {v['wall_s']:.2f}/{v['cpu_s']:.2f}" for k, v in s.stages.items()),
        )
        return s

    def _progress(self, window: Window, rows: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < self.options.progress_every_s:
            return
        self._last_progress = now
        elapsed = max(now - self._started, 1e-9)
        _, retries, waited = self._http_stats()
        log.info(
            "%s: window %s%s: %d pages, %d rows, %.0f rows/s, %.1f s waiting for the rate limit, %d retries",
            self.context,
            window.interval,
            f" {window.label}" if window.label else "",
            self.summary.pages,
            rows,
            rows / elapsed,
            waited,
            retries,
        )

    # Pages ---------------------------------------------------------------------------------------

    def _next_page(self, fetcher: _Fetcher) -> tuple[int, list[Any], str, Page] | None:
        """(page_no, records, raw_uri, page) of the fetcher's next page, archived as received; None at its end."""
        with self.clock("wait_for_pages"):
            item = fetcher.next()
        if item is None:
            return None
        request, page, records = item
        self.summary.pages += 1
        self.summary.pages_skimmed += page.skimmed
        page_no = self.summary.pages
        self._begin_uploads()
        with self.clock("raw_archive"):
            uri = self.raw.add(page_no, request.safe_meta(), page.status, page.body, len(records))
        return page_no, records, uri, page

    def _pages(self, window: Window) -> Iterator[tuple[int, list[Any], str]]:
        """Every page of one window, from one fetcher (Binance's snapshots)."""
        fetcher = _Fetcher(self.venue, self.http, window, self.clock, self._venue_answered)
        try:
            while (item := self._next_page(fetcher)) is not None:
                yield item[:3]
        finally:
            fetcher.close()

    # Ledger --------------------------------------------------------------------------------------

    def _ledger_writer(self) -> PartitionedParquetWriter:
        return PartitionedParquetWriter(
            self.lake,
            self.uploader,
            "ledger",
            LEDGER_SCHEMA,
            self.venue.name,
            self.account.account,
            self.interval,
            "occurred_at",
            self.options.file_rows,
            self.options.batch_rows,
        )

    def _run_ledger(self, tmp: str) -> None:
        venue = self.venue
        writer = BackgroundWriter(self._ledger_writer(), self.clock)
        self._spill: pa.ipc.RecordBatchFileWriter | None = None
        self._spill_file: pa.NativeFile | None = None
        self._spill_path = os.path.join(tmp, "spill.arrow")
        self._spilled = 0
        self._direction: bool | None = venue.newest_first  # None: not documented, found from the data
        self._seq = 0
        self._rows_seen = 0
        self._flushed = False  # a batch was flushed in this round of pages: garbage to collect after it
        lanes_per_window = max(1, self.options.fetch_lanes) if venue.time_filtered else 1
        every_lane: list[_Lane] = []
        active: list[_Lane] = []
        # Paging state lives on the venue object: each further lane has a venue and a connection of its own.
        fetching = [(venue, self.http)]
        try:
            for window in venue.windows(self.interval):
                window_us = (window.interval.start_ms * 1000, window.interval.end_ms * 1000)
                parts = lane_windows(window, lanes_per_window)
                ahead = PREFETCH_RECORDS // len(parts)  # per lane
                if self._let_go_width is not None:
                    ahead = max(ahead, self.options.batch_rows)
                for position, part in enumerate(parts):
                    if position == len(fetching):
                        more = VENUE_CLASSES[venue.name](self.account, self.credentials, self.options.page_size)
                        more.defer_exact_decimals = venue.defer_exact_decimals
                        fetching.append((more, self._http_for(more)))
                    lane_venue, http = fetching[position]
                    lane = _Lane(
                        len(every_lane),
                        part,
                        _Fetcher(
                            lane_venue,
                            http,
                            part,
                            self.clock,
                            self._venue_answered,
                            wait_for_answer=position > 0,
                            prefetch_records=ahead,
                            let_go_width=self._let_go_width,
                        ),
                        window_us,
                        RecentIds(max(20 * venue.page_size, 20_000)) if venue.dedup_by_entry_id else None,
                    )
                    every_lane.append(lane)
                    active.append(lane)
                while active:
                    for lane in list(active):
                        if not self._next_lane_page(lane, writer):
                            active.remove(lane)
                            lane.fetcher.close()
                            with self.clock("normalize"):
                                self._flush(lane, writer, final=True)
                            self._progress(lane.window, self._rows_seen, force=True)
                    if self._flushed:
                        with self.clock("normalize"):
                            self._collect_garbage()
            if self._spill is not None:
                self._close_spill()
                with self.clock("normalize"):
                    self._unspill(every_lane, writer)
            writer.close()
        except BaseException:
            for lane in active:
                lane.fetcher.close()
            writer.abort()
            if self._spill is not None:
                self._close_spill()
            raise
        self.summary.rows["ledger"] = writer.rows

    def _collect_garbage(self) -> None:
        """What automatic collection would have done: the young generations after each round of batches, and
        every 8 rounds the objects of the run that outlived them (cycles found there would otherwise pile up:
        +100 MiB at 10M rows). Called once the batches' records are freed, after the round of pages in which
        the lanes (in step) flushed theirs, so it walks few live objects: collecting while a batch was held cost
        0.9 s per 1M Coinbase rows, 18 ms per collection."""
        self._flushed = False
        self._batches += 1
        gc.collect(2 if self._batches % 8 == 0 else 1)

    def _next_lane_page(self, lane: _Lane, writer: BackgroundWriter) -> bool:
        """Take the lane's next page into its batch (flushed every batch_rows rows); False at its end."""
        item = self._next_page(lane.fetcher)
        if item is None:
            return False
        page_no, records, uri, page = item
        with self.clock("normalize"):
            if not records:
                return True
            if self._page_reader is not None:
                lane.held.append(_HeldPage(page_no, records, uri, page.body, page.payload, page.skimmed))
                lane.held_rows += len(records)
            else:
                self._append_page(lane, page_no, records, uri)
            if len(lane.cols) + lane.held_rows >= self.options.batch_rows:
                self._flush(lane, writer)
                lane.new_batch()
                self._flushed = True
        self._progress(lane.window, self._rows_seen)
        return True

    def _full_records(self, page: _HeldPage) -> list[Any]:
        """The page's records as the usual way reads them; a skimmed page is parsed in full now."""
        venue = self.venue
        if not page.skimmed:
            return venue.exact_records(page.body, page.payload, page.records)
        try:
            payload = venue.parse(page.body)
        except ValueError as exc:  # simdjson took the body, orjson does not: say so, keep the page aside
            self._bad_record([(page.page_no, [], page.uri)], f"the page is JSON to one parser, not to another: {exc}")
            raise AssertionError("unreachable") from None
        return venue.exact_records(page.body, payload, venue.records(payload))

    def _append_page(self, lane: _Lane, page_no: int, records: list[Any], uri: str) -> None:
        """A page's records into the lane's batch the usual way: their values appended to the column lists."""
        cols = lane.cols
        before = len(cols)
        try:
            self.venue.append(records, cols)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self._truncate(cols, before)
            self._bad_record([(page_no, records, uri)], f"{type(exc).__name__}: {exc}")
        if lane.recent is not None:
            self._dedup(cols, before, lane.recent)
        lane.uris.extend([uri] * (len(cols) - before))
        lane.pages.append((page_no, records, uri))

    @staticmethod
    def _truncate(cols: LedgerColumns, n: int) -> None:
        for name in LedgerColumns.__dataclass_fields__:
            del getattr(cols, name)[n:]

    def _dedup(self, cols: LedgerColumns, before: int, recent: RecentIds) -> None:
        ids = cols.entry_id
        dup = [i for i in range(before, len(ids)) if recent.seen(ids[i])]
        if dup:
            self.summary.duplicates_removed += len(dup)
            drop = set(dup)
            for name in LedgerColumns.__dataclass_fields__:
                values = getattr(cols, name)
                values[before:] = [v for i, v in enumerate(values[before:], before) if i not in drop]

    @staticmethod
    def _detect_direction(us: np.ndarray) -> bool | None:
        """Newest first (True) or oldest first (False) from the first two entries with different times."""
        if not len(us):
            return None
        differ = np.flatnonzero(us != us[0])
        return None if not len(differ) else bool(us[differ[0]] < us[0])

    def _flush(self, lane: _Lane, writer: BackgroundWriter, final: bool = False) -> None:
        """One batch of a lane: typed, filtered, put in chronological order, then written or spilled.

        Venues ordering ties by id ("id" tie-break) get each batch sorted by (time, id), the contract's order,
        whatever order the venue lists equal times in; the rows sharing the batch's last time are held back
        for the next batch, so a group of equal times never straddles two batches. Between batches the
        venue's order by time is checked: a row that belongs before rows already written stops the run.
        """
        venue, cols = self.venue, lane.cols
        batch: LedgerBatch | None = None
        if lane.held:
            assert self._page_reader is not None
            batch = arrow_batch(
                venue, self._page_reader, lane.held, lane.start_us, lane.end_us, lane.window_us, lane.recent
            )
            if batch is None:
                if not self.summary.batches_from_records:
                    log.info(
                        "%s: pages %d-%d do not fit %s's Arrow layout (%s): read from their records, as any such batch",
                        self.context,
                        lane.held[0].page_no,
                        lane.held[-1].page_no,
                        venue.name,
                        self.redact(self._page_reader.refusal),
                    )
                self.summary.batches_from_records += 1
                for p in lane.held:
                    self._append_page(lane, p.page_no, self._full_records(p), p.uri)
            lane.held, lane.held_rows = [], 0
        if batch is None and len(cols):
            try:
                batch = records_batch(venue, cols, lane.uris, lane.start_us, lane.end_us, lane.window_us)
            except RowsError as exc:
                self._bad_record(lane.pages, f"column {exc.column}: {exc.reason}")
                raise AssertionError("unreachable") from None
        if batch is not None:
            self.summary.outside_interval += batch.outside
            for code, count in batch.unknown_codes.items():
                if code not in self.summary.unknown_codes:
                    log.warning(
                        "%s: unknown %s type code %r kept as entry_type 'other'", self.context, venue.name, code
                    )
                self.summary.unknown_codes[code] = self.summary.unknown_codes.get(code, 0) + count
        if lane.carry is not None:
            batch = lane.carry if batch is None else self._concat(lane.carry, batch)
            lane.carry = None
        if batch is None or batch.table.num_rows == 0:
            return
        if self._direction is None:
            self._direction = self._detect_direction(batch.occurred_us)
            if self._direction is None and not final:
                lane.carry = batch  # all at one time so far: wait for a second time to tell the order
                return
            if self._direction is None:
                self._direction = False  # one time only: the order of the rows is the id order
            log.info(
                "%s: %s lists entries %s first", self.context, venue.name, "newest" if self._direction else "oldest"
            )
        newest_first = self._direction
        if venue.tie_break == "id" and batch.tie is not None:
            chunk = self._sorted_chunk(lane, batch, newest_first, final)
        else:  # ties keep the venue's listing order (Pacifica): check it, then turn it chronological
            bad = order_violation(batch.occurred_us, None, newest_first, lane.last_key)
            if bad is not None:
                self._order_error(batch.table.column("entry_id")[bad].as_py())
            lane.last_key = (int(batch.occurred_us[-1]), None)
            chunk = batch.table
            if newest_first:
                chunk = chunk.take(pa.array(np.arange(chunk.num_rows - 1, -1, -1)))
        if chunk is None or chunk.num_rows == 0:
            return
        self._rows_seen += chunk.num_rows
        if newest_first is False and lane.number == 0:
            writer.write(self._complete(chunk))  # oldest first, the run's first lane: straight into the final files
            return
        if self._spill is None:
            # Arrow IPC with LZ4: ten times cheaper to write and read back than Parquet, still compact.
            self._spill_file = pa.OSFile(self._spill_path, "wb")
            options = pa.ipc.IpcWriteOptions(compression="lz4")
            self._spill = pa.ipc.new_file(self._spill_file, chunk.schema, options=options)
        # One record batch per chunk: the chunks are read back in reverse, never the rows inside one.
        record_batch = chunk.combine_chunks().to_batches()[0]
        with self.clock("spill"):
            self._spill.write_batch(record_batch)
        lane.spilled.append(self._spilled)
        self._spilled += 1

    def _sorted_chunk(self, lane: _Lane, batch: LedgerBatch, newest_first: bool, final: bool) -> pa.Table | None:
        """The batch's rows sorted by (time, id), minus the held-back group of the batch's last time."""
        us, tie = batch.occurred_us, batch.tie
        assert tie is not None
        keep = np.ones(len(us), dtype=bool)
        if not final:
            edge = us.min() if newest_first else us.max()
            hold = us == edge
            if hold.all():
                lane.carry = batch
                return None
            lane.carry = self._take(batch, np.flatnonzero(hold))
            keep = ~hold
        rows = np.flatnonzero(keep)
        order = rows[np.lexsort((tie[rows], us[rows]))]
        first = (int(us[order[0]]), int(tie[order[0]]))
        last = (int(us[order[-1]]), int(tie[order[-1]]))
        # Chunks come in the venue's listing order: each must lie wholly after (oldest first) or wholly
        # before (newest first) every row already taken.
        bound = lane.bound
        if bound is not None and (last >= bound if newest_first else first <= bound):
            self._order_error(batch.table.column("entry_id")[int(order[-1] if newest_first else order[0])].as_py())
        lane.bound = first if newest_first else last
        return batch.table.take(pa.array(order))

    def _order_error(self, entry: Any) -> None:
        raise OrderError(
            f"{self.context}: {self.venue.name} listed entry {entry} out of its order by time "
            f"({'newest' if self._direction else 'oldest'} first); entry_seq cannot be assigned"
        )

    @staticmethod
    def _take(batch: LedgerBatch, idx: np.ndarray) -> LedgerBatch:
        return LedgerBatch(
            batch.table.take(pa.array(idx)),
            batch.occurred_us[idx],
            batch.tie[idx] if batch.tie is not None else None,
            {},
            0,
        )

    @staticmethod
    def _concat(a: LedgerBatch, b: LedgerBatch) -> LedgerBatch:
        tie = None if a.tie is None or b.tie is None else np.concatenate((a.tie, b.tie))
        return LedgerBatch(
            pa.concat_tables([a.table, b.table]), np.concatenate((a.occurred_us, b.occurred_us)), tie, {}, 0
        )

    def _close_spill(self) -> None:
        if self._spill is not None:
            self._spill.close()
        if self._spill_file is not None:
            self._spill_file.close()
        self._spill, self._spill_file = None, None

    def _complete(self, table: pa.Table) -> pa.Table:
        """Add entry_seq (continuing the running count) and the run's constants."""
        n = table.num_rows
        seq = pa.array(np.arange(self._seq, self._seq + n, dtype=np.int64))
        self._seq += n
        return pa.table(
            {
                "venue": pa.repeat(pa.scalar(self.venue.name, pa.string()), n) if n else pa.array([], pa.string()),
                "account": pa.repeat(pa.scalar(self.account.account, pa.string()), n)
                if n
                else pa.array([], pa.string()),
                "entry_seq": seq,
                **{name: table.column(name) for name in BATCH_FIELDS},
                "ingested_at": pa.repeat(pa.scalar(self.ingested_at, TIMESTAMP), n) if n else pa.array([], TIMESTAMP),
            }
        )

    def _unspill(self, lanes: list[_Lane], writer: BackgroundWriter) -> None:
        """Spilled chunks into the final files in chronological order: lane after lane, and within a lane
        last chunk first for newest-first venues (each chunk is already in time order). Memory holds one
        chunk whatever the interval's size."""
        with pa.OSFile(self._spill_path, "rb") as source:
            spilled = pa.ipc.open_file(source)
            for lane in lanes:
                for i in reversed(lane.spilled) if self._direction is not False else lane.spilled:
                    writer.write(self._complete(pa.Table.from_batches([spilled.get_batch(i)])))

    # Bad records ---------------------------------------------------------------------------------

    def _bad_record(self, pages: list[tuple[int, list[dict[str, Any]], str]], fallback: str) -> None:
        """Find the record to blame, put it in quarantine with the reason, and stop the partition."""
        found: tuple[int, int, Any, str, str, str] | None = None
        for page_no, records, uri in pages:
            for i, record in enumerate(records):
                problem = self.venue.record_problem(record)
                if problem:
                    found = (page_no, i, record, problem[0], problem[1], uri)
                    break
            if found:
                break
        if found is None:
            page_no, records, uri = pages[0]
            found = (page_no, -1, None, "?", fallback, uri)
        self._quarantine(*found)

    def _quarantine(self, page_no: int, index: int, record: Any, field_name: str, reason: str, uri: str) -> None:
        prefix = quarantine_prefix(self.venue.name, self.account.account, self.interval)
        key = f"{prefix}page-{page_no:06d}-record-{index:06d}.json"
        body = {
            "venue": self.venue.name,
            "account": self.account.account,
            "interval_start": self.interval.start.isoformat(),
            "interval_end": self.interval.end.isoformat(),
            "page": page_no,
            "index_in_page": index,
            "field": field_name,
            "reason": reason,
            "raw_uri": uri,
            "record": record,
            "quarantined_at": datetime.now(UTC).isoformat(),
        }
        quarantine_uri: str | None = None
        try:
            self.lake.put_bytes(
                key, self.redact.scrub_bytes(orjson.dumps(body, option=orjson.OPT_INDENT_2)), "application/json"
            )
            quarantine_uri = self.lake.uri(key)
        except Exception as exc:
            log.error("%s: could not write the quarantine record: %s", self.context, exc)
        raise BadRecordError(
            f"{self.context}: record {index} of page {page_no}: field '{field_name}' {reason}; "
            f"the partition is stopped and no manifest is written (record kept at {quarantine_uri})",
            field_name,
            quarantine_uri,
        )

    # Binance snapshots ---------------------------------------------------------------------------

    def _run_snapshots(self) -> None:
        venue = self.venue
        bal_parts: list[pa.Table] = []
        pos_parts: list[pa.Table] = []
        for window in venue.windows(self.interval):
            start_ms, end_ms = to_ms(window.interval.start), to_ms(window.interval.end)
            for page_no, records, uri in self._pages(window):
                inside = []
                for r in records:
                    problem = venue.record_problem(r)
                    if problem:
                        self._bad_record([(page_no, [r], uri)], problem[1])
                    if start_ms <= r["updateTime"] < end_ms:
                        inside.append(r)
                self.summary.outside_interval += len(records) - len(inside)
                try:
                    bal, pos = venue.snapshot_columns(inside)  # type: ignore[attr-defined]
                    bal_parts.append(self._snapshot_table(bal, BALANCE_SNAPSHOT_SCHEMA, uri))
                    pos_parts.append(self._snapshot_table(pos, POSITION_SNAPSHOT_SCHEMA, uri))
                except (KeyError, TypeError, ValueError, ArithmeticError, RowsError) as exc:
                    reason = f"column {exc.column}: {exc.reason}" if isinstance(exc, RowsError) else repr(exc)
                    self._bad_record_snapshot(page_no, inside, uri, reason)
            self._progress(window, sum(t.num_rows for t in bal_parts), force=True)
        for dataset, schema, parts, order in (
            ("snapshots/balances", BALANCE_SNAPSHOT_SCHEMA, bal_parts, ["snapshot_at", "snapshot_type", "asset"]),
            ("snapshots/positions", POSITION_SNAPSHOT_SCHEMA, pos_parts, ["snapshot_at", "symbol"]),
        ):
            table = pa.concat_tables(parts) if parts else schema.empty_table()
            table = table.sort_by([(c, "ascending") for c in order])
            writer = PartitionedParquetWriter(
                self.lake,
                self.uploader,
                dataset,
                schema,
                venue.name,
                self.account.account,
                self.interval,
                "snapshot_at",
                self.options.file_rows,
                self.options.batch_rows,
            )
            writer.write(table)
            writer.close()
            self.summary.rows[dataset] = writer.rows

    def _bad_record_snapshot(self, page_no: int, records: list[dict[str, Any]], uri: str, reason: str) -> None:
        """Find the snapshot that fails on its own and quarantine it."""
        for i, r in enumerate(records):
            try:
                bal, pos = self.venue.snapshot_columns([r])  # type: ignore[attr-defined]
                self._snapshot_table(bal, BALANCE_SNAPSHOT_SCHEMA, uri)
                self._snapshot_table(pos, POSITION_SNAPSHOT_SCHEMA, uri)
            except RowsError as exc:
                self._quarantine(page_no, i, r, exc.column, exc.reason, uri)
            except (KeyError, TypeError, ValueError, ArithmeticError) as exc:
                self._quarantine(page_no, i, r, str(exc) if isinstance(exc, KeyError) else "?", repr(exc), uri)
        self._quarantine(page_no, -1, None, "?", reason, uri)

    def _snapshot_table(self, cols: dict[str, list[Any]], schema: pa.Schema, uri: str) -> pa.Table:
        n = len(cols["snapshot_at"])
        arrays: dict[str, pa.Array] = {}
        for f in schema:
            if f.name in ("venue", "account"):
                arrays[f.name] = pa.array([self.venue.name if f.name == "venue" else self.account.account] * n)
            elif f.name == "raw_uri":
                arrays[f.name] = pa.array([uri] * n, pa.string())
            elif f.name == "ingested_at":
                arrays[f.name] = pa.array([self.ingested_at] * n, TIMESTAMP)
            elif f.name == "snapshot_at":
                arrays[f.name] = pa.array([v * 1000 for v in cols[f.name]], pa.int64()).cast(TIMESTAMP)
            elif f.type == pa.decimal128(38, 18):
                arrays[f.name] = decimals(cols[f.name], f.name, not f.nullable)
            else:
                arrays[f.name] = pa.array(cols[f.name], pa.string())
                if not f.nullable and arrays[f.name].null_count:
                    raise RowsError(f.name, "missing")
        return pa.table(arrays, schema=schema)


def extract(
    venue: str,
    account: AccountConfig,
    credentials: VenueCredentials,
    interval: Interval,
    lake: Lake,
    *,
    options: ExtractOptions | None = None,
) -> ExtractSummary:
    """Extract one account's records of one interval into the lake; the manifest is written last.

    Raises engine.errors.FatalExtractError subclasses when a retry cannot help (auth, ban, retention,
    bad record, refusal) and TransientExtractError when retries ran out.
    """
    try:
        job = Extraction(venue, account, credentials, interval, lake, options or ExtractOptions())
    except ExtractError:
        raise
    return job.run()
