"""Live stream, pure parts: exact 1-second and 1-minute bars for a known trade sequence (expected
values computed here with plain Python loops), landing-line parsing and quarantine, the trade
tape served identically over WS payloads and REST historicalTrades, sharding and backoff, and one
failing bad frame per quality rule of the stream tables."""

import datetime as dt
import json
import math
import random

import httpx
import polars as pl
import pytest

from cryptolake_assets.bronze.stream_parse import id_gaps, parse_lines
from cryptolake_assets.quality.catalog import BRONZE_TRADES, GOLD_BARS_1M, SILVER_BARS_1S
from cryptolake_assets.quality.factory import ERROR, RuleContext, evaluate_table
from cryptolake_assets.silver.bars import build_bars_1m, build_bars_1s, seconds_without_trades
from resources.binance import BinanceClient
from resources.binance_stream import (
    MAX_STREAMS_PER_CONNECTION,
    backoff_delays,
    combined_url,
    shard_streams,
    stream_names,
)
from resources.simulated.binance_exchange import SimulatedBinanceExchange
from resources.simulated.trade_tape import book_ticker_message, tape_for, trade_message

T0 = int(dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC).timestamp() * 1000)
DAY = dt.date(2024, 5, 1)
# (trade id, ms after T0, price, qty): dyadic numbers, so every sum is exact in binary floating point
TRADES = [
    (11, 100, 100.5, 0.25),
    (12, 400, 101.0, 0.5),
    (13, 900, 100.25, 1.0),
    (14, 1200, 100.75, 0.125),
    (15, 3000, 99.5, 2.0),
    (16, 3999, 100.0, 0.5),
    (17, 61000, 102.0, 0.25),
    (18, 61500, 101.5, 0.75),
    (19, 62250, 103.0, 0.5),
]
# (update id, receive ms after T0, bid, ask); update 5 arrives before update 4
QUOTES = [
    (1, 50, 100.0, 100.5),
    (2, 950, 100.25, 100.75),
    (3, 1500, 100.5, 101.0),
    (4, 3100, 99.25, 99.75),
    (5, 3050, 99.0, 99.5),
    (6, 62900, 102.5, 103.25),
]


def trades_frame(rows=TRADES) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": ["BTCUSDT"] * len(rows),
            "trade_id": [r[0] for r in rows],
            "price": [f"{r[2]:.8f}" for r in rows],  # bronze keeps the exchange's strings
            "qty": [f"{r[3]:.8f}" for r in rows],
            "trade_time": [T0 + r[1] for r in rows],
        }
    )


def quotes_frame(rows=QUOTES) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": ["BTCUSDT"] * len(rows),
            "update_id": [r[0] for r in rows],
            "bid": [f"{r[2]:.8f}" for r in rows],
            "ask": [f"{r[3]:.8f}" for r in rows],
            "recv_ms": [T0 + r[1] for r in rows],
        }
    )


