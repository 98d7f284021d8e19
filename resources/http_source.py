"""The HTTP plumbing shared by the public-data clients (CoinGecko, Fear & Greed, the kline archive).

One ``GET`` with tenacity retries: 429 waits ``Retry-After`` (or backs off when the header is
absent), 5xx, timeouts and refused connections back off exponentially with jitter; anything else
comes back to the caller, who knows what a 404 or a 401 means for its API. A host that stays
unreachable raises ``SourceUnavailableError`` so callers can fall back instead of failing.

``source="simulated"`` swaps in an ``httpx.MockTransport`` over an offline fake speaking the same
wire format, exactly like the Binance client; ``with_transport`` injects any transport for tests.
"""

import datetime as dt
import time
from collections.abc import Callable
from typing import Any, ClassVar, Literal

import httpx
from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field, PrivateAttr
from tenacity import (
    RetryCallState,
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential_jitter,
)

Sleep = Callable[[float], None]
Clock = Callable[[], dt.datetime]
_BODY_SNIPPET = 300


class SourceHTTPError(RuntimeError):
    """A public-data API refused or failed a request; the message says what was asked and what came back."""

    def __init__(self, message: str, *, status: int | None = None, url: str = ""):
        super().__init__(message)
        self.status = status
        self.url = url


class SourceUnavailableError(SourceHTTPError):
    """The host could not be reached (DNS, refused, timeouts) even after retries."""


class _Retryable(SourceHTTPError):
    pass


class _Unreachable(_Retryable):
    pass


