"""The gold/daily_features price chart draws each line where it has values and says why not elsewhere."""

import datetime as dt

import polars as pl

from cryptolake_assets.gold.charts import line_label, price_chart, price_figure

D0 = dt.date(2024, 3, 1)


def history(days: int, sma_30_days: int) -> pl.DataFrame:
    """A single run's view: ``days`` closes, SMA 7 from day 7, SMA 30 only on the last days."""
    dates = [D0 + dt.timedelta(days=n) for n in range(days)]
    return pl.DataFrame(
        {
            "date": dates,
            "symbol": ["BTCUSDT"] * days,
            "close": [100.0 + n for n in range(days)],
            "sma_7": [None if n < 6 else 97.0 + n for n in range(days)],
            "sma_30": [None if n < days - sma_30_days else 85.5 + n for n in range(days)],
        },
        schema_overrides={"sma_7": pl.Float64, "sma_30": pl.Float64},
    )


def lines(frame: pl.DataFrame) -> dict[str, tuple[str, list]]:
    figure = price_figure(frame, [frame["date"].max()])
    [ax] = [a for a in figure.axes if a.get_visible()]
    return {line.get_gid(): (line.get_label(), list(line.get_ydata())) for line in ax.get_lines()}


def test_a_single_partition_run_says_sma_30_has_two_days_and_why():
    drawn = lines(history(31, 2))  # a partition run reads [D - 30, D]: SMA 30 exists on D - 1 and D
    label, values = drawn["sma_30"]
    assert label == "SMA 30: 2 of 31 days (needs 30 days of closes)"
    assert [v for v in values if v is not None] == [114.5, 115.5]
    assert drawn["sma_7"][0] == "SMA 7: 25 of 31 days (needs 7 days of closes)"
    assert drawn["close"][0] == "close"


def test_a_long_history_draws_sma_30_as_a_line_and_none_says_it_is_not_drawn():
    assert lines(history(60, 31))["sma_30"][0] == "SMA 30: 31 of 60 days (needs 30 days of closes)"
    assert line_label("SMA 30", [1.0, 2.0], 30) == "SMA 30"
    assert line_label("SMA 30", [None, None], 30) == "SMA 30: not drawn, no day here has 30 days of closes before it"
    assert price_chart(history(31, 0), [D0]).value.startswith("![price chart](data:image/png;base64,")
    assert price_chart(history(31, 0).clear(), [D0]).value == "_no bars to chart_"
