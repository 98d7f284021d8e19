"""The collector against the simulated Binance WebSocket server on 127.0.0.1: a dropped connection is
reconnected and its gap filled from REST so the bars equal the uninterrupted tape; an unreachable
REST records the gap with its id range; a malformed message is quarantined and collection goes on;
planned rotation and sharding; SIGKILL of a collector process loses no closed file and SIGTERM
closes the open one."""

import asyncio
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from cryptolake_assets.bronze.stream_parse import id_gaps, parse_lines
from cryptolake_assets.silver.bars import build_bars_1s
from resources.binance import BinanceClient
from resources.binance_stream import CollectorConfig, StreamCollector
from resources.landing import closed_files, read_lines, recover_parts
from resources.simulated.binance_exchange import SimulatedBinanceExchange
from resources.simulated.binance_ws_server import Faults, SimulatedBinanceStreamServer
from resources.simulated.trade_tape import tape_for

PROJECT = Path(__file__).resolve().parents[1]
RATE = 5  # tape rate multiplier: BTCUSDT 100 trades/s, ETHUSDT 60/s
SYMBOLS = ["BTCUSDT", "ETHUSDT"]


def rest_client(multiplier: float = RATE) -> BinanceClient:
    exchange = SimulatedBinanceExchange(trade_rate_multiplier=multiplier)
    return BinanceClient(source="simulated").with_transport(httpx.MockTransport(exchange.handle_request))


def collect(
    root: Path, faults: Faults | None = None, seconds: float = 2.0, fetch="rest", **config
) -> tuple[StreamCollector, SimulatedBinanceStreamServer]:
    async def main():
        server = SimulatedBinanceStreamServer(rate_multiplier=RATE, faults=faults)
        url = await server.start()
        client = rest_client()
        rest = (lambda s, f, n: client.historical_trades(s, f, n)) if fetch == "rest" else fetch
        settings = {"rotate_seconds": 1, "backoff_initial": 0.3, **config}
        collector = StreamCollector(CollectorConfig(url, SYMBOLS, root, **settings), rest_fetch=rest)
        try:
            await collector.run(seconds)
        finally:
            await server.stop()
        return collector, server

    return asyncio.run(main())


def landed(root: Path, symbol: str):
    """Everything landed for a symbol, parsed per receive day of its files (all days of the run)."""
    days = sorted({f.day for f in closed_files(root, symbol)})

    def lines():
        for f in closed_files(root, symbol):
            for number, text in read_lines(f.path):
                yield f.path.name, number, text

    parsed = [parse_lines(lines(), symbol, day) for day in days]
    return (
        pl.concat([p.trades for p in parsed]).sort("trade_id"),
        pl.concat([p.quarantine for p in parsed]),
        pl.concat([p.gaps for p in parsed]),
    )


def tape_frame(symbol: str, first: int, last: int) -> pl.DataFrame:
    trades = tape_for(symbol, rate_multiplier=RATE).trades(first, last)
    return pl.DataFrame(
        {
            "symbol": [symbol] * len(trades),
            "trade_id": [t.id for t in trades],
            "price": [t.price for t in trades],
            "qty": [t.qty for t in trades],
            "trade_time": [t.time for t in trades],
        }
    )


def test_a_dropped_connection_reconnects_and_rest_fills_the_gap(tmp_path):
    collector, server = collect(tmp_path, Faults(drop_after={1: 80}))

    assert server.connections >= 2 and collector.stats.disconnects >= 1
    assert (
        collector.stats.gaps >= 1 and collector.stats.gap_trades_filled > 0 and collector.stats.gap_trades_unfilled == 0
    )
    for symbol in SYMBOLS:
        trades, quarantine, gaps = landed(tmp_path, symbol)
        first, last = trades["trade_id"].min(), trades["trade_id"].max()
        assert trades["trade_id"].to_list() == list(range(first, last + 1))  # every id once
        assert (trades["source"] == "rest").sum() > 0 and quarantine.is_empty() and gaps.is_empty()
        columns = ["symbol", "trade_id", "price", "qty", "trade_time"]
        assert_frame_equal(
            build_bars_1s(trades.select(columns)), build_bars_1s(tape_frame(symbol, first, last)), check_exact=True
        )
    assert not list(tmp_path.rglob("*.part"))  # every file closed on shutdown


