"""Vectorised JSON text for many ledger entries at once (numpy), exact to the byte.

Per-entry Python formatting cost ~5 us an entry, more than the whole pipeline spends on it. Here a batch of
items is laid out as a byte matrix, one row per item: every piece of text (constant, integer, exact decimal,
string from a table) takes a fixed band of columns and a keep mask says which of its bytes are real (leading
zeros, stripped trailing zeros and short table strings are masked out). Packing keeps the masked-in bytes row
by row, so the items come out back to back with their offsets.
"""

from __future__ import annotations

import numpy as np

_DIGITS4 = np.array([list(f"{i:04d}".encode()) for i in range(10_000)], dtype=np.uint8)  # 0000..9999 as text
_POW10 = np.array([10**i for i in range(19)], dtype=np.int64)


def ndigits(x: np.ndarray) -> np.ndarray:
    """Decimal digits of non-negative int64 values (1 for 0)."""
    return np.maximum(np.searchsorted(_POW10, x, side="right"), 1)


def digit_matrix(x: np.ndarray, width: int) -> np.ndarray:
    """The last `width` decimal digits of non-negative int64 values, zero-padded, as an (n, width) byte matrix."""
    groups = -(-width // 4)
    cols = []
    rest = x
    for _ in range(groups):
        cols.append(np.take(_DIGITS4, rest % 10_000, axis=0))
        rest = rest // 10_000
    cols.reverse()
    out = np.concatenate(cols, axis=1) if groups > 1 else cols[0]
    return out[:, groups * 4 - width :]


class Rows:
    """n byte strings built column band by column band, then packed (see the module docstring)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.parts: list[np.ndarray] = []
        self.masks: list[np.ndarray | None] = []  # None: every byte of the band is kept
        self._const = b""

    def _flush(self) -> None:
        if self._const:
            self.parts.append(np.broadcast_to(np.frombuffer(self._const, np.uint8), (self.n, len(self._const))))
            self.masks.append(None)
            self._const = b""

    def _band(self, part: np.ndarray, mask: np.ndarray | None) -> None:
        self._flush()
        self.parts.append(part)
        self.masks.append(mask)

    def const(self, text: bytes) -> Rows:
        self._const += text
        return self

    def band(self, matrix: np.ndarray, mask: np.ndarray | None = None) -> Rows:
        """Bytes of a fixed width per row (mask: the ones kept; None: all)."""
        self._band(matrix, mask)
        return self

    def digits(self, x: np.ndarray, width: int) -> Rows:
        """Non-negative int64 values zero-padded to `width` digits."""
        self._band(digit_matrix(x, width), None)
        return self

    def integer(self, x: np.ndarray) -> Rows:
        """Non-negative int64 values in decimal."""
        nd = ndigits(x)
        width = int(nd.max()) if self.n else 1
        self._band(digit_matrix(x, width), np.arange(width) >= (width - nd)[:, None])
        return self

    def signed(self, x: np.ndarray) -> Rows:
        neg = x < 0
        self.choice((b"", b"-"), neg.astype(np.intp))
        return self.integer(np.abs(x))

    def units(self, whole: np.ndarray, frac: np.ndarray, decimals: int, strip: bool = False, keep: int = 2) -> Rows:
        """Exact decimal text of whole + frac / 10**decimals (0 <= frac < 10**decimals), as ledger.fmt_units."""
        neg = whole < 0  # floor form: the value is negative exactly when its whole part is
        borrow = neg & (frac > 0)
        whole = np.where(neg, -whole - borrow, whole)
        frac = np.where(borrow, 10**decimals - frac, frac)
        if neg.any():
            self.choice((b"", b"-"), neg.astype(np.intp))
        self.integer(whole)
        self.const(b".")
        digits = digit_matrix(frac, decimals)
        mask = None
        if strip:
            zeros = np.cumprod(digits[:, ::-1] == ord("0"), axis=1).sum(axis=1)  # trailing zeros
            shown = np.maximum(decimals - zeros, keep)
            mask = np.arange(decimals) < shown[:, None]
        self._band(digits, mask)
        return self

    def choice(self, table: tuple[bytes, ...] | list[bytes], index: np.ndarray) -> Rows:
        """table[index] for each row."""
        width = max(len(t) for t in table)
        if width == 0:
            return self
        text = np.zeros((len(table), width), dtype=np.uint8)
        keep = np.zeros((len(table), width), dtype=bool)
        for i, t in enumerate(table):
            text[i, : len(t)] = np.frombuffer(t, np.uint8)
            keep[i, : len(t)] = True
        if all(len(t) == width for t in table):
            self._band(np.take(text, index, axis=0), None)
        else:
            self._band(np.take(text, index, axis=0), np.take(keep, index, axis=0))
        return self

    def matrix(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The rows unpacked: (bytes, mask of the ones kept, or None: all)."""
        self._flush()
        matrix = np.concatenate(self.parts, axis=1)
        if all(m is None for m in self.masks):
            return matrix, None
        n = self.n
        keep = np.concatenate(
            [
                np.ones((n, p.shape[1]), dtype=bool) if m is None else np.broadcast_to(m, p.shape)
                for p, m in zip(self.parts, self.masks, strict=True)
            ],
            axis=1,
        )
        return matrix, keep

    def pack(self) -> tuple[bytes, np.ndarray]:
        """(the rows back to back, offsets of n + 1 row starts)."""
        n = self.n
        matrix, keep = self.matrix()
        if keep is None:
            return matrix.tobytes(), np.arange(n + 1, dtype=np.int64) * matrix.shape[1]
        offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(keep.view(np.uint8).sum(axis=1, dtype=np.int64), out=offsets[1:])
        return np.compress(keep.ravel(), matrix.ravel()).tobytes(), offsets
