"""Gold computations as pure Polars functions (no Dagster): daily bars, per-symbol daily features,
30-day correlations, category and market summaries.

Windows are calendar-day windows ending on the row's date. Each symbol's days are laid on a full
calendar (a day without bars is a null), and a window is the list of its last n calendar values: a
value is null unless all n are present. Every window is evaluated from its own values rather than
with a sliding sum (Polars' ``rolling_*`` kernels add and subtract as they slide, so their last bits
depend on where the frame starts); this keeps a row bit-identical whatever range it is computed in.
Means add the window's values newest first, one shifted column at a time (the arithmetic of
``list.mean`` on the window's list, without building it); maxima use ``rolling_max`` (a maximum
has no rounding); the volatility's standard deviation is ``list.std`` of a window list built with
one gather.

Daily bars read their silver input (a DataFrame or a lazy scan) in pieces of whole symbols, so a
scan never holds more than one piece in memory, and input already in (symbol, open_time) order,
as silver is stored, needs no sort.
"""

import datetime as dt
import math
import operator
from collections.abc import Sequence
from functools import reduce

import numpy as np
import polars as pl

from partitions.expected_bars import with_expected_slots

# The longest look-back: volatility_30d needs closes D-30 .. D.
LOOKBACK_DAYS = 30
CORRELATION_DAYS = 30
# Window ends per correlation block: the rows of one block are built from NumPy arrays at once.
CORRELATION_BLOCK_DAYS = 31
RETURN_30D_DAYS = 30
ANNUALISATION_DAYS = 365

# Daily bars read their silver input in pieces of whole symbols of at most this many rows (≈ 100 MB).
READ_ROWS = 1_000_000

# The silver columns the daily aggregation reads (the I/O manager selects only these).
SILVER_COLUMNS = [
    "date",
    "symbol",
    "interval",
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "quote_volume",
    "trades",
]

DAILY_BARS_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "symbol": pl.String(),
        "open": pl.Float64(),
        "high": pl.Float64(),
        "low": pl.Float64(),
        "close": pl.Float64(),
        "volume": pl.Float64(),
        "quote_volume": pl.Float64(),
        "trades": pl.Int64(),
        "bars": pl.Int64(),
        "missing_bars": pl.Int64(),
        "vwap": pl.Float64(),
    }
)

DAILY_FEATURES_SCHEMA = pl.Schema(
    {
        **DAILY_BARS_SCHEMA,
        "return_1d": pl.Float64(),
        "log_return_1d": pl.Float64(),
        "sma_7": pl.Float64(),
        "sma_30": pl.Float64(),
        "volatility_30d": pl.Float64(),
        "rsi_14": pl.Float64(),
        "drawdown_30d": pl.Float64(),
    }
)

CORRELATIONS_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "symbol_a": pl.String(),
        "symbol_b": pl.String(),
        "corr_30d": pl.Float64(),
    }
)

CATEGORY_DAILY_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "category": pl.String(),
        "members": pl.Int64(),
        "members_with_return_1d": pl.Int64(),
        "mean_return_1d": pl.Float64(),
        "members_with_return_30d": pl.Int64(),
        "mean_return_30d": pl.Float64(),
    }
)

MARKET_DAILY_SCHEMA = pl.Schema(
    {
        "date": pl.Date(),
        "symbols": pl.Int64(),
        "total_quote_volume": pl.Float64(),
        "advancers": pl.Int64(),
        "decliners": pl.Int64(),
        "unchanged": pl.Int64(),
        "best_symbol": pl.String(),
        "best_return_1d": pl.Float64(),
        "worst_symbol": pl.String(),
        "worst_return_1d": pl.Float64(),
    }
)


def _require(frame: pl.DataFrame | pl.LazyFrame, columns: list[str], what: str) -> None:
    present = frame.collect_schema().names() if isinstance(frame, pl.LazyFrame) else frame.columns
    missing = [c for c in columns if c not in present]
    if missing:
        raise ValueError(f"{what} lacks columns {missing}; it has {present}")


