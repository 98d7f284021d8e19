"""An offline Binance spot REST API speaking the real wire format, for httpx.MockTransport.

It serves ``/api/v3/ping``, ``/api/v3/time``, ``/api/v3/exchangeInfo``, ``/api/v3/klines`` and
``/api/v3/historicalTrades`` (the trade tape of ``trade_tape``, the same trades the simulated
WebSocket server streams) with
Binance's parameter rules, error payloads (``{"code": -1121, "msg": "Invalid symbol."}`` with HTTP
400), request-weight headers and, when asked to enforce the limit, HTTP 429 with ``Retry-After``.
Candles come from ``SimulatedMarket``; the candle containing the exchange clock's 'now' is served
still open (close_time in the future) and nothing after it, as on the real exchange.

Known differences: only CryptoLake's intervals exist (1s, 3d, 1w, 1M answer -1120), exchangeInfo
carries the fields clients read rather than every filter, and weights are not per IP.
"""

import datetime as dt
import json
import math
import threading
from collections import deque
from collections.abc import Callable, Iterable

import httpx

from partitions import SymbolInfo
from resources.kline_format import INTERVAL_MS
from resources.simulated.market import SimulatedMarket
from resources.simulated.trade_tape import tape_for

Clock = Callable[[], dt.datetime]

DEFAULT_KLINES_LIMIT = 500
MAX_KLINES_LIMIT = 1000
DEFAULT_TRADES_LIMIT = 500
MAX_TRADES_LIMIT = 1000
ENDPOINT_WEIGHTS = {
    "/api/v3/ping": 1,
    "/api/v3/time": 1,
    "/api/v3/exchangeInfo": 20,
    "/api/v3/klines": 2,
    "/api/v3/historicalTrades": 25,
}


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class BinanceParameterError(Exception):
    """A request Binance would reject with HTTP 400 and a ``{"code", "msg"}`` payload."""

    def __init__(self, code: int, msg: str):
        super().__init__(msg)
        self.code = code
        self.msg = msg


