"""Live stream benchmark: collect → landing from the simulated Binance WebSocket server over loopback,
and the 1-second bar build rate.

The server runs in its own process (``--serve``), streaming the trade tape of ``--symbols`` in real
time at ``--rate`` × the tape's rates (each trade is one trade message plus one bookTicker). The
collector (the project's ``StreamCollector``, landing to a temporary directory) runs in this
process for ``--seconds``. Reported: sustained messages/s landed, p50/p99/max lag from trade time
to the line written into its landing file (every 10th trade; the file buffer reaches the OS within
``flush_seconds`` more), peak RSS of the collector process, the time to build 1-second bars
from ``--bar-trades`` trades of one symbol-day (a BTCUSDT-sized day is about 1 M trades), and the
landing → bronze parse rate (``--parse-trades`` trades, each with its quote).

    python -m benchmarks.stream_bench --seconds 20 --rate 210 --bar-trades 1000000
"""

import argparse
import asyncio
import collections
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import polars as pl

SYMBOLS = "BTCUSDT,ETHUSDT,SOLUSDT,XRPUSDT"


def serve(rate: float) -> None:
    from resources.simulated.binance_ws_server import SimulatedBinanceStreamServer

    async def main():
        server = SimulatedBinanceStreamServer(rate_multiplier=rate)
        await server.start()
        print(json.dumps({"url": server.url}), flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def collect(url: str, symbols: list[str], seconds: float) -> dict:
    from resources.binance_stream import CollectorConfig, StreamCollector

    with tempfile.TemporaryDirectory(prefix="cryptolake-stream-bench-") as tmp:
        collector = StreamCollector(CollectorConfig(url, symbols, Path(tmp), rotate_seconds=60, lag_sample_every=10))
        collector.stats.lag_ms = collections.deque(maxlen=10_000_000)
        warmup = 2.0

        async def main():
            task = asyncio.create_task(collector.run(seconds + warmup))
            await asyncio.sleep(warmup)  # connection set-up, first allocations
            start_messages, start = collector.stats.messages, time.monotonic()
            collector.stats.lag_ms.clear()
            await task
            return collector.stats.messages - start_messages, time.monotonic() - start, list(collector.stats.lag_ms)

        messages, elapsed, lags = asyncio.run(main())
        landed_bytes = sum(p.stat().st_size for p in Path(tmp).rglob("*.jsonl"))
        lines = collector.writer.lines_written
    lag = np.array(lags or [0])
    return {
        "messages": messages,
        "seconds": round(elapsed, 2),
        "messages_per_second": round(messages / elapsed),
        "lag_ms_p50": float(np.percentile(lag, 50)),
        "lag_ms_p99": float(np.percentile(lag, 99)),
        "lag_ms_max": float(lag.max()),
        "lines_landed": lines,
        "landed_mb": round(landed_bytes / 1e6, 1),
        "disconnects": collector.stats.disconnects,
        "gaps": collector.stats.gaps,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def bar_build(trades: int) -> dict:
    from cryptolake_assets.silver.bars import build_bars_1m, build_bars_1s

    rng = np.random.default_rng(7)
    start = 1_746_057_600_000
    times = np.sort(rng.integers(start, start + 86_400_000, trades))
    prices = 95_000 * np.exp(np.cumsum(rng.normal(0, 2e-5, trades)))
    frame = pl.DataFrame(
        {
            "symbol": "BTCUSDT",
            "trade_id": np.arange(trades, dtype=np.int64),
            "price": pl.Series(np.round(prices, 2)).cast(pl.String),  # bronze holds strings
            "qty": pl.Series(np.round(rng.exponential(0.01, trades) + 1e-5, 5)).cast(pl.String),
            "trade_time": times,
        }
    )
    quote_times = np.sort(rng.integers(start, start + 86_400_000, trades))
    quotes = pl.DataFrame(
        {
            "symbol": "BTCUSDT",
            "update_id": np.arange(trades),
            "bid": frame["price"],
            "ask": frame["price"],
            "recv_ms": quote_times,
        }
    )
    began = time.perf_counter()
    bars = build_bars_1s(frame, quotes)
    one_second = time.perf_counter() - began
    began = time.perf_counter()
    minutes = build_bars_1m(bars)
    one_minute = time.perf_counter() - began
    return {
        "trades": trades,
        "bars_1s": len(bars),
        "bars_1s_seconds": round(one_second, 3),
        "trades_per_second": round(trades / one_second),
        "bars_1m": len(minutes),
        "bars_1m_seconds": round(one_minute, 3),
    }


def bronze_parse(trades: int) -> dict:
    """Landing lines → bronze frames (what bronze/trades does per partition), trades + quotes."""
    from cryptolake_assets.bronze.stream_parse import parse_landing
    from resources.landing import LandingWriter
    from resources.simulated.trade_tape import book_ticker_message, tape_for, trade_message

    tape = tape_for("BTCUSDT", rate_multiplier=50)
    day_start = 1_746_057_600_000
    first = tape.last_id_at(day_start) + 1
    with tempfile.TemporaryDirectory(prefix="cryptolake-parse-bench-") as tmp:
        writer = LandingWriter(Path(tmp), rotate_seconds=60)
        for trade in tape.trades(first, first + trades - 1):
            writer.write_message("BTCUSDT", trade.time + 5, trade_message("BTCUSDT", trade, trade.time + 1), True)
            writer.write_message("BTCUSDT", trade.time + 5, book_ticker_message("BTCUSDT", trade), True)
        writer.close_all()
        import datetime as dt

        began = time.perf_counter()
        parsed = parse_landing(Path(tmp), dt.date(2025, 5, 1), "BTCUSDT")
        seconds = time.perf_counter() - began
    return {
        "trades": len(parsed.trades),
        "lines": parsed.lines,
        "seconds": round(seconds, 2),
        "lines_per_second": round(parsed.lines / seconds),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument(
        "--rate", type=float, default=210, help="tape rate multiplier (210 × 4 symbols ≈ 20,000 messages/s)"
    )
    parser.add_argument("--symbols", default=SYMBOLS)
    parser.add_argument("--bar-trades", type=int, default=1_000_000)
    parser.add_argument(
        "--parse-trades", type=int, default=200_000, help="trades landed, then parsed as bronze/trades does"
    )
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.rate)
        return
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.stream_bench", "--serve", "--rate", str(args.rate)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = json.loads(server.stdout.readline())["url"]
        stream = collect(url, args.symbols.split(","), args.seconds)
    finally:
        server.terminate()
        server.wait(10)
    result = {
        "stream": stream,
        "bars": bar_build(args.bar_trades),
        "bronze_parse": bronze_parse(args.parse_trades),
        "rate": args.rate,
        "symbols": args.symbols,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
