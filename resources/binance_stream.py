"""The live collector: Binance combined streams (trades + top of book) over WebSocket into landing files.

One asyncio loop runs one connection per shard of at most ``MAX_STREAMS_PER_CONNECTION`` streams
(Binance's 1,024), each reconnecting with exponential backoff and full jitter after a failure, and
proactively before Binance's 24 h cut-off. The first ``MAX_URL_STREAMS`` streams of a
shard are named in the URL (``<base>/stream?streams=a@trade/a@bookTicker/...``; request lines are
limited in length), the rest are subscribed with SUBSCRIBE messages paced at 4 per second (Binance
drops a connection above 5 incoming messages per second; keepalive pongs answering the server's
pings count too, one per 20 s). Every received message is landed with
its receive time (``resources/landing.py``) before anything else is done with it.

Trade ids are consecutive per symbol: a jump (a reconnect, a lost message) is a gap, filled from
REST ``historicalTrades`` through ``BinanceClient`` (weight pacing, Retry-After) in a worker thread,
or recorded in the landing file with its id range when REST fails.
"""

import asyncio
import collections
import json
import logging
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from resources.landing import UNROUTED, LandingWriter, recover_parts

DEFAULT_WS_URL = "wss://data-stream.binance.vision"
WS_URL_ENV_VAR = "CRYPTOLAKE_BINANCE_WS_URL"
MAX_STREAMS_PER_CONNECTION = 1024
MAX_CONNECTION_AGE_SECONDS = 23.5 * 3600  # Binance cuts connections at 24 h
REST_PAGE = 1000
MAX_URL_STREAMS = 100  # streams named in the URL; the rest of a shard is subscribed by message
SUBSCRIBE_BATCH = 200  # streams per SUBSCRIBE message
MESSAGES_PER_SECOND = 4
LAG_SAMPLES = 100_000
MAX_FILL_IDS = 200_000  # a longer gap (hours of a busy symbol) is recorded, not fetched
RESUME_WITHIN_SECONDS = 3600  # on start, fill from the last landed trade if it is this recent  # what the client sends; Binance drops connections above 5 incoming messages/s
_STREAM = re.compile(r'"stream"\s*:\s*"([a-z0-9]+)@')

log = logging.getLogger("cryptolake.stream")


def _loads_or_none(raw: str):
    try:
        return json.loads(raw)
    except ValueError:
        return None


def stream_names(symbols: Sequence[str]) -> list[str]:
    """``<symbol>@trade`` and ``<symbol>@bookTicker`` per symbol (lower case, as Binance names them)."""
    return [f"{s.lower()}@{kind}" for s in symbols for kind in ("trade", "bookTicker")]


def shard_streams(streams: Sequence[str], per_connection: int = MAX_STREAMS_PER_CONNECTION) -> list[list[str]]:
    """Split streams into connections of at most ``per_connection`` (Binance: 1,024)."""
    if not 1 <= per_connection <= MAX_STREAMS_PER_CONNECTION:
        raise ValueError(f"per_connection must be within 1..{MAX_STREAMS_PER_CONNECTION}")
    return [list(streams[i : i + per_connection]) for i in range(0, len(streams), per_connection)]


def combined_url(base: str, streams: Sequence[str]) -> str:
    return f"{base.rstrip('/')}/stream?streams={quote('/'.join(streams), safe='/@')}"


def backoff_delays(initial: float, maximum: float, rng: random.Random):
    """Exponential backoff with full jitter: uniform(initial/2, min(maximum, initial·2^n))."""
    attempt = 0
    while True:
        ceiling = min(maximum, initial * 2**attempt)
        yield rng.uniform(min(initial / 2, ceiling), ceiling)
        attempt += 1


