"""The fast path (engine.pages: pages read straight into Arrow) against the usual way (records parsed by
orjson, column lists, engine.rows): on pages of every kind, random and odd, it either refuses the batch or
gives the very batch the usual way gives. Pages the usual way refuses it must refuse too."""

from __future__ import annotations

import random
import re
from typing import Any

import orjson
import pytest

from ledgerlake.config import AccountConfig
from ledgerlake.engine.pages import ArrowPageReader, PageSkimmer, arrow_batch
from ledgerlake.engine.rows import RecentIds, RowsError, records_batch
from ledgerlake.venues import VENUE_CLASSES
from ledgerlake.venues.base import LedgerColumns, Venue, VenueCredentials

TEXTS = ["", "plain", "资金费用 BTCUSDT", 'quo\\"te', "back\\\\slash", "nl\\nx", "tab\\t", "\\u0001ctl", "\\u2028",
         "emoji 🚀", "\\u00e9t\\u00e9", 'a\\",\\"b']  # as JSON text inside quotes  # fmt: skip
DECIMALS = ["0", "-26.1483", "50632469.296062078663954439", "1e-5", "-0.000000000000000001", "12345678901234567890.1",
            "0.1234567890123456789", "1.10", "+1", ".5", "1.", "NaN", "abc", "1E+3"]  # fmt: skip
START_MS = 1_795_046_400_000
JSON_NUMBER = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?")


def _text(rng: random.Random) -> str:
    return '"' + rng.choice(TEXTS) + '"'


def _decimal(rng: random.Random, bare: bool, noisy: bool) -> str:
    d = rng.choice(DECIMALS if noisy and rng.random() < 0.05 else DECIMALS[:6])
    return d if bare and JSON_NUMBER.fullmatch(d) else f'"{d}"'


def _odd(rng: random.Random, value: str, noisy: bool) -> str:
    """Now and then a value of another kind than the field's."""
    if not noisy or rng.random() > 0.005:
        return value
    return rng.choice(["null", "1", "1.5", '"7"', "true", "{}", "[]", "123456789012345678901234567890"])


def _record(rng: random.Random, venue: str, i: int, bare: bool, noisy: bool) -> list[tuple[str, str]]:
    ms = str(START_MS + i * 7 + rng.randint(0, 6))
    if venue == "exchangehubx":
        fields = [
            ("id", str(10**12 + i)),
            ("asset", rng.choice(['"USDT"', '"BTC"'])),
            ("change_type", str(rng.randint(1, 17))),
            ("amount", _decimal(rng, bare, noisy)),
            ("balance_before", _decimal(rng, bare, noisy)),
            ("balance_after", _decimal(rng, bare, noisy)),
            ("related_id", rng.choice(["0", "null", str(rng.randint(1, 10**9))])),
            ("related_type", str(rng.randint(0, 3))),
            ("remark", rng.choice([_text(rng), "null"])),
            ("created_at", ms),
        ]
    elif venue == "sunx":
        fields = [
            ("id", str(2 * 10**9 + i)),
            ("amount", _decimal(rng, True, noisy)),
            ("asset", '"USDT"'),
            ("query_id", str(3 * 10**9 + i)),
            ("type", str(rng.choice([5, 29, 30, 99]))),
            ("ts", ms),
            ("contract_code", rng.choice(['"BTC-USDT"', '""', "null"])),
            ("margin_account", _text(rng)),
            ("face_margin_account", '""'),
            ("trade_partition", '"USDT"'),
        ]
    elif venue == "pacifica":
        again = noisy and rng.random() < 0.02  # a row repeated (offsets shifting while paging): same fields
        fields = [
            ("amount", _decimal(rng, bare, noisy) if not again else '"1.5"'),
            ("balance", _decimal(rng, bare, noisy) if not again else '"2.5"'),
            ("pending_balance", rng.choice(['"0.000000"', "null", '"1.25"']) if not again else "null"),
            ("event_type", rng.choice(['"trade"', '"funding"', '"deposit"', '"new_kind"']) if not again else '"trade"'),
            ("created_at", ms if not again else str(START_MS)),
        ]
    else:
        kind = rng.choice(["match", "fee", "transfer", "conversion", "rebate", "odd"])
        details = {
            "match": '{"order_id":"o-1","product_id":"BTC-USD","trade_id":"7"}',
            "fee": '{"order_id":"o-2","trade_id":"","product_id":""}',
            "transfer": '{"transfer_id":"t-1","transfer_type":"deposit"}',
            "conversion": '{"conversion_id":"c-1"}',
            "rebate": '{"from":"a","to":"b","profile_transfer_id":"p-1"}',
            "odd": "{}"
            if not noisy
            else rng.choice(
                [
                    "null",
                    "{}",
                    '{"trade_id":null}',
                    '{"trade_id":' + _text(rng) + "}",
                    '{"new_key":"x"}',
                    '{"trade_id":5}',
                ]
            ),
        }[kind]
        fields = [
            ("id", f'"{10**10 + i}"'),
            ("amount", _decimal(rng, bare, noisy)),
            ("balance", _decimal(rng, bare, noisy)),
            ("created_at", f'"2026-11-19T00:{i // 60 % 60:02d}:{i % 60:02d}.{rng.randint(0, 999999):06d}Z"'),
            ("type", f'"{kind}"'),
            ("details", details),
        ]
    fields = [(k, _odd(rng, v, noisy)) for k, v in fields]
    roll = rng.random() if noisy else 1.0
    if roll < 0.005:
        fields.pop(rng.randrange(len(fields)))  # a field missing
    elif roll < 0.01:
        fields.append(("extra", _text(rng)))  # a field the layout does not know
    elif roll < 0.015:
        fields.append(fields[0])  # a key twice
    return fields


