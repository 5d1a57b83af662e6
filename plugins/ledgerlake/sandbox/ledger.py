"""Lazy, deterministic synthetic ledgers.

A ledger stream is one account's entries: `per_day` entries in every UTC day, addressed by a global
position `pos` (0 at 2020-01-01 00:00 UTC, counting up one per entry). Nothing is materialised: a day is cut
into blocks of about `block_size` entries, each generated from a seeded generator of its own; blocks are
made CHUNK_BLOCKS at a time, on demand, and the chunks kept in a cache bounded by bytes (ChunkCache).

Running balances stay consistent without replaying history because the net change of every block is
fixed up front: per asset, a day's net change is `drift + g(day+1) - g(day)` with `g` a bounded seeded
function, so the opening balance of any day is a closed form (the sum telescopes), and each block ends
with one "balancing" entry per asset whose amount makes the block's net change exactly its share. The
only cost of serving a page is generating the blocks it touches (vectorised, exact: amounts past int64 are
kept as integer and fraction parts).
"""

from __future__ import annotations

import hashlib
import threading
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

import numpy as np

DAY_US = 86_400_000_000
UNIX_EPOCH_ORD = date(1970, 1, 1).toordinal()
ANCHOR_ORD = date(2020, 1, 1).toordinal()  # positions and balances are anchored here, not at `now`


def h64(*parts: object) -> int:
    """A stable 64-bit hash (unlike hash(), independent of PYTHONHASHSEED)."""
    text = "|".join(str(p) for p in parts).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def day_start_us(day_ord: int) -> int:
    return (day_ord - UNIX_EPOCH_ORD) * DAY_US


def to_us(instant: datetime) -> int:
    delta = instant - datetime(1970, 1, 1, tzinfo=instant.tzinfo)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@dataclass(frozen=True)
class Kind:
    """One venue type code: how often it occurs, its sign and the log10 range of its magnitude."""

    code: str
    weight: float
    sign: int  # +1 credit, -1 debit, 0 either
    low: float = -2.0
    high: float = 3.0


@dataclass(frozen=True)
class LedgerModel:
    kinds: tuple[Kind, ...]
    assets: tuple[str, ...]
    asset_factor: tuple[float, ...]  # typical size of one unit of activity, per asset (1 for dollars)
    asset_weights: tuple[float, ...]
    decimals: int  # amounts are integers in units of 10**-decimals
    credit_code: str  # balancing credits and the occasional whale deposit
    debit_code: str  # balancing debits
    precisions: tuple[int, ...]  # decimals a generated amount carries, drawn at random
    dup_same_us: float = 0.02  # chance an entry shares its predecessor's microsecond
    dup_same_ms: float = 0.04  # chance it shares its predecessor's millisecond


CHUNK_BLOCKS = 16  # generation blocks per cached chunk: numpy's cost per call is paid per ~8k entries, not 512


class Units:
    """Exact amounts as numpy arrays in floor form: value = whole * 10**decimals + frac, 0 <= frac < 10**decimals.

    Amounts reach 10**13 with 18 decimals, past int64; the two parts each fit."""

    __slots__ = ("decimals", "frac", "whole")

    def __init__(self, whole: np.ndarray, frac: np.ndarray, decimals: int) -> None:
        self.whole = whole
        self.frac = frac
        self.decimals = decimals

    def __add__(self, other: Units) -> Units:
        unit = 10**self.decimals
        frac = self.frac + other.frac  # < 2 * 10**18: fits
        carry = frac >= unit
        return Units(self.whole + other.whole + carry, frac - carry * unit, self.decimals)

    @staticmethod
    def concat(parts: list[Units]) -> Units:
        whole = np.concatenate([p.whole for p in parts])
        return Units(whole, np.concatenate([p.frac for p in parts]), parts[0].decimals)

    def take(self, index: np.ndarray | slice) -> Units:
        return Units(self.whole[index], self.frac[index], self.decimals)

    def positive(self) -> np.ndarray:
        return (self.whole > 0) | ((self.whole == 0) & (self.frac > 0))

    def tolist(self) -> list[int]:
        unit = 10**self.decimals
        return [w * unit + f for w, f in zip(self.whole.tolist(), self.frac.tolist(), strict=True)]

    @property
    def nbytes(self) -> int:
        return int(self.whole.nbytes + self.frac.nbytes)


