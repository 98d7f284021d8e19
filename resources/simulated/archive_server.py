"""An offline data.binance.vision: spot kline dumps and their ``.CHECKSUM`` files, for httpx.MockTransport.

Serves ``/data/spot/{monthly,daily}/klines/{SYMBOL}/{interval}/{SYMBOL}-{interval}-{period}.zip``
and ``….zip.CHECKSUM`` built from the same ``SimulatedMarket`` candles the fake REST exchange
serves, in the real dump format: one CSV member named like the zip, no header row, the 12 kline
columns, millisecond timestamps up to 2024-12-31 and **microseconds from 2025-01-01**
(close_time = open_time + interval − 1 µs), CHECKSUM as ``sha256sum`` prints it
(``<hex>  <name>.zip``). A period is published once it has closed (a day after its end, like
Binance); anything else answers 404 with S3's ``NoSuchKey`` XML.
"""

import datetime as dt
import hashlib
import io
import re
import threading
import zipfile
from collections.abc import Callable, Iterable

import httpx

from partitions import SymbolInfo
from resources.kline_format import INTERVAL_MS
from resources.simulated.market import DAY_MS, SimulatedMarket, UnknownSymbolError

Clock = Callable[[], dt.datetime]
MICROSECONDS_FROM = dt.date(2025, 1, 1)
PUBLISH_DELAY = dt.timedelta(hours=6)  # a closed period appears a few hours after it ends
_PATH = re.compile(
    r"^/data/spot/(?P<period>monthly|daily)/klines/(?P<symbol>[A-Z0-9]+)/(?P<interval>[0-9a-zA-Z]+)/"
    r"(?P=symbol)-(?P=interval)-(?P<label>\d{4}-\d{2}(?:-\d{2})?)\.zip(?P<checksum>\.CHECKSUM)?$"
)
_ZIP_TIMESTAMP = (2025, 1, 1, 0, 0, 0)


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _epoch_ms(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days * DAY_MS


def period_bounds(period: str, label: str) -> tuple[dt.date, dt.date]:
    """[first day, day after the last) of a ``monthly`` YYYY-MM or ``daily`` YYYY-MM-DD label."""
    if period == "daily":
        day = dt.date.fromisoformat(label)
        return day, day + dt.timedelta(days=1)
    first = dt.date.fromisoformat(label + "-01")
    following = dt.date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following


def dump_csv(rows: list[list], microseconds: bool) -> bytes:
    """Kline rows as a Binance dump CSV (no header, ``\\n`` line ends), times in ms or µs."""
    lines = []
    for row in rows:
        fields = [str(value) for value in row]
        if microseconds:
            fields[0] = str(int(row[0]) * 1000)
            fields[6] = str(int(row[6]) * 1000 + 999)  # open + interval − 1 µs
        lines.append(",".join(fields))
    return ("\n".join(lines) + "\n").encode()


def zip_bytes(member_name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        info = zipfile.ZipInfo(member_name, date_time=_ZIP_TIMESTAMP)
        info.compress_type = zipfile.ZIP_DEFLATED
        archive.writestr(info, content)
    return buffer.getvalue()


def checksum_text(content: bytes, zip_name: str) -> str:
    return f"{hashlib.sha256(content).hexdigest()}  {zip_name}\n"


def not_found(key: str) -> httpx.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchKey</Code>'
        f"<Message>The specified key does not exist.</Message><Key>{key}</Key></Error>"
    )
    return httpx.Response(404, content=body.encode(), headers={"Content-Type": "application/xml"})


class SimulatedArchiveServer:
    """Deterministic kline dumps; pass ``handle_request`` to ``httpx.MockTransport``."""

    def __init__(self, seed: int = 7, universe: Iterable[SymbolInfo] | None = None, clock: Clock | None = None):
        self.market = SimulatedMarket(seed=seed, universe=universe)
        self.clock: Clock = clock or _utc_now
        self.requests: list[httpx.Request] = []
        self._cache: dict[tuple[str, str, str, str], bytes | None] = {}
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = request.url.path
        match = _PATH.match(path)
        if request.method not in ("GET", "HEAD") or match is None:
            return not_found(path.lstrip("/"))
        content = self.zip_for(match["period"], match["symbol"], match["interval"], match["label"])
        if content is None:
            return not_found(path.lstrip("/"))
        zip_name = path.rsplit("/", 1)[-1].removesuffix(".CHECKSUM")
        if match["checksum"]:
            return httpx.Response(
                200, content=checksum_text(content, zip_name).encode(), headers={"Content-Type": "text/plain"}
            )
        return httpx.Response(200, content=content, headers={"Content-Type": "application/zip"})

    def zip_for(self, period: str, symbol: str, interval: str, label: str) -> bytes | None:
        """The dump's bytes, or None when Binance would not have published it (yet)."""
        key = (period, symbol, interval, label)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        content = self._build(period, symbol, interval, label)
        with self._lock:
            self._cache[key] = content
        return content

    def _build(self, period: str, symbol: str, interval: str, label: str) -> bytes | None:
        if interval not in INTERVAL_MS or (period == "daily") != (len(label) == 10):
            return None
        try:
            first, following = period_bounds(period, label)
            self.market.model(symbol)
        except (ValueError, UnknownSymbolError):
            return None
        published_at = dt.datetime.combine(following, dt.time(), tzinfo=dt.UTC) + PUBLISH_DELAY
        if self.clock() < published_at:
            return None
        rows = self.market.klines(symbol, interval, _epoch_ms(first), _epoch_ms(following))
        if not rows:
            return None
        name = f"{symbol}-{interval}-{label}"
        return zip_bytes(f"{name}.csv", dump_csv(rows, microseconds=first >= MICROSECONDS_FROM))
