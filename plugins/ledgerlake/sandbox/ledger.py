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
import random
from bisect import bisect_left, bisect_right
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime

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
        self._cum_kind = _cumulative([k.weight for k in model.kinds])
        self._cum_asset = _cumulative(list(model.asset_weights))
        self._blocks: OrderedDict[tuple[int, int], Block] = OrderedDict()
        self._cache_size = 96
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
        blk = self._blocks.get(key)
        if blk is not None:
            self._blocks.move_to_end(key)
            return blk
        blk = self._generate(day_ord, k)
        self._blocks[key] = blk
        if len(self._blocks) > self._cache_size:
            self._blocks.popitem(last=False)
        return blk

    def _generate(self, day_ord: int, k: int) -> Block:
        m = self.model
        rng = random.Random(h64(self.seed, self.key, day_ord, k))
        last = k == self.nblocks - 1
        n = self.per_day - k * self.block_size if last else self.block_size
        blk = Block(self.day_first(day_ord) + k * self.block_size)
        day0 = day_start_us(day_ord)
        lo = day0 + k * self.span
        hi = day0 + DAY_US if last else lo + self.span

        # times: sorted uniform draws, the day's first entry exactly at midnight, some ties on purpose
        width = hi - lo
        times = sorted(lo + rng.randrange(width) for _ in range(n))
        if k == 0:
            times[0] = day0
        for i in range(1, n):
            r = rng.random()
            prev = times[i - 1]
            if r < m.dup_same_us:
                times[i] = prev
            elif r < m.dup_same_us + m.dup_same_ms:
                times[i] = prev + rng.randrange(min(1000 - prev % 1000, hi - prev))
            elif times[i] < prev:
                times[i] = prev
        blk.times = times

        nassets = len(m.assets)
        free = n - nassets
        assets = [0] * n
        kinds = [0] * n
        amounts = [0] * n
        sums = [0] * nassets
        nk = len(m.kinds)
        whale_k = h64(self.seed, self.key, "whale", day_ord) % self.nblocks
        whale_j = 1 + h64(self.seed, self.key, "whale-j", day_ord) % max(1, free - 1) if k == whale_k else -1
        credit = next(i for i, kd in enumerate(m.kinds) if kd.code == m.credit_code)
        debit = next(i for i, kd in enumerate(m.kinds) if kd.code == m.debit_code)
        unit = self.unit
        q = m.decimals
        for j in range(free):
            if j == whale_j:
                # magnitudes past 10**12 with every decimal used; the block's balancing debit takes it back out
                assets[j] = 0
                kinds[j] = credit
                amt = (10**12 + rng.randrange(9 * 10**12)) * unit + rng.randrange(unit)
                amounts[j] = amt
                sums[0] += amt
                continue
            a = _pick(self._cum_asset, rng.random())
            # every type code occurs every day, even in tiny ledgers
            ki = (j - 1 + day_ord) % nk if k == 0 and 1 <= j <= nk else _pick(self._cum_kind, rng.random())
            kd = m.kinds[ki]
            mag = 10 ** rng.uniform(kd.low, kd.high) * m.asset_factor[a]
            amt = self._units(mag)
            p = m.precisions[rng.randrange(len(m.precisions))]
            if p > 6:
                amt += rng.randrange(10 ** (p - 6)) * 10 ** (q - p)
            elif p < 6:
                amt -= amt % 10 ** (q - p)
            if amt <= 0:
                amt = 10 ** (q - min(p, q))
            sign = kd.sign or (1 if rng.random() < 0.5 else -1)
            amt *= sign
            assets[j] = a
            kinds[j] = ki
            amounts[j] = amt
            sums[a] += amt
        # balancing entries, one per asset, make the block's net change exactly its share of the day's
        for a in range(nassets):
            j = free + a
            total = self.day_change(day_ord, a)
            share = total // self.nblocks
            target = total - share * (self.nblocks - 1) if last else share
            amt = target - sums[a]
            assets[j] = a
            kinds[j] = credit if amt > 0 else debit
            amounts[j] = amt
        # running balances
        bal = [self.day_open(day_ord, a) + k * (self.day_change(day_ord, a) // self.nblocks) for a in range(nassets)]
        before = [0] * n
        for j in range(n):
            a = assets[j]
            before[j] = bal[a]
            bal[a] += amounts[j]
        blk.assets = assets
        blk.kinds = kinds
        blk.amounts = amounts
        blk.before = before
        blk.aux = [rng.getrandbits(62) for _ in range(n)]
        return blk


def _cumulative(weights: list[float]) -> list[float]:
    total = float(sum(weights))
    out, acc = [], 0.0
    for w in weights:
        acc += w / total
        out.append(acc)
    out[-1] = 1.0
    return out


def _pick(cum: list[float], r: float) -> int:
    return min(bisect_right(cum, r), len(cum) - 1)


def fmt_units(units: int, decimals: int, strip: bool = False, keep: int = 2) -> str:
    """Exact decimal text of an integer amount in units of 10**-decimals (no float anywhere)."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10**decimals)
    if decimals == 0:
        return f"{sign}{whole}"
    text = f"{frac:0{decimals}d}"
    if strip:
        text = text.rstrip("0")
        if len(text) < keep:
            text = text + "0" * (keep - len(text))
    return f"{sign}{whole}.{text}"


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
