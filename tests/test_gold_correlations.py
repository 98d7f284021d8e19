"""gold/correlations kernel (``features.correlations_30d``) against an independent naive implementation.

The reference below is written from the table's definition only: for every wanted day D and every
pair of symbols, take both symbols' returns on each calendar day of [D − 29, D]; the pair is a row
when both have all 30 (a null return is a missing one); the value is the textbook two-pass Pearson
formula in exactly rounded sums (``math.fsum``), null when either series has all 30 values equal.
The kernel's NumPy arithmetic must agree to 1e-12 and produce exactly the same rows and nulls.
"""

import datetime as dt
import itertools
import math
import random

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from cryptolake_assets.gold import features

D0 = dt.date(2024, 1, 1)
WINDOW = 30


def day(n: int) -> dt.date:
    return D0 + dt.timedelta(days=n - 1)


def frame(rows: list[tuple[dt.date, str, float | None]]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema={"date": pl.Date, "symbol": pl.String, "log_return_1d": pl.Float64}, orient="row")


def naive_correlations(
    rows: list[tuple[dt.date, str, float | None]], dates: list[dt.date]
) -> dict[tuple[dt.date, str, str], float | None]:
    values = {(d, s): v for d, s, v in rows if v is not None}
    symbols = sorted({s for _, s, _ in rows})
    result: dict[tuple[dt.date, str, str], float | None] = {}
    for end in sorted(set(dates)):
        window = [end - dt.timedelta(days=k) for k in range(WINDOW - 1, -1, -1)]
        for a, b in itertools.combinations(symbols, 2):
            if not all((d, a) in values and (d, b) in values for d in window):
                continue
            x = [values[d, a] for d in window]
            y = [values[d, b] for d in window]
            if len(set(x)) == 1 or len(set(y)) == 1:
                result[end, a, b] = None
                continue
            mx, my = math.fsum(x) / WINDOW, math.fsum(y) / WINDOW
            sxy = math.fsum((u - mx) * (v - my) for u, v in zip(x, y, strict=True))
            sxx = math.fsum((u - mx) ** 2 for u in x)
            syy = math.fsum((v - my) ** 2 for v in y)
            result[end, a, b] = sxy / math.sqrt(sxx * syy)
    return result