def assert_gaps_are_the_missing_ids(root: Path, symbol: str) -> pl.DataFrame:
    """The recorded gap ranges of ``symbol`` are exactly the ids missing between the trades that
    landed (every missing id in a range, nothing else); returns the gaps."""
    trades, _, gaps = landed(root, symbol)
    jumps = id_gaps(trades)
    assert sorted(zip(gaps["from_id"], gaps["to_id"])) == sorted(
        zip((jumps["trade_id"] - jumps["missing_ids"]).to_list(), (jumps["trade_id"] - 1).to_list())
    )
    return gaps


def test_an_unreachable_rest_records_the_gap_with_its_id_range(tmp_path):
    def down(symbol, from_id, limit):
        raise OSError("connection refused")

    collector, _ = collect(tmp_path, Faults(drop_after={1: 80}), fetch=down)

    assert collector.stats.gap_trades_filled == 0 and collector.stats.gap_trades_unfilled > 0
    recorded = 0
    for symbol in SYMBOLS:
        gaps = assert_gaps_are_the_missing_ids(tmp_path, symbol)
        assert all("connection refused" in reason for reason in gaps["reason"])
        recorded += len(gaps)
    assert recorded >= 1


def test_a_malformed_message_is_quarantined_and_collection_goes_on(tmp_path):
    collector, server = collect(tmp_path, Faults(malformed_after={1: 20}))

    assert len(server.malformed_sent) == 2 and collector.stats.malformed == 1  # one is not JSON at all
    symbol = json.loads(server.malformed_sent[1])["data"]["s"]
    trades, quarantine, _ = landed(tmp_path, symbol)
    assert sorted(quarantine["reason"].to_list()) == [
        "field 'p' is not a positive number: '-1.00000000'",
        "message is not JSON",
    ]
    assert len(trades) > 30 and trades["trade_id"].to_list() == list(
        range(trades["trade_id"].min(), trades["trade_id"].max() + 1)
    )
    assert collector.stats.disconnects == 0


def test_connections_rotate_before_their_age_limit_and_streams_shard(tmp_path):
    collector, server = collect(tmp_path, seconds=2.5, max_connection_age=0.7, streams_per_connection=2)

    assert collector.stats.rotations >= 2 and collector.stats.disconnects == 0
    assert server.connections == collector.stats.connects >= 4  # two shards (one per symbol), each rotated
    for symbol in SYMBOLS:
        trades, _, gaps = landed(tmp_path, symbol)
        assert trades["trade_id"].to_list() == list(range(trades["trade_id"].min(), trades["trade_id"].max() + 1))


def test_the_server_enforces_1024_streams_and_5_messages_per_second():
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    async def reply(ws) -> dict:
        """The next reply to a request; the subscribed stream's trades may arrive before it (a busy
        machine lets the server send a trade between a request and its answer, as Binance may)."""
        while "stream" in (message := json.loads(await ws.recv())):
            pass
        return message

    async def main():
        async with SimulatedBinanceStreamServer() as server:
            async with connect(f"{server.url}/stream?streams=btcusdt@trade", proxy=None) as ws:
                await ws.send(
                    json.dumps({"method": "SUBSCRIBE", "params": [f"s{i}usdt@trade" for i in range(1024)], "id": 1})
                )
                refused = await reply(ws)
                await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 2}))
                listed = await reply(ws)
                for n in range(4):  # six messages within a second: over the limit
                    await ws.send(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 3 + n}))
                with pytest.raises(ConnectionClosed) as closed:
                    while True:
                        await ws.recv()
            return refused, listed, closed.value.rcvd.code

    refused, listed, code = asyncio.run(main())
    assert refused == {"error": {"code": 2, "msg": "too many streams"}, "id": 1}
    assert listed == {"result": ["btcusdt@trade"], "id": 2} and code == 1008


def test_streams_beyond_the_url_are_subscribed_at_4_messages_per_second(tmp_path):
    async def main():
        async with SimulatedBinanceStreamServer(rate_multiplier=RATE) as server:
            config = CollectorConfig(
                server.url, SYMBOLS, tmp_path, rotate_seconds=1, max_url_streams=1, subscribe_batch=1
            )
            collector = StreamCollector(config)
            await collector.run(2.0)
            return collector

    collector = asyncio.run(main())
    assert collector.stats.subscribe_messages == 3 and collector.stats.disconnects == 0  # not dropped for flooding
    assert collector.stats.trades > 0 and collector.stats.quotes > 0 and collector.stats.malformed == 0
    assert {f.symbol for f in closed_files(tmp_path)} == set(SYMBOLS)