def _body(rng: random.Random, venue: str, records: list[str]) -> bytes:
    sep = ",\n  " if rng.random() < 0.1 else ","  # now and then a pretty-printed page
    items = "[" + sep.join(records) + "]"
    if venue == "exchangehubx":
        return (
            '{"code":0,"message":"success","data":{"has_more":true,"next_cursor":"9","items":' + items + "}}"
        ).encode()
    if venue == "pacifica":
        return ('{"success":true,"data":' + items + "}").encode()
    if venue == "sunx":
        return ('{"code":200,"msg":"ok","data":' + items + ',"ts":1}').encode()
    return items.encode()


def _pages(rng: random.Random, venue: str) -> list[bytes]:
    bare, noisy = rng.random() < 0.2, rng.random() < 0.5  # half the cases: pages as usual (types as declared)
    pages, i = [], 0
    for _ in range(rng.randint(1, 4)):
        texts = []
        for _ in range(rng.randint(1, 30)):
            fields = _record(rng, venue, i, bare, noisy)
            i += 1
            texts.append("{" + ",".join(f'"{k}":{v}' for k, v in fields) + "}")
        if noisy and rng.random() < 0.01:
            texts.append("null")  # a record that is not an object
        pages.append(_body(rng, venue, texts))
    return pages


class _Page:
    def __init__(self, body: bytes, payload: Any, records: list[Any], uri: str, skimmed: bool = False) -> None:
        self.body, self.payload, self.records, self.uri, self.skimmed = body, payload, records, uri, skimmed


def _envelope(payload: Any, path: tuple[str, ...]) -> Any:
    """The payload with its list of records left out (a copy along the path)."""
    if not path or not isinstance(payload, dict):
        return None
    return {k: (None if len(path) == 1 else _envelope(v, path[1:])) if k == path[0] else v for k, v in payload.items()}


def _skimmed_page(venue: Venue, skimmer: PageSkimmer, page: _Page) -> _Page:
    """The page as the fetcher skims it, checked against its full parse; the full parse if it is not skimmed."""
    assert venue.arrow_layout is not None
    light = skimmer.skim(page.body)
    if light is None:
        return page
    stand_ins, width = venue.records(light), len(venue.arrow_layout.fields)
    # Skimmed only if every record is an object of the layout's width; the envelope is the full parse's.
    assert all(isinstance(r, dict) and len(r) == width for r in page.records), page.body[:300]
    assert _envelope(light, venue.arrow_layout.records_path) == _envelope(page.payload, venue.arrow_layout.records_path)
    assert stand_ins == [{}] * len(page.records)
    return _Page(page.body, light, stand_ins, page.uri, skimmed=True)


def _venue(name: str) -> Venue:
    creds = VenueCredentials("https://venue.test", "key-123456", "c2VjcmV0LWtleS1mb3ItdGVzdHM=", "pass-phrase")
    return VENUE_CLASSES[name](AccountConfig(name, "acct-1", f"ledgerlake_{name}", {"currency": "USD"}), creds)