class Chunk:
    """Generated entries of consecutive positions [first, first + n) inside one day, as numpy arrays.

    Per-entry code (truth tables, filtered pages) reads the same values as Python lists (`times`, `kinds`, ...),
    made on first use. Serialised items are kept per venue format in `items`: the rows back to back, each
    followed by a comma, in the venue's listing order, with their offsets."""

    __slots__ = ("_lists", "amount", "asset_i", "aux_i", "before", "cache", "first", "items", "kind_i", "n", "t_us")

    def __init__(self, first: int, t_us: np.ndarray, asset_i: np.ndarray, kind_i: np.ndarray, aux_i: np.ndarray,
                 amount: Units, before: Units) -> None:  # fmt: skip
        self.first = first
        self.n = len(t_us)
        self.t_us = t_us  # microseconds since the Unix epoch
        self.asset_i = asset_i
        self.kind_i = kind_i
        self.aux_i = aux_i  # 62 random bits for venue-specific fields (ids, products, remarks)
        self.amount = amount
        self.before = before  # balance of the entry's asset before it
        self.items: dict[str, tuple[bytes, np.ndarray]] = {}
        self.cache: ChunkCache | None = None
        self._lists: tuple[list[int], ...] | None = None

    def __len__(self) -> int:
        return self.n

    @property
    def nbytes(self) -> int:
        arrays = self.t_us.nbytes + self.asset_i.nbytes + self.kind_i.nbytes + self.aux_i.nbytes
        return int(arrays) + self.amount.nbytes + self.before.nbytes

    def _py(self) -> tuple[list[int], ...]:
        if self._lists is None:
            self._lists = (
                self.t_us.tolist(),
                self.asset_i.tolist(),
                self.kind_i.tolist(),
                self.aux_i.tolist(),
                self.amount.tolist(),
                self.before.tolist(),
            )
            if self.cache is not None:
                self.cache.charge(self, 250 * self.n)  # about what six lists of Python ints take
        return self._lists

    @property
    def times(self) -> list[int]:
        return self._py()[0]

    @property
    def assets(self) -> list[int]:
        return self._py()[1]

    @property
    def kinds(self) -> list[int]:
        return self._py()[2]

    @property
    def aux(self) -> list[int]:
        return self._py()[3]

    @property
    def amounts(self) -> list[int]:
        return self._py()[4]

    @property
    def balances_before(self) -> list[int]:
        return self._py()[5]

    def set_items(self, fmt: str, items: tuple[bytes, np.ndarray]) -> None:
        self.items[fmt] = items
        if self.cache is not None:
            self.cache.charge(self, len(items[0]) + items[1].nbytes)


