"""The Crypto Fear & Greed Index of Alternative.me: ``GET /fng/?limit=N`` as a Dagster resource.

The API answers ``{"name": ..., "data": [...], "metadata": {"error": null}}``, newest first; each
entry has ``value`` and ``timestamp`` as *strings* (timestamp in seconds, midnight UTC),
``value_classification`` (kept exactly as given) and, on the newest entry only,
``time_until_update``. ``limit=0`` returns the whole history (since 2018-02-01), so any backfill is
one request. Days the index did not publish (e.g. 2024-10-26) are simply absent; bronze keeps
what arrived and silver flags the gaps.
"""

import datetime as dt
import os
from collections.abc import Callable
from typing import Any

import httpx
import polars as pl
from pydantic import Field

from resources.http_source import HTTPSourceResource, SourceHTTPError, snippet
from resources.settings import source as configured_source

DEFAULT_BASE_URL = "https://api.alternative.me"
BASE_URL_ENV_VAR = "CRYPTOLAKE_FNG_URL"
FNG_PATH = "fng/"
FULL_HISTORY = 0
FIRST_INDEX_DAY = dt.date(2018, 2, 1)

BRONZE_FEAR_GREED_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "value": pl.String(),
        "value_classification": pl.String(),
        "timestamp": pl.String(),
        "time_until_update": pl.String(),
        "ingested_at": pl.Datetime("us", "UTC"),
    }
)


class FearGreedError(SourceHTTPError):
    """The Fear & Greed API failed or reported an error in ``metadata.error``."""


class FearGreedPayloadError(FearGreedError, ValueError):
    """An answer that does not have the documented shape (e.g. a non-numeric value or timestamp)."""


def _entry_day(entry: Any, index: int) -> dt.date:
    if not isinstance(entry, dict):
        raise FearGreedPayloadError(f"Fear & Greed: entry #{index} is not an object: {str(entry)[:200]}")
    for name in ("value", "value_classification", "timestamp"):
        if not isinstance(entry.get(name), str) or not entry[name].strip():
            raise FearGreedPayloadError(f"Fear & Greed: entry #{index} lacks a string {name!r}: {str(entry)[:200]}")
    if not entry["timestamp"].isdigit():
        raise FearGreedPayloadError(
            f"Fear & Greed: entry #{index} timestamp {entry['timestamp']!r} is not epoch seconds"
        )
    if not entry["value"].isdigit() or not 0 <= int(entry["value"]) <= 100:
        raise FearGreedPayloadError(f"Fear & Greed: entry #{index} value {entry['value']!r} is not an integer 0..100")
    return dt.datetime.fromtimestamp(int(entry["timestamp"]), dt.UTC).date()


def fear_greed_entries(payload: Any) -> list[dict]:
    """The ``data`` list of an API body, after checking ``metadata.error``."""
    if not isinstance(payload, dict) or not isinstance(payload.get("data"), list):
        raise FearGreedPayloadError(f"Fear & Greed: expected an object with a 'data' list, got {str(payload)[:300]}")
    error = (payload.get("metadata") or {}).get("error") if isinstance(payload.get("metadata"), dict) else None
    if error:
        raise FearGreedError(f"Fear & Greed API reported an error: {error}")
    return payload["data"]


def fear_greed_frame(entries: list[Any], *, ingested_at: dt.datetime) -> pl.DataFrame:
    """Bronze rows: the entries as received (strings), their UTC day, and the ingestion time; sorted by day.

    Two entries for one day would make the day ambiguous and raise.
    """
    rows = []
    for index, entry in enumerate(entries):
        day = _entry_day(entry, index)
        until = entry.get("time_until_update")
        rows.append(
            {
                "date": day,
                "value": entry["value"],
                "value_classification": entry["value_classification"],
                "timestamp": entry["timestamp"],
                "time_until_update": None if until is None else str(until),
                "ingested_at": ingested_at,
            }
        )
    frame = pl.DataFrame(rows, schema=BRONZE_FEAR_GREED_SCHEMA, orient="row") if rows else empty_fear_greed()
    duplicated = frame.filter(pl.col("date").is_duplicated())["date"].unique().sort().to_list()
    if duplicated:
        raise FearGreedPayloadError(f"Fear & Greed: several entries for the day(s) {duplicated[:5]}")
    return frame.sort("date")


def empty_fear_greed() -> pl.DataFrame:
    return pl.DataFrame(schema=BRONZE_FEAR_GREED_SCHEMA)


def limit_for(first_day: dt.date, today: dt.date) -> int:
    """The ``limit`` that reaches back to ``first_day`` in one request (0 = full history)."""
    if first_day <= FIRST_INDEX_DAY:
        return FULL_HISTORY
    return (today - first_day).days + 2  # +1 for today, +1 in case today's value is not out yet


class FearGreedClient(HTTPSourceResource):
    """Alternative.me's Fear & Greed Index (no API key), with retries and 429 backoff."""

    source_label = "Fear & Greed (alternative.me)"
    simulated_base_url = "https://simulated.alternative.local"

    base_url: str = Field(default=DEFAULT_BASE_URL, description="API root (mirror/proxy), see CRYPTOLAKE_FNG_URL")

    @classmethod
    def from_env(cls, **overrides: Any) -> "FearGreedClient":
        settings: dict[str, Any] = {"source": "simulated" if configured_source() == "simulated" else "live"}
        if os.environ.get(BASE_URL_ENV_VAR):
            settings["base_url"] = os.environ[BASE_URL_ENV_VAR].strip().rstrip("/")
        return cls(**(settings | overrides))

    def configured_base_url(self) -> str:
        return self.base_url

    def request_headers(self) -> dict[str, str]:
        return {"Accept": "application/json"}

    def simulated_handler(self) -> Callable[[httpx.Request], httpx.Response]:
        from resources.simulated.fear_greed_api import SimulatedFearGreedAPI

        return SimulatedFearGreedAPI(seed=self.simulation_seed, clock=self._clock).handle_request

    def fetch_entries(self, limit: int) -> list[dict]:
        """``GET /fng/?limit=N`` (0 = full history): the entries as sent, newest first."""
        if limit < 0:
            raise ValueError(f"limit must be >= 0 (0 = full history), got {limit}")
        what = f"fng limit={limit}"
        response = self.get(FNG_PATH, {"limit": limit, "format": "json"}, what=what)
        url = str(response.request.url)
        if response.status_code != 200:
            raise FearGreedError(
                f"{self.source_label}: {what}: GET {url} returned HTTP {response.status_code}: {snippet(response)}",
                status=response.status_code,
                url=url,
            )
        try:
            payload = response.json()
        except ValueError:
            raise FearGreedPayloadError(
                f"{self.source_label}: GET {url} returned a non-JSON body: {snippet(response)}"
            ) from None
        return fear_greed_entries(payload)

    def history_frame(self, first_day: dt.date) -> pl.DataFrame:
        """Bronze rows from ``first_day`` to today, in one request."""
        ingested_at = self.now()
        entries = self.fetch_entries(limit_for(first_day, ingested_at.date()))
        return fear_greed_frame(entries, ingested_at=ingested_at).filter(pl.col("date") >= first_day)