@dataclass
class StreamStats:
    messages: int = 0
    trades: int = 0
    quotes: int = 0
    malformed: int = 0
    connects: int = 0
    disconnects: int = 0
    rotations: int = 0
    gaps: int = 0
    gap_trades_filled: int = 0
    gap_trades_unfilled: int = 0
    recovered_files: int = 0
    subscribe_messages: int = 0
    # receive − trade time (ms) of every ``lag_sample_every``-th trade, the latest LAG_SAMPLES only
    lag_ms: collections.deque = field(default_factory=lambda: collections.deque(maxlen=LAG_SAMPLES))

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "lag_ms"}


@dataclass
class CollectorConfig:
    base_url: str
    symbols: list[str]
    landing: Path
    rotate_seconds: int = 60
    streams_per_connection: int = MAX_STREAMS_PER_CONNECTION
    max_connection_age: float = MAX_CONNECTION_AGE_SECONDS
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    flush_seconds: float = 0.25
    ping_interval: float | None = 20.0
    lag_sample_every: int = 10
    max_fill_ids: int = MAX_FILL_IDS
    resume_within_seconds: float = RESUME_WITHIN_SECONDS
    max_url_streams: int = MAX_URL_STREAMS
    subscribe_batch: int = SUBSCRIBE_BATCH
    shutdown_fill_seconds: float = 60.0  # how long shutdown waits for pending gap fills before recording them