class _RateLimited(_Retryable):
    def __init__(self, message: str, *, retry_after: float | None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


def snippet(response: httpx.Response) -> str:
    text = response.text.strip().replace("\n", " ")
    return text if len(text) <= _BODY_SNIPPET else text[:_BODY_SNIPPET] + "…"


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class HTTPSourceResource(ConfigurableResource):
    """Base of the public-data clients: base URL, transport selection, retries and backoff."""

    source_label: ClassVar[str] = "HTTP source"
    simulated_base_url: ClassVar[str] = "https://simulated.local"

    source: Literal["live", "simulated"] = Field(
        default="live", description="live = the real API at base_url; simulated = the offline fake"
    )
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    max_retries: int = Field(default=4, ge=0, le=10, description="Retries after the first attempt")
    backoff_base_seconds: float = Field(default=1.0, ge=0, le=60)
    backoff_max_seconds: float = Field(default=30.0, ge=0, le=600)
    backoff_jitter_seconds: float = Field(default=1.0, ge=0, le=60)
    max_retry_after_seconds: float = Field(
        default=120.0, ge=0, description="A longer Retry-After fails the request instead of sleeping"
    )
    simulation_seed: int = Field(default=7, description="Seed of the simulated market behind the fake")

    _transport: httpx.BaseTransport | None = PrivateAttr(default=None)
    _sleep: Sleep | None = PrivateAttr(default=None)
    _clock: Clock = PrivateAttr(default_factory=lambda: _utc_now)
    _http: httpx.Client | None = PrivateAttr(default=None)
    _requests: int = PrivateAttr(default=0)
    _retries: int = PrivateAttr(default=0)
    _slept_seconds: float = PrivateAttr(default=0.0)

    # -- subclass hooks -------------------------------------------------------------------
    def configured_base_url(self) -> str:
        raise NotImplementedError

    def simulated_handler(self) -> Callable[[httpx.Request], httpx.Response]:
        raise NotImplementedError

    def request_headers(self) -> dict[str, str]:
        return {}

    # -- construction -----------------------------------------------------------------------
    def with_transport(
        self, transport: httpx.BaseTransport | None = None, *, sleep: Sleep | None = None, clock: Clock | None = None
    ):
        """A copy that talks through ``transport`` and sleeps/reads time through the given seams (tests)."""
        copy = type(self)(**{name: getattr(self, name) for name in type(self).model_fields})
        copy._transport = transport if transport is not None else self._transport
        copy._sleep = sleep or self._sleep
        copy._clock = clock or self._clock
        return copy

    def _with_updated_values(self, values):
        out = super()._with_updated_values(values)
        out._transport, out._sleep, out._clock = self._transport, self._sleep, self._clock
        return out

    def teardown_after_execution(self, context: InitResourceContext) -> None:
        self.close()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    @property
    def root_url(self) -> str:
        """Where requests go: the configured base URL, or the fake's when simulated."""
        return self.simulated_base_url if self.source == "simulated" else self.configured_base_url().rstrip("/")

    def now(self) -> dt.datetime:
        return self._clock()

    def _client(self) -> httpx.Client:
        if self._http is None:
            transport = self._transport
            if transport is None and self.source == "simulated":
                transport = httpx.MockTransport(self.simulated_handler())
            self._http = httpx.Client(
                base_url=self.root_url,
                transport=transport,
                timeout=self.timeout_seconds,
                headers={"User-Agent": "cryptolake/0.1"} | self.request_headers(),
                follow_redirects=True,
            )
        return self._http

    def stats(self) -> dict[str, int | float]:
        return {"requests": self._requests, "retries": self._retries, "slept_seconds": round(self._slept_seconds, 3)}

    # -- GET with retries -------------------------------------------------------------------
    def get(self, path: str, params: dict[str, Any] | None = None, *, what: str) -> httpx.Response:
        """GET ``path``; retries 429/5xx/network failures; returns any other response to the caller.

        Raises ``SourceUnavailableError`` when the host stays unreachable and ``SourceHTTPError``
        when retries run out on 429/5xx (or Retry-After exceeds ``max_retry_after_seconds``).
        """
        retrying = Retrying(
            stop=stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=retry_if_exception_type(_Retryable),
            sleep=self._do_sleep,
            before_sleep=self._count_retry,
        )
        try:
            return retrying(self._attempt, path, params or {}, what)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            attempts = exc.last_attempt.attempt_number
            error_type = SourceUnavailableError if isinstance(last, _Unreachable) else SourceHTTPError
            raise error_type(
                f"{self.source_label}: {what}: gave up after {attempts} attempt(s): {last}",
                status=getattr(last, "status", None),
                url=getattr(last, "url", ""),
            ) from last

    def _attempt(self, path: str, params: dict[str, Any], what: str) -> httpx.Response:
        client = self._client()
        url = str(client.build_request("GET", path, params=params).url)
        self._requests += 1
        try:
            response = client.get(path, params=params)
        except httpx.TimeoutException as exc:
            raise _Unreachable(f"GET {url} timed out after {self.timeout_seconds}s ({exc!r})", url=url) from exc
        except httpx.TransportError as exc:
            raise _Unreachable(f"GET {url} failed to connect: {exc!r}", url=url) from exc
        status = response.status_code
        if status == 429:
            retry_after = _retry_after(response)
            message = f"{what}: GET {url} returned HTTP 429: {snippet(response)}"
            if retry_after is not None and retry_after > self.max_retry_after_seconds:
                raise SourceHTTPError(
                    f"{self.source_label}: {message} (Retry-After {retry_after:.0f}s exceeds "
                    f"max_retry_after_seconds={self.max_retry_after_seconds:.0f}; not waiting)",
                    status=status,
                    url=url,
                )
            raise _RateLimited(message, retry_after=retry_after, status=status, url=url)
        if status >= 500 or status == 408:
            raise _Retryable(f"{what}: GET {url} returned HTTP {status}: {snippet(response)}", status=status, url=url)
        return response

    def _wait(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, _RateLimited) and exc.retry_after is not None:
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


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    try:
        return max(0.0, float(value))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def secret_value(value: str | None) -> str | None:
    """The value of a config field that may still be an unresolved Dagster ``EnvVar``."""
    if value is None:
        return None
    get_value = getattr(value, "get_value", None)
    return get_value() if callable(get_value) else str(value)