def _symbol_pieces(silver: pl.LazyFrame, symbols: Sequence[str] | None) -> tuple[list[list[str]], bool]:
    """Split the input's symbols (or ``symbols``) into pieces of whole symbols of at most
    ``READ_ROWS`` rows (a larger symbol is a piece alone), in symbol order; also say whether the
    only piece is the whole input. Reads the symbol column once."""
    counts = silver.group_by("symbol").agg(rows=pl.len()).collect()
    rows = {s: n for s, n in zip(counts["symbol"].to_list(), counts["rows"].to_list(), strict=True) if s is not None}
    wanted = sorted(rows if symbols is None else set(symbols) & set(rows))
    pieces: list[list[str]] = []
    size = 0
    for symbol in wanted:
        if not pieces or size + rows[symbol] > READ_ROWS:
            pieces.append([])
            size = 0
        pieces[-1].append(symbol)
        size += rows[symbol]
    return pieces, len(pieces) == 1 and len(pieces[0]) == counts.height


def _read_piece(silver: pl.LazyFrame, piece: list[str], whole_input: bool) -> pl.DataFrame:
    if whole_input:
        return silver.collect()
    # Equalities rather than is_in: a lazy DuckDB input pushes them into its query.
    return silver.filter(reduce(operator.or_, [pl.col("symbol") == s for s in piece])).collect()


def _bars_by_day(piece: pl.DataFrame) -> pl.DataFrame:
    """Whole symbols' bars → one row per symbol and day. The bars are put in (symbol, open_time)
    order first unless they already are (silver is stored sorted), so first/last follow
    ``open_time`` and every sum adds the day's bars in time order: a day's values do not depend on
    what else was read with them. Each symbol is aggregated from its own slice of the piece."""
    if not piece["symbol"].is_sorted():
        piece = piece.sort("symbol", "open_time")
    days, offset = [], 0
    for length in piece["symbol"].rle().struct.field("len").to_list():
        bars = piece.slice(offset, length)
        offset += length
        if not bars["open_time"].is_sorted():
            bars = bars.sort("open_time")
        # One symbol's column is sorted; flagging it makes Polars take its sorted-key group-by,
        # whose float sums are bit-identical to a whole-frame sort("symbol", "open_time") + group_by
        # (unflagged, the hash group-by's sums can differ in the last bit).
        days.append(
            bars.with_columns(pl.col("symbol").set_sorted())
            .group_by("symbol", "date")
            .agg(
                interval=pl.col("interval").first(),
                first_bar=pl.col("open_time").first(),
                open=pl.col("open").first(),
                high=pl.col("high").max(),
                low=pl.col("low").min(),
                close=pl.col("close").last(),
                volume=pl.col("volume").sum(),
                quote_volume=pl.col("quote_volume").sum(),
                trades=pl.col("trades").sum(),
                bars=pl.len(),
            )
        )
    return pl.concat(days)


def daily_bars(
    silver_ohlcv: pl.DataFrame | pl.LazyFrame, now: dt.datetime | None = None, symbols: Sequence[str] | None = None
) -> pl.DataFrame:
    """One row per symbol per UTC day with at least one bar: OHLCV aggregates, bar counts and vwap.

    ``silver_ohlcv`` may be lazy (a scan): it is read in pieces of whole symbols of at most
    ``READ_ROWS`` rows, so memory holds one piece, not the whole input. ``symbols`` restricts the
    result to those symbols (default: every symbol in the input). ``missing_bars`` = expected −
    present (never negative), where expected counts the interval's bars in the day, clipped to the
    symbol's listing window and to ``now`` for the current day (``partitions.expected_bars``, the
    rule silver's completeness and the ``complete_bars`` check use).
    """
    _require(silver_ohlcv, SILVER_COLUMNS, "silver OHLCV")
    silver = silver_ohlcv.lazy().select(SILVER_COLUMNS)
    pieces, whole_input = _symbol_pieces(silver, symbols)
    if not pieces:
        return pl.DataFrame(schema=DAILY_BARS_SCHEMA)
    now = now or dt.datetime.now(dt.UTC)
    days = pl.concat([_bars_by_day(_read_piece(silver, piece, whole_input)) for piece in pieces])
    return (
        with_expected_slots(days, now)
        .with_columns(
            missing_bars=(pl.col("expected") - pl.col("bars")).clip(lower_bound=0),
            vwap=pl.when(pl.col("volume") != 0).then(pl.col("quote_volume") / pl.col("volume")),
        )
        .select(list(DAILY_BARS_SCHEMA))
        .cast(DAILY_BARS_SCHEMA)
        .sort("symbol", "date")
    )