class StreamCollector:
    """Collects the configured symbols until ``stop()`` (or the duration) and lands every message."""

    def __init__(
        self,
        config: CollectorConfig,
        rest_fetch: Callable[[str, int, int], list[dict]] | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ):
        self.config = config
        self.rest_fetch = rest_fetch  # (symbol, from_id, limit) -> historicalTrades items
        self.clock = clock
        self.rng = rng or random.Random()
        self.stats = StreamStats()
        self.writer = LandingWriter(config.landing, config.rotate_seconds)
        self.last_trade_id: dict[str, int] = {}
        self._stop = asyncio.Event()
        self._connections: set = set()
        self._gaps: asyncio.Queue = asyncio.Queue()
        self._finishing: set[asyncio.Future] = set()  # housekeeping's fsync + rename jobs not yet done
        self._symbols = {s.upper() for s in config.symbols}

    # -- lifecycle -------------------------------------------------------------------------
    def stop(self) -> None:
        """Ask every connection to close; ``run`` then closes the open files and returns."""
        self._stop.set()
        for connection in list(self._connections):
            asyncio.ensure_future(connection.close())

    async def run(self, duration: float | None = None) -> StreamStats:
        self.stats.recovered_files = len(recover_parts(self.config.landing))
        self.last_trade_id.update(
            last_landed_trade_ids(self.config.landing, self._symbols, self.clock(), self.config.resume_within_seconds)
        )
        shards = shard_streams(stream_names(sorted(self._symbols)), self.config.streams_per_connection)
        tasks = [asyncio.create_task(self._connection_loop(shard, n)) for n, shard in enumerate(shards)]
        for task in tasks:  # a shard that cannot run (bad URL) stops the collector instead of dying alone
            task.add_done_callback(self._on_shard_done)
        housekeeping = asyncio.create_task(self._housekeeping())
        filler = asyncio.create_task(self._gap_filler())
        try:
            if duration is not None:
                try:
                    await asyncio.wait_for(self._stop.wait(), timeout=duration)
                except TimeoutError:
                    pass
            else:
                await self._stop.wait()
        finally:
            self.stop()
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
            try:  # fills of gaps seen so far land before the files close
                await asyncio.wait_for(self._gaps.join(), timeout=self.config.shutdown_fill_seconds)
            except TimeoutError:
                log.warning("gap fills still pending at shutdown; their gaps are recorded as not filled")
            for task in (housekeeping, filler):
                task.cancel()
            await asyncio.gather(housekeeping, filler, return_exceptions=True)
            # a cancelled fill recorded its own rest (``_fill``); gaps it never reached are recorded here
            while not self._gaps.empty():
                symbol, first, last = self._gaps.get_nowait()
                self._record_gap(symbol, first, last, "the collector stopped before this gap's REST fill began")
                self._gaps.task_done()
            # files housekeeping took out of rotation are closed by its worker job, which cancelling
            # housekeeping does not cancel (``_housekeeping``): wait for it before closing the rest
            for outcome in await asyncio.gather(*list(self._finishing), return_exceptions=True):
                if isinstance(outcome, BaseException):
                    log.error("closing rotated-out landing files failed: %r", outcome)
            self.writer.close_all()
        failures = [o for o in outcomes if isinstance(o, BaseException) and not isinstance(o, asyncio.CancelledError)]
        if failures:
            raise failures[0]
        return self.stats

    def _on_shard_done(self, task: asyncio.Task) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._stop.set()

    async def _housekeeping(self) -> None:
        """Close files whose window is over and flush the open ones, several times a second."""
        loop = asyncio.get_running_loop()
        last_flush = self.clock()
        while True:
            await asyncio.sleep(0.1)
            now = self.clock()
            due = self.writer.detach_due(int(now * 1000))
            if due:  # fsync + rename off the event loop: receiving goes on meanwhile
                # ``due`` is out of the writer's open files: only this job closes it. Shielded, so that
                # run() cancelling this task at shutdown does not cancel a job no thread has picked up
                # yet (a loaded machine), which would leave the files as .part with their lines unread.
                finishing = loop.run_in_executor(None, self.writer.finish, due)
                self._finishing.add(finishing)
                finishing.add_done_callback(self._finishing.discard)
                await asyncio.shield(finishing)
            if now - last_flush >= self.config.flush_seconds:
                self.writer.flush()
                last_flush = now

    # -- connections -----------------------------------------------------------------------
    async def _connection_loop(self, streams: list[str], shard: int) -> None:
        url = combined_url(self.config.base_url, streams[: self.config.max_url_streams])
        later = streams[self.config.max_url_streams :]
        delays = backoff_delays(self.config.backoff_initial, self.config.backoff_max, self.rng)
        while not self._stop.is_set():
            try:
                async with connect(
                    url,
                    ping_interval=self.config.ping_interval,
                    ping_timeout=self.config.ping_interval,
                    compression=None,
                    max_size=2**22,
                    max_queue=1024,
                    open_timeout=10,
                    close_timeout=2,
                    proxy=None,
                ) as connection:
                    self._connections.add(connection)
                    self.stats.connects += 1
                    delays = backoff_delays(self.config.backoff_initial, self.config.backoff_max, self.rng)
                    log.info("shard %d connected (%d streams)", shard, len(streams))
                    rotate = asyncio.get_running_loop().call_later(
                        self.config.max_connection_age, self._rotate, connection
                    )
                    subscriber = asyncio.create_task(self._subscribe(connection, later)) if later else None
                    try:
                        await self._receive(connection)
                    finally:
                        rotate.cancel()
                        if subscriber is not None:
                            subscriber.cancel()
                        self._connections.discard(connection)
                if getattr(connection, "_cryptolake_rotated", False) and not self._stop.is_set():
                    self.stats.rotations += 1
                    continue  # planned: reconnect at once
                if not self._stop.is_set():
                    log.warning("shard %d: the server closed the connection", shard)
            except InvalidURI:
                raise  # a configuration error: retrying cannot help
            except (ConnectionClosed, OSError, InvalidHandshake, TimeoutError) as exc:
                if self._stop.is_set():
                    break
                log.warning("shard %d disconnected: %r", shard, exc)
            except Exception:  # anything else (a bug, a full disk): log it, back off, reconnect
                if self._stop.is_set():
                    break
                log.exception("shard %d failed; reconnecting", shard)
            if self._stop.is_set():
                break
            self.stats.disconnects += 1
            delay = next(delays)
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=delay)
            except TimeoutError:
                pass

    async def _subscribe(self, connection, streams: list[str]) -> None:
        """SUBSCRIBE the streams that did not fit in the URL, at most MESSAGES_PER_SECOND messages a second."""
        batch = self.config.subscribe_batch
        for number, start in enumerate(range(0, len(streams), batch), start=1):
            if number > 1:
                await asyncio.sleep(1 / MESSAGES_PER_SECOND)
            params = streams[start : start + batch]
            await connection.send(json.dumps({"method": "SUBSCRIBE", "params": params, "id": number}))
            self.stats.subscribe_messages += 1

    def _rotate(self, connection) -> None:
        connection._cryptolake_rotated = True
        asyncio.ensure_future(connection.close())

    async def _receive(self, connection) -> None:
        on_message = self.on_message
        clock = self.clock
        try:
            async for raw in connection:
                if isinstance(raw, bytes):
                    raw = raw.decode("utf-8", errors="replace")
                on_message(raw, int(clock() * 1000))
        except ConnectionClosed:
            if self._stop.is_set() or getattr(connection, "_cryptolake_rotated", False):
                return
            raise

    # -- messages --------------------------------------------------------------------------
    def on_message(self, raw: str, recv_ms: int) -> None:
        """Land one message, then track its trade id (gap detection)."""
        self.stats.messages += 1
        try:
            message = json.loads(raw)
            stream = message["stream"]
            data = message["data"]
            name, _, kind = stream.partition("@")
            symbol = name.upper()
        except (ValueError, KeyError, TypeError, AttributeError):
            if (
                isinstance(message := _loads_or_none(raw), dict)
                and "id" in message
                and ("result" in message or "error" in message)
            ):
                if "error" in message:  # an answer to our SUBSCRIBE
                    log.warning("subscription %s refused: %s", message.get("id"), message["error"])
                return
            self.stats.malformed += 1
            found = _STREAM.search(raw)
            symbol = found.group(1).upper() if found and found.group(1).upper() in self._symbols else UNROUTED
            self.writer.write_message(symbol, recv_ms, raw, is_json=False)
            return
        if symbol not in self._symbols:
            symbol = UNROUTED
        self.writer.write_message(symbol, recv_ms, raw, is_json=True)
        if kind == "trade":
            self.stats.trades += 1
            trade_id = data.get("t") if isinstance(data, dict) else None
            if isinstance(trade_id, int) and symbol != UNROUTED:
                self._track(symbol, trade_id)
                trade_time = data.get("T")
                if isinstance(trade_time, int) and self.stats.trades % self.config.lag_sample_every == 0:
                    self.stats.lag_ms.append(recv_ms - trade_time)
        elif kind == "bookTicker":
            self.stats.quotes += 1

    def _track(self, symbol: str, trade_id: int) -> None:
        last = self.last_trade_id.get(symbol)
        if last is not None and trade_id > last + 1:
            self.stats.gaps += 1
            self._gaps.put_nowait((symbol, last + 1, trade_id - 1))
        if last is None or trade_id > last:
            self.last_trade_id[symbol] = trade_id

    # -- gap filling -----------------------------------------------------------------------
    async def _gap_filler(self) -> None:
        while True:
            symbol, first, last = await self._gaps.get()
            try:
                await self._fill(symbol, first, last)
            except Exception as exc:  # never let a fill kill the collector: record the gap
                self._record_gap(symbol, first, last, f"fill failed: {exc!r}")
            finally:
                self._gaps.task_done()

    async def _fill(self, symbol: str, first: int, last: int) -> None:
        if last - first + 1 > self.config.max_fill_ids:
            self._record_gap(
                symbol, first, last, f"gap of {last - first + 1} ids exceeds max_fill_ids={self.config.max_fill_ids}"
            )
            return
        cursor = first
        while cursor <= last:
            if self.rest_fetch is None:
                self._record_gap(symbol, cursor, last, "no REST client configured")
                return
            limit = min(REST_PAGE, last - cursor + 1)
            try:
                page = await asyncio.to_thread(self.rest_fetch, symbol, cursor, limit)
            except asyncio.CancelledError:  # shutdown gave up waiting: what is not landed is recorded
                self._record_gap(symbol, cursor, last, "the collector stopped before the REST fill finished")
                raise
            except Exception as exc:
                self._record_gap(symbol, cursor, last, f"REST historicalTrades failed: {exc}")
                return
            wanted = [t for t in page if cursor <= t["id"] <= last]
            if not wanted:
                self._record_gap(symbol, cursor, last, "REST historicalTrades returned none of these ids")
                return
            recv_ms = int(self.clock() * 1000)
            for trade in wanted:
                self.writer.write_record(symbol, recv_ms, "rest", trade)
            self.stats.gap_trades_filled += len(wanted)
            cursor = max(t["id"] for t in wanted) + 1

    def _record_gap(self, symbol: str, first: int, last: int, reason: str) -> None:
        log.warning("%s: trade ids %d..%d not filled: %s", symbol, first, last, reason)
        self.stats.gap_trades_unfilled += last - first + 1
        self.writer.write_record(
            symbol, int(self.clock() * 1000), "gap", {"from_id": first, "to_id": last, "reason": reason[:500]}
        )


