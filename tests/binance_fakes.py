"""Test doubles for the Binance client: a controllable clock and scripted HTTP responses."""

import datetime as dt
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx

REALDATA = Path(__file__).resolve().parents[1].parent / "shared" / "realdata"
REST_JSON = REALDATA / "binance_rest_json"


class FakeClock:
    """``clock()`` returns ``now``; ``sleep(s)`` records ``s`` and advances ``now`` by it."""

    def __init__(self, now: dt.datetime):
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> dt.datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += dt.timedelta(seconds=seconds)


def json_response(
    payload: object, status: int = 200, *, weight: int = 2, headers: dict | None = None
) -> httpx.Response:
    base = {
        "Content-Type": "application/json;charset=UTF-8",
        "X-MBX-USED-WEIGHT": str(weight),
        "X-MBX-USED-WEIGHT-1M": str(weight),
    }
    return httpx.Response(status, content=json.dumps(payload), headers=base | (headers or {}))


def binance_error(status: int, code: int, msg: str, *, headers: dict | None = None) -> httpx.Response:
    """Binance's error shape: ``{"code": -1121, "msg": "Invalid symbol."}``."""
    return json_response({"code": code, "msg": msg}, status, headers=headers)


Step = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


class ScriptedBinance:
    """Answers requests with the given steps in order (the last one repeats); records requests."""

    def __init__(self, steps: Iterable[Step]):
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps[min(len(self.requests), len(self.steps)) - 1]
        if isinstance(step, Exception):
            raise step
        if callable(step) and not isinstance(step, httpx.Response):
            return step(request)
        return step

    @property
    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self)

    def params(self, index: int) -> dict[str, str]:
        return dict(self.requests[index].url.params)


def synthetic_klines(first_open_ms: int, count: int, interval_ms: int) -> list[list]:
    """``count`` well-formed kline rows on an interval grid (prices encode the bar number)."""
    return [
        [
            first_open_ms + i * interval_ms,
            f"{100 + i}.00000000",
            f"{101 + i}.00000000",
            f"{99 + i}.00000000",
            f"{100 + i}.50000000",
            "1.00000000",
            first_open_ms + (i + 1) * interval_ms - 1,
            "100.00000000",
            10,
            "0.50000000",
            "50.00000000",
            "0",
        ]
        for i in range(count)
    ]


def klines_server(rows: list[list]) -> Callable[[httpx.Request], httpx.Response]:
    """A handler honouring startTime/endTime (inclusive)/limit over ``rows``, like Binance."""

    def handle(request: httpx.Request) -> httpx.Response:
        params = request.url.params
        start, end = int(params["startTime"]), int(params["endTime"])
        limit = int(params.get("limit", 500))
        page = [row for row in rows if start <= row[0] <= end][:limit]
        return json_response(page)

    return handle
