"""CoinGecko market data: ``GET /api/v3/coins/markets`` as a Dagster resource, and its bronze frame.

The endpoint is a point-in-time snapshot (no history): one row per coin with market cap, rank,
supplies, 24 h figures and ATH/ATL. The 26 standard fields are kept with CoinGecko's nulls
(``max_supply``, ``total_supply``, ``fully_diluted_valuation``, the 24 h fields of stale coins) and
``roi`` as an object or null. Extra fields some callers ask for (``price_change_percentage_*``) are
ignored. Both the API's plain list and the ``{"updated": ..., "data": [...]}`` shape of saved
snapshots parse.

API keys are optional and come through Dagster ``EnvVar``: a Demo key is sent as
``x-cg-demo-api-key`` to api.coingecko.com, a Pro key as ``x-cg-pro-api-key`` to
pro-api.coingecko.com. Keys never appear in URLs, messages or the resource's repr.
"""

import datetime as dt
import os
from collections.abc import Callable, Sequence
from typing import Any
from urllib.parse import urlparse

import httpx
import polars as pl
from dagster import EnvVar
from pydantic import Field

from resources.http_source import HTTPSourceResource, SourceHTTPError, secret_value, snippet
from resources.settings import source as configured_source

PUBLIC_BASE_URL = "https://api.coingecko.com/api/v3"
PRO_BASE_URL = "https://pro-api.coingecko.com/api/v3"
BASE_URL_ENV_VAR = "CRYPTOLAKE_COINGECKO_URL"
DEMO_KEY_ENV_VAR = "COINGECKO_DEMO_API_KEY"
PRO_KEY_ENV_VAR = "COINGECKO_PRO_API_KEY"
DEMO_KEY_HEADER = "x-cg-demo-api-key"
PRO_KEY_HEADER = "x-cg-pro-api-key"
MARKETS_PATH = "coins/markets"
MAX_PER_PAGE = 250
MAX_PAGES = 100

ROI_TYPE = pl.Struct({"times": pl.Float64(), "currency": pl.String(), "percentage": pl.Float64()})
# The 26 standard fields of /coins/markets, in CoinGecko's order, as bronze stores them
# (numbers as JSON gave them, timestamps as the ISO strings CoinGecko sent).
MARKET_FIELDS = pl.Schema(
    {
        "id": pl.String(),
        "symbol": pl.String(),
        "name": pl.String(),
        "image": pl.String(),
        "current_price": pl.Float64(),
        "market_cap": pl.Float64(),
        "market_cap_rank": pl.Int64(),
        "fully_diluted_valuation": pl.Float64(),
        "total_volume": pl.Float64(),
        "high_24h": pl.Float64(),
        "low_24h": pl.Float64(),
        "price_change_24h": pl.Float64(),
        "price_change_percentage_24h": pl.Float64(),
        "market_cap_change_24h": pl.Float64(),
        "market_cap_change_percentage_24h": pl.Float64(),
        "circulating_supply": pl.Float64(),
        "total_supply": pl.Float64(),
        "max_supply": pl.Float64(),
        "ath": pl.Float64(),
        "ath_change_percentage": pl.Float64(),
        "ath_date": pl.String(),
        "atl": pl.Float64(),
        "atl_change_percentage": pl.Float64(),
        "atl_date": pl.String(),
        "roi": ROI_TYPE,
        "last_updated": pl.String(),
    }
)
BRONZE_COINGECKO_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        **MARKET_FIELDS,
        "ingested_at": pl.Datetime("us", "UTC"),
    }
)
_REQUIRED = ("id", "symbol", "name", "last_updated")


class CoinGeckoError(SourceHTTPError):
    """CoinGecko answered with an error (the message carries its status/error_code and text)."""


class CoinGeckoAuthError(CoinGeckoError):
    """401/403 or error_code 10002/10005/10010/10011: a missing, wrong or wrong-host API key."""


class CoinGeckoPayloadError(CoinGeckoError, ValueError):
    """HTTP 200 with a body that is not a list of market objects of the documented shape."""


def _error_text(response: httpx.Response) -> str:
    """CoinGecko's error bodies: ``{"status": {"error_code", "error_message"}}`` or ``{"error": "..."}``."""
    try:
        payload = response.json()
    except ValueError:
        return snippet(response)
    if isinstance(payload, dict):
        status = payload.get("status") or (payload.get("error") if isinstance(payload.get("error"), dict) else None)
        if isinstance(status, dict) and "status" in status and isinstance(status["status"], dict):
            status = status["status"]
        if isinstance(status, dict) and ("error_code" in status or "error_message" in status):
            return f"error_code {status.get('error_code')}: {status.get('error_message')}"
        if isinstance(payload.get("error"), str):
            return payload["error"]
    return snippet(response)