def _collector_process(tmp_path: Path, duration: int) -> subprocess.Popen:
    env = {
        **os.environ,
        "CRYPTOLAKE_SOURCE": "simulated",
        "CRYPTOLAKE_LANDING": str(tmp_path / "landing"),
        "CRYPTOLAKE_LANDING_ROTATE_SECONDS": "1",
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "CRYPTOLAKE_DUCKDB": str(tmp_path / "lake.duckdb"),
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cryptolake_assets.cli",
            "collect",
            "--symbols",
            "BTCUSDT,ETHUSDT",
            "--duration",
            str(duration),
        ],
        cwd=PROJECT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _wait_for_closed_files(root: Path, count: int, process: subprocess.Popen) -> list[Path]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        found = sorted(root.rglob("*.jsonl")) if root.exists() else []
        if len(found) >= count:
            return found
        assert process.poll() is None, process.stdout.read().decode()
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} closed files after 60 s")


def test_sigkill_of_the_collector_loses_no_closed_file(tmp_path):
    root = tmp_path / "landing"
    process = _collector_process(tmp_path, 60)
    try:
        closed = _wait_for_closed_files(root, 4, process)
        before = {path: hashlib.sha256(path.read_bytes()).hexdigest() for path in closed}
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        process.stdout.close()

    for path, digest in before.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest  # closed files never change
        lines = path.read_bytes().split(b"\n")
        assert lines[-1] == b"" and all(json.loads(line)["recv_ms"] > 0 for line in lines[:-1])
    parts = list(root.rglob("*.part"))
    recovered = recover_parts(root)
    assert len(recovered) <= len(parts) and not list(root.rglob("*.part"))
    for path in recovered:  # the open files' flushed lines, cut at the last whole line
        assert all(json.loads(line)["recv_ms"] > 0 for line in path.read_text().splitlines())


def test_sigterm_closes_the_open_file_and_exits_cleanly(tmp_path):
    root = tmp_path / "landing"
    process = _collector_process(tmp_path, 60)
    try:
        _wait_for_closed_files(root, 2, process)
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=30)[0].decode()
    assert process.returncode == 0, output
    assert "collected: messages=" in output
    assert not list(root.rglob("*.part"))
    for path in root.rglob("*.jsonl"):
        assert all(json.loads(line)["recv_ms"] > 0 for line in path.read_text().splitlines())


def test_a_restarted_collector_fills_what_it_missed_while_it_was_down(tmp_path):
    first, _ = collect(tmp_path, seconds=1.5)
    time.sleep(0.5)  # down: trades go by
    second, _ = collect(tmp_path, seconds=1.5)

    assert first.stats.gaps == 0 and second.stats.gaps >= len(SYMBOLS) and second.stats.gap_trades_filled > 0
    for symbol in SYMBOLS:
        trades, _, gaps = landed(tmp_path, symbol)
        assert (
            trades["trade_id"].to_list() == list(range(trades["trade_id"].min(), trades["trade_id"].max() + 1))
            and gaps.is_empty()
        )


def test_a_gap_beyond_max_fill_ids_is_recorded_not_fetched(tmp_path):
    calls = []

    def fetch(symbol, from_id, limit):
        calls.append(symbol)
        return []

    collector, _ = collect(tmp_path, Faults(drop_after={1: 80}), fetch=fetch, max_fill_ids=0)
    assert calls == [] and collector.stats.gap_trades_unfilled > 0
    _, _, gaps = landed(tmp_path, "BTCUSDT")
    assert all("exceeds max_fill_ids=0" in reason for reason in gaps["reason"]) and len(gaps) >= 1


def test_pings_are_answered_and_a_server_side_age_cut_is_reconnected_and_filled(tmp_path):
    async def main():
        server = SimulatedBinanceStreamServer(
            rate_multiplier=RATE, ping_interval=0.1, faults=Faults(max_age_seconds=0.8)
        )
        url = await server.start()
        client = rest_client()
        collector = StreamCollector(
            CollectorConfig(url, SYMBOLS, tmp_path, rotate_seconds=1, backoff_initial=0.3),
            rest_fetch=lambda s, f, n: client.historical_trades(s, f, n),
        )
        try:
            await collector.run(2.5)
        finally:
            await server.stop()
        return collector, server

    collector, server = asyncio.run(main())
    # pings every 0.1 s with a 0.1 s timeout: only a client answering them stays connected until the age cut
    assert server.connections >= 2 and collector.stats.disconnects >= 1
    assert collector.stats.gap_trades_unfilled == 0
    for symbol in SYMBOLS:
        trades, _, gaps = landed(tmp_path, symbol)
        assert (
            trades["trade_id"].to_list() == list(range(trades["trade_id"].min(), trades["trade_id"].max() + 1))
            and gaps.is_empty()
        )


