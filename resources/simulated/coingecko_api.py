"""An offline CoinGecko ``/api/v3/coins/markets`` for httpx.MockTransport, built on the simulated market.

Prices, 24 h ranges and volumes come from the same simulated candles as the fake Binance (so the
two agree); supplies are fixed per coin (approximately real for the large ones). The shape is the
real one: the 26 standard fields in CoinGecko's order, numbers as JSON numbers, ``roi`` an object
or null, ``max_supply``/``total_supply``/``fully_diluted_valuation`` null where a coin has none,
and a delisted coin served stale (old ``last_updated``, null 24 h fields) as CoinGecko does.
Errors: 400 ``{"error": "invalid vs_currency"}``, 404 for other paths, and, with
``rate_limit_per_minute``, 429 with the real ``{"status": {"error_code": 429, ...}}`` body and
``Retry-After``.
"""

import datetime as dt
import json
import threading
import zlib
from collections.abc import Callable, Iterable

import httpx

from partitions import SymbolInfo
from resources.simulated.market import DAY_MS, SimulatedMarket, daily_close, day_index

Clock = Callable[[], dt.datetime]
MARKETS_PATH = "/api/v3/coins/markets"
PING_PATH = "/api/v3/ping"
MAX_PER_PAGE = 250
RATE_LIMIT_MESSAGE = (
    "You've exceeded the Rate Limit. Please visit https://www.coingecko.com/en/api/pricing to subscribe "
    "to our API plans for higher rate limits."
)
# (circulating, total, max) supply for the large coins, roughly as on CoinGecko in 2025.
KNOWN_SUPPLY: dict[str, tuple[float, float | None, float | None]] = {
    "bitcoin": (19_850_000.0, 19_850_000.0, 21_000_000.0),
    "ethereum": (120_700_000.0, 120_700_000.0, None),
    "ripple": (58_900_000_000.0, 99_986_000_000.0, 100_000_000_000.0),
    "cardano": (35_600_000_000.0, 44_990_000_000.0, 45_000_000_000.0),
    "solana": (485_000_000.0, 595_000_000.0, None),
    "dogecoin": (148_500_000_000.0, 148_500_000_000.0, None),
    "usd-coin": (60_000_000_000.0, 60_000_000_000.0, None),
    "dai": (5_300_000_000.0, 5_300_000_000.0, None),
    "chainlink": (638_000_000.0, 1_000_000_000.0, 1_000_000_000.0),
}
_EXCHANGE_VOLUME_MULTIPLE = 3.2  # CoinGecko aggregates all exchanges; Binance is a share of it


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _uniform(text: str, salt: int) -> float:
    return zlib.crc32(f"{text}:{salt}".encode()) / 2**32


def _iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _round(value: float, digits: int = 8) -> float:
    return float(f"{value:.{digits}g}")


