"""Lazy, deterministic synthetic ledgers.

A ledger stream is one account's entries: `per_day` entries in every UTC day, addressed by a global
position `pos` (0 at 2020-01-01 00:00 UTC, counting up one per entry). Nothing is materialised: a day is cut
into blocks of about `block_size` entries, and a block is generated on demand from a seeded generator.

Running balances stay consistent without replaying history because the net change of every block is
fixed up front: per asset, a day's net change is `drift + g(day+1) - g(day)` with `g` a bounded seeded
function, so the opening balance of any day is a closed form (the sum telescopes), and each block ends
with one "balancing" entry per asset whose amount makes the block's net change exactly its share. The
only cost of serving a page is generating the blocks it touches.
"""

from __future__ import annotations

import hashlib
import threading
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from itertools import accumulate

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


class Block:
    """Generated entries of one block, as parallel lists (index j = position - first)."""

    __slots__ = ("amounts", "assets", "aux", "before", "cache", "first", "kinds", "times")

    def __init__(self, first: int) -> None:
        self.first = first
        self.times: list[int] = []  # microseconds since the Unix epoch
        self.assets: list[int] = []
        self.kinds: list[int] = []
        self.amounts: list[int] = []
        self.before: list[int] = []  # balance of the entry's asset before it
        self.aux: list[int] = []  # 62 random bits for venue-specific fields (ids, products, remarks)
        self.cache: dict[str, list[bytes]] = {}  # serialised items per venue format, filled by the venues

    def __len__(self) -> int:
        return len(self.times)