def test_a_bad_url_fails_the_collector_instead_of_retrying_for_ever(tmp_path):
    from websockets.exceptions import InvalidURI

    collector = StreamCollector(CollectorConfig("http://127.0.0.1:1", SYMBOLS, tmp_path))
    with pytest.raises(InvalidURI):
        asyncio.run(collector.run(30))


def test_files_rotated_out_just_before_shutdown_are_closed_even_if_their_worker_had_not_started(tmp_path):
    """Housekeeping hands a finished window's files to a worker thread to fsync and rename. On a loaded
    machine that thread may not have started when run() ends and cancels housekeeping; cancelling
    must not cancel the queued job with it, or the window's lines stay in a .part file no reader sees."""
    from concurrent.futures import ThreadPoolExecutor

    async def main():
        async with SimulatedBinanceStreamServer(rate_multiplier=RATE, faults=Faults(drop_after={1: 20})) as server:
            loop = asyncio.get_running_loop()
            loop.set_default_executor(ThreadPoolExecutor(max_workers=1))
            busy = threading.Event()
            blocker = loop.run_in_executor(None, busy.wait, 30)  # the only worker thread is not free
            # the connection drops at once and the backoff outlasts the run: quiet past a window's end,
            # so housekeeping (not the next message) takes that window's files out of rotation
            config = CollectorConfig(server.url, SYMBOLS, tmp_path, rotate_seconds=1, backoff_initial=4.0)
            collector = StreamCollector(config, rng=random.Random(0))
            housekeeping = collector._housekeeping

            async def housekeeping_then_free_the_worker():
                try:
                    await housekeeping()
                finally:  # cancelled at shutdown: only now may the queued finish start
                    busy.set()

            collector._housekeeping = housekeeping_then_free_the_worker
            try:
                await collector.run(1.6)
            finally:
                busy.set()
                await blocker
            return collector

    collector = asyncio.run(main())
    assert collector.stats.trades > 0 and collector.stats.disconnects == 1 and collector.stats.connects == 1
    assert not list(tmp_path.rglob("*.part"))
    landed_lines = sum(1 for f in closed_files(tmp_path) for _ in read_lines(f.path))
    assert landed_lines == collector.writer.lines_written  # every line written is in a closed file


def test_a_fill_still_running_when_shutdown_stops_waiting_is_recorded_as_not_filled(tmp_path):
    """Shutdown waits ``shutdown_fill_seconds`` for gap fills, then cancels them: the gap in progress
    and those queued behind it are recorded with their id ranges, not dropped uncounted."""
    released = threading.Event()
    calls = []

    def hanging(symbol, from_id, limit):
        calls.append(symbol)
        released.wait(30)  # REST answers only after the collector has stopped
        return []

    async def main():
        server = SimulatedBinanceStreamServer(rate_multiplier=RATE, faults=Faults(drop_after={1: 80}))
        url = await server.start()
        config = CollectorConfig(
            url, SYMBOLS, tmp_path, rotate_seconds=1, backoff_initial=0.3, shutdown_fill_seconds=0.2
        )
        collector = StreamCollector(config, rest_fetch=hanging)
        try:
            await collector.run(2.0)
        finally:
            released.set()
            await server.stop()
        return collector

    collector = asyncio.run(main())
    assert len(calls) == 1 and collector.stats.gaps >= len(SYMBOLS) and collector.stats.gap_trades_filled == 0
    recorded = 0
    for symbol in SYMBOLS:
        gaps = assert_gaps_are_the_missing_ids(tmp_path, symbol)
        assert len(gaps) >= 1 and all("collector stopped before" in reason for reason in gaps["reason"])
        recorded += sum(b - a + 1 for a, b in zip(gaps["from_id"], gaps["to_id"]))
    assert collector.stats.gap_trades_unfilled == recorded
