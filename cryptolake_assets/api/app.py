"""The CryptoLake read API: versioned routes over the published lake (JSON, CSV or Arrow).

Every input is validated before any read; bad input is a 4xx whose JSON body names the parameter
(``{"error": ..., "parameter": ...}``) and nothing is ever a 500 (an unexpected failure is a 503).
"""

import datetime as dt
import io
import time
from typing import Any

import polars as pl
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from cryptolake_assets.api.lake_reader import LakeReader, TableNotPublished

FORMATS = ("json", "csv", "arrow")
ARROW_MEDIA_TYPE = "application/vnd.apache.arrow.stream"
#: The table whose newest date stands for each layer's freshness.
LAYER_TABLES = {"silver": "ohlcv", "gold": "daily_features"}
FRESH_WITHIN = dt.timedelta(days=2)  # yesterday's partition is due by today; older means stale


class BadParameter(ValueError):
    def __init__(self, parameter: str, message: str, status: int = 400):
        super().__init__(message)
        self.parameter, self.status = parameter, status


def _parse_date(name: str, value: str | None) -> dt.date:
    if value is None or value == "":
        raise BadParameter(name, f"{name} is required (YYYY-MM-DD)", 422)
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise BadParameter(name, f"{name}={value!r} is not a date (YYYY-MM-DD)") from None


def _parse_format(value: str) -> str:
    if value not in FORMATS:
        raise BadParameter("format", f"format={value!r}: expected one of {', '.join(FORMATS)}")
    return value


MEDIA_TYPES = {"json": "application/json", "csv": "text/csv", "arrow": ARROW_MEDIA_TYPE}


def encode(frame: pl.DataFrame, fmt: str) -> bytes:
    if fmt == "csv":
        return frame.write_csv().encode()
    if fmt == "arrow":
        sink = io.BytesIO()
        frame.write_ipc_stream(sink)
        return sink.getvalue()
    return frame.write_json().encode()


def render(frame: pl.DataFrame, fmt: str, version: int | None = None) -> Response:
    return encoded(encode(frame, fmt), fmt, version)


def encoded(body: bytes, fmt: str, version: int | None) -> Response:
    headers = {"X-Lake-Version": str(version)} if version is not None else {}
    return Response(body, media_type=MEDIA_TYPES[fmt], headers=headers)