def on_calendar(frame: pl.DataFrame) -> pl.DataFrame:
    """Every calendar day from each symbol's first to last date (days without a row become nulls)."""
    calendar = (
        frame.group_by("symbol")
        .agg(date=pl.date_ranges(pl.col("date").min(), pl.col("date").max(), "1d"))
        .explode("date")
    )
    return calendar.join(frame, on=["symbol", "date"], how="left").sort("symbol", "date")


# Position of a row within its symbol's calendar (0 = the symbol's first day); set by daily_features.
_POSITION = "_calendar_position"


def _window_index(rows: int, days: int) -> np.ndarray:
    """Row i's window positions, newest first: i, i − 1, …, i − days + 1 (clipped at 0)."""
    index = np.arange(rows)[:, None] - np.arange(days)[None, :]
    np.maximum(index, 0, out=index)
    return index


def _window(values: pl.Series, days: int) -> pl.Series:
    """Per row, the list of the last ``days`` values ending on the row, newest first: row i holds
    values[i], values[i − 1], …, values[i − days + 1] (needs ``on_calendar`` order). Built as one
    gather; rows whose window reaches before their symbol's first day hold filler and must be
    masked by ``_when_complete``."""
    rows = len(values)
    return values.gather(_window_index(rows, days).ravel()).reshape((rows, days)).cast(pl.List(values.dtype))


def _window_mean(values: pl.Series, days: int) -> pl.Series:
    """Per row, the mean of the last ``days`` values ending on the row (needs ``on_calendar`` order;
    mask with ``_when_complete``). The values are added newest first, one at a time, then divided
    by ``days``: exactly what Polars' ``list.mean`` does with the window's list, without building
    it. Series arithmetic, step by step, so the order of the adds is fixed; and divided by a
    Series, because Polars divides by a scalar as a multiplication by its reciprocal (not always
    the same last bit)."""
    total = values
    for offset in range(1, days):
        total = total + values.shift(offset)
    return total / pl.Series(np.full(len(values), float(days)))


def _when_complete(column: str, days: int, value: pl.Expr) -> pl.Expr:
    """``value`` when the symbol has all ``days`` calendar values of ``column`` ending on the row
    (none before its first day, none null), else null."""
    no_nulls = pl.col(column).is_null().cast(pl.Int32).rolling_sum(days) == 0
    return pl.when((pl.col(_POSITION) >= days - 1) & no_nulls).then(value)


