"""A deterministic simulated spot market: the candles behind the simulated Binance sources.

Every candle is a pure function of ``(seed, symbol, UTC day)``: daily closes follow a correlated
log-return path (a shared market factor per day plus each symbol's own noise, fat-tailed), each
day is a 1-minute Brownian bridge from the previous close to the day's close, and coarser bars are
aggregations of those minutes. So the same candle comes out identical whatever window, page or
source (REST fake, archive dumps) asks for it, and a 1h bar is exactly its sixty 1m bars.

Money is kept in integer units (1e-8 for prices and quote volumes, the symbol's lot step for base
volumes) so aggregation is exact and the strings look like Binance's (8 decimals).
"""

import datetime as dt
import math
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from partitions import SymbolInfo, load_universe
from resources.kline_format import INTERVAL_MS

MINUTE_MS = 60_000
DAY_MS = 86_400_000
MINUTES_PER_DAY = 1440
EPOCH = dt.date(2017, 1, 1)  # day index 0; daily noise comes in blocks of BLOCK_DAYS from here
BLOCK_DAYS = 1024
OUTAGE_PROBABILITY = 1 / 150  # share of days with an exchange-wide maintenance window
_UNIT = 100_000_000  # 1e-8: Binance prints prices and volumes with 8 decimals

# Approximate real prices on the listing day (USDT); other symbols get a deterministic guess.
LISTING_PRICES: dict[str, float] = {
    "BTCUSDT": 4300.0,
    "ETHUSDT": 300.0,
    "XRPUSDT": 0.65,
    "ADAUSDT": 0.25,
    "LINKUSDT": 0.45,
    "DOGEUSDT": 0.0033,
    "SOLUSDT": 3.0,
    "DOTUSDT": 4.5,
    "AVAXUSDT": 4.0,
    "UNIUSDT": 3.0,
    "AAVEUSDT": 40.0,
    "COMPUSDT": 200.0,
    "SUSHIUSDT": 4.0,
    "MKRUSDT": 550.0,
    "CAKEUSDT": 5.0,
    "CRVUSDT": 3.0,
    "SHIBUSDT": 0.00001,
    "FLOKIUSDT": 0.00003,
    "PEPEUSDT": 0.0000017,
    "CKBUSDT": 0.005,
    "SANDUSDT": 0.05,
    "MANAUSDT": 0.09,
    "AXSUSDT": 0.6,
    "ENJUSDT": 0.06,
    "THETAUSDT": 0.09,
    "GRTUSDT": 0.5,
    "RUNEUSDT": 1.0,
    "AGIXUSDT": 0.45,
    "OCEANUSDT": 0.3,
    "NEARUSDT": 1.2,
    "TAOUSDT": 500.0,
}

# Approximate real prices on ANCHOR_DAY: each symbol's log-price trend runs from its listing price
# to this, then stays flat; prices wander around the trend (mean-reverting), so decades of
# simulated history stay in plausible ranges instead of drifting off like a pure random walk.
ANCHOR_DAY = dt.date(2025, 1, 1)
ANCHOR_PRICES: dict[str, float] = {
    "BTCUSDT": 95000.0,
    "ETHUSDT": 3300.0,
    "XRPUSDT": 2.2,
    "ADAUSDT": 0.8,
    "LINKUSDT": 20.0,
    "DOGEUSDT": 0.3,
    "SOLUSDT": 200.0,
    "DOTUSDT": 6.5,
    "AVAXUSDT": 35.0,
    "UNIUSDT": 12.0,
    "AAVEUSDT": 300.0,
    "COMPUSDT": 70.0,
    "SUSHIUSDT": 1.2,
    "MKRUSDT": 1500.0,
    "CAKEUSDT": 2.5,
    "CRVUSDT": 0.8,
    "SHIBUSDT": 0.00002,
    "FLOKIUSDT": 0.00015,
    "PEPEUSDT": 0.000015,
    "CKBUSDT": 0.01,
    "SANDUSDT": 0.5,
    "MANAUSDT": 0.5,
    "AXSUSDT": 6.0,
    "ENJUSDT": 0.25,
    "THETAUSDT": 2.0,
    "GRTUSDT": 0.2,
    "RUNEUSDT": 4.0,
    "AGIXUSDT": 0.5,
    "OCEANUSDT": 0.5,
    "NEARUSDT": 5.0,
    "TAOUSDT": 450.0,
}