def create_app(reader: LakeReader, max_range_days: int = 731) -> FastAPI:
    """The FastAPI app reading ``reader``'s lake; ``max_range_days`` bounds start..end."""
    app = FastAPI(title="CryptoLake read API", version="1", description="Reads the published Delta lake.")
    registry = CollectorRegistry()
    requests = Counter("cryptolake_api_requests", "API requests", ["route", "status"], registry=registry)
    latency = Histogram(
        "cryptolake_api_request_seconds",
        "API request latency",
        ["route"],
        registry=registry,
        buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
    )
    lag = Gauge(
        "cryptolake_lake_freshness_lag_seconds",
        "Now minus the end of the newest published day",
        ["layer"],
        registry=registry,
    )

    app.add_middleware(MeasuredRequests, requests=requests, latency=latency)

    @app.exception_handler(BadParameter)
    async def _bad_parameter(request: Request, exc: BadParameter):
        return JSONResponse({"error": str(exc), "parameter": exc.parameter}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "body", "path")]
        parameter = loc[-1] if loc else None
        return JSONResponse(
            {"error": f"{parameter}: {first.get('msg', 'invalid')}", "parameter": parameter}, status_code=422
        )

    @app.exception_handler(TableNotPublished)
    async def _not_published(request: Request, exc: TableNotPublished):
        return JSONResponse({"error": str(exc)}, status_code=503)

    async def query(layer: str, table: str, key, compute) -> tuple[int, Any]:
        """A memoised result is answered on the event loop; a table load or a computation runs in
        the thread pool, so the loop keeps serving repeated queries meanwhile."""
        hit = reader.cached(layer, table, key)
        if hit is not None:
            return hit
        return await run_in_threadpool(reader.query, layer, table, key, compute)

    async def symbols() -> tuple[int, list[str]]:
        return await query("silver", "ohlcv", "symbols", lambda f: sorted(f["symbol"].unique().to_list()))

    async def _range(symbol: str, start: str | None, end: str | None) -> tuple[dt.date, dt.date]:
        first, last = _parse_date("start", start), _parse_date("end", end)
        if first > last:
            raise BadParameter("start", f"start {first} is after end {last}")
        if (last - first).days + 1 > max_range_days:
            raise BadParameter("end", f"start..end spans {(last - first).days + 1} days; at most {max_range_days}")
        if symbol not in (await symbols())[1]:
            raise BadParameter("symbol", f"unknown symbol {symbol!r} (see /v1/symbols)", 404)
        return first, last

    async def _symbol_range_query(
        layer: str, table: str, symbol: str, first: dt.date, last: dt.date, sort: str, fmt: str
    ):
        """The encoded response body, memoised per table version: a repeated query is a lookup."""

        def compute(frame: pl.DataFrame) -> bytes:
            rows = frame.filter((pl.col("symbol") == symbol) & pl.col("date").is_between(first, last)).sort(sort)
            return encode(rows, fmt)

        version, body = await query(layer, table, ("range", symbol, first, last, fmt), compute)
        return encoded(body, fmt, version)

    @app.get("/v1/symbols")
    async def get_symbols(format: str = "json") -> Response:
        """Symbols with published bars."""
        fmt = _parse_format(format)
        version, names = await symbols()
        return render(pl.DataFrame({"symbol": names}, schema={"symbol": pl.String}), fmt, version)

    @app.get("/v1/bars")
    async def get_bars(symbol: str, start: str | None = None, end: str | None = None, format: str = "json") -> Response:
        """silver.ohlcv bars of ``symbol`` for the UTC days start..end (inclusive)."""
        fmt = _parse_format(format)
        first, last = await _range(symbol, start, end)
        return await _symbol_range_query("silver", "ohlcv", symbol, first, last, "open_time", fmt)

    @app.get("/v1/features")
    async def get_features(
        symbol: str, start: str | None = None, end: str | None = None, format: str = "json"
    ) -> Response:
        """gold.daily_features rows of ``symbol`` for start..end (inclusive)."""
        fmt = _parse_format(format)
        first, last = await _range(symbol, start, end)
        return await _symbol_range_query("gold", "daily_features", symbol, first, last, "date", fmt)

    @app.get("/v1/correlations")
    async def get_correlations(date: str | None = None, format: str = "json") -> Response:
        """The 30-day correlation matrix of one day: JSON ``{date, symbols, matrix}``; csv/arrow: pairs."""
        fmt = _parse_format(format)
        day = _parse_date("date", date)
        version, pairs = await query(
            "gold",
            "correlations",
            ("day", day),
            lambda f: f.filter(pl.col("date") == day).sort("symbol_a", "symbol_b"),
        )
        if pairs.is_empty():
            raise BadParameter("date", f"no correlations published for {day}", 404)
        if fmt != "json":
            return render(pairs, fmt, version)
        names = sorted(set(pairs["symbol_a"]) | set(pairs["symbol_b"]))
        index = {s: i for i, s in enumerate(names)}
        matrix: list[list[float | None]] = [
            [1.0 if i == j else None for j in range(len(names))] for i in range(len(names))
        ]
        for a, b, c in pairs.select("symbol_a", "symbol_b", "corr_30d").iter_rows():
            matrix[index[a]][index[b]] = matrix[index[b]][index[a]] = c
        return JSONResponse(
            {"date": day.isoformat(), "symbols": names, "matrix": matrix}, headers={"X-Lake-Version": str(version)}
        )

    @app.get("/v1/market")
    async def get_market(date: str | None = None, format: str = "json") -> Response:
        """gold.market_daily and gold.market_overview for one day (JSON: both; csv/arrow: market_daily)."""
        fmt = _parse_format(format)
        day = _parse_date("date", date)
        version, daily = await query("gold", "market_daily", ("day", day), lambda f: f.filter(pl.col("date") == day))
        if daily.is_empty():
            raise BadParameter("date", f"no market data published for {day}", 404)
        if fmt != "json":
            return render(daily, fmt, version)
        try:
            _, overview = await query(
                "gold", "market_overview", ("day", day), lambda f: f.filter(pl.col("date") == day)
            )
        except TableNotPublished:
            overview = pl.DataFrame()
        return JSONResponse(
            {"date": day.isoformat(), "market_daily": _rows(daily), "market_overview": _rows(overview)},
            headers={"X-Lake-Version": str(version)},
        )

    async def _layer_health(now: dt.datetime) -> dict[str, Any]:
        layers: dict[str, Any] = {}
        for layer, table in LAYER_TABLES.items():
            try:
                version, newest = await query(layer, table, "newest", lambda f: f["date"].max() if len(f) else None)
            except TableNotPublished:
                layers[layer] = {"table": f"{layer}/{table}", "state": "unpublished", "newest_partition": None}
                continue
            state, lag_seconds = "empty", None
            if newest is not None:
                end_of_day = dt.datetime.combine(newest + dt.timedelta(days=1), dt.time(), tzinfo=dt.UTC)
                lag_seconds = max(0.0, (now - end_of_day).total_seconds())
                state = "fresh" if now - end_of_day <= FRESH_WITHIN - dt.timedelta(days=1) else "stale"
                lag.labels(layer).set(lag_seconds)
            quarantined = None
            if layer == "silver" and newest is not None:
                try:
                    _, quarantined = await query(
                        "silver",
                        "ohlcv_quarantine",
                        ("rows", newest),
                        lambda f, day=newest: int(f.filter(pl.col("date") == day).height),
                    )
                except TableNotPublished:
                    pass
            layers[layer] = {
                "table": f"{layer}/{table}",
                "version": version,
                "state": state,
                "newest_partition": newest.isoformat() if newest else None,
                "lag_seconds": lag_seconds,
                **({"quarantined_rows_newest_day": quarantined} if quarantined is not None else {}),
                "failing_checks": await failing_checks(layer),
            }
        return layers

    async def failing_checks(layer: str) -> list[dict[str, Any]] | None:
        """The layer's checks whose latest result fails on some partition (None: no results published)."""
        try:
            _, failing = await query(
                "quality", "check_results", ("failing", layer), lambda f: _failing_checks(f, layer)
            )
        except TableNotPublished:
            return None
        return failing

    @app.get("/v1/health")
    async def get_health() -> JSONResponse:
        """Per layer: newest published partition, freshness state and lag, quarantined rows."""
        layers = await _layer_health(dt.datetime.now(dt.UTC))
        ok = all(
            v["state"] == "fresh" and not any(c["severity"] == "ERROR" for c in v.get("failing_checks") or [])
            for v in layers.values()
        )
        return JSONResponse({"status": "ok" if ok else "degraded", "layers": layers})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        await _layer_health(dt.datetime.now(dt.UTC))
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app