def daily_features(daily: pl.DataFrame, dates: list[dt.date] | None = None) -> pl.DataFrame:
    """Per symbol and day: the day's bars plus returns, SMAs, volatility, RSI and drawdown.

    ``daily`` is ``daily_bars`` output covering at least [D − 30, D] for each wanted D; only rows for
    ``dates`` (all days when None) that have bars are returned.
    """
    _require(daily, list(DAILY_BARS_SCHEMA), "daily bars")
    if daily.is_empty():
        return pl.DataFrame(schema=DAILY_FEATURES_SCHEMA)
    calendar = on_calendar(daily.select(list(DAILY_BARS_SCHEMA))).with_columns(
        pl.int_range(pl.len()).over("symbol").alias(_POSITION)
    )
    previous_close = pl.when(pl.col(_POSITION) >= 1).then(pl.col("close").shift(1))
    change = pl.col("close") - previous_close
    with_returns = calendar.with_columns(
        return_1d=pl.col("close") / previous_close - 1,
        log_return_1d=(pl.col("close") / previous_close).log(),
        gain=change.clip(lower_bound=0.0),
        loss=(-change).clip(lower_bound=0.0),
    )
    mean_gain, mean_loss = _window_mean(with_returns["gain"], 14), _window_mean(with_returns["loss"], 14)
    log_returns_30 = _window(with_returns["log_return_1d"], 30)
    features = with_returns.with_columns(
        sma_7=_when_complete("close", 7, pl.lit(_window_mean(with_returns["close"], 7))),
        sma_30=_when_complete("close", 30, pl.lit(_window_mean(with_returns["close"], 30))),
        volatility_30d=_when_complete(
            "log_return_1d", 30, pl.lit(log_returns_30.list.std(ddof=1) * math.sqrt(ANNUALISATION_DAYS))
        ),
        rsi_14=_when_complete(
            "gain",
            14,
            pl.when(pl.lit(mean_gain + mean_loss) == 0)
            .then(pl.lit(50.0))
            .otherwise(
                pl.lit(100.0 * (mean_gain / (mean_gain + mean_loss)))
            ),  # ≤ 100 exactly (100·g/g may round above)
        ),
        # A maximum has no rounding: the rolling kernel gives the window's exact maximum.
        drawdown_30d=_when_complete("close", 30, pl.col("close") / pl.col("close").rolling_max(30) - 1),
    )
    rows = features.filter(pl.col("bars").is_not_null())
    if dates is not None:
        rows = rows.filter(pl.col("date").is_in(list(dates)))
    # The calendar is in (symbol, date) order: a stable sort on date gives (date, symbol).
    return rows.select(list(DAILY_FEATURES_SCHEMA)).cast(DAILY_FEATURES_SCHEMA).sort("date", maintain_order=True)


def correlations_30d(
    features_window: pl.DataFrame, dates: list[dt.date], *, categorical_symbols: bool = False
) -> pl.DataFrame:
    """Pearson correlation of ``log_return_1d`` over [D − 29, D] for every symbol pair, per D in ``dates``.

    Long format (``symbol_a < symbol_b``), in (date, symbol_a, symbol_b) order; a pair is emitted
    only when both symbols have all 30 values (a null return counts as missing). ``corr_30d`` is
    null when one of the two series is constant (all 30 values equal, or zero variance).

    The returns are laid once on a dense (calendar day × symbol) NumPy grid; each day's window is
    a 30 × n slice of its complete columns, centred and scaled per column, and every pair's value
    is the sum of its 30 products added oldest first. A value therefore depends only on the two
    series' own 30 values, never on the other symbols or on the range it is computed in. Rows are
    built in blocks of ``CORRELATION_BLOCK_DAYS`` days, so no cross join is ever materialized.

    ``categorical_symbols=True`` returns ``symbol_a`` / ``symbol_b`` as ``pl.Categorical`` (a 4-byte
    code per cell instead of a 16-byte String view, and Arrow dictionary columns that need no
    string copy when exported) for writers that store them as text anyway: DuckDB creates and fills
    VARCHAR columns from them and the Delta publish String ones. Otherwise the frame has exactly
    ``CORRELATIONS_SCHEMA``.
    """
    _require(features_window, ["date", "symbol", "log_return_1d"], "daily returns")
    wanted = sorted(set(dates))
    if not wanted:
        return _no_correlations(categorical_symbols)
    first = wanted[0] - dt.timedelta(days=CORRELATION_DAYS - 1)
    returns = (
        features_window.select("date", "symbol", "log_return_1d")
        .drop_nulls("log_return_1d")
        .filter(pl.col("date").is_between(first, wanted[-1]))
    )
    symbols = returns["symbol"].unique().sort()
    if symbols.is_empty():
        return _no_correlations(categorical_symbols)
    values, present = _returns_grid(returns, symbols, first, (wanted[-1] - first).days + 1)
    names = symbols.cast(pl.Categorical) if categorical_symbols else symbols
    # complete[t, s]: symbol s has all CORRELATION_DAYS values of the window ending on grid day t.
    seen = np.concatenate([np.zeros((1, len(symbols)), dtype=np.int64), np.cumsum(present, axis=0)])
    complete = np.zeros(present.shape, dtype=bool)
    complete[CORRELATION_DAYS - 1 :] = (seen[CORRELATION_DAYS:] - seen[:-CORRELATION_DAYS]) == CORRELATION_DAYS
    frames = []
    for start in range(0, len(wanted), CORRELATION_BLOCK_DAYS):
        block = [
            _day_correlations(values, complete, (d - first).days)
            for d in wanted[start : start + CORRELATION_BLOCK_DAYS]
        ]
        frames.append(_correlation_rows(block, wanted[start : start + CORRELATION_BLOCK_DAYS], names))
    return pl.concat(frames, rechunk=False)