def expected_1s() -> list[dict]:
    seconds: dict[int, list[tuple]] = {}
    for trade in sorted(TRADES, key=lambda t: (t[1], t[0])):
        seconds.setdefault((T0 + trade[1]) // 1000, []).append(trade)
    last_quote: dict[int, tuple] = {}
    for quote in sorted(QUOTES, key=lambda q: (q[1], q[0])):
        last_quote[(T0 + quote[1]) // 1000] = quote
    bars = []
    for second, trades in sorted(seconds.items()):
        volume = quote_volume = 0.0
        high, low = -math.inf, math.inf
        for _, _, price, qty in trades:
            volume += qty
            quote_volume += price * qty
            high, low = max(high, price), min(low, price)
        quote = last_quote.get(second)
        bid, ask = (quote[2], quote[3]) if quote else (None, None)
        bars.append(
            {
                "date": DAY,
                "symbol": "BTCUSDT",
                "window_start": dt.datetime.fromtimestamp(second, dt.UTC),
                "open": trades[0][2],
                "high": high,
                "low": low,
                "close": trades[-1][2],
                "volume_base": volume,
                "volume_quote": quote_volume,
                "trade_count": len(trades),
                "vwap": quote_volume / volume,
                "bid": bid,
                "ask": ask,
                "spread": None if quote is None else ask - bid,
            }
        )
    return bars


def test_one_second_bars_are_exact():
    bars = build_bars_1s(trades_frame(), quotes_frame())
    assert bars.to_dicts() == expected_1s()
    # seconds 12:00:02 and 12:00:04..12:01:00 had no trade: no bar, but counted
    assert seconds_without_trades(bars).to_dicts() == [
        {"symbol": "BTCUSDT", "seconds": 63, "seconds_without_trades": 58}
    ]


def test_one_second_bars_do_not_depend_on_row_order_and_need_no_quotes():
    shuffled = trades_frame().sample(fraction=1.0, shuffle=True, seed=3)
    assert build_bars_1s(shuffled, quotes_frame()).equals(build_bars_1s(trades_frame(), quotes_frame()))
    bare = build_bars_1s(trades_frame(), None)
    assert bare["bid"].null_count() == len(bare) and bare.drop("bid", "ask", "spread").equals(
        build_bars_1s(trades_frame(), quotes_frame()).drop("bid", "ask", "spread")
    )


def test_one_minute_bars_are_exact():
    seconds = expected_1s()
    minutes: dict[dt.datetime, list[dict]] = {}
    for bar in seconds:
        minutes.setdefault(bar["window_start"].replace(second=0), []).append(bar)
    expected = []
    for minute, bars in sorted(minutes.items()):
        squares = 0.0
        for before, after in zip(bars, bars[1:]):
            squares += math.log(after["close"] / before["close"]) ** 2
        spreads = [b["spread"] for b in bars if b["spread"] is not None]
        volume = sum(b["volume_base"] for b in bars)
        quote_volume = sum(b["volume_quote"] for b in bars)
        expected.append(
            {
                "date": DAY,
                "symbol": "BTCUSDT",
                "window_start": minute,
                "open": bars[0]["open"],
                "high": max(b["high"] for b in bars),
                "low": min(b["low"] for b in bars),
                "close": bars[-1]["close"],
                "volume_base": volume,
                "volume_quote": quote_volume,
                "trade_count": sum(b["trade_count"] for b in bars),
                "vwap": quote_volume / volume,
                "spread": sum(spreads) / len(spreads) if spreads else None,
                "realized_vol": math.sqrt(squares),
                "seconds_with_trades": len(bars),
            }
        )
    got = build_bars_1m(build_bars_1s(trades_frame(), quotes_frame())).to_dicts()
    assert [{k: v for k, v in row.items() if k != "realized_vol"} for row in got] == [
        {k: v for k, v in row.items() if k != "realized_vol"} for row in expected
    ]
    assert [row["realized_vol"] for row in got] == pytest.approx(
        [row["realized_vol"] for row in expected], rel=1e-12, abs=0
    )
    assert expected[0]["realized_vol"] > 0 and expected[1]["spread"] == 0.75  # the second minute: one quote, ask − bid


def test_empty_input_gives_empty_typed_bars():
    empty = build_bars_1s(trades_frame().clear(), quotes_frame().clear())
    assert empty.is_empty() and build_bars_1m(empty).is_empty()
    assert empty.columns == [
        "date",
        "symbol",
        "window_start",
        "open",
        "high",
        "low",
        "close",
        "volume_base",
        "volume_quote",
        "trade_count",
        "vwap",
        "bid",
        "ask",
        "spread",
    ]


# -- landing lines ------------------------------------------------------------------------------
def _line(recv: int, message: str) -> str:
    return f'{{"recv_ms":{recv},"msg":{message}}}'


def test_parse_lines_dedupes_fills_and_quarantines_with_reasons():
    tape = tape_for("BTCUSDT")
    start = tape.last_id_at(T0)
    trades = tape.trades(start, start + 5)
    lines = []
    for trade in trades[:3] + trades[2:3] + trades[5:]:  # id start+2 twice, start+3..start+4 missing from the stream
        lines.append(_line(trade.time + 5, trade_message("BTCUSDT", trade, trade.time + 1)))
        lines.append(_line(trade.time + 5, book_ticker_message("BTCUSDT", trade)))
    lines.append(json.dumps({"recv_ms": T0, "rest": trades[3].rest()}))  # filled over REST
    lines.append(json.dumps({"recv_ms": T0, "gap": {"from_id": start + 4, "to_id": start + 4, "reason": "REST down"}}))
    lines.append(json.dumps({"recv_ms": T0, "raw": '{"stream":"btcusdt@trade","data":{"e":"trade","t":'}))
    lines.append(
        _line(
            T0,
            '{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":5,"p":"-1.0","q":"1.0","T":1,"m":true,"M":true}}',
        )
    )
    lines.append('{"recv_ms":17142')  # a torn last line
    parsed = parse_lines((("f.jsonl", n, text) for n, text in enumerate(lines, start=1)), "BTCUSDT", DAY)

    assert parsed.trades["trade_id"].to_list() == [start, start + 1, start + 2, start + 3, start + 5]
    assert parsed.trades["source"].to_list() == ["ws", "ws", "ws", "rest", "ws"]
    assert parsed.trades.filter(pl.col("trade_id") == start)["price"].item() == trades[0].price
    assert parsed.duplicates == 1 and len(parsed.quotes) == 4
    assert parsed.gaps.to_dicts() == [
        {"symbol": "BTCUSDT", "from_id": start + 4, "to_id": start + 4, "reason": "REST down"}
    ]
    assert [(r["line"], r["reason"]) for r in parsed.quarantine.iter_rows(named=True)] == [
        (len(lines) - 2, "message is not JSON"),
        (len(lines) - 1, "field 'p' is not a positive number: '-1.0'"),
        (len(lines), "landing line is not a {recv_ms, ...} JSON object (torn write?)"),
    ]
    assert id_gaps(parsed.trades)["missing_ids"].to_list() == [1]


def test_a_trade_belongs_to_its_trade_day_and_a_quote_to_its_receive_day():
    tape = tape_for("ETHUSDT")
    midnight = int(dt.datetime(2024, 5, 2, tzinfo=dt.UTC).timestamp() * 1000)
    late = tape.trade(tape.last_id_at(midnight - 1))  # traded 23:59:59.9xx on May 1
    lines = [
        ("f", 1, _line(midnight + 20, trade_message("ETHUSDT", late, midnight + 10))),
        ("f", 2, _line(midnight + 20, book_ticker_message("ETHUSDT", late))),
    ]
    may1, may2 = (
        parse_lines(iter(lines), "ETHUSDT", DAY),
        parse_lines(iter(lines), "ETHUSDT", DAY + dt.timedelta(days=1)),
    )
    assert (len(may1.trades), len(may1.quotes), len(may2.trades), len(may2.quotes)) == (1, 0, 0, 1)


# -- simulated exchange: one tape over WS and REST ---------------------------------------------
def test_historical_trades_serve_the_stream_trades_in_binance_shape_at_weight_25():
    now = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    exchange = SimulatedBinanceExchange(clock=lambda: now)
    client = BinanceClient(source="simulated").with_transport(
        httpx.MockTransport(exchange.handle_request), clock=lambda: now
    )
    tape = tape_for("BTCUSDT")
    newest = tape.last_id_at(T0)
    page = client.historical_trades("BTCUSDT", newest - 1499, limit=1000)
    assert len(page) == 1000 and [t["id"] for t in page] == list(range(newest - 1499, newest - 499))
    assert set(page[0]) == {"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"}
    message = json.loads(trade_message("BTCUSDT", tape.trade(page[7]["id"]), 0))["data"]
    assert (message["t"], message["p"], message["q"], message["T"], message["m"]) == (
        page[7]["id"],
        page[7]["price"],
        page[7]["qty"],
        page[7]["time"],
        page[7]["isBuyerMaker"],
    )
    assert client.historical_trades("BTCUSDT", newest + 1) == []  # nothing after now
    assert exchange.used_weight() == 50 and client.used_weight == 50
    assert all(t["time"] <= T0 for t in client.historical_trades("BTCUSDT", newest - 10))


def test_the_tape_is_deterministic_and_consecutive():
    tape = tape_for("SOLUSDT", seed=7)
    again = tape_for("SOLUSDT", seed=7)
    ids = range(tape.last_id_at(T0) - 50, tape.last_id_at(T0))
    assert [tape.trade(i) for i in ids] == [again.trade(i) for i in ids]
    assert [tape.trade(i).time for i in ids] == sorted(tape.trade(i).time for i in ids)
    assert tape.time_of(tape.last_id_at(T0)) <= T0 < tape.time_of(tape.last_id_at(T0) + 1)
    quote = json.loads(book_ticker_message("SOLUSDT", tape.trade(ids[0])))["data"]
    assert set(quote) == {"u", "s", "b", "B", "a", "A"} and float(quote["b"]) < float(quote["a"])


# -- connections ------------------------------------------------------------------------------
def test_streams_are_sharded_at_1024_per_connection():
    symbols = [f"S{i}USDT" for i in range(1000)]
    shards = shard_streams(stream_names(symbols))
    assert [len(s) for s in shards] == [1024, 976] and MAX_STREAMS_PER_CONNECTION == 1024
    assert shards[0][:2] == ["s0usdt@trade", "s0usdt@bookTicker"]
    assert combined_url("wss://x/", ["a@trade", "a@bookTicker"]) == "wss://x/stream?streams=a@trade/a@bookTicker"
    with pytest.raises(ValueError):
        shard_streams(["a@trade"], 1025)


def test_backoff_grows_exponentially_with_jitter_up_to_the_cap():
    delays = backoff_delays(0.5, 30.0, random.Random(1))
    got = [next(delays) for _ in range(10)]
    ceilings = [min(30.0, 0.5 * 2**n) for n in range(10)]
    assert all(0.25 <= d <= c for d, c in zip(got, ceilings))
    assert len(set(got)) == 10 and max(got) > 8


# -- quality rules of the stream tables: each fails on a minimal bad frame -----------------------
def clean_bronze_trades() -> pl.DataFrame:
    tape = tape_for("BTCUSDT")
    first = tape.last_id_at(T0)
    rows = [tape.trade(i) for i in range(first, first + 20)]
    return pl.DataFrame(
        {
            "date": [DAY] * 20,
            "symbol": ["BTCUSDT"] * 20,
            "trade_id": [t.id for t in rows],
            "price": [t.price for t in rows],
            "qty": [t.qty for t in rows],
            "trade_time": [t.time for t in rows],
            "event_time": [t.time + 1 for t in rows],
            "is_buyer_maker": [t.is_buyer_maker for t in rows],
            "is_best_match": [True] * 20,
            "recv_ms": [t.time + 3 for t in rows],
            "source": ["ws"] * 20,
        }
    )


def _at(row: int, column: str, value) -> pl.Expr:
    return pl.when(pl.int_range(pl.len()) == row).then(pl.lit(value)).otherwise(pl.col(column)).alias(column)


def _dup(frame: pl.DataFrame) -> pl.DataFrame:
    return pl.concat([frame, frame.tail(1)])


STREAM_CLEAN = {
    "bronze/trades": clean_bronze_trades,
    "silver/bars_1s": lambda: build_bars_1s(trades_frame(), quotes_frame()).filter(pl.col("bid").is_not_null()),
    "gold/bars_1m": lambda: build_bars_1m(build_bars_1s(trades_frame(), quotes_frame())),
}
STREAM_TABLES = {"bronze/trades": BRONZE_TRADES, "silver/bars_1s": SILVER_BARS_1S, "gold/bars_1m": GOLD_BARS_1M}
STREAM_BAD_FRAMES = [
    ("bronze/trades", "schema", lambda f: f.with_columns(_at(1, "source", "ftp")), 1),
    (
        "bronze/trades",
        "date_is_trade_time_day",
        lambda f: f.with_columns(_at(2, "date", DAY + dt.timedelta(days=1))),
        1,
    ),
    ("bronze/trades", "unique_trade_id", _dup, 2),
    ("bronze/trades", "numbers_parse", lambda f: f.with_columns(_at(3, "qty", "0")), 1),
    ("bronze/trades", "trade_id_gaps", lambda f: f.filter(pl.int_range(pl.len()).is_in([4, 5, 6]).not_()), 1),
    ("silver/bars_1s", "schema", lambda f: f.with_columns(_at(0, "trade_count", 0)), 1),
    ("silver/bars_1s", "date_is_window_day", lambda f: f.with_columns(_at(0, "date", DAY - dt.timedelta(days=1))), 1),
    ("silver/bars_1s", "unique_symbol_window", _dup, 2),
    ("silver/bars_1s", "bar_inside_low_high", lambda f: f.with_columns(_at(0, "close", 1000.0)), 1),
    ("silver/bars_1s", "vwap_inside_low_high", lambda f: f.with_columns(_at(1, "vwap", 1.0)), 1),
    ("silver/bars_1s", "second_has_quote", lambda f: f.with_columns(_at(1, "bid", None)), 1),
    ("gold/bars_1m", "schema", lambda f: f.with_columns(_at(0, "seconds_with_trades", 61)), 1),
    ("gold/bars_1m", "unique_symbol_window", _dup, 2),
    ("gold/bars_1m", "bar_inside_low_high", lambda f: f.with_columns(_at(0, "open", 1.0)), 1),
    ("gold/bars_1m", "vwap_inside_low_high", lambda f: f.with_columns(_at(1, "vwap", 1e6)), 1),
]


def _findings(asset: str, frame: pl.DataFrame) -> dict[str, tuple]:
    context = RuleContext(partition_keys=(f"{DAY}|BTCUSDT",))
    return {f.rule.name: (f.rule.severity, f.count) for f in evaluate_table(STREAM_TABLES[asset], frame, context)}


@pytest.mark.parametrize("asset", list(STREAM_CLEAN))
def test_clean_stream_tables_pass_every_check(asset):
    assert {name: count for name, (_, count) in _findings(asset, STREAM_CLEAN[asset]()).items() if count} == {}


@pytest.mark.parametrize(
    ("asset", "check", "mutate", "expected"), STREAM_BAD_FRAMES, ids=[f"{a}:{c}" for a, c, _, _ in STREAM_BAD_FRAMES]
)
def test_minimal_bad_stream_frame_fails_only_its_check(asset, check, mutate, expected):
    result = _findings(asset, mutate(STREAM_CLEAN[asset]()))
    assert result[check][1] == expected
    assert {name: n for name, (sev, n) in result.items() if n and sev == ERROR and name != check} == {}


def test_every_stream_rule_has_a_bad_frame():
    catalog = {("/".join(t.asset), r.name) for t in STREAM_TABLES.values() for r in t.rules}
    assert {(a, c) for a, c, _, _ in STREAM_BAD_FRAMES} == catalog
