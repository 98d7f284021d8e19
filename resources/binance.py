"""The Binance spot REST klines client (a Dagster resource), live or against the offline simulator.

Both sources run the same code: ``source="simulated"`` only swaps the httpx transport for
``SimulatedBinanceExchange.handle_request``. The client paginates ``GET /api/v3/klines`` (1000 bars
per request), paces itself on the ``X-MBX-USED-WEIGHT-1M`` header so it never hits the per-minute
weight limit (one budget across processes with ``CRYPTOLAKE_WEIGHT_BUDGET_URL``: resources/weight_budget.py), honours ``Retry-After`` on 429/418, retries 5xx and network failures with jittered
exponential backoff (tenacity), and turns Binance error payloads into exceptions that say what was
asked and what came back.
"""

import datetime as dt
import os
import time
from collections.abc import Callable
from typing import Any, Literal

import httpx
import polars as pl
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr, field_validator
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

from resources.kline_format import (
    INTERVAL_MS,
    KlineFormatError,
    bronze_klines_frame,
    datetime_to_ms,
    empty_bronze_klines,
    ms_to_datetime,
)
from resources.settings import source as configured_source
from resources.simulated.binance_exchange import ENDPOINT_WEIGHTS, SimulatedBinanceExchange
from resources.weight_budget import SharedWeightBudget

DEFAULT_BASE_URL = "https://data-api.binance.vision"
SIMULATED_BASE_URL = "https://simulated.binance.local"
BASE_URL_ENV_VAR = "CRYPTOLAKE_BINANCE_URL"
INTERVAL_ENV_VAR = "CRYPTOLAKE_INTERVAL"
KLINES_PATH = "/api/v3/klines"
KLINES_LIMIT = 1000
WEIGHT_HEADER = "X-MBX-USED-WEIGHT-1M"
INVALID_SYMBOL_CODE = -1121
INVALID_INTERVAL_CODE = -1120
_BODY_SNIPPET = 300

Clock = Callable[[], dt.datetime]
Sleep = Callable[[float], None]