class MeasuredRequests:
    """ASGI middleware: request counts and latency per route, and a 503 (never a 500) for an
    unexpected failure. Plain ASGI rather than ``@app.middleware("http")``, whose per-request task
    and streamed body cost more CPU than the cached routes themselves."""

    def __init__(self, app, requests: Counter, latency: Histogram):
        self.app, self.requests, self.latency = app, requests, latency

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500, "sent": False}

        async def send_measured(message) -> None:
            if message["type"] == "http.response.start":
                status["code"], status["sent"] = message["status"], True
            await send(message)

        try:
            await self.app(scope, receive, send_measured)
        except Exception as exc:
            if status["sent"]:
                raise
            await JSONResponse({"error": f"lake unavailable: {exc}"}, status_code=503)(scope, receive, send_measured)
        finally:
            name = getattr(scope.get("route"), "path", "unmatched")
            self.requests.labels(name, str(status["code"])).inc()
            self.latency.labels(name).observe(time.perf_counter() - started)


def _failing_checks(results: pl.DataFrame, layer: str, examples: int = 10) -> list[dict[str, Any]]:
    """Per failing (asset, check): its severity, failing partitions (count and the newest few) and rows."""
    failing = results.filter((pl.col("layer") == layer) & ~pl.col("passed"))
    if failing.is_empty():
        return []
    partition = (
        pl.when(pl.col("symbol").is_null())
        .then(pl.col("date").cast(pl.String))
        .otherwise(pl.format("{}|{}", "date", "symbol"))
    )
    grouped = (
        failing.with_columns(partition=partition)
        .sort("date", "symbol", descending=True, nulls_last=True)
        .group_by("asset", "check_name", "severity", maintain_order=True)
        .agg(
            failing_partitions=pl.len(),
            failing_rows=pl.col("failing_rows").sum(),
            newest_failing=pl.col("partition").head(examples),
            last_evaluated_at=pl.col("evaluated_at").max(),
        )
        .sort("asset", "check_name")
    )
    return [
        {**row, "last_evaluated_at": row["last_evaluated_at"].isoformat() if row["last_evaluated_at"] else None}
        for row in grouped.iter_rows(named=True)
    ]


def _rows(frame: pl.DataFrame) -> list[dict[str, Any]]:
    import json

    return json.loads(frame.write_json()) if len(frame) else []