# (beta to the market factor, idiosyncratic daily vol, daily quote volume at listing in USDT)
_CATEGORY_PROFILE: dict[str, tuple[float, float, float]] = {
    "Layer 1": (1.15, 0.030, 1.5e8),
    "DeFi": (1.30, 0.045, 4e7),
    "Meme": (1.50, 0.065, 8e7),
    "NFT": (1.30, 0.045, 4e7),
    "Infrastructure": (1.20, 0.040, 4e7),
    "Payment": (1.00, 0.035, 1e8),
}
_DEFAULT_PROFILE = (1.20, 0.040, 4e7)
_MARKET_VOL = 0.028  # daily vol of the shared factor; BTC (beta 1, small idio) ends up near 3 %
_REVERSION = 0.995  # daily AR(1) pull of the log price towards its trend (half-life ~140 days)
_STABLE_VOL = 0.0004


class UnknownSymbolError(KeyError):
    """The simulated market does not trade this symbol."""


@dataclass(frozen=True)
class SymbolModel:
    """The parameters that, with the seed, fully determine one symbol's candles."""

    symbol: str
    key: int  # stable 32-bit hash of the symbol for RNG seeding
    listed_index: int  # day index (days since EPOCH) of the listing day
    delisted_index: int | None
    stablecoin: bool
    start_price: float
    anchor_price: float
    beta: float
    idio_vol: float
    daily_quote_volume: float
    price_decimals: int
    qty_decimals: int
    avg_trade_usdt: float

    @property
    def daily_vol(self) -> float:
        if self.stablecoin:
            return _STABLE_VOL * 2
        return math.sqrt((self.beta * _MARKET_VOL) ** 2 + self.idio_vol**2)

    def trades_on(self, day_index: int) -> bool:
        return self.listed_index <= day_index and (self.delisted_index is None or day_index <= self.delisted_index)


def day_index(day: dt.date) -> int:
    return (day - EPOCH).days


# Days since 1970-01-01 (what epoch milliseconds give) + _EPOCH_OFFSET = day index since EPOCH.
_EPOCH_OFFSET = day_index(dt.date(1970, 1, 1))


def _symbol_key(symbol: str) -> int:
    return zlib.crc32(symbol.encode())


def _uniform(key: int, salt: int) -> float:
    """A deterministic number in [0, 1) for per-symbol parameter jitter."""
    return zlib.crc32(f"{key}:{salt}".encode()) / 2**32


def build_symbol_model(info: SymbolInfo) -> SymbolModel:
    key = _symbol_key(info.symbol)
    if info.stablecoin:
        beta, idio, quote_volume, start = 0.0, _STABLE_VOL, 2e8, 1.0
    else:
        beta, idio, quote_volume = _CATEGORY_PROFILE.get(info.category, _DEFAULT_PROFILE)
        beta *= 0.85 + 0.3 * _uniform(key, 1)
        idio *= 0.8 + 0.4 * _uniform(key, 2)
        quote_volume *= 0.5 + _uniform(key, 3)
        if info.symbol == "BTCUSDT":
            beta, idio, quote_volume = 1.0, 0.01, 5e8
        elif info.symbol == "ETHUSDT":
            beta, idio, quote_volume = 1.15, 0.02, 2.5e8
        guess = 10 ** (-6 + 6 * _uniform(key, 4)) if info.category == "Meme" else 10 ** (-1 + 3 * _uniform(key, 4))
        start = LISTING_PRICES.get(info.symbol, guess)
    magnitude = math.floor(math.log10(start))
    return SymbolModel(
        symbol=info.symbol,
        key=key,
        listed_index=day_index(info.listed_on),
        delisted_index=None if info.delisted_on is None else day_index(info.delisted_on),
        stablecoin=info.stablecoin,
        start_price=start,
        anchor_price=ANCHOR_PRICES.get(info.symbol, start),
        beta=beta,
        idio_vol=idio,
        daily_quote_volume=quote_volume,
        price_decimals=min(8, max(2, 5 - magnitude)),
        qty_decimals=min(5, max(0, magnitude + 2)),
        avg_trade_usdt=400.0 + 800.0 * _uniform(key, 5),
    )


def _rng(seed: int, *words: int) -> np.random.Generator:
    # Day indexes can be negative for exotic universes; shift so the entropy words stay unsigned.
    return np.random.default_rng([seed, *(w + (1 << 20) if w < 0 else w for w in words)])


_MARKET_STREAM, _SYMBOL_STREAM, _MINUTE_STREAM, _OUTAGE_STREAM = 1, 2, 3, 4


