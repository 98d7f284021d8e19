"""An offline Alternative.me ``/fng/`` for httpx.MockTransport, driven by the simulated market.

Each day's value follows the simulated BTC momentum of the days before it (greedy after rallies,
fearful after sell-offs) plus a little deterministic noise; classification bands are the ones the
real index uses (0-25 Extreme Fear, 26-46 Fear, 47-54 Neutral, 55-75 Greed, 76-100 Extreme Greed).
The wire format is the real one: strings for value and timestamp (seconds, midnight UTC), newest
first, ``time_until_update`` on the newest entry, ``limit=0`` for the full history from
2018-02-01, and about one day in 250 not published at all (like 2024-10-26 on the real index).
"""

import datetime as dt
import json
import math
import zlib
from collections.abc import Callable, Iterable

import httpx

from partitions import SymbolInfo
from resources.simulated.market import SimulatedMarket, daily_close, day_index

Clock = Callable[[], dt.datetime]
FNG_PATH = "/fng/"
FIRST_DAY = dt.date(2018, 2, 1)
MISSING_ONE_IN = 250
BANDS = ((25, "Extreme Fear"), (46, "Fear"), (54, "Neutral"), (75, "Greed"), (100, "Extreme Greed"))


def classify(value: int) -> str:
    return next(label for upper, label in BANDS if value <= upper)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class SimulatedFearGreedAPI:
    """Deterministic Fear & Greed history; pass ``handle_request`` to ``httpx.MockTransport``."""

    def __init__(self, seed: int = 7, universe: Iterable[SymbolInfo] | None = None, clock: Clock | None = None):
        self.seed = int(seed)
        self.market = SimulatedMarket(seed=seed, universe=universe)
        self.clock: Clock = clock or _utc_now
        self.requests: list[httpx.Request] = []
        self._values: dict[dt.date, int | None] = {}

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path.rstrip("/") != FNG_PATH.rstrip("/"):
            return httpx.Response(
                404, text="<html><head><title>404 Not Found</title></head><body>Not Found</body></html>"
            )
        raw_limit = request.url.params.get("limit", "1")
        if not raw_limit.isdigit():
            return self._json({"name": "Fear and Greed Index", "data": [], "metadata": {"error": "Invalid limit"}})
        now = self.clock()
        today = now.date()
        entries: list[dict[str, str]] = []
        limit = int(raw_limit)
        day = today
        while day >= FIRST_DAY and (limit == 0 or len(entries) < limit):
            value = self.value_on(day)
            if value is not None:
                stamp = int(dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC).timestamp())
                entries.append({"value": str(value), "value_classification": classify(value), "timestamp": str(stamp)})
            day -= dt.timedelta(days=1)
        if entries:
            midnight = dt.datetime.combine(today + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
            entries[0]["time_until_update"] = str(int((midnight - now).total_seconds()))
        return self._json({"name": "Fear and Greed Index", "data": entries, "metadata": {"error": None}})

    def value_on(self, day: dt.date) -> int | None:
        """The index published for ``day`` (None: not published that day)."""
        if day < FIRST_DAY:
            return None
        if day not in self._values:
            if zlib.crc32(f"{self.seed}:fng:{day.isoformat()}".encode()) % MISSING_ONE_IN == 0:
                self._values[day] = None
            else:
                model = self.market.model("BTCUSDT")
                index = day_index(day)
                week = math.log(daily_close(self.seed, model, index - 1) / daily_close(self.seed, model, index - 8))
                month = math.log(daily_close(self.seed, model, index - 1) / daily_close(self.seed, model, index - 31))
                noise = (zlib.crc32(f"{self.seed}:fng-noise:{day.isoformat()}".encode()) / 2**32 - 0.5) * 12
                self._values[day] = int(min(95, max(5, round(50 + 180 * week + 90 * month + noise))))
        return self._values[day]

    @staticmethod
    def _json(payload: object) -> httpx.Response:
        return httpx.Response(200, content=json.dumps(payload), headers={"Content-Type": "application/json"})