class ChunkCache:
    """Least recently used chunks of every stream of a sandbox, bounded by bytes (generated values, lists and
    serialised items all count)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0
        self._chunks: OrderedDict[tuple[str, int, int], Chunk] = OrderedDict()
        self._sizes: dict[int, int] = {}  # id(chunk) -> bytes charged
        self._lock = threading.Lock()

    def get(self, key: tuple[str, int, int]) -> Chunk | None:
        with self._lock:
            chunk = self._chunks.get(key)
            if chunk is not None:
                self._chunks.move_to_end(key)
            return chunk

    def put(self, key: tuple[str, int, int], chunk: Chunk) -> Chunk:
        with self._lock:
            held = self._chunks.get(key)
            if held is not None:  # another thread made it meanwhile: keep one
                return held
            self._chunks[key] = chunk
            chunk.cache = self
            self._sizes[id(chunk)] = 0
        self.charge(chunk, chunk.nbytes)
        return chunk

    def charge(self, chunk: Chunk, nbytes: int) -> None:
        with self._lock:
            if id(chunk) not in self._sizes:  # evicted meanwhile
                return
            self._sizes[id(chunk)] += nbytes
            self.bytes += nbytes
            while self.bytes > self.max_bytes and len(self._chunks) > 1:
                _, old = self._chunks.popitem(last=False)
                self.bytes -= self._sizes.pop(id(old))
                old.cache = None

    def clear(self) -> None:
        with self._lock:
            for chunk in self._chunks.values():
                chunk.cache = None
            self._chunks.clear()
            self._sizes.clear()
            self.bytes = 0


DEFAULT_CACHE_BYTES = 64 << 20  # a stream made without a sandbox's shared cache


class Stream:
    """One account's whole (infinite, lazy) ledger."""

    def __init__(self, model: LedgerModel, seed: int, key: str, per_day: int, block_size: int = 512,
                 cache: ChunkCache | None = None) -> None:  # fmt: skip
        self.model = model
        self.seed = seed
        self.key = key
        self.per_day = per_day
        self.nblocks = max(1, per_day // block_size)
        self.block_size = per_day if self.nblocks == 1 else block_size  # the last block takes the remainder
        self.chunk_size = self.block_size * CHUNK_BLOCKS
        self.span = DAY_US // self.nblocks
        self.unit = 10**model.decimals
        nassets = len(model.assets)
        if per_day < nassets + 1:
            raise ValueError(f"entries_per_day must be more than {nassets}")
        self._cum_kind_np = np.array(_cumulative([k.weight for k in model.kinds]))
        self._cum_asset_np = np.array(_cumulative(list(model.asset_weights)))
        self._low = np.array([k.low for k in model.kinds])
        self._high = np.array([k.high for k in model.kinds])
        self._sign = np.array([k.sign for k in model.kinds], dtype=np.int64)
        self._factor = np.array(model.asset_factor)
        self._prec = np.array(model.precisions, dtype=np.int64)
        q = model.decimals
        self._scale_p = np.array([10 ** (q - p) if p > 6 else 0 for p in range(max(model.precisions) + 1)])
        self._least = np.array([10 ** (q - min(p, q)) for p in range(max(model.precisions) + 1)])
        self._credit = next(i for i, kd in enumerate(model.kinds) if kd.code == model.credit_code)
        self._debit = next(i for i, kd in enumerate(model.kinds) if kd.code == model.debit_code)
        self._cache = cache or ChunkCache(DEFAULT_CACHE_BYTES)
        self._days: OrderedDict[int, tuple[list[int], list[int], int, int, int]] = OrderedDict()
        self._days_lock = threading.Lock()
        # Balance model per asset: opening balance at the anchor, daily drift, bound of g.
        self._b0 = [self._units(5e7 * f) for f in model.asset_factor]
        self._drift = [self._units(250.0 * f) for f in model.asset_factor]
        self._gmax = [max(1, self._units(2e5 * f)) for f in model.asset_factor]

    # --- amounts and balances -------------------------------------------------------------------------
    def _units(self, value: float) -> int:
        """A float quantity to integer units, through whole micro-units (exact from there on)."""
        micro = round(value * 1e6)
        q = self.model.decimals
        return micro * 10 ** (q - 6) if q >= 6 else micro // 10 ** (6 - q)

    def _g(self, day_ord: int, asset: int) -> int:
        return h64(self.seed, self.key, "g", asset, day_ord) % self._gmax[asset]

    def day_open(self, day_ord: int, asset: int) -> int:
        """Balance of `asset` at 00:00 UTC of the day: closed form, no replay."""
        return (
            self._b0[asset]
            + self._drift[asset] * (day_ord - ANCHOR_ORD)
            + self._g(day_ord, asset)
            - self._g(ANCHOR_ORD, asset)
        )

    def day_change(self, day_ord: int, asset: int) -> int:
        return self._drift[asset] + self._g(day_ord + 1, asset) - self._g(day_ord, asset)

    def _day(self, day_ord: int) -> tuple[list[int], list[int], int, int, int]:
        """(opening per asset, change per asset, whale block, whale draw, whale amount draw) of a day, memoised."""
        with self._days_lock:
            known = self._days.get(day_ord)
        if known is not None:
            return known
        nassets = len(self.model.assets)
        found = (
            [self.day_open(day_ord, a) for a in range(nassets)],
            [self.day_change(day_ord, a) for a in range(nassets)],
            h64(self.seed, self.key, "whale", day_ord) % self.nblocks,
            h64(self.seed, self.key, "whale-j", day_ord),
            h64(self.seed, self.key, "whale-amount", day_ord),
        )
        with self._days_lock:
            self._days[day_ord] = found
            if len(self._days) > 64:
                self._days.popitem(last=False)
        return found

    # --- positions ------------------------------------------------------------------------------------
    def day_first(self, day_ord: int) -> int:
        return (day_ord - ANCHOR_ORD) * self.per_day

    def locate(self, pos: int) -> tuple[int, int, int]:
        """pos -> (day ordinal, chunk index, index inside the chunk)."""
        d, i = divmod(pos, self.per_day)
        k = min(i // self.block_size, self.nblocks - 1)
        c = k // CHUNK_BLOCKS
        return ANCHOR_ORD + d, c, i - c * self.chunk_size

    def chunk_at(self, pos: int) -> tuple[Chunk, int]:
        day_ord, c, j = self.locate(pos)
        return self.chunk(day_ord, c), j

    def _chunk_of_time(self, t_us: int) -> Chunk:
        d, off = divmod(t_us, DAY_US)
        k = min(off // self.span, self.nblocks - 1)  # the block whose time span holds t_us
        return self.chunk(UNIX_EPOCH_ORD + d, k // CHUNK_BLOCKS)

    def pos_ge(self, t_us: int) -> int:
        """The first position whose time is >= t_us."""
        chunk = self._chunk_of_time(t_us)  # a day's times ascend across its blocks, so the chunk decides
        return chunk.first + int(chunk.t_us.searchsorted(t_us, side="left"))

    def pos_gt(self, t_us: int) -> int:
        """The first position whose time is > t_us (= the count of entries up to and including t_us)."""
        chunk = self._chunk_of_time(t_us)
        return chunk.first + int(chunk.t_us.searchsorted(t_us, side="right"))

    def spans(self, p_from: int, p_to: int) -> Iterator[tuple[Chunk, int, int]]:
        """(chunk, a, b): the chunk's entries a <= j < b cover p_from <= pos < p_to, ascending."""
        pos = p_from
        while pos < p_to:
            chunk, j = self.chunk_at(pos)
            stop = min(chunk.n, j + (p_to - pos))
            yield chunk, j, stop
            pos += stop - j

    def walk(self, p_from: int, p_to: int) -> Iterator[tuple[int, Chunk, int]]:
        """(pos, chunk, j) for p_from <= pos < p_to, ascending."""
        for chunk, a, b in self.spans(p_from, p_to):
            base = chunk.first
            for jj in range(a, b):
                yield base + jj, chunk, jj

    def walk_desc(self, p_top: int, p_low: int) -> Iterator[tuple[int, Chunk, int]]:
        """(pos, chunk, j) for p_top > pos >= p_low, descending."""
        pos = p_top - 1
        while pos >= p_low:
            chunk, j = self.chunk_at(pos)
            stop = max(-1, j - (pos - p_low) - 1)
            for jj in range(j, stop, -1):
                yield pos, chunk, jj
                pos -= 1

    # --- generation -----------------------------------------------------------------------------------
    def chunk(self, day_ord: int, c: int) -> Chunk:
        key = (self.key, day_ord, c)
        chunk = self._cache.get(key)
        if chunk is None:
            chunk = self._cache.put(key, self._generate(day_ord, c))
        return chunk

    def _generate(self, day_ord: int, c: int) -> Chunk:
        blocks = [self._block(day_ord, k) for k in range(c * CHUNK_BLOCKS, min((c + 1) * CHUNK_BLOCKS, self.nblocks))]
        if len(blocks) == 1:
            t, assets, kinds, aux, amount, before = blocks[0]
        else:
            t, assets, kinds, aux = (np.concatenate([b[i] for b in blocks]) for i in range(4))  # type: ignore[misc]
            amount, before = (Units.concat([b[i] for b in blocks]) for i in (4, 5))  # type: ignore[misc]
        return Chunk(self.day_first(day_ord) + c * self.chunk_size, t, assets, kinds, aux, amount, before)

    def _block(self, day_ord: int, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Units, Units]:
        """One generation block: the draws come from the block's own seeded generator, in a fixed order;
        amounts and balances are exact (integer and fraction parts, each within int64)."""
        m = self.model
        rng = np.random.default_rng(h64(self.seed, self.key, day_ord, k))
        last = k == self.nblocks - 1
        n = self.per_day - k * self.block_size if last else self.block_size
        day0 = day_start_us(day_ord)
        lo = day0 + k * self.span
        hi = day0 + DAY_US if last else lo + self.span

        # times: sorted uniform draws, the day's first entry exactly at midnight, some ties on purpose
        t = np.sort(rng.integers(lo, hi, n, dtype=np.int64))
        if k == 0:
            t[0] = day0
        r = rng.random(n)
        r[0] = 1.0
        same_us = r < m.dup_same_us
        same_ms = (r >= m.dup_same_us) & (r < m.dup_same_us + m.dup_same_ms)
        t = np.maximum.accumulate(np.where(same_us, np.iinfo(np.int64).min, t))  # copy the predecessor's time
        prev = np.concatenate((t[:1], t[:-1]))
        room = np.minimum(1000 - prev % 1000, hi - prev)
        t = np.where(same_ms, prev + (rng.random(n) * room).astype(np.int64), t)  # into the predecessor's ms
        t = np.maximum.accumulate(t)

        nassets = len(m.assets)
        free = n - nassets
        nk = len(m.kinds)
        kinds = np.searchsorted(self._cum_kind_np, rng.random(free), side="right").clip(0, nk - 1)
        if k == 0:  # every type code occurs every day, even in tiny ledgers
            cover = min(nk, free - 1)
            kinds[1 : 1 + cover] = (np.arange(cover) + day_ord) % nk
        assets = np.searchsorted(self._cum_asset_np, rng.random(free), side="right").clip(0, nassets - 1)
        low, high = self._low[kinds], self._high[kinds]
        mag = 10 ** (low + rng.random(free) * (high - low)) * self._factor[assets]
        micro = np.rint(mag * 1e6).astype(np.int64)
        prec = self._prec[rng.integers(0, len(self._prec), free)]
        coarse = prec < 6
        micro = np.where(coarse, micro - micro % (10 ** (6 - np.minimum(prec, 6))), micro)
        extra = (rng.random(free) * (10.0 ** np.maximum(prec - 6, 0))).astype(np.int64)
        signs = self._sign[kinds]
        signs = np.where(signs == 0, np.where(rng.random(free) < 0.5, 1, -1), signs)
        aux = rng.integers(0, 2**62, n, dtype=np.int64)

        # amount = micro * 10**(q-6) + extra * 10**(q-p), or the least unit of its precision when that is 0
        q = m.decimals
        unit = self.unit
        whole = micro // 1_000_000
        frac = micro % 1_000_000 * 10 ** (q - 6) + extra * self._scale_p[prec]
        frac = np.where((whole == 0) & (frac == 0), self._least[prec], frac)

        opening0, change, whale_k, whale_j, whale_big = self._day(day_ord)
        first_free = 1 + (nk if k == 0 else 0)  # not over the day's first entry or a covering type code
        if k == whale_k and free > first_free:
            # magnitudes past 10**12 with every decimal used; the block's balancing debit takes it back out
            j = first_free + whale_j % (free - first_free)
            assets[j], kinds[j], signs[j] = 0, self._credit, 1
            whole[j] = 10**12 + whale_big % (9 * 10**12)
            frac[j] = (whale_big * 7919) % unit

        # running balances per asset, exact: the fraction is summed in two parts that cannot overflow
        low_unit = 10 ** min(q, 9)
        high_unit = unit // low_unit
        parts = (signs * whole, signs * (frac // low_unit), signs * (frac % low_unit))
        b_parts = [np.empty(free, dtype=np.int64) for _ in range(3)]
        opening = [opening0[a] + k * (change[a] // self.nblocks) for a in range(nassets)]
        closing = []
        for a in range(nassets):
            o_whole, o_frac = divmod(opening[a], unit)
            o_parts = (o_whole, o_frac // low_unit, o_frac % low_unit)
            sel = np.flatnonzero(assets == a) if nassets > 1 else slice(None)
            total = opening[a]
            for part, out, o_part, scale in zip(parts, b_parts, o_parts, (unit, low_unit, 1), strict=True):
                mine = part[sel]
                run = np.cumsum(mine)
                out[sel] = run - mine + o_part
                if len(run):
                    total += int(run[-1]) * scale
            closing.append(total)
        carry = b_parts[2] // low_unit
        b_low = b_parts[2] - carry * low_unit
        b_high = b_parts[1] + carry
        carry = b_high // high_unit
        b_whole = b_parts[0] + carry
        b_frac = (b_high - carry * high_unit) * low_unit + b_low
        neg = signs < 0
        borrow = neg & (frac > 0)
        a_whole = np.where(neg, -whole - borrow, whole)
        a_frac = np.where(borrow, unit - frac, frac)

        # then one balancing entry per asset makes the block's net change exactly its share
        tail_amount, tail_before = [], []
        for a in range(nassets):
            total = change[a]
            share = total // self.nblocks
            target = total - share * (self.nblocks - 1) if last else share
            tail_amount.append(divmod(opening[a] + target - closing[a], unit))
            tail_before.append(divmod(closing[a], unit))
        tail_kinds = [self._credit if w * unit + f > 0 else self._debit for w, f in tail_amount]
        amount = Units(
            np.concatenate((a_whole, [w for w, _ in tail_amount])).astype(np.int64),
            np.concatenate((a_frac, [f for _, f in tail_amount])).astype(np.int64),
            q,
        )
        before = Units(
            np.concatenate((b_whole, [w for w, _ in tail_before])).astype(np.int64),
            np.concatenate((b_frac, [f for _, f in tail_before])).astype(np.int64),
            q,
        )
        return (
            t,
            np.concatenate((assets, np.arange(nassets))).astype(np.int8),
            np.concatenate((kinds, tail_kinds)).astype(np.int8),
            aux,
            amount,
            before,
        )


def _cumulative(weights: list[float]) -> list[float]:
    total = float(sum(weights))
    out, acc = [], 0.0
    for w in weights:
        acc += w / total
        out.append(acc)
    out[-1] = 1.0
    return out


def fmt_units(units: int, decimals: int, strip: bool = False, keep: int = 2) -> str:
    """Exact decimal text of an integer amount in units of 10**-decimals (no float anywhere)."""
    sign = ""
    if units < 0:
        sign, units = "-", -units
    digits = str(units)
    if decimals == 0:
        return sign + digits
    if len(digits) <= decimals:
        digits = "0" * (decimals + 1 - len(digits)) + digits
    frac = digits[-decimals:]
    if strip:
        frac = frac.rstrip("0")
        if len(frac) < keep:
            frac += "0" * (keep - len(frac))
    return f"{sign}{digits[:-decimals]}.{frac}"


class Visibility:
    """What one account's API shows: positions [lo, hi) minus dropped ranges.

    lo is the first entry of the sandbox's history, hi the count of entries up to the horizon (now) plus
    entries that "arrived" (a fault: the next entries in time become visible while a client pages).
    """

    def __init__(self, stream: Stream, first_day_ord: int) -> None:
        self.stream = stream
        self.lo = stream.day_first(first_day_ord)
        self.arrived = 0
        self.dropped: list[tuple[int, int]] = []  # sorted, disjoint [a, b)

    def hi(self, horizon_us: int) -> int:
        return self.stream.pos_gt(horizon_us) + self.arrived

    def drop(self, a: int, b: int) -> None:
        ranges = [*self.dropped, (a, b)]
        ranges.sort()
        merged: list[tuple[int, int]] = []
        for s, e in ranges:
            if merged and s <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], e))
            else:
                merged.append((s, e))
        self.dropped = merged

    def is_dropped(self, pos: int) -> bool:
        if not self.dropped:
            return False
        i = bisect_right(self.dropped, (pos, float("inf"))) - 1
        return i >= 0 and self.dropped[i][0] <= pos < self.dropped[i][1]

    def dropped_between(self, a: int, b: int) -> int:
        """How many dropped positions lie in [a, b)."""
        return sum(max(0, min(e, b) - max(s, a)) for s, e in self.dropped)

    def nth_newest(self, n: int, hi: int) -> int | None:
        """Position of the n-th newest shown entry below hi (0 = newest), or None past the oldest."""
        pos = hi - 1 - n
        while pos >= self.lo:
            shown = (hi - pos) - self.dropped_between(pos, hi)
            if shown == n + 1:
                return pos  # each step below only adds entries, so pos itself is shown here
            pos -= n + 1 - shown
        return None