def last_landed_trade_ids(root: Path, symbols: set[str], now: float, within_seconds: float) -> dict[str, int]:
    """Per symbol, the highest trade id in its newest closed landing file if that file's window began
    within ``within_seconds``: a restarted collector fills what it missed while it was down."""
    from resources.landing import closed_files

    found = {}
    for symbol in symbols:
        files = closed_files(root, symbol) if (Path(root) / symbol).exists() else []
        recent = [f for f in files if now - f.window_start.timestamp() <= within_seconds]
        for landed in reversed(recent):
            best = None
            with open(landed.path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if '@trade"' not in line and '"rest"' not in line:
                        continue
                    record = _loads_or_none(line)
                    if not isinstance(record, dict):
                        continue
                    data = (record.get("msg") or {}).get("data") if isinstance(record.get("msg"), dict) else None
                    trade_id = (
                        data.get("t")
                        if isinstance(data, dict)
                        else (record.get("rest") or {}).get("id")
                        if isinstance(record.get("rest"), dict)
                        else None
                    )
                    if isinstance(trade_id, int) and (best is None or trade_id > best):
                        best = trade_id
            if best is not None:
                found[symbol] = best
                break
    return found


def ws_base_url() -> str:
    """``CRYPTOLAKE_BINANCE_WS_URL`` or Binance's public market-data stream host."""
    import os

    return (os.environ.get(WS_URL_ENV_VAR) or DEFAULT_WS_URL).rstrip("/")


async def collect_async(
    symbols: list[str],
    landing: Path,
    duration: float | None,
    *,
    source: str,
    rest_client=None,
    rotate_seconds: int = 60,
    install_signal_handlers: bool = True,
    simulated_server=None,
) -> tuple[StreamCollector, StreamStats]:
    """Collect ``symbols`` into ``landing`` until ``duration`` or SIGINT/SIGTERM; ``source="simulated"``
    starts the simulated WebSocket server on 127.0.0.1 in this loop and connects to it like to Binance."""
    import signal

    server = None
    base = ws_base_url()
    if source == "simulated":
        from resources.simulated.binance_ws_server import SimulatedBinanceStreamServer

        server = simulated_server or SimulatedBinanceStreamServer()
        base = await server.start()
    fetch = (
        (lambda symbol, from_id, limit: rest_client.historical_trades(symbol, from_id, limit)) if rest_client else None
    )
    collector = StreamCollector(
        CollectorConfig(base_url=base, symbols=symbols, landing=landing, rotate_seconds=rotate_seconds),
        rest_fetch=fetch,
    )
    loop = asyncio.get_running_loop()
    handled = []
    if install_signal_handlers:
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(signum, collector.stop)
                handled.append(signum)
            except (NotImplementedError, RuntimeError):
                pass
    try:
        stats = await collector.run(duration)
    finally:
        for signum in handled:
            loop.remove_signal_handler(signum)
        if server is not None:
            await server.stop()
    return collector, stats