def _fat_tails(rng: np.random.Generator, size: int) -> np.ndarray:
    """Unit-variance Student-t(4) draws: crypto returns have fat tails."""
    return rng.standard_t(4, size) / math.sqrt(2.0)


@lru_cache(maxsize=256)
def _market_block(seed: int, block: int) -> np.ndarray:
    return _MARKET_VOL * _fat_tails(_rng(seed, _MARKET_STREAM, block), BLOCK_DAYS)


@lru_cache(maxsize=4096)
def _symbol_block(seed: int, model: SymbolModel, block: int) -> np.ndarray:
    """Daily log returns (or, for stablecoins, log deviations from 1.0) of one block of days."""
    noise = _fat_tails(_rng(seed, _SYMBOL_STREAM, model.key, block), BLOCK_DAYS)
    if model.stablecoin:
        return _STABLE_VOL * np.clip(noise, -4, 4)
    return model.beta * _market_block(seed, block) + model.idio_vol * noise


@lru_cache(maxsize=1024)
def _log_closes(seed: int, model: SymbolModel, through_block: int) -> np.ndarray:
    """Log close of every day from the listing day to the end of ``through_block``."""
    first_block = model.listed_index // BLOCK_DAYS
    values = np.concatenate([_symbol_block(seed, model, b) for b in range(first_block, through_block + 1)])
    values = values[model.listed_index - first_block * BLOCK_DAYS :]
    if model.stablecoin:  # mean-reverting: each day's close is 1.0 plus its own small noise
        return values
    deviation = np.empty_like(values)
    level = 0.0
    for i, shock in enumerate(values.tolist()):
        level = _REVERSION * level + shock
        deviation[i] = level
    return _log_trend(model, len(values)) + deviation


def _log_trend(model: SymbolModel, days: int) -> np.ndarray:
    span = max(day_index(ANCHOR_DAY) - model.listed_index, 1)
    progress = np.minimum(np.arange(days) / span, 1.0)
    start = math.log(model.start_price)
    return start + progress * (math.log(model.anchor_price) - start)