class SimulatedCoinGeckoAPI:
    """Deterministic CoinGecko markets; pass ``handle_request`` to ``httpx.MockTransport``."""

    def __init__(
        self,
        seed: int = 7,
        universe: Iterable[SymbolInfo] | None = None,
        clock: Clock | None = None,
        rate_limit_per_minute: int | None = None,
    ):
        self.market = SimulatedMarket(seed=seed, universe=universe)
        self.clock: Clock = clock or _utc_now
        self.rate_limit_per_minute = rate_limit_per_minute
        self.requests: list[httpx.Request] = []
        self._minute, self._calls = -1, 0
        self._lock = threading.Lock()
        self._extremes: dict[tuple[str, int], tuple[float, int, float, int]] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        now = self.clock()
        if self._over_limit(now):
            retry_after = 60 - now.second
            return self._json(
                {"status": {"error_code": 429, "error_message": RATE_LIMIT_MESSAGE}},
                429,
                {"Retry-After": str(retry_after)},
            )
        path = request.url.path
        if path == PING_PATH:
            return self._json({"gecko_says": "(V3) To the Moon!"})
        if path != MARKETS_PATH:
            return self._json({"error": "Incorrect path. Please check https://www.coingecko.com/api/"}, 404)
        params = request.url.params
        vs_currency = params.get("vs_currency")
        if not vs_currency:
            return self._json({"error": "Missing parameter vs_currency"}, 400)
        if vs_currency.lower() != "usd":
            return self._json({"error": "invalid vs_currency"}, 400)
        try:
            per_page = min(MAX_PER_PAGE, max(1, int(params.get("per_page", "100"))))
            page = max(1, int(params.get("page", "1")))
        except ValueError:
            return self._json({"error": "invalid per_page or page"}, 400)
        coins = self.markets(now)
        ids = [i.strip() for i in params.get("ids", "").split(",") if i.strip()]
        if ids:
            wanted = set(ids)
            coins = [coin for coin in coins if coin["id"] in wanted]
        start = (page - 1) * per_page
        return self._json(coins[start : start + per_page])

    # -- data -------------------------------------------------------------------------------
    def markets(self, now: dt.datetime) -> list[dict]:
        """Every coin of the universe CoinGecko would know at ``now``, by market cap descending."""
        coins = [coin for info in self.market.universe.values() if (coin := self._coin(info, now)) is not None]
        coins.sort(key=lambda coin: (-coin["market_cap"], coin["id"]))
        for rank, coin in enumerate(coins, start=1):
            coin["market_cap_rank"] = rank
        return coins

    def _coin(self, info: SymbolInfo, now: dt.datetime) -> dict | None:
        if not info.coingecko_id or info.listed_on > now.date():
            return None
        now_ms = int(now.timestamp() * 1000)
        delisted_on = info.delisted_on
        stale = delisted_on is not None and now.date() > delisted_on
        last_ms = (day_index_ms(delisted_on) + DAY_MS - 1) if delisted_on is not None and stale else now_ms
        rows = self.market.klines(info.symbol, "1h", last_ms - 25 * 3_600_000, last_ms + 1, now_ms=last_ms)
        if not rows:
            return None
        recent = [row for row in rows if row[0] > last_ms - 24 * 3_600_000 - 3_600_000]
        price = float(recent[-1][4])
        before = float(recent[0][1])
        circulating, total, maximum = self._supply(info)
        market_cap = round(price * circulating)
        market_cap_before = round(before * circulating)
        fully_diluted = maximum if maximum is not None else total
        ath, ath_day, atl, atl_day = self._extremes_until(info, (last_ms // DAY_MS))
        ath, atl = max(ath, price), min(atl, price)
        updated = now - dt.timedelta(seconds=5 + int(20 * _uniform(info.coingecko_id, 9)))
        if delisted_on is not None and stale:
            updated = dt.datetime.combine(delisted_on, dt.time(23, 58, 1), tzinfo=dt.UTC)
        day_fields = {
            "high_24h": _round(max(float(row[2]) for row in recent)),
            "low_24h": _round(min(float(row[3]) for row in recent)),
            "price_change_24h": _round(price - before),
            "price_change_percentage_24h": round((price / before - 1) * 100, 5),
            "market_cap_change_24h": market_cap - market_cap_before,
            "market_cap_change_percentage_24h": round((market_cap / market_cap_before - 1) * 100, 5)
            if market_cap_before
            else None,
        }
        if stale:
            day_fields = dict.fromkeys(day_fields)
        quote_volume = sum(float(row[7]) for row in recent) * _EXCHANGE_VOLUME_MULTIPLE
        return {
            "id": info.coingecko_id,
            "symbol": info.base_asset.lower(),
            "name": info.name,
            "image": f"https://coin-images.coingecko.com/coins/images/{zlib.crc32(info.coingecko_id.encode()) % 40000}/large/{info.coingecko_id}.png",
            "current_price": _round(price),
            "market_cap": market_cap,
            "market_cap_rank": None,
            "fully_diluted_valuation": None if fully_diluted is None else round(price * fully_diluted),
            "total_volume": 0 if stale else round(quote_volume),
            "high_24h": day_fields["high_24h"],
            "low_24h": day_fields["low_24h"],
            "price_change_24h": day_fields["price_change_24h"],
            "price_change_percentage_24h": day_fields["price_change_percentage_24h"],
            "market_cap_change_24h": day_fields["market_cap_change_24h"],
            "market_cap_change_percentage_24h": day_fields["market_cap_change_percentage_24h"],
            "circulating_supply": circulating,
            "total_supply": total,
            "max_supply": maximum,
            "ath": _round(ath),
            "ath_change_percentage": round((price / ath - 1) * 100, 5),
            "ath_date": _day_iso(ath_day),
            "atl": _round(atl),
            "atl_change_percentage": round((price / atl - 1) * 100, 5),
            "atl_date": _day_iso(atl_day),
            "roi": self._roi(info, price),
            "last_updated": _iso(updated),
        }

    def _supply(self, info: SymbolInfo) -> tuple[float, float | None, float | None]:
        if info.coingecko_id in KNOWN_SUPPLY:
            return KNOWN_SUPPLY[info.coingecko_id]
        model = self.market.model(info.symbol)
        target_cap = 10 ** (8.3 + 1.7 * _uniform(info.coingecko_id, 1))
        circulating = float(round(target_cap / model.anchor_price))
        total = float(round(circulating * (1 + 0.6 * _uniform(info.coingecko_id, 2))))
        maximum = total if _uniform(info.coingecko_id, 3) < 0.5 else None
        return circulating, total, maximum

    @staticmethod
    def _roi(info: SymbolInfo, price: float) -> dict | None:
        """CoinGecko has an ICO ROI for a few coins only (e.g. Ethereum, priced in BTC)."""
        if info.coingecko_id != "ethereum":
            return None
        times = price / 0.311 - 1
        return {"times": times, "currency": "usd", "percentage": times * 100}

    def _extremes_until(self, info: SymbolInfo, epoch_day: int) -> tuple[float, int, float, int]:
        """(ath, its epoch day, atl, its epoch day) over daily closes up to the day before ``epoch_day``."""
        key = (info.symbol, epoch_day)
        if key not in self._extremes:
            model = self.market.model(info.symbol)
            first = day_index(info.listed_on)
            offset = day_index(dt.date(1970, 1, 1))
            last = max(first, epoch_day + offset - 1)
            closes = [(daily_close(self.market.seed, model, index), index - offset) for index in range(first, last + 1)]
            high = max(closes, key=lambda pair: pair[0])
            low = min(closes, key=lambda pair: pair[0])
            self._extremes[key] = (high[0], high[1], low[0], low[1])
        return self._extremes[key]

    def _over_limit(self, now: dt.datetime) -> bool:
        if self.rate_limit_per_minute is None:
            return False
        minute = int(now.timestamp()) // 60
        with self._lock:
            if minute != self._minute:
                self._minute, self._calls = minute, 0
            self._calls += 1
            return self._calls > self.rate_limit_per_minute

    @staticmethod
    def _json(payload: object, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.Response(
            status,
            content=json.dumps(payload, separators=(",", ":"), allow_nan=False),
            headers={"Content-Type": "application/json; charset=utf-8"} | (headers or {}),
        )


def day_index_ms(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * DAY_MS


def _day_iso(epoch_day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=epoch_day)).isoformat() + "T00:00:00.000Z"