def split_snapshot(payload: Any) -> tuple[list[dict], str | None]:
    """The coin objects of a /coins/markets body (plain list) or a saved ``{"updated", "data"}`` snapshot."""
    if isinstance(payload, dict) and isinstance(payload.get("data"), list):
        updated = payload.get("updated")
        return payload["data"], updated if isinstance(updated, str) else None
    if isinstance(payload, list):
        return payload, None
    raise CoinGeckoPayloadError(
        f"CoinGecko markets: expected a JSON list of coins (or {{'updated', 'data'}}), got {type(payload).__name__}: "
        f"{str(payload)[:300]}"
    )


def _check_value(coin_id: str, name: str, value: Any, dtype: pl.DataType) -> Any:
    if value is None:
        return None
    if name == "roi":
        if not isinstance(value, dict):
            raise CoinGeckoPayloadError(f"CoinGecko coin {coin_id!r}: roi must be an object or null, got {value!r}")
        return {"times": value.get("times"), "currency": value.get("currency"), "percentage": value.get("percentage")}
    if isinstance(dtype, pl.String):
        if not isinstance(value, str):
            raise CoinGeckoPayloadError(f"CoinGecko coin {coin_id!r}: {name} must be a string, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise CoinGeckoPayloadError(f"CoinGecko coin {coin_id!r}: {name} must be a number or null, got {value!r}")
    if isinstance(dtype, pl.Int64):
        if float(value) != int(value):
            raise CoinGeckoPayloadError(f"CoinGecko coin {coin_id!r}: {name} must be an integer, got {value!r}")
        return int(value)
    return float(value)


def coingecko_markets_frame(coins: Sequence[Any], *, snapshot_date: dt.date, ingested_at: dt.datetime) -> pl.DataFrame:
    """Bronze rows for coin objects: the 26 standard fields (nulls kept), snapshot date and ingestion time."""
    rows = []
    for index, coin in enumerate(coins):
        if not isinstance(coin, dict):
            raise CoinGeckoPayloadError(f"CoinGecko markets: item #{index} is not an object: {str(coin)[:200]}")
        missing = [name for name in _REQUIRED if not coin.get(name)]
        if missing:
            raise CoinGeckoPayloadError(f"CoinGecko markets: item #{index} lacks {missing}: {str(coin)[:200]}")
        coin_id = coin["id"]
        rows.append({name: _check_value(coin_id, name, coin.get(name), dtype) for name, dtype in MARKET_FIELDS.items()})
    frame = pl.DataFrame(rows, schema=MARKET_FIELDS, orient="row") if rows else pl.DataFrame(schema=MARKET_FIELDS)
    return frame.with_columns(
        date=pl.lit(snapshot_date, dtype=pl.Date()),
        ingested_at=pl.lit(ingested_at, dtype=pl.Datetime("us", "UTC")),
    ).select(list(BRONZE_COINGECKO_SCHEMA))


def empty_coingecko_markets() -> pl.DataFrame:
    return pl.DataFrame(schema=BRONZE_COINGECKO_SCHEMA)


class CoinGeckoClient(HTTPSourceResource):
    """CoinGecko ``/coins/markets`` (USD) with paging, optional Demo/Pro key, 429 backoff."""

    source_label = "CoinGecko"
    simulated_base_url = "https://simulated.coingecko.local/api/v3"

    base_url: str | None = Field(
        default=None,
        description="API root; default api.coingecko.com/api/v3 (pro-api.coingecko.com/api/v3 with a Pro key)",
    )
    demo_api_key: str | None = Field(default=None, repr=False, description="Demo API key (use EnvVar)")
    pro_api_key: str | None = Field(default=None, repr=False, description="Pro API key (use EnvVar)")
    vs_currency: str = Field(default="usd")
    per_page: int = Field(default=MAX_PER_PAGE, ge=1, le=MAX_PER_PAGE)

    @classmethod
    def from_env(cls, **overrides: Any) -> "CoinGeckoClient":
        """``CRYPTOLAKE_SOURCE``, ``CRYPTOLAKE_COINGECKO_URL``, and the optional key variables via ``EnvVar``."""
        settings: dict[str, Any] = {"source": "simulated" if configured_source() == "simulated" else "live"}
        if os.environ.get(BASE_URL_ENV_VAR):
            settings["base_url"] = os.environ[BASE_URL_ENV_VAR].strip().rstrip("/")
        if os.environ.get(DEMO_KEY_ENV_VAR):
            settings["demo_api_key"] = EnvVar(DEMO_KEY_ENV_VAR)
        if os.environ.get(PRO_KEY_ENV_VAR):
            settings["pro_api_key"] = EnvVar(PRO_KEY_ENV_VAR)
        return cls(**(settings | overrides))

    # -- HTTPSourceResource hooks -----------------------------------------------------------
    def configured_base_url(self) -> str:
        demo, pro = secret_value(self.demo_api_key), secret_value(self.pro_api_key)
        if demo and pro:
            raise CoinGeckoAuthError("CoinGecko: configure either a Demo or a Pro API key, not both")
        url = (self.base_url or (PRO_BASE_URL if pro else PUBLIC_BASE_URL)).rstrip("/")
        host = urlparse(url).hostname or ""
        if pro and host == "api.coingecko.com":
            raise CoinGeckoAuthError("CoinGecko: a Pro API key must be used with https://pro-api.coingecko.com/api/v3")
        if demo and host == "pro-api.coingecko.com":
            raise CoinGeckoAuthError("CoinGecko: a Demo API key must be used with https://api.coingecko.com/api/v3")
        return url

    def request_headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json"}
        if self.source == "simulated":
            return headers
        demo, pro = secret_value(self.demo_api_key), secret_value(self.pro_api_key)
        if pro:
            headers[PRO_KEY_HEADER] = pro
        elif demo:
            headers[DEMO_KEY_HEADER] = demo
        return headers

    def simulated_handler(self) -> Callable[[httpx.Request], httpx.Response]:
        from resources.simulated.coingecko_api import SimulatedCoinGeckoAPI

        return SimulatedCoinGeckoAPI(seed=self.simulation_seed, clock=self._clock).handle_request

    # -- API --------------------------------------------------------------------------------
    def fetch_markets(self, ids: Sequence[str]) -> list[dict]:
        """Market objects for CoinGecko ``ids`` (all pages), as CoinGecko sent them."""
        ids = sorted({i.strip() for i in ids if i and i.strip()})
        if not ids:
            return []
        coins: list[dict] = []
        for page in range(1, MAX_PAGES + 1):
            params = {
                "vs_currency": self.vs_currency,
                "ids": ",".join(ids),
                "order": "market_cap_desc",
                "per_page": self.per_page,
                "page": page,
                "sparkline": "false",
            }
            what = f"coins/markets page {page} ({len(ids)} ids)"
            response = self.get(MARKETS_PATH, params, what=what)
            batch = self._json(response, what)
            coins.extend(batch)
            if len(batch) < self.per_page:
                return coins
        raise CoinGeckoError(f"CoinGecko: coins/markets returned more than {MAX_PAGES} full pages; stopping")

    def markets_frame(self, ids: Sequence[str], *, snapshot_date: dt.date | None = None) -> pl.DataFrame:
        """The current snapshot for ``ids`` as bronze rows (snapshot date = UTC day of ingestion)."""
        ingested_at = self.now()
        coins = self.fetch_markets(ids)
        return coingecko_markets_frame(
            coins, snapshot_date=snapshot_date or ingested_at.date(), ingested_at=ingested_at
        )

    def _json(self, response: httpx.Response, what: str) -> list[dict]:
        status = response.status_code
        url = str(response.request.url)
        if status == 200:
            try:
                payload = response.json()
            except ValueError:
                raise CoinGeckoPayloadError(
                    f"CoinGecko: {what}: GET {url} returned HTTP 200 with a non-JSON body: {snippet(response)}",
                    status=200,
                    url=url,
                ) from None
            coins, _ = split_snapshot(payload)
            return coins
        text = _error_text(response)
        message = f"CoinGecko: {what}: GET {url} returned HTTP {status}: {text}"
        if status in (401, 403) or any(code in text for code in ("10002", "10005", "10010", "10011")):
            raise CoinGeckoAuthError(
                message + " (check the API key and that its plan matches the host)", status=status, url=url
            )
        raise CoinGeckoError(message, status=status, url=url)