def daily_close(seed: int, model: SymbolModel, index: int) -> float:
    """The day's close as a float (before rounding to the tick); the listing price the day before listing."""
    if index < model.listed_index:
        return model.start_price
    return math.exp(_log_closes(seed, model, index // BLOCK_DAYS)[index - model.listed_index])


@lru_cache(maxsize=8192)
def outage_window(seed: int, index: int) -> tuple[int, int] | None:
    """Exchange-wide maintenance on day ``index``: ``(first_minute, end_minute)`` or None."""
    rng = _rng(seed, _OUTAGE_STREAM, index)
    if rng.random() >= OUTAGE_PROBABILITY:
        return None
    start_hour = int(rng.integers(0, 22))
    hours = int(rng.integers(1, 4))
    return start_hour * 60, min(MINUTES_PER_DAY, (start_hour + hours) * 60)


def _to_ticks(values: np.ndarray, decimals: int) -> np.ndarray:
    """Round prices to the symbol's tick and express them in 1e-8 units (at least one tick)."""
    ticks = np.maximum(np.rint(values * 10.0**decimals), 1).astype(np.int64)
    return ticks * np.int64(10 ** (8 - decimals))


@dataclass(frozen=True)
class Bars:
    """Bars of one day in integer units: prices/quote in 1e-8, base volumes in 10^-qty_decimals."""

    open_minute: np.ndarray  # minute of the day the bar opens at
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray
    quote_volume: np.ndarray
    trades: np.ndarray
    taker_base: np.ndarray
    taker_quote: np.ndarray

    def take(self, mask: np.ndarray) -> "Bars":
        return Bars(**{name: getattr(self, name)[mask] for name in self.__dataclass_fields__})


@lru_cache(maxsize=512)
def minute_bars(seed: int, model: SymbolModel, index: int) -> Bars:
    """All 1440 one-minute bars of a trading day (outages not yet removed)."""
    rng = _rng(seed, _MINUTE_STREAM, model.key, index)
    previous = daily_close(seed, model, index - 1)
    final = daily_close(seed, model, index)
    sigma = model.daily_vol / math.sqrt(MINUTES_PER_DAY)
    steps = sigma * rng.standard_normal(MINUTES_PER_DAY)
    walk = np.cumsum(steps)
    fraction = np.arange(1, MINUTES_PER_DAY + 1) / MINUTES_PER_DAY
    log_close = math.log(previous) + fraction * math.log(final / previous) + walk - fraction * walk[-1]
    close = np.exp(log_close)
    open_ = np.concatenate(([previous], close[:-1]))
    wicks = np.abs(rng.standard_normal((2, MINUTES_PER_DAY))) * sigma * 0.7
    high = np.maximum(open_, close) * np.exp(wicks[0])
    low = np.minimum(open_, close) * np.exp(-wicks[1])

    o, c = _to_ticks(open_, model.price_decimals), _to_ticks(close, model.price_decimals)
    h = np.maximum(_to_ticks(high, model.price_decimals), np.maximum(o, c))
    lo = np.minimum(_to_ticks(low, model.price_decimals), np.minimum(o, c))

    # Volume: lognormal, more on big moves and on big days, growing (sub-linearly) with price.
    day_move = abs(math.log(final / previous)) / model.daily_vol
    day_factor = min(4.0, math.exp(0.3 * rng.standard_normal()) * (0.7 + 0.5 * day_move))
    growth = min(5.0, math.sqrt(max(final / model.start_price, 0.04)))
    move = np.abs(np.log(close / open_)) / sigma
    noise = np.exp(0.5 * rng.standard_normal(MINUTES_PER_DAY) - 0.125)
    quote_usdt = (
        model.daily_quote_volume / MINUTES_PER_DAY * growth * day_factor * noise * np.minimum(0.6 + 0.4 * move, 6.0)
    )
    typical = (h + lo + c) / (3.0 * _UNIT)
    qty_scale = 10.0**model.qty_decimals
    volume = np.rint(quote_usdt / typical * qty_scale).astype(np.int64)
    quote = np.rint(volume / qty_scale * typical * _UNIT).astype(np.int64)
    trades = np.where(
        volume > 0,
        np.maximum(
            1, np.rint(quote / _UNIT / model.avg_trade_usdt * np.exp(0.2 * rng.standard_normal(MINUTES_PER_DAY)))
        ),
        0,
    ).astype(np.int64)
    taker = rng.uniform(0.4, 0.6, MINUTES_PER_DAY)
    return Bars(
        open_minute=np.arange(MINUTES_PER_DAY, dtype=np.int64),
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=volume,
        quote_volume=quote,
        trades=trades,
        taker_base=np.rint(volume * taker).astype(np.int64),
        taker_quote=np.rint(quote * taker).astype(np.int64),
    )


def _aggregate(minutes: Bars, interval_minutes: int) -> Bars:
    if interval_minutes == 1 or len(minutes.open) == 0:
        return minutes
    group = minutes.open_minute // interval_minutes
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    ends = np.r_[starts[1:], len(group)] - 1
    return Bars(
        open_minute=group[starts] * interval_minutes,
        open=minutes.open[starts],
        high=np.maximum.reduceat(minutes.high, starts),
        low=np.minimum.reduceat(minutes.low, starts),
        close=minutes.close[ends],
        volume=np.add.reduceat(minutes.volume, starts),
        quote_volume=np.add.reduceat(minutes.quote_volume, starts),
        trades=np.add.reduceat(minutes.trades, starts),
        taker_base=np.add.reduceat(minutes.taker_base, starts),
        taker_quote=np.add.reduceat(minutes.taker_quote, starts),
    )


def _present_minutes(seed: int, index: int, cutoff_minute: int | None) -> np.ndarray:
    present = np.ones(MINUTES_PER_DAY, dtype=bool)
    outage = outage_window(seed, index)
    if outage is not None:
        present[outage[0] : outage[1]] = False
    if cutoff_minute is not None:
        present[cutoff_minute + 1 :] = False
    return present


@lru_cache(maxsize=32768)
def _closed_day_bars(seed: int, model: SymbolModel, index: int, interval_minutes: int) -> Bars:
    minutes = minute_bars(seed, model, index)
    return _aggregate(minutes.take(_present_minutes(seed, index, None)), interval_minutes)


def day_bars(
    seed: int, model: SymbolModel, index: int, interval_minutes: int, cutoff_minute: int | None = None
) -> Bars:
    """The day's bars at an interval; ``cutoff_minute`` drops minutes after 'now' (in-progress day)."""
    if cutoff_minute is None or cutoff_minute >= MINUTES_PER_DAY - 1:
        return _closed_day_bars(seed, model, index, interval_minutes)
    minutes = minute_bars(seed, model, index)
    return _aggregate(minutes.take(_present_minutes(seed, index, cutoff_minute)), interval_minutes)


def _rows(bars: Bars, day_start_ms: int, interval_ms: int, qty_decimals: int) -> list[list]:
    """Format bars as Binance JSON rows: integer times, 8-decimal strings, trades as int, ignore "0"."""
    qty = 10 ** (8 - qty_decimals)  # base-volume units -> 1e-8 units (Python ints: no overflow)
    unit = _UNIT
    rows = []
    columns = zip(
        bars.open_minute.tolist(),
        bars.open.tolist(),
        bars.high.tolist(),
        bars.low.tolist(),
        bars.close.tolist(),
        bars.volume.tolist(),
        bars.quote_volume.tolist(),
        bars.trades.tolist(),
        bars.taker_base.tolist(),
        bars.taker_quote.tolist(),
    )
    for minute, o, h, lo, c, v, q, n, tb, tq in columns:
        open_time = day_start_ms + minute * MINUTE_MS
        v *= qty
        tb *= qty
        rows.append(
            [
                open_time,
                f"{o // unit}.{o % unit:08d}",
                f"{h // unit}.{h % unit:08d}",
                f"{lo // unit}.{lo % unit:08d}",
                f"{c // unit}.{c % unit:08d}",
                f"{v // unit}.{v % unit:08d}",
                open_time + interval_ms - 1,
                f"{q // unit}.{q % unit:08d}",
                n,
                f"{tb // unit}.{tb % unit:08d}",
                f"{tq // unit}.{tq % unit:08d}",
                "0",
            ]
        )
    return rows


class SimulatedMarket:
    """Candles of a deterministic market over a symbol universe (defaults to the project's)."""

    def __init__(self, seed: int = 7, universe: Iterable[SymbolInfo] | None = None):
        self.seed = int(seed)
        infos = tuple(load_universe() if universe is None else universe)
        self.universe: dict[str, SymbolInfo] = {info.symbol: info for info in infos}
        self._models = {info.symbol: build_symbol_model(info) for info in infos}

    @property
    def symbols(self) -> list[str]:
        return list(self._models)

    def model(self, symbol: str) -> SymbolModel:
        try:
            return self._models[symbol]
        except KeyError:
            raise UnknownSymbolError(symbol) from None

    def klines(
        self,
        symbol: str,
        interval: str,
        start_ms: int,
        end_ms: int,
        *,
        now_ms: int | None = None,
        limit: int | None = None,
        from_end: bool = False,
    ) -> list[list]:
        """Binance-shaped kline rows with ``start_ms <= open_time < end_ms``, oldest first.

        ``now_ms`` hides everything after that instant; the candle containing it is served in
        progress (its close_time is in the future), like Binance does. ``limit`` keeps the first
        ``limit`` rows, or the last ones with ``from_end`` (what Binance does without startTime).
        """
        model = self.model(symbol)
        step_ms = INTERVAL_MS[interval]
        if now_ms is not None:
            end_ms = min(end_ms, now_ms + 1)
        first_day = max(start_ms // DAY_MS, model.listed_index - _EPOCH_OFFSET)
        last_day = (end_ms - 1) // DAY_MS
        if model.delisted_index is not None:
            last_day = min(last_day, model.delisted_index - _EPOCH_OFFSET)
        days = range(first_day, last_day + 1)
        wanted = limit
        collected: list[list] = []
        for epoch_day in reversed(days) if from_end else days:
            rows = [
                row
                for row in self._day_rows(model, epoch_day, interval, step_ms, now_ms)
                if start_ms <= row[0] < end_ms
            ]
            if from_end:
                collected[:0] = rows
            else:
                collected.extend(rows)
            if wanted is not None and len(collected) >= wanted:
                break
        if wanted is not None:
            collected = collected[-wanted:] if from_end else collected[:wanted]
        return collected

    def _day_rows(
        self, model: SymbolModel, epoch_day: int, interval: str, step_ms: int, now_ms: int | None
    ) -> list[list]:
        day_start_ms = epoch_day * DAY_MS
        index = epoch_day + _EPOCH_OFFSET
        if not model.trades_on(index):
            return []
        cutoff = None
        if now_ms is not None:
            if now_ms < day_start_ms:
                return []
            if now_ms < day_start_ms + DAY_MS:
                cutoff = (now_ms - day_start_ms) // MINUTE_MS
        bars = day_bars(self.seed, model, index, step_ms // MINUTE_MS, cutoff)
        return _rows(bars, day_start_ms, step_ms, model.qty_decimals)