def _mandatory(params: httpx.QueryParams, name: str) -> str:
    value = params.get(name)
    if not value:
        raise BinanceParameterError(-1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
    return value


def _optional_int(params: httpx.QueryParams, name: str) -> int | None:
    value = params.get(name)
    if value is None or value == "":
        return None
    if not value.isdigit() or len(value) > 20:
        raise BinanceParameterError(
            -1100, f"Illegal characters found in parameter '{name}'; legal range is '^[0-9]{{1,20}}$'."
        )
    return int(value)


class SimulatedBinanceExchange:
    """A deterministic Binance spot REST server; pass ``handle_request`` to ``httpx.MockTransport``."""

    def __init__(
        self,
        seed: int = 7,
        universe: Iterable[SymbolInfo] | None = None,
        clock: Clock | None = None,
        weight_limit_per_minute: int = 6000,
        enforce_limit: bool = False,
        trade_rate_multiplier: float = 1.0,
    ):
        self.market = SimulatedMarket(seed=seed, universe=universe)
        self.seed = seed
        self.trade_rate_multiplier = trade_rate_multiplier
        self.clock: Clock = clock or _utc_now
        self.weight_limit_per_minute = weight_limit_per_minute
        self.enforce_limit = enforce_limit
        self.requests: deque[httpx.Request] = deque(maxlen=10_000)  # latest requests, for tests/diagnostics
        self._weight_minute = -1
        self._used_weight = 0
        self._lock = threading.Lock()

    # -- HTTP entry point -------------------------------------------------------------------
    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        now_ms = self._now_ms()
        path = request.url.path
        if path not in ENDPOINT_WEIGHTS:
            return httpx.Response(404, text="<html><body><h2>404 Not found</h2></body></html>")
        if request.method != "GET":
            return self._error(405, -1014, "Unsupported order combination.", self._charge(now_ms, 0))
        used = self._charge(now_ms, ENDPOINT_WEIGHTS[path])
        if used is None:
            retry_after = math.ceil((60_000 - now_ms % 60_000) / 1000)
            banned_until = now_ms + retry_after * 1000
            return self._error(
                429,
                -1003,
                f"Too much request weight used; current limit is {self.weight_limit_per_minute} request "
                f"weight per 1 MINUTE. Please use WebSocket Streams for live updates to avoid polling "
                f"the API. (banned until {banned_until})",
                self.used_weight(now_ms),
                extra_headers={"Retry-After": str(retry_after)},
            )
        try:
            payload = self._route(path, request.url.params, now_ms)
        except BinanceParameterError as exc:
            return self._error(400, exc.code, exc.msg, used)
        return httpx.Response(200, content=json.dumps(payload, separators=(",", ":")), headers=self._headers(used))

    def used_weight(self, now_ms: int | None = None) -> int:
        """Request weight used in the current wall-clock minute of the exchange clock."""
        minute = (self._now_ms() if now_ms is None else now_ms) // 60_000
        with self._lock:
            return self._used_weight if minute == self._weight_minute else 0

    # -- internals --------------------------------------------------------------------------
    def _now_ms(self) -> int:
        return int(self.clock().timestamp() * 1000)

    def _charge(self, now_ms: int, weight: int) -> int | None:
        """Add ``weight`` to this minute's budget; None when the limit is enforced and exceeded."""
        minute = now_ms // 60_000
        with self._lock:
            if minute != self._weight_minute:
                self._weight_minute, self._used_weight = minute, 0
            if self.enforce_limit and self._used_weight + weight > self.weight_limit_per_minute:
                return None
            self._used_weight += weight
            return self._used_weight

    @staticmethod
    def _headers(used: int) -> dict[str, str]:
        return {
            "Content-Type": "application/json;charset=UTF-8",
            "X-MBX-USED-WEIGHT": str(used),
            "X-MBX-USED-WEIGHT-1M": str(used),
        }

    def _error(self, status: int, code: int, msg: str, used: int | None, extra_headers=None) -> httpx.Response:
        headers = self._headers(used or 0) | (extra_headers or {})
        return httpx.Response(status, content=json.dumps({"code": code, "msg": msg}), headers=headers)

    def _route(self, path: str, params: httpx.QueryParams, now_ms: int) -> object:
        if path == "/api/v3/ping":
            return {}
        if path == "/api/v3/time":
            return {"serverTime": now_ms}
        if path == "/api/v3/exchangeInfo":
            return self._exchange_info(now_ms)
        if path == "/api/v3/historicalTrades":
            return self._historical_trades(params, now_ms)
        return self._klines(params, now_ms)

    def _historical_trades(self, params: httpx.QueryParams, now_ms: int) -> list[dict]:
        """Trades with ``id >= fromId`` (default: the newest ``limit``), oldest first, none after now."""
        symbol = _mandatory(params, "symbol").upper()
        limit = _optional_int(params, "limit")
        limit = DEFAULT_TRADES_LIMIT if limit is None else limit
        if not 1 <= limit <= MAX_TRADES_LIMIT:
            raise BinanceParameterError(-1130, "Data sent for parameter 'limit' is not valid.")
        from_id = _optional_int(params, "fromId")
        if self._known_symbol(symbol, now_ms) is None:
            raise BinanceParameterError(-1121, "Invalid symbol.")
        tape = tape_for(symbol, self.seed, self.trade_rate_multiplier, self.market)
        newest = tape.last_id_at(now_ms)
        first = newest - limit + 1 if from_id is None else from_id
        last = min(newest, first + limit - 1)
        return [trade.rest() for trade in tape.trades(max(first, 0), last)]

    def _known_symbol(self, symbol: str, now_ms: int) -> SymbolInfo | None:
        info = self.market.universe.get(symbol)
        today = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).date()
        return info if info is not None and info.listed_on <= today else None

    def _klines(self, params: httpx.QueryParams, now_ms: int) -> list[list]:
        symbol = _mandatory(params, "symbol").upper()
        interval = _mandatory(params, "interval")
        start = _optional_int(params, "startTime")
        end = _optional_int(params, "endTime")
        limit = _optional_int(params, "limit")
        limit = DEFAULT_KLINES_LIMIT if limit is None else limit
        if not 1 <= limit <= MAX_KLINES_LIMIT:
            raise BinanceParameterError(-1130, "Data sent for parameter 'limit' is not valid.")
        if self._known_symbol(symbol, now_ms) is None:
            raise BinanceParameterError(-1121, "Invalid symbol.")
        if interval not in INTERVAL_MS:
            raise BinanceParameterError(-1120, "Invalid interval.")
        if start is not None and end is not None and start > end:
            raise BinanceParameterError(-1023, "Start time is greater than end time.")
        # Binance: endTime is inclusive on open_time; without startTime the newest bars come back.
        end_exclusive = now_ms + 1 if end is None else end + 1
        if start is None:
            return self.market.klines(symbol, interval, 0, end_exclusive, now_ms=now_ms, limit=limit, from_end=True)
        return self.market.klines(symbol, interval, start, end_exclusive, now_ms=now_ms, limit=limit)

    def _exchange_info(self, now_ms: int) -> dict:
        today = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).date()
        symbols = []
        for info in self.market.universe.values():
            if info.listed_on > today:
                continue
            model = self.market.model(info.symbol)
            trading = info.delisted_on is None or today <= info.delisted_on
            symbols.append(
                {
                    "symbol": info.symbol,
                    "status": "TRADING" if trading else "BREAK",
                    "baseAsset": info.base_asset,
                    "baseAssetPrecision": 8,
                    "quoteAsset": "USDT",
                    "quotePrecision": 8,
                    "quoteAssetPrecision": 8,
                    "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                    "icebergAllowed": True,
                    "ocoAllowed": True,
                    "isSpotTradingAllowed": trading,
                    "isMarginTradingAllowed": False,
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": f"{10.0**-model.price_decimals:.8f}",
                            "maxPrice": "1000000.00000000",
                            "tickSize": f"{10.0**-model.price_decimals:.8f}",
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": f"{10.0**-model.qty_decimals:.8f}",
                            "maxQty": "9000000000.00000000",
                            "stepSize": f"{10.0**-model.qty_decimals:.8f}",
                        },
                    ],
                    "permissions": [],
                    "permissionSets": [["SPOT"]],
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": now_ms,
            "rateLimits": [
                {
                    "rateLimitType": "REQUEST_WEIGHT",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.weight_limit_per_minute,
                },
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": symbols,
        }