class Stream:
    """One account's whole (infinite, lazy) ledger."""

    def __init__(self, model: LedgerModel, seed: int, key: str, per_day: int, block_size: int = 512) -> None:
        self.model = model
        self.seed = seed
        self.key = key
        self.per_day = per_day
        self.nblocks = max(1, per_day // block_size)
        self.block_size = per_day if self.nblocks == 1 else block_size  # the last block takes the remainder
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
        self._credit = next(i for i, kd in enumerate(model.kinds) if kd.code == model.credit_code)
        self._debit = next(i for i, kd in enumerate(model.kinds) if kd.code == model.debit_code)
        self._blocks: OrderedDict[tuple[int, int], Block] = OrderedDict()
        self._lock = threading.Lock()
        self._cache_size = 24  # about 7 MB of generated and serialised entries per account at most
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

    # --- positions ------------------------------------------------------------------------------------
    def day_first(self, day_ord: int) -> int:
        return (day_ord - ANCHOR_ORD) * self.per_day

    def locate(self, pos: int) -> tuple[int, int, int]:
        """pos -> (day ordinal, block index, index inside the block)."""
        d, i = divmod(pos, self.per_day)
        k = min(i // self.block_size, self.nblocks - 1)
        return ANCHOR_ORD + d, k, i - k * self.block_size

    def block_at(self, pos: int) -> tuple[Block, int]:
        day_ord, k, j = self.locate(pos)
        return self.block(day_ord, k), j

    def pos_ge(self, t_us: int) -> int:
        """The first position whose time is >= t_us."""
        d, off = divmod(t_us, DAY_US)
        day_ord = UNIX_EPOCH_ORD + d
        k = min(off // self.span, self.nblocks - 1)
        blk = self.block(day_ord, k)
        return blk.first + bisect_left(blk.times, t_us)

    def pos_gt(self, t_us: int) -> int:
        """The first position whose time is > t_us (= the count of entries up to and including t_us)."""
        d, off = divmod(t_us, DAY_US)
        day_ord = UNIX_EPOCH_ORD + d
        k = min(off // self.span, self.nblocks - 1)
        blk = self.block(day_ord, k)
        return blk.first + bisect_right(blk.times, t_us)

    def walk(self, p_from: int, p_to: int) -> Iterator[tuple[int, Block, int]]:
        """(pos, block, j) for p_from <= pos < p_to, ascending."""
        pos = p_from
        while pos < p_to:
            blk, j = self.block_at(pos)
            stop = min(len(blk), j + (p_to - pos))
            for jj in range(j, stop):
                yield pos, blk, jj
                pos += 1

    def walk_desc(self, p_top: int, p_low: int) -> Iterator[tuple[int, Block, int]]:
        """(pos, block, j) for p_top > pos >= p_low, descending."""
        pos = p_top - 1
        while pos >= p_low:
            blk, j = self.block_at(pos)
            stop = max(-1, j - (pos - p_low) - 1)
            for jj in range(j, stop, -1):
                yield pos, blk, jj
                pos -= 1

    # --- generation -----------------------------------------------------------------------------------
    def block(self, day_ord: int, k: int) -> Block:
        key = (day_ord, k)
        with self._lock:  # the server thread and a test's truth() may share this stream
            blk = self._blocks.get(key)
            if blk is not None:
                self._blocks.move_to_end(key)
                return blk
        blk = self._generate(day_ord, k)
        with self._lock:
            self._blocks[key] = blk
            if len(self._blocks) > self._cache_size:
                self._blocks.popitem(last=False)
        return blk

    def _generate(self, day_ord: int, k: int) -> Block:
        """One block, vectorised with numpy where the values fit in 64 bits; exact Python ints for amounts."""
        m = self.model
        rng = np.random.default_rng(h64(self.seed, self.key, day_ord, k))
        last = k == self.nblocks - 1
        n = self.per_day - k * self.block_size if last else self.block_size
        blk = Block(self.day_first(day_ord) + k * self.block_size)
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
        blk.times = t.tolist()

        nassets = len(m.assets)
        free = n - nassets
        nk = len(m.kinds)
        kinds_a = np.searchsorted(self._cum_kind_np, rng.random(free), side="right").clip(0, nk - 1)
        if k == 0:  # every type code occurs every day, even in tiny ledgers
            cover = min(nk, free - 1)
            kinds_a[1 : 1 + cover] = (np.arange(cover) + day_ord) % nk
        assets_a = np.searchsorted(self._cum_asset_np, rng.random(free), side="right").clip(0, nassets - 1)
        low, high = self._low[kinds_a], self._high[kinds_a]
        mag = 10 ** (low + rng.random(free) * (high - low)) * self._factor[assets_a]
        micro = np.rint(mag * 1e6).astype(np.int64)
        prec = self._prec[rng.integers(0, len(self._prec), free)]
        coarse = prec < 6
        micro = np.where(coarse, micro - micro % (10 ** (6 - np.minimum(prec, 6))), micro)
        extra = (rng.random(free) * (10.0 ** np.maximum(prec - 6, 0))).astype(np.int64)
        signs = self._sign[kinds_a]
        signs = np.where(signs == 0, np.where(rng.random(free) < 0.5, 1, -1), signs)
        q = m.decimals
        scale6 = 10 ** (q - 6)
        scale_p = [10 ** (q - p) if p > 6 else 0 for p in range(max(m.precisions) + 1)]
        amounts = [
            (mi * scale6 + ex * scale_p[p] or 10 ** (q - min(p, q))) * sg
            for mi, ex, p, sg in zip(micro.tolist(), extra.tolist(), prec.tolist(), signs.tolist(), strict=True)
        ]
        assets = assets_a.tolist()
        kinds = kinds_a.tolist()
        aux = rng.integers(0, 2**62, n, dtype=np.int64).tolist()

        whale_k = h64(self.seed, self.key, "whale", day_ord) % self.nblocks
        first_free = 1 + (nk if k == 0 else 0)  # not over the day's first entry or a covering type code
        if k == whale_k and free > first_free:
            # magnitudes past 10**12 with every decimal used; the block's balancing debit takes it back out
            j = first_free + h64(self.seed, self.key, "whale-j", day_ord) % (free - first_free)
            big = h64(self.seed, self.key, "whale-amount", day_ord)
            assets[j], kinds[j] = 0, self._credit
            amounts[j] = (10**12 + big % (9 * 10**12)) * self.unit + (big * 7919) % self.unit

        # running balances; then one balancing entry per asset makes the block's net change exactly its share
        opening = [
            self.day_open(day_ord, a) + k * (self.day_change(day_ord, a) // self.nblocks) for a in range(nassets)
        ]
        if nassets == 1:
            before = list(accumulate(amounts, initial=opening[0]))
            bal = [before.pop()]
        else:
            bal = list(opening)
            before = [0] * free
            for j in range(free):
                a = assets[j]
                before[j] = bal[a]
                bal[a] += amounts[j]
        for a in range(nassets):
            total = self.day_change(day_ord, a)
            share = total // self.nblocks
            target = total - share * (self.nblocks - 1) if last else share
            amt = opening[a] + target - bal[a]
            assets.append(a)
            kinds.append(self._credit if amt > 0 else self._debit)
            amounts.append(amt)
            before.append(bal[a])
            bal[a] += amt
        blk.assets = assets
        blk.kinds = kinds
        blk.amounts = amounts
        blk.before = before
        blk.aux = aux
        return blk


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
