"""The one place that knows the Binance kline wire format and its time units.

Binance REST returns klines as 12-element JSON arrays with millisecond timestamps; the public spot
dumps on data.binance.vision carry the same 12 columns without a header, in milliseconds up to
2024-12-31 and in **microseconds from 2025-01-01**. Every source converts rows to the bronze frame
here, so a candle from the archive and the same candle from REST give identical bronze rows.
"""

import datetime as dt
from collections.abc import Sequence

import polars as pl

# Order of the 12 fields in a REST kline array and in a dump CSV row.
KLINE_FIELDS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_asset_volume",
    "number_of_trades",
    "taker_buy_base_volume",
    "taker_buy_quote_volume",
    "ignore",
)
_INT_FIELDS = {"open_time", "close_time", "number_of_trades"}

# Intervals CryptoLake supports, in milliseconds (Binance also has 1s, 3d, 1w and 1M).
INTERVAL_MS: dict[str, int] = {
    "1m": 60_000,
    "3m": 3 * 60_000,
    "5m": 5 * 60_000,
    "15m": 15 * 60_000,
    "30m": 30 * 60_000,
    "1h": 3_600_000,
    "2h": 2 * 3_600_000,
    "4h": 4 * 3_600_000,
    "6h": 6 * 3_600_000,
    "8h": 8 * 3_600_000,
    "12h": 12 * 3_600_000,
    "1d": 86_400_000,
}

# Timestamps above this are microseconds: 1e14 ms is the year 5138, 1e14 µs is 1973.
_MICROSECOND_THRESHOLD = 100_000_000_000_000

BRONZE_KLINES_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "symbol": pl.String(),
        "open_time": pl.Int64(),
        "open": pl.String(),
        "high": pl.String(),
        "low": pl.String(),
        "close": pl.String(),
        "volume": pl.String(),
        "close_time": pl.Int64(),
        "quote_asset_volume": pl.String(),
        "number_of_trades": pl.Int64(),
        "taker_buy_base_volume": pl.String(),
        "taker_buy_quote_volume": pl.String(),
        "ignore": pl.String(),
        "interval": pl.String(),
        "source": pl.String(),
        "ingested_at": pl.Datetime("us", "UTC"),
    }
)


class KlineFormatError(ValueError):
    """A kline row that does not have the Binance shape (12 fields, integer times)."""


def interval_ms(interval: str) -> int:
    try:
        return INTERVAL_MS[interval]
    except KeyError:
        raise KlineFormatError(f"unsupported interval {interval!r}; supported: {', '.join(INTERVAL_MS)}") from None


def to_milliseconds(timestamp: int) -> int:
    """Normalise a Binance timestamp (ms, or µs in 2025+ spot dumps) to epoch milliseconds."""
    timestamp = int(timestamp)
    return timestamp // 1000 if timestamp >= _MICROSECOND_THRESHOLD else timestamp


def ms_to_datetime(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


def datetime_to_ms(value: dt.datetime) -> int:
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: CryptoLake works in UTC, pass tz-aware values")
    return int(value.timestamp() * 1000)


def _as_text(value: object) -> str:
    return value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)


def milliseconds_expr(column: str) -> pl.Expr:
    """``to_milliseconds`` as a Polars expression (the same µs threshold), for columnar input."""
    value = pl.col(column)
    return pl.when(value >= _MICROSECOND_THRESHOLD).then(value // 1000).otherwise(value)


def bronze_klines_frame_from_text(
    fields: pl.DataFrame,
    *,
    symbol: str,
    interval: str,
    source: str,
    ingested_at: dt.datetime,
) -> pl.DataFrame:
    """``bronze_klines_frame`` for a frame of 12 text columns (a dump CSV read without a header).

    Columnar, with the same result as the row path; anything the cast cannot take (a missing field,
    a non-integer time) goes through the row path, which raises its ``KlineFormatError``.
    """
    if fields.width != len(KLINE_FIELDS) or fields.is_empty() or any(fields.null_count().row(0)):
        return bronze_klines_frame(
            fields.rows(), symbol=symbol, interval=interval, source=source, ingested_at=ingested_at
        )
    named = fields.rename(dict(zip(fields.columns, KLINE_FIELDS))).cast(pl.String)
    numbers = named.select(pl.col(name).str.strip_chars().cast(pl.Int64, strict=False) for name in sorted(_INT_FIELDS))
    if any(numbers.null_count().row(0)):
        return bronze_klines_frame(
            fields.rows(), symbol=symbol, interval=interval, source=source, ingested_at=ingested_at
        )
    frame = named.with_columns(numbers).with_columns(
        open_time=milliseconds_expr("open_time"), close_time=milliseconds_expr("close_time")
    )
    return (
        frame.with_columns(
            date=pl.from_epoch("open_time", time_unit="ms").dt.date(),
            symbol=pl.lit(symbol, dtype=pl.String()),
            interval=pl.lit(interval, dtype=pl.String()),
            source=pl.lit(source, dtype=pl.String()),
            ingested_at=pl.lit(ingested_at, dtype=pl.Datetime("us", "UTC")),
        )
        .select(list(BRONZE_KLINES_SCHEMA))
        .cast(BRONZE_KLINES_SCHEMA)
    )


def bronze_klines_frame(
    rows: Sequence[Sequence[object]],
    *,
    symbol: str,
    interval: str,
    source: str,
    ingested_at: dt.datetime,
) -> pl.DataFrame:
    """Turn raw kline rows (REST arrays or dump CSV fields) into bronze rows.

    Price and volume fields stay the exact strings the exchange sent; times become epoch ms.
    A row without 12 fields or with a non-integer time raises ``KlineFormatError`` naming the row.
    """
    columns: dict[str, list] = {name: [] for name in KLINE_FIELDS}
    for index, row in enumerate(rows):
        if not isinstance(row, (list, tuple)) or len(row) != len(KLINE_FIELDS):
            raise KlineFormatError(
                f"{symbol} {interval}: kline #{index} has {len(row) if isinstance(row, (list, tuple)) else 'no'} "
                f"fields, expected {len(KLINE_FIELDS)}: {str(row)[:200]}"
            )
        for name, value in zip(KLINE_FIELDS, row):
            if name in _INT_FIELDS:
                try:
                    number = int(value)  # type: ignore[arg-type]
                except (TypeError, ValueError):
                    raise KlineFormatError(
                        f"{symbol} {interval}: kline #{index} field {name}={value!r} is not an integer"
                    ) from None
                columns[name].append(to_milliseconds(number) if name != "number_of_trades" else number)
            else:
                columns[name].append(_as_text(value))
    frame = pl.DataFrame(columns, schema={name: BRONZE_KLINES_SCHEMA[name] for name in KLINE_FIELDS})
    return (
        frame.with_columns(
            date=pl.from_epoch("open_time", time_unit="ms").dt.date(),
            symbol=pl.lit(symbol, dtype=pl.String()),
            interval=pl.lit(interval, dtype=pl.String()),
            source=pl.lit(source, dtype=pl.String()),
            ingested_at=pl.lit(ingested_at, dtype=pl.Datetime("us", "UTC")),
        )
        .select(list(BRONZE_KLINES_SCHEMA))
        .cast(BRONZE_KLINES_SCHEMA)
    )


def empty_bronze_klines() -> pl.DataFrame:
    return pl.DataFrame(schema=BRONZE_KLINES_SCHEMA)