def random_returns(seed: int, symbols: int, days: int) -> list[tuple[dt.date, str, float | None]]:
    """Returns with every awkward shape: full series, missing days, null returns, listings and
    delistings mid-range, constant series (zero, an exactly representable and an inexact value)."""
    rng = random.Random(seed)
    rows: list[tuple[dt.date, str, float | None]] = []
    names = [f"S{index:02d}USDT" for index in range(symbols)]
    rng.shuffle(names)  # input order is not symbol order
    for index, name in enumerate(names):
        first, last = 1, days
        if index % 4 == 1:
            first = rng.randint(10, days // 2)  # lists mid-range (and mid-window)
        if index % 6 == 5:
            last = rng.randint(days // 2, days - 5)  # delists
        constant = {2: 0.0, 7: 0.25, 11: 0.1}.get(index)
        for n in range(first, last + 1):
            if index % 5 == 3 and rng.random() < 0.04:
                continue  # a missing day
            value: float | None = constant if constant is not None else rng.gauss(0.0, 0.03)
            if index % 5 == 4 and rng.random() < 0.03:
                value = None  # a null return (the day after a missing close)
            rows.append((day(n), name, value))
    rng.shuffle(rows)
    return rows


@pytest.mark.parametrize(("seed", "symbols", "days"), [(1, 12, 80), (2, 9, 100), (3, 16, 45)])
def test_kernel_equals_naive_pearson_on_random_data(seed, symbols, days):
    rows = random_returns(seed, symbols, days)
    dates = [day(n) for n in range(20, days + 3)]  # some windows start before the data, some end after
    expected = naive_correlations(rows, dates)
    result = features.correlations_30d(frame(rows), dates)
    assert result.schema == pl.Schema(features.CORRELATIONS_SCHEMA)
    keys = list(zip(result["date"], result["symbol_a"], result["symbol_b"], strict=True))
    assert keys == sorted(expected)  # same rows, in (date, symbol_a, symbol_b) order
    nulls = 0
    for key, value in zip(keys, result["corr_30d"], strict=True):
        if expected[key] is None:
            assert value is None, key
            nulls += 1
        else:
            assert value is not None and abs(value - expected[key]) <= 1e-12, (key, value, expected[key])
    assert nulls > 0 and len(keys) - nulls > 100  # the data exercise both branches


def test_a_constant_series_is_null_even_when_its_mean_is_inexact():
    x = [math.sin(n) for n in range(1, 31)]
    rows = [(day(n), "AAAUSDT", 0.1) for n in range(1, 31)]  # Σ/30 ≠ 0.1 in floating point
    rows += [(day(n), "BBBUSDT", x[n - 1]) for n in range(1, 31)]
    rows += [(day(n), "CCCUSDT", 0.1 if n != 17 else 0.1000000001) for n in range(1, 31)]  # not constant
    result = features.correlations_30d(frame(rows), [day(30)])
    got = {(r["symbol_a"], r["symbol_b"]): r["corr_30d"] for r in result.iter_rows(named=True)}
    assert got["AAAUSDT", "BBBUSDT"] is None and got["AAAUSDT", "CCCUSDT"] is None
    # CCC is 0.1 + δ·[n = 17]: its correlation with x is that of the indicator of day 17.
    indicator = [1.0 if n == 17 else 0.0 for n in range(1, 31)]
    expected = naive_correlations(
        [(day(n), "I", indicator[n - 1]) for n in range(1, 31)] + [(day(n), "X", x[n - 1]) for n in range(1, 31)],
        [day(30)],
    )[day(30), "I", "X"]
    assert got["BBBUSDT", "CCCUSDT"] == pytest.approx(expected, abs=1e-6)


def test_perfect_and_anti_correlation_are_exactly_one_and_minus_one_at_most():
    x = [math.cos(3 * n) for n in range(1, 31)]
    rows = [(day(n), "AAAUSDT", x[n - 1]) for n in range(1, 31)]
    rows += [(day(n), "BBBUSDT", -2.0 * x[n - 1]) for n in range(1, 31)]
    rows += [(day(n), "CCCUSDT", 4.0 * x[n - 1] + 0.5) for n in range(1, 31)]
    result = features.correlations_30d(frame(rows), [day(30)])
    got = {(r["symbol_a"], r["symbol_b"]): r["corr_30d"] for r in result.iter_rows(named=True)}
    assert got["AAAUSDT", "BBBUSDT"] == pytest.approx(-1.0, abs=1e-12)
    assert got["AAAUSDT", "CCCUSDT"] == pytest.approx(1.0, abs=1e-12)
    assert got["BBBUSDT", "CCCUSDT"] == pytest.approx(-1.0, abs=1e-12)
    assert all(-1.0 <= v <= 1.0 for v in got.values())


def test_a_symbol_listing_mid_window_pairs_from_its_30th_return_on():
    rows = [(day(n), "BTCUSDT", math.sin(n)) for n in range(1, 61)]
    rows += [(day(n), "NEWUSDT", math.cos(n)) for n in range(11, 61)]  # lists on day 11
    result = features.correlations_30d(frame(rows), [day(n) for n in range(30, 61)])
    assert result["date"].to_list() == [day(n) for n in range(40, 61)]  # day 11 + 29 = day 40 first
    assert set(result["symbol_a"]) == {"BTCUSDT"} and set(result["symbol_b"]) == {"NEWUSDT"}


def test_a_nan_return_pairs_with_a_null_correlation():
    # NaN is a value, not a missing return (the old kernel emitted such pairs with a null too).
    rows = [(day(n), "AAAUSDT", math.sin(n)) for n in range(1, 31)]
    rows += [(day(n), "BBBUSDT", math.nan if n == 9 else math.cos(n)) for n in range(1, 31)]
    result = features.correlations_30d(frame(rows), [day(30)])
    assert result.rows() == [(day(30), "AAAUSDT", "BBBUSDT", None)]


def test_rows_are_sorted_by_date_then_symbols_whatever_the_input_and_dates_order():
    names = ["ZRXUSDT", "1INCHUSDT", "BTCUSDT", "AAVEUSDT"]
    rows = [(day(n), s, math.sin(n * (i + 2))) for i, s in enumerate(names) for n in range(1, 41)]
    result = features.correlations_30d(frame(rows[::-1]), [day(40), day(31), day(31), day(35)])
    pairs = [("1INCHUSDT", "AAVEUSDT"), ("1INCHUSDT", "BTCUSDT"), ("1INCHUSDT", "ZRXUSDT")]
    pairs += [("AAVEUSDT", "BTCUSDT"), ("AAVEUSDT", "ZRXUSDT"), ("BTCUSDT", "ZRXUSDT")]
    assert result.select("date", "symbol_a", "symbol_b").rows() == [
        (d, a, b) for d in (day(31), day(35), day(40)) for a, b in pairs
    ]


def test_a_pair_value_does_not_depend_on_the_other_symbols_or_the_range():
    rows = random_returns(5, 10, 70)
    full = features.correlations_30d(frame(rows), [day(n) for n in range(30, 71)])
    on_60 = full.filter((pl.col("date") == day(60)) & pl.col("corr_30d").is_not_null())
    assert on_60.height >= 3
    for a, b in on_60.select("symbol_a", "symbol_b").rows()[:3]:
        two = [r for r in rows if r[1] in (a, b)]
        alone = features.correlations_30d(frame(two), [day(60)])
        expected = on_60.filter((pl.col("symbol_a") == a) & (pl.col("symbol_b") == b))
        assert alone.height == 1
        assert_frame_equal(alone, expected, check_exact=True)


def test_no_dates_or_no_complete_window_give_an_empty_frame_with_the_schema():
    rows = [(day(n), s, math.sin(n) + i) for i, s in enumerate(("AAAUSDT", "BBBUSDT")) for n in range(1, 31)]
    for dates in ([], [day(29)], [day(31)], [day(400)]):
        result = features.correlations_30d(frame(rows), dates)
        assert result.height == 0 and result.schema == pl.Schema(features.CORRELATIONS_SCHEMA), dates
    assert features.correlations_30d(frame([]), [day(30)]).schema == pl.Schema(features.CORRELATIONS_SCHEMA)


def test_categorical_symbols_hold_the_same_rows():
    rows = frame(random_returns(4, 12, 70))
    dates = [day(n) for n in range(25, 71)]
    plain = features.correlations_30d(rows, dates)
    compact = features.correlations_30d(rows, dates, categorical_symbols=True)
    assert compact.columns == plain.columns
    assert [compact[c].dtype == pl.Categorical for c in ("symbol_a", "symbol_b")] == [True, True]
    assert plain.height > 500
    assert_frame_equal(compact.cast(features.CORRELATIONS_SCHEMA), plain, check_exact=True)
    empty = features.correlations_30d(rows, [], categorical_symbols=True)
    assert empty.height == 0 and [empty[c].dtype == pl.Categorical for c in ("symbol_a", "symbol_b")] == [True, True]


def test_the_asset_stores_categorical_symbols_as_text_in_duckdb_and_delta(tmp_path):
    """The asset returns Categorical symbols; both stores must hold plain text, on the first write
    (tables created from the frame) and on a later one (existing tables), and read back as String."""
    import duckdb
    from dagster import AssetSpec, materialize

    from cryptolake_assets.gold.correlations import DAILY_RETURNS, correlations
    from partitions import daily_partitions
    from resources.duckdb_io import CryptoLakeDuckDBIOManager
    from resources.lake import DeltaLake

    rows = random_returns(6, 8, 45)
    database = tmp_path / "lake.duckdb"
    with duckdb.connect(str(database)) as connection:
        connection.execute("CREATE SCHEMA gold")
        connection.register("returns", frame(rows).to_arrow())
        connection.execute("CREATE TABLE gold.daily_returns AS SELECT * FROM returns")
    io_manager = CryptoLakeDuckDBIOManager(database=str(database), lake=DeltaLake(root=str(tmp_path / "lake")))
    upstream = AssetSpec(DAILY_RETURNS, partitions_def=daily_partitions, metadata={"partition_expr": "date"})
    for first, last in ((day(35), day(40)), (day(38), day(45))):
        result = materialize(
            [upstream, correlations],
            selection=[correlations],
            resources={"io_manager": io_manager},
            tags={"dagster/asset_partition_range_start": str(first), "dagster/asset_partition_range_end": str(last)},
        )
        assert result.success
    expected = features.correlations_30d(frame(rows), [day(n) for n in range(35, 46)])
    assert expected.height > 40
    with duckdb.connect(str(database), read_only=True) as connection:
        types = dict(
            connection.sql(
                "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'correlations'"
            ).fetchall()
        )
        stored = connection.sql("SELECT * FROM gold.correlations ORDER BY ALL").pl()
    assert (types["symbol_a"], types["symbol_b"]) == ("VARCHAR", "VARCHAR")
    assert_frame_equal(stored, expected, check_exact=True)
    published = pl.read_delta(str(tmp_path / "lake" / "gold" / "correlations"))
    assert published.schema == pl.Schema(features.CORRELATIONS_SCHEMA)
    assert_frame_equal(published.sort("date", "symbol_a", "symbol_b"), expected, check_exact=True)
