"""The column-wise `details` builder must give exactly the text `details_json` gives record by record."""

from __future__ import annotations

import random
from typing import Any

import pytest

from ledgerlake.engine.details import details_column
from ledgerlake.venues.base import details_json

TEXTS = ["", "plain", "资金费用 BTCUSDT", 'quo"te', "back\\slash", "nl\nx", "tab\t", "\x01ctl", "\u2028", "\x7f",
         "emoji 🚀", 'a","b']  # fmt: skip
MAPPED = frozenset({"id", "amount"})


def _value(rng: random.Random) -> Any:
    return rng.choice(
        [
            lambda: rng.choice(TEXTS),
            lambda: rng.randint(-(10**15), 10**15),
            lambda: None,
            lambda: rng.choice([True, False]),
            lambda: rng.random(),
            lambda: {"z": 1, "a": [1, "x"], "m": {"q": None}},
        ]
    )()


def _batch(rng: random.Random) -> list[dict[str, Any]]:
    uniform = rng.random() < 0.5  # the usual case: one type per field
    records = []
    for _ in range(rng.randint(1, 40)):
        r = {k: _value(rng) for k in ("id", "amount", "remark", "k2", "zz")}
        if uniform:
            r["remark"], r["k2"] = rng.choice(TEXTS), rng.randint(0, 5)
        layout = rng.random()
        if layout < 0.05:
            r["extra"] = _value(rng)
        elif layout < 0.10:
            del r["zz"]
        elif layout < 0.13:
            del r["id"]
        elif layout < 0.15:
            del r["id"]
            r["new"] = 1
        records.append(r)
    return records


@pytest.mark.parametrize("seed", range(4))
def test_same_text_as_record_by_record(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(100):
        records = _batch(rng)
        want = [details_json({k: v for k, v in r.items() if k not in MAPPED}) for r in records]
        assert details_column(records, MAPPED).to_pylist() == want


def test_no_unmapped_fields_and_refusals() -> None:
    assert details_column([{"id": 1}, {"id": 2}], frozenset({"id"})).to_pylist() == ["{}", "{}"]
    with pytest.raises(TypeError):  # JSON text cannot hold it, exactly as details_json refuses it
        details_column([{"id": 1, "x": 2**70}], frozenset({"id"}))