def _usual(venue: Venue, pages: list[_Page], recent: RecentIds | None = None) -> Any:
    """The usual way's batch, or the error it stops with (repeated rows dropped, as the engine does)."""
    cols, uris = LedgerColumns(), []
    try:
        for p in pages:
            records = venue.exact_records(p.body, p.payload, p.records)
            page = LedgerColumns()
            venue.append(records, page)
            keep = [recent is None or not recent.seen(i) for i in page.entry_id]
            for name in LedgerColumns.__dataclass_fields__:
                getattr(cols, name).extend(v for v, k in zip(getattr(page, name), keep, strict=True) if k)
            uris += [p.uri] * sum(keep)
        return records_batch(venue, cols, uris, 0, 2**62)
    except (RowsError, KeyError, TypeError, ValueError, AttributeError) as exc:
        return exc


@pytest.mark.parametrize("name", ["exchangehubx", "sunx", "coinbase", "pacifica"])
def test_the_fast_path_gives_the_usual_batch_or_refuses(name: str) -> None:
    rng = random.Random(f"pages-{name}")
    venue = _venue(name)
    venue.defer_exact_decimals = True  # as the engine sets it when it reads pages into Arrow
    assert venue.arrow_layout is not None
    reader = ArrowPageReader(venue.arrow_layout)
    skimmer = PageSkimmer(venue) if PageSkimmer.takes(venue) else None
    fast = refused = skimmed = 0
    for case in range(300):
        bodies = _pages(rng, name)
        pages = []
        for n, body in enumerate(bodies):
            payload = venue.parse(body)
            pages.append(_Page(body, payload, venue.records(payload), f"s3://lake/raw/page-{case}-{n}.json.gz"))
        dedup = venue.dedup_by_entry_id
        usual = _usual(venue, pages, RecentIds(10_000) if dedup else None)
        recent = RecentIds(10_000) if dedup else None
        batch = arrow_batch(venue, reader, pages, 0, 2**62, recent=recent)
        if skimmer is not None:  # the same pages as the fetcher skims them: the same batch, or refused alike
            light = [_skimmed_page(venue, skimmer, p) for p in pages]
            skimmed += sum(p.skimmed for p in light)
            again = arrow_batch(venue, reader, light, 0, 2**62, recent=RecentIds(10_000) if dedup else None)
            assert (again is None) == (batch is None), f"case {case}: skimming changed whether the batch fits"
            assert again is None or (batch is not None and again.table.equals(batch.table)), f"case {case}"
        if batch is None:
            refused += 1
            continue
        fast += 1
        assert not isinstance(usual, Exception), f"case {case}: the fast path took what the usual way refuses: {usual}"
        assert batch.table.equals(usual.table), (
            f"case {case}: {batch.table.to_pylist()[:3]} != {usual.table.to_pylist()[:3]}"
        )
        assert batch.unknown_codes == usual.unknown_codes and batch.outside == usual.outside
        assert (batch.occurred_us == usual.occurred_us).all()
        assert (batch.tie is None) == (usual.tie is None) and (batch.tie is None or (batch.tie == usual.tie).all())
    # Both ways are exercised: most cases fit the layout, and the odd ones are refused; most pages are skimmed.
    assert fast > 100 and refused > 20, (fast, refused)
    assert skimmer is None or skimmed > 300, skimmed


def test_bare_decimals_are_read_exactly_by_both_ways() -> None:
    venue = _venue("sunx")
    venue.defer_exact_decimals = True
    body = (
        b'{"code":200,"msg":"ok","ts":1,"data":[{"id":1,"amount":0.300000000000000044,"asset":"USDT",'
        b'"query_id":2,"type":5,"ts":1795046400001,"contract_code":"","margin_account":"USDT",'
        b'"face_margin_account":"","trade_partition":"USDT"}]}'
    )
    payload = venue.parse(body)
    assert isinstance(venue.records(payload)[0]["amount"], float)  # deferred: orjson's float until needed
    page = _Page(body, payload, venue.records(payload), "s3://lake/raw/p.json.gz")
    assert venue.arrow_layout is not None
    batch = arrow_batch(venue, ArrowPageReader(venue.arrow_layout), [page], 0, 2**62)
    usual = _usual(venue, [page])
    assert batch is not None and not isinstance(usual, Exception)
    assert str(batch.table.column("amount")[0].as_py()) == "0.300000000000000044"  # 18 places, exact
    assert batch.table.equals(usual.table)
    assert orjson.loads(batch.table.column("details")[0].as_py()) == {
        "face_margin_account": "", "id": 1, "margin_account": "USDT", "trade_partition": "USDT"
    }  # fmt: skip
