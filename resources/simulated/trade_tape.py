"""The simulated exchange's trade tape: trade ``k`` of a symbol is a pure function of (seed, symbol, k).

Trade ids are consecutive per symbol from 2017-01-01 (``ORIGIN_MS``) at a fixed rate per symbol,
so the WebSocket server (``binance_ws_server``) and the REST exchange (``historicalTrades``) serve
the very same trades: what a dropped connection missed is exactly what REST returns. Prices wander
deterministically around the symbol's anchor price on its tick; every trade comes with the
top-of-book quote it printed against (buyer maker: at the bid, else at the ask).
"""

import math
from dataclasses import dataclass
from functools import lru_cache

from resources.simulated.market import SimulatedMarket, SymbolModel

ORIGIN_MS = 1_483_228_800_000  # 2017-01-01T00:00:00Z: trade id 0 of every symbol
DEFAULT_RATE = 4  # trades per second of a symbol without its own rate
RATES = {"BTCUSDT": 20, "ETHUSDT": 12, "SOLUSDT": 8, "XRPUSDT": 8, "DOGEUSDT": 6}
_MASK = (1 << 64) - 1


def _mix(value: int) -> int:
    """splitmix64: a well-spread 64-bit hash (deterministic, no state)."""
    value = (value + 0x9E3779B97F4A7C15) & _MASK
    value = ((value ^ (value >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    value = ((value ^ (value >> 27)) * 0x94D049BB133111EB) & _MASK
    return value ^ (value >> 31)


def _decimal(units: int, decimals: int) -> str:
    """An integer amount of 10^-decimals as Binance prints it (8 decimals)."""
    scaled = units * 10 ** (8 - decimals)
    return f"{scaled // 100_000_000}.{scaled % 100_000_000:08d}"


@dataclass(frozen=True)
class Trade:
    id: int
    price: str
    qty: str
    quote_qty: str
    time: int
    is_buyer_maker: bool
    bid: str
    bid_qty: str
    ask: str
    ask_qty: str

    def rest(self) -> dict:
        """The ``/api/v3/historicalTrades`` (and ``/trades``) item."""
        return {
            "id": self.id,
            "price": self.price,
            "qty": self.qty,
            "quoteQty": self.quote_qty,
            "time": self.time,
            "isBuyerMaker": self.is_buyer_maker,
            "isBestMatch": True,
        }


class TradeTape:
    """Deterministic trades of one symbol at ``rate`` trades per second since ``ORIGIN_MS``."""

    def __init__(self, seed: int, model: SymbolModel, rate: int):
        if rate < 1:
            raise ValueError(f"rate must be at least 1 trade/s, got {rate}")
        self.symbol = model.symbol
        self.rate = int(rate)
        self._key = (int(seed) << 32) ^ model.key
        self._pd = model.price_decimals
        self._qd = model.qty_decimals
        self._anchor_ticks = max(50, round(model.anchor_price * 10**self._pd))
        self._avg_quote = model.avg_trade_usdt

    def time_of(self, trade_id: int) -> int:
        return ORIGIN_MS + trade_id * 1000 // self.rate

    def last_id_at(self, now_ms: int) -> int:
        """The newest trade id with ``time <= now_ms``."""
        return ((now_ms - ORIGIN_MS + 1) * self.rate + 999) // 1000 - 1

    def trade(self, trade_id: int) -> Trade:
        h = _mix(self._key ^ (trade_id * 0x2545F4914F6CDD1D & _MASK))
        u1 = (h & 0xFFFFF) / 0x100000
        u2 = ((h >> 20) & 0xFFFFF) / 0x100000
        buyer_maker = bool((h >> 40) & 1)
        per_hour = self.rate * 3600
        wave = 0.004 * math.sin(2 * math.pi * trade_id / (per_hour / 2)) + 0.0015 * math.sin(
            2 * math.pi * trade_id / (self.rate * 97)
        )
        ticks = max(2, round(self._anchor_ticks * math.exp(wave + 0.0004 * (u1 - 0.5))))
        price = ticks / 10**self._pd
        lots = max(1, round(self._avg_quote * (0.1 + 2.0 * u2 * u2) / price * 10**self._qd))
        spread = 1 + ((h >> 41) & 3)
        bid, ask = (ticks, ticks + spread) if buyer_maker else (ticks - spread, ticks)
        quote_units = ticks * lots  # 10^-(pd+qd)
        quote = f"{quote_units / 10 ** (self._pd + self._qd):.8f}"
        return Trade(
            id=trade_id,
            price=_decimal(ticks, self._pd),
            qty=_decimal(lots, self._qd),
            quote_qty=quote,
            time=self.time_of(trade_id),
            is_buyer_maker=buyer_maker,
            bid=_decimal(bid, self._pd),
            bid_qty=_decimal(1 + ((h >> 44) & 0xFF), self._qd),
            ask=_decimal(ask, self._pd),
            ask_qty=_decimal(1 + ((h >> 52) & 0xFF), self._qd),
        )

    def trades(self, first_id: int, last_id: int) -> list[Trade]:
        return [self.trade(k) for k in range(first_id, last_id + 1)]


@lru_cache(maxsize=16)
def _market(seed: int) -> SimulatedMarket:
    return SimulatedMarket(seed=seed)


def tape_for(
    symbol: str, seed: int = 7, rate_multiplier: float = 1.0, market: SimulatedMarket | None = None
) -> TradeTape:
    """The tape of ``symbol``; ``rate_multiplier`` scales its rate (benchmarks). Unknown symbols raise."""
    model = (market or _market(seed)).model(symbol)
    rate = max(1, round(RATES.get(symbol, DEFAULT_RATE) * rate_multiplier))
    return TradeTape(seed, model, rate)


def trade_message(symbol: str, trade: Trade, event_ms: int) -> str:
    """The combined-stream ``<symbol>@trade`` message Binance sends (compact JSON)."""
    lower = symbol.lower()
    return (
        f'{{"stream":"{lower}@trade","data":{{"e":"trade","E":{event_ms},"s":"{symbol}","t":{trade.id},'
        f'"p":"{trade.price}","q":"{trade.qty}","T":{trade.time},"m":{"true" if trade.is_buyer_maker else "false"},"M":true}}}}'
    )


def book_ticker_message(symbol: str, trade: Trade) -> str:
    """The combined-stream ``<symbol>@bookTicker`` message after ``trade`` (spot: no event time)."""
    return (
        f'{{"stream":"{symbol.lower()}@bookTicker","data":{{"u":{trade.id * 2 + 1},"s":"{symbol}",'
        f'"b":"{trade.bid}","B":"{trade.bid_qty}","a":"{trade.ask}","A":"{trade.ask_qty}"}}}}'
    )
