"""An offline Binance market-data WebSocket server on 127.0.0.1, speaking the real combined-stream payloads.

``/stream?streams=btcusdt@trade/btcusdt@bookTicker/...`` streams the deterministic trade tape
(``trade_tape``) in real time from the moment of connection, each trade followed by its bookTicker;
the same trades are served by the simulated REST exchange's ``historicalTrades``. Like Binance it
pings (websockets answers), refuses more than 1,024 streams, answers SUBSCRIBE / UNSUBSCRIBE /
LIST_SUBSCRIPTIONS and drops a connection that sends more than 5 messages per second. For tests it
can cut connections after N messages (a network drop: no close frame), emit malformed messages, and
close connections after a maximum age (Binance's 24 h cut-off, shortened).
"""

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from resources.simulated.trade_tape import TradeTape, book_ticker_message, tape_for, trade_message

MAX_STREAMS = 1024
MAX_INCOMING_PER_SECOND = 5
TICK_SECONDS = 0.005


@dataclass
class Faults:
    """What to break, per connection number (1 = the first connection)."""

    drop_after: dict[int, int] = field(default_factory=dict)  # connection -> cut after N messages
    malformed_after: dict[int, int] = field(default_factory=dict)  # connection -> malformed after N messages
    max_age_seconds: float | None = None  # close (1001) connections older than this