def _no_correlations(categorical_symbols: bool) -> pl.DataFrame:
    empty = pl.DataFrame(schema=CORRELATIONS_SCHEMA)
    return empty.with_columns(pl.col("symbol_a", "symbol_b").cast(pl.Categorical)) if categorical_symbols else empty


def _returns_grid(
    returns: pl.DataFrame, symbols: pl.Series, first: dt.date, days: int
) -> tuple[np.ndarray, np.ndarray]:
    """(values, present): ``days`` × symbols arrays, row t = day ``first`` + t, columns in ``symbols`` order."""
    index = returns.select(
        day=(pl.col("date") - first).dt.total_days(),
        column=pl.col("symbol").cast(pl.Enum(symbols.to_list())).to_physical(),
        value=pl.col("log_return_1d"),
    )
    rows, columns = index["day"].to_numpy(), index["column"].to_numpy()
    values = np.zeros((days, len(symbols)), dtype=np.float64)
    present = np.zeros((days, len(symbols)), dtype=bool)
    values[rows, columns] = index["value"].to_numpy()
    present[rows, columns] = True
    return values, present


def _day_correlations(values: np.ndarray, complete: np.ndarray, day: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(column of symbol_a, column of symbol_b, corr) for every pair complete on grid day ``day``."""
    if day < CORRELATION_DAYS - 1:
        empty = np.empty(0, dtype=np.int64)
        return empty, empty, np.empty(0)
    columns = np.flatnonzero(complete[day])
    window = values[day - CORRELATION_DAYS + 1 : day + 1, columns]
    left, right = np.triu_indices(len(columns), 1)
    centred = window - window.sum(axis=0) / CORRELATION_DAYS
    norm = np.sqrt((centred * centred).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = centred / norm
        # Each pair's 30 products added oldest first, one day at a time: a fixed order whatever the
        # other columns (a matrix product's order follows the BLAS blocking, so a value could change
        # in its last bits with the symbols beside it).
        corr = np.zeros(len(left))
        for row in scaled:
            corr += row[left] * row[right]
    np.clip(corr, -1.0, 1.0, out=corr)
    constant = (window == window[0]).all(axis=0) | ~(norm > 0) | ~np.isfinite(norm)
    corr[constant[left] | constant[right] | ~np.isfinite(corr)] = np.nan
    return columns[left], columns[right], corr


def _correlation_rows(
    block: list[tuple[np.ndarray, np.ndarray, np.ndarray]], days: list[dt.date], symbols: pl.Series
) -> pl.DataFrame:
    """The block's pairs as CORRELATIONS_SCHEMA rows (NaN marks a null correlation), with the
    symbols in the dtype of ``symbols`` (String or Categorical)."""
    counts = [len(corr) for _, _, corr in block]
    epoch_days = [(d - dt.date(1970, 1, 1)).days for d in days]
    left = np.concatenate([a for a, _, _ in block])
    right = np.concatenate([b for _, b, _ in block])
    corr = np.concatenate([c for _, _, c in block])
    return pl.DataFrame(
        {
            "date": pl.Series(np.repeat(np.array(epoch_days, dtype=np.int32), counts)).cast(pl.Date),
            "symbol_a": symbols.gather(left),
            "symbol_b": symbols.gather(right),
            "corr_30d": pl.Series(corr, dtype=pl.Float64).fill_nan(None),
        }
    )


def category_daily(
    returns_window: pl.DataFrame, dates: list[dt.date], category_by_symbol: dict[str, str]
) -> pl.DataFrame:
    """Per day and category: members with data, equal-weighted mean ``return_1d`` and mean 30-day
    return close_D / close_(D−30) − 1 (over members having both closes).

    ``returns_window`` holds date, symbol, close, return_1d for [min(dates) − 30, max(dates)].
    """
    _require(returns_window, ["date", "symbol", "close", "return_1d"], "daily returns")
    unknown = sorted(set(returns_window["symbol"].unique().to_list()) - set(category_by_symbol))
    if unknown:
        raise ValueError(f"symbols {unknown} have no category in the universe")
    day_rows = returns_window.filter(pl.col("date").is_in(list(dates)))
    if day_rows.is_empty():
        return pl.DataFrame(schema=CATEGORY_DAILY_SCHEMA)
    earlier = returns_window.select(
        (pl.col("date") + pl.duration(days=RETURN_30D_DAYS)).alias("date"),
        "symbol",
        pl.col("close").alias("close_30d_ago"),
    )
    members = day_rows.join(earlier, on=["date", "symbol"], how="left").with_columns(
        category=pl.col("symbol").replace_strict(category_by_symbol, return_dtype=pl.String),
        return_30d=pl.col("close") / pl.col("close_30d_ago") - 1,
    )
    summary = members.group_by("date", "category").agg(
        members=pl.len(),
        members_with_return_1d=pl.col("return_1d").count(),
        mean_return_1d=pl.col("return_1d").mean(),
        members_with_return_30d=pl.col("return_30d").count(),
        mean_return_30d=pl.col("return_30d").mean(),
    )
    return summary.select(list(CATEGORY_DAILY_SCHEMA)).cast(CATEGORY_DAILY_SCHEMA).sort("date", "category")


def market_daily(returns: pl.DataFrame, dates: list[dt.date]) -> pl.DataFrame:
    """Per day: symbols with data, total quote volume, advancers / decliners / unchanged (by
    ``return_1d``), and the best and worst performer (ties broken by symbol name)."""
    _require(returns, ["date", "symbol", "quote_volume", "return_1d"], "daily returns")
    day_rows = returns.filter(pl.col("date").is_in(list(dates)))
    if day_rows.is_empty():
        return pl.DataFrame(schema=MARKET_DAILY_SCHEMA)
    ranked = day_rows.sort("date", "symbol")
    with_return = pl.col("return_1d").is_not_null()
    best = (
        pl.col("symbol")
        .filter(with_return)
        .sort_by(pl.col("return_1d").filter(with_return), descending=True, maintain_order=True)
    )
    worst = pl.col("symbol").filter(with_return).sort_by(pl.col("return_1d").filter(with_return), maintain_order=True)
    summary = ranked.group_by("date").agg(
        symbols=pl.len(),
        total_quote_volume=pl.col("quote_volume").sum(),
        advancers=(pl.col("return_1d") > 0).sum(),
        decliners=(pl.col("return_1d") < 0).sum(),
        unchanged=(pl.col("return_1d") == 0).sum(),
        best_symbol=best.first(),
        best_return_1d=pl.col("return_1d").max(),
        worst_symbol=worst.first(),
        worst_return_1d=pl.col("return_1d").min(),
    )
    return summary.select(list(MARKET_DAILY_SCHEMA)).cast(MARKET_DAILY_SCHEMA).sort("date")