class BinanceAPIError(RuntimeError):
    """Binance refused or failed a request (or sent something unusable); the message says both sides."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None, url: str = ""):
        super().__init__(message)
        self.status = status
        self.code = code
        self.url = url


class InvalidSymbolError(BinanceAPIError):
    """Binance answered -1121: the exchange does not know this symbol."""


class InvalidIntervalError(BinanceAPIError):
    """Binance answered -1120: the exchange does not know this interval."""


class BinancePayloadError(BinanceAPIError, KlineFormatError):
    """HTTP 200 but the body is not the expected JSON (e.g. not a list of 12-field klines)."""


class _Retryable(BinanceAPIError):
    """A failure worth retrying: 5xx, a timeout or a broken connection."""


class _RateLimited(_Retryable):
    """429 (over the limit) or 418 (IP banned): wait ``retry_after`` seconds, then retry."""

    def __init__(self, message: str, *, retry_after: float, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _snippet(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text if len(text) <= _BODY_SNIPPET else text[:_BODY_SNIPPET] + "…"


def _describe_range(symbol: str, interval: str, start_ms: int, end_ms: int) -> str:
    start, end = ms_to_datetime(start_ms).isoformat(), ms_to_datetime(end_ms).isoformat()
    return f"{symbol} {interval} klines [{start}, {end})"


class BinanceClient(ConfigurableResource):
    """Binance spot market data over REST (klines, ping, exchangeInfo) with pacing and retries."""

    source: Literal["binance", "simulated"] = Field(
        default="binance", description="binance = live REST API; simulated = offline deterministic exchange"
    )
    base_url: str = Field(default=DEFAULT_BASE_URL, description="REST root (ignored when simulated)")
    interval: str = Field(default="1h", description=f"Kline interval, one of {', '.join(INTERVAL_MS)}")
    timeout_seconds: float = Field(default=30.0, gt=0, le=300)
    max_retries: int = Field(default=5, ge=0, le=10, description="Retries after the first attempt")
    backoff_base_seconds: float = Field(default=1.0, ge=0, le=60)
    backoff_max_seconds: float = Field(default=30.0, ge=0, le=600)
    backoff_jitter_seconds: float = Field(default=1.0, ge=0, le=60)
    max_retry_after_seconds: float = Field(
        default=300.0, ge=0, description="Longer Retry-After (e.g. a 418 ban) fails instead of sleeping"
    )
    weight_limit_per_minute: int = Field(default=6000, gt=0)
    weight_safety_fraction: float = Field(default=0.9, gt=0, le=1)
    simulation_seed: int = Field(default=7, description="Seed of the simulated market")

    _transport: httpx.BaseTransport | None = PrivateAttr(default=None)
    _clock: Clock = PrivateAttr(default_factory=lambda: _utc_now)
    _sleep: Sleep | None = PrivateAttr(default=None)
    _http: httpx.Client | None = PrivateAttr(default=None)
    # The cross-process budget: None = not looked up yet, False = in-process pacing only.
    _budget: SharedWeightBudget | bool | None = PrivateAttr(default=None)
    _used_weight: int = PrivateAttr(default=0)
    _weight_minute: int = PrivateAttr(default=-1)
    _requests: int = PrivateAttr(default=0)
    _retries: int = PrivateAttr(default=0)
    _pacing_sleeps: int = PrivateAttr(default=0)
    _slept_seconds: float = PrivateAttr(default=0.0)

    @field_validator("interval")
    @classmethod
    def _known_interval(cls, value: str) -> str:
        if value not in INTERVAL_MS:
            raise ValueError(f"unsupported interval {value!r}; supported: {', '.join(INTERVAL_MS)}")
        return value

    # -- construction -----------------------------------------------------------------------
    @classmethod
    def from_env(cls, **overrides: Any) -> "BinanceClient":
        """``CRYPTOLAKE_SOURCE`` (binance|simulated, default binance), ``CRYPTOLAKE_INTERVAL`` and ``CRYPTOLAKE_BINANCE_URL``."""
        settings: dict[str, Any] = {"source": configured_source()}
        if os.environ.get(INTERVAL_ENV_VAR):
            settings["interval"] = os.environ[INTERVAL_ENV_VAR].strip()
        if os.environ.get(BASE_URL_ENV_VAR):
            settings["base_url"] = os.environ[BASE_URL_ENV_VAR].rstrip("/")
        return cls(**(settings | overrides))

    def with_transport(
        self,
        transport: httpx.BaseTransport | None = None,
        *,
        clock: Clock | None = None,
        sleep: Sleep | None = None,
    ) -> "BinanceClient":
        """A copy that talks through ``transport`` and uses ``clock``/``sleep`` (test seams)."""
        copy = type(self)(**self._public_config())
        copy._transport = transport if transport is not None else self._transport
        copy._clock = clock or self._clock
        copy._sleep = sleep or self._sleep
        copy._budget = self._budget
        return copy

    def with_weight_budget(self, budget: SharedWeightBudget | None) -> "BinanceClient":
        """This client, spending from ``budget`` (None: in-process pacing) instead of ``$CRYPTOLAKE_WEIGHT_BUDGET_URL``."""
        self._budget = budget if budget is not None else False
        return self

    def _public_config(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in type(self).model_fields}

    def _with_updated_values(self, values):
        # Dagster rebuilds resources from their config at run start; keep the injected seams.
        out = super()._with_updated_values(values)
        out._transport, out._clock, out._sleep = self._transport, self._clock, self._sleep
        out._budget = self._budget
        return out

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _client(self) -> httpx.Client:
        if self._http is None:
            transport, base_url = self._transport, self.base_url
            if self.source == "simulated":
                base_url = SIMULATED_BASE_URL
                if transport is None:
                    exchange = SimulatedBinanceExchange(
                        seed=self.simulation_seed,
                        clock=self._clock,
                        weight_limit_per_minute=self.weight_limit_per_minute,
                    )
                    transport = httpx.MockTransport(exchange.handle_request)
            self._http = httpx.Client(
                base_url=base_url,
                transport=transport,
                timeout=self.timeout_seconds,
                headers={"Accept": "application/json", "User-Agent": "cryptolake/0.1"},
            )
        return self._http

    # -- stats ------------------------------------------------------------------------------
    @property
    def request_count(self) -> int:
        """HTTP requests sent so far (retries included)."""
        return self._requests

    @property
    def used_weight(self) -> int:
        """The last ``X-MBX-USED-WEIGHT-1M`` Binance reported (0 once its minute is over)."""
        return self._used_weight if self._minute() == self._weight_minute else 0

    def stats(self) -> dict[str, int | float]:
        """Counters for materialization metadata."""
        return {
            "requests": self._requests,
            "used_weight": self._used_weight,
            "retries": self._retries,
            "pacing_sleeps": self._pacing_sleeps,
            "slept_seconds": round(self._slept_seconds, 3),
        }

    # -- public API -------------------------------------------------------------------------
    def ping(self) -> None:
        """``GET /api/v3/ping``; raises ``BinanceAPIError`` when Binance cannot be reached."""
        self._get("/api/v3/ping", {}, what="ping")

    def server_time(self) -> dt.datetime:
        """``GET /api/v3/time`` as a UTC datetime."""
        payload = self._get("/api/v3/time", {}, what="server time")
        try:
            return ms_to_datetime(int(payload["serverTime"]))
        except (TypeError, KeyError, ValueError):
            raise BinancePayloadError(f"server time: unexpected payload {str(payload)[:_BODY_SNIPPET]}") from None

    def exchange_symbols(self) -> set[str]:
        """Symbols currently TRADING according to ``GET /api/v3/exchangeInfo``."""
        payload = self._get("/api/v3/exchangeInfo", {}, what="exchange info")
        try:
            return {item["symbol"] for item in payload["symbols"] if item.get("status") == "TRADING"}
        except (TypeError, KeyError, AttributeError):
            raise BinancePayloadError(f"exchange info: unexpected payload {str(payload)[:_BODY_SNIPPET]}") from None

    def fetch_kline_rows(self, symbol: str, start_ms: int, end_ms: int) -> list[list]:
        """Raw kline arrays with ``start_ms <= open_time < end_ms``, paginated, as Binance sent them."""
        symbol = symbol.strip().upper()
        step = INTERVAL_MS[self.interval]
        rows: list[list] = []
        cursor = start_ms
        while cursor < end_ms:
            params = {
                "symbol": symbol,
                "interval": self.interval,
                "startTime": cursor,
                "endTime": end_ms - 1,  # Binance's endTime is inclusive on open_time
                "limit": KLINES_LIMIT,
            }
            what = _describe_range(symbol, self.interval, start_ms, end_ms)
            page = self._get(KLINES_PATH, params, what=what, symbol=symbol)
            if not isinstance(page, list):
                raise BinancePayloadError(
                    f"{what}: expected a JSON list of klines, got {type(page).__name__}: {str(page)[:_BODY_SNIPPET]}"
                )
            try:
                last_open = max(int(row[0]) for row in page) if page else None
            except (TypeError, ValueError, IndexError, KeyError):
                raise BinancePayloadError(
                    f"{what}: malformed kline in page starting {cursor}: {str(page[:2])[:_BODY_SNIPPET]}"
                ) from None
            rows.extend(page)
            if len(page) < KLINES_LIMIT or last_open is None:
                break
            if last_open < cursor:  # a server that ignores startTime would loop forever
                raise BinancePayloadError(f"{what}: page starting {cursor} ended before it ({last_open})")
            cursor = last_open + step
        return rows

    def fetch_klines(
        self, symbol: str, start: dt.datetime, end: dt.datetime, *, now: dt.datetime | None = None
    ) -> pl.DataFrame:
        """Closed klines with ``start <= open_time < end`` as a bronze frame (sorted, de-duplicated).

        The still-open last candle (close_time >= now) is dropped. A range without data (before
        listing, after delisting, an outage) gives an empty frame; bad symbols/intervals raise.
        """
        symbol = symbol.strip().upper()
        start_ms, end_ms = datetime_to_ms(start), datetime_to_ms(end)
        if start_ms >= end_ms:
            return empty_bronze_klines()
        now_ms = datetime_to_ms(now or self._clock())
        rows = self.fetch_kline_rows(symbol, start_ms, end_ms)
        if not rows:
            return empty_bronze_klines()
        try:
            frame = bronze_klines_frame(
                rows, symbol=symbol, interval=self.interval, source=self.source, ingested_at=self._clock()
            )
        except KlineFormatError as exc:
            raise BinancePayloadError(
                f"{_describe_range(symbol, self.interval, start_ms, end_ms)} from {self.base_url}: {exc}"
            ) from exc
        return (
            frame.filter(
                (pl.col("open_time") >= start_ms) & (pl.col("open_time") < end_ms) & (pl.col("close_time") < now_ms)
            )
            .unique(subset="open_time", keep="last", maintain_order=True)
            .sort("open_time")
        )

    def historical_trades(self, symbol: str, from_id: int, limit: int = 1000) -> list[dict]:
        """``GET /api/v3/historicalTrades``: up to ``limit`` trades with ``id >= from_id``, oldest first.

        Weight 25 per request (paced like every call); each item is Binance's
        ``{"id", "price", "qty", "quoteQty", "time", "isBuyerMaker", "isBestMatch"}``.
        """
        symbol = symbol.strip().upper()
        if not 1 <= limit <= 1000:
            raise ValueError(f"limit must be within 1..1000, got {limit}")
        what = f"{symbol} historical trades from id {from_id}"
        page = self._get(
            "/api/v3/historicalTrades",
            {"symbol": symbol, "fromId": int(from_id), "limit": int(limit)},
            what=what,
            symbol=symbol,
        )
        if not isinstance(page, list) or not all(
            isinstance(item, dict) and isinstance(item.get("id"), int) for item in page
        ):
            raise BinancePayloadError(f"{what}: expected a JSON list of trades, got {str(page)[:_BODY_SNIPPET]}")
        return page

    # -- HTTP with pacing and retries -------------------------------------------------------
    def _get(self, path: str, params: dict[str, Any], *, what: str, symbol: str | None = None) -> Any:
        weight = ENDPOINT_WEIGHTS.get(path, 1)
        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self._do_sleep,
            before_sleep=self._count_retry,
        )
        try:
            return retrying(self._attempt, path, params, weight=weight, what=what, symbol=symbol)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            attempts = exc.last_attempt.attempt_number
            raise BinanceAPIError(
                f"{what}: gave up after {attempts} attempt(s): {last}",
                status=getattr(last, "status", None),
                url=getattr(last, "url", ""),
            ) from last

    def _attempt(self, path: str, params: dict[str, Any], *, weight: int, what: str, symbol: str | None) -> Any:
        self._pace(weight)
        client = self._client()
        url = str(client.build_request("GET", path, params=params).url)
        self._requests += 1
        try:
            response = client.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise _Retryable(f"{what}: GET {url} timed out after {self.timeout_seconds}s ({exc!r})", url=url) from exc
        except httpx.TransportError as exc:
            raise _Retryable(f"{what}: GET {url} failed to connect: {exc!r}", url=url) from exc
        self._record_weight(response)
        if response.status_code == 200:
            try:
                return response.json()
            except ValueError:
                raise BinancePayloadError(
                    f"{what}: GET {url} returned HTTP 200 with a non-JSON body: {_snippet(response)}",
                    status=200,
                    url=url,
                ) from None
        self._raise_for_status(response, url=url, what=what, symbol=symbol)

    def _raise_for_status(self, response: httpx.Response, *, url: str, what: str, symbol: str | None) -> None:
        status = response.status_code
        context = f"{what}: GET {url} returned HTTP {status}: {_snippet(response)}"
        if status in (418, 429):
            retry_after = self._retry_after(response)
            if retry_after > self.max_retry_after_seconds:
                raise BinanceAPIError(
                    f"{context} (Retry-After {retry_after:.0f}s exceeds max_retry_after_seconds="
                    f"{self.max_retry_after_seconds:.0f}; not waiting)",
                    status=status,
                    url=url,
                )
            raise _RateLimited(context, retry_after=retry_after, status=status, url=url)
        if status >= 500:
            raise _Retryable(context, status=status, url=url)
        code = self._error_code(response)
        if code == INVALID_SYMBOL_CODE:
            raise InvalidSymbolError(
                f"Binance does not know symbol {symbol!r}. {context}", status=status, code=code, url=url
            )
        if code == INVALID_INTERVAL_CODE:
            raise InvalidIntervalError(
                f"Binance does not know interval {self.interval!r}. {context}", status=status, code=code, url=url
            )
        raise BinanceAPIError(context, status=status, code=code, url=url)

    @staticmethod
    def _error_code(response: httpx.Response) -> int | None:
        try:
            payload = response.json()
        except ValueError:
            return None
        code = payload.get("code") if isinstance(payload, dict) else None
        return code if isinstance(code, int) else None

    def _retry_after(self, response: httpx.Response) -> float:
        value = response.headers.get("Retry-After")
        try:
            return max(0.0, float(value))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return self._seconds_to_next_minute()  # the weight window resets each minute

    def _wait(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, _RateLimited):
            return exc.retry_after
        backoff = wait_exponential_jitter(
            multiplier=self.backoff_base_seconds, max=self.backoff_max_seconds, jitter=self.backoff_jitter_seconds
        )
        return backoff(retry_state)

    def _count_retry(self, retry_state: RetryCallState) -> None:
        self._retries += 1

    def _do_sleep(self, seconds: float) -> None:
        self._slept_seconds += seconds
        (self._sleep or time.sleep)(seconds)

    # -- request-weight pacing --------------------------------------------------------------
    def _minute(self) -> int:
        return datetime_to_ms(self._clock()) // 60_000

    def _seconds_to_next_minute(self) -> float:
        now_ms = datetime_to_ms(self._clock())
        return (60_000 - now_ms % 60_000) / 1000

    def _shared_budget(self) -> SharedWeightBudget | None:
        if self._budget is None:
            self._budget = SharedWeightBudget.from_env() or False
        return self._budget if isinstance(self._budget, SharedWeightBudget) else None

    def _pace(self, weight: int) -> None:
        """Sleep to the next minute when this request would push the window past the safety line.

        With a shared budget the window is the one every process spends from: the request's weight
        is claimed there first, and a refused claim sleeps to the next minute and tries again.
        """
        budget = self.weight_safety_fraction * self.weight_limit_per_minute
        shared = self._shared_budget()
        if shared is not None:
            # A request heavier than the whole budget still goes, alone in a fresh window.
            while not shared.try_spend(self._minute(), weight, max(budget, weight)):
                self._pacing_sleeps += 1
                self._do_sleep(self._seconds_to_next_minute())
            return
        if self.used_weight + weight > budget:
            self._pacing_sleeps += 1
            self._do_sleep(self._seconds_to_next_minute())
            self._used_weight = 0

    def _record_weight(self, response: httpx.Response) -> None:
        value = response.headers.get(WEIGHT_HEADER)
        if value is not None and value.isdigit():
            self._used_weight, self._weight_minute = int(value), self._minute()
            shared = self._shared_budget()
            if shared is not None:  # the exchange's count wins when higher (other clients on the IP)
                shared.observe(self._weight_minute, self._used_weight)