class SimulatedBinanceStreamServer:
    """Start with ``await server.start()`` (returns the ``ws://127.0.0.1:<port>`` base); ``await server.stop()``."""

    def __init__(
        self,
        seed: int = 7,
        rate_multiplier: float = 1.0,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        ping_interval: float | None = 20.0,
        clock: Callable[[], float] = time.time,
    ):
        self.seed = seed
        self.rate_multiplier = rate_multiplier
        self.faults = faults or Faults()
        self.host, self.port = host, port
        self.ping_interval = ping_interval
        self.clock = clock
        self.connections = 0
        self.messages_sent = 0
        self.malformed_sent: list[str] = []
        self._tapes: dict[str, TradeTape] = {}
        self._server: Server | None = None

    @property
    def url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    async def start(self) -> str:
        server = await serve(
            self._handle,
            self.host,
            self.port,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_interval,
            compression=None,
            max_queue=64,
            write_limit=2**20,
        )
        self._server = server
        self.port = server.sockets[0].getsockname()[1]
        return self.url

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> "SimulatedBinanceStreamServer":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    def tape(self, symbol: str) -> TradeTape:
        if symbol not in self._tapes:
            self._tapes[symbol] = tape_for(symbol, self.seed, self.rate_multiplier)
        return self._tapes[symbol]

    # -- one connection ----------------------------------------------------------------------
    async def _handle(self, connection: ServerConnection) -> None:
        self.connections += 1
        number = self.connections
        assert connection.request is not None  # the handler runs after the handshake
        request = urlsplit(connection.request.path)
        if request.path != "/stream":
            await connection.close(1008, "unknown path; use /stream?streams=")
            return
        streams = [s for s in parse_qs(request.query).get("streams", [""])[0].split("/") if s]
        if len(streams) > MAX_STREAMS:
            await connection.close(1008, f"too many streams: {len(streams)} > {MAX_STREAMS}")
            return
        subscribed = set(streams)
        listener = asyncio.create_task(self._listen(connection, subscribed))
        try:
            await self._stream(connection, number, subscribed)
        except ConnectionClosed:
            pass
        finally:
            listener.cancel()

    async def _listen(self, connection: ServerConnection, subscribed: set[str]) -> None:
        """SUBSCRIBE/UNSUBSCRIBE/LIST_SUBSCRIPTIONS, and Binance's 5 incoming messages/s limit."""
        window: list[float] = []
        try:
            async for raw in connection:
                now = time.monotonic()
                window = [t for t in window if now - t < 1.0] + [now]
                if len(window) > MAX_INCOMING_PER_SECOND:
                    await connection.close(1008, "Too many requests")
                    return
                try:
                    request = json.loads(raw)
                    method, params, rid = request["method"], request.get("params", []), request["id"]
                except (ValueError, KeyError, TypeError):
                    await connection.send(json.dumps({"error": {"code": 3, "msg": "Invalid JSON"}}))
                    continue
                if method == "SUBSCRIBE":
                    if len(subscribed | set(params)) > MAX_STREAMS:
                        await connection.send(json.dumps({"error": {"code": 2, "msg": "too many streams"}, "id": rid}))
                        continue
                    subscribed.update(params)
                    await connection.send(json.dumps({"result": None, "id": rid}))
                elif method == "UNSUBSCRIBE":
                    subscribed.difference_update(params)
                    await connection.send(json.dumps({"result": None, "id": rid}))
                elif method == "LIST_SUBSCRIPTIONS":
                    await connection.send(json.dumps({"result": sorted(subscribed), "id": rid}))
                else:
                    await connection.send(json.dumps({"error": {"code": 2, "msg": "Invalid request"}, "id": rid}))
        except ConnectionClosed:
            pass

    def _symbols(self, subscribed: set[str], kind: str) -> set[str]:
        symbols = set()
        for stream in subscribed:
            name, _, stream_kind = stream.partition("@")
            if stream_kind == kind:
                try:
                    self.tape(name.upper())
                except KeyError:
                    continue  # Binance streams nothing for an unknown symbol
                symbols.add(name.upper())
        return symbols

    async def _stream(self, connection: ServerConnection, number: int, subscribed: set[str]) -> None:
        drop_after = self.faults.drop_after.get(number)
        malformed_after = self.faults.malformed_after.get(number)
        opened = time.monotonic()
        now_ms = int(self.clock() * 1000)
        cursors: dict[str, int] = {}
        sent = 0
        while True:
            trades, quotes = self._symbols(subscribed, "trade"), self._symbols(subscribed, "bookTicker")
            now_ms = int(self.clock() * 1000)
            for symbol in sorted(trades | quotes):
                tape = self.tape(symbol)
                newest = tape.last_id_at(now_ms)
                cursor = cursors.setdefault(symbol, newest + 1)  # a new subscription starts from now
                while cursor <= newest:
                    trade = tape.trade(cursor)
                    batch = []
                    if symbol in trades:
                        batch.append(trade_message(symbol, trade, now_ms))
                    if symbol in quotes:
                        batch.append(book_ticker_message(symbol, trade))
                    for message in batch:
                        await connection.send(message)
                        sent += 1
                        self.messages_sent += 1
                        if malformed_after is not None and sent == malformed_after:
                            await self._send_malformed(connection, symbol, trade.id, now_ms)
                        if drop_after is not None and sent >= drop_after:
                            connection.transport.abort()  # a network drop: no close frame
                            return
                    cursor += 1
                cursors[symbol] = cursor
            if self.faults.max_age_seconds is not None and time.monotonic() - opened > self.faults.max_age_seconds:
                await connection.close(1001, "connection age limit")
                return
            await asyncio.sleep(TICK_SECONDS)

    async def _send_malformed(self, connection: ServerConnection, symbol: str, trade_id: int, now_ms: int) -> None:
        lower = symbol.lower()
        bad = [
            f'{{"stream":"{lower}@trade","data":{{"e":"trade","E":{now_ms},"s":"{symbol}","t":{trade_id},"p":"not-a-price"',
            f'{{"stream":"{lower}@trade","data":{{"e":"trade","E":{now_ms},"s":"{symbol}","t":{trade_id},"p":"-1.00000000",'
            f'"q":"1.00000000","T":{now_ms},"m":true,"M":true}}}}',
        ]
        for message in bad:
            await connection.send(message)
            self.malformed_sent.append(message)
            self.messages_sent += 1
