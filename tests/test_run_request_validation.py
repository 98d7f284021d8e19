"""Bad backfill requests end before any run: one line naming the value, no run, no DuckDB file.

Before this check a start before the first partition died in a 59-line ``CheckError``, a future
end retried a ``ValueError`` for minutes and left rows in ``gold.dim_date``, a bad interval printed a
pydantic traceback, and a range before a symbol's listing "succeeded" with nothing but warnings.
"""

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from cryptolake_assets.cli import main
from cryptolake_assets.run_request_validation import RunRequestError, validate_request


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    home, database = tmp_path / "home", tmp_path / "lake.duckdb"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("CRYPTOLAKE_DUCKDB", str(database))
    monkeypatch.setenv("CRYPTOLAKE_SOURCE", "simulated")
    monkeypatch.setenv("CRYPTOLAKE_INTERVAL", "1h")
    monkeypatch.delenv("CRYPTOLAKE_START_DATE", raising=False)
    return home, database


def _backfill(*args: str):
    return CliRunner().invoke(main, ["backfill", *args], catch_exceptions=False)


def _assert_refused(result, *words: str, home: Path, database: Path) -> None:
    assert result.exit_code != 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    for word in words:
        assert word in lines[0], lines[0]
    assert "Traceback" not in result.output
    assert not database.exists(), "a refused request must write nothing"
    assert not (home / "storage").exists() and not (home / "runs.db").exists(), "no run may be created"


def test_start_before_first_partition_names_the_setting(isolated):
    home, database = isolated
    result = _backfill("--start", "2022-12-30", "--end", "2023-01-02", "--symbols", "BTCUSDT")
    _assert_refused(
        result, "2022-12-30", "2023-01-01", "CRYPTOLAKE_START_DATE=2022-12-30", home=home, database=database
    )


def test_future_end_is_refused(isolated):
    home, database = isolated
    tomorrow = dt.datetime.now(dt.UTC).date() + dt.timedelta(days=1)
    result = _backfill("--start", "2024-01-01", "--end", str(tomorrow), "--symbols", "BTCUSDT")
    _assert_refused(result, str(tomorrow), "future", home=home, database=database)


def test_bad_interval_is_one_line(isolated):
    home, database = isolated
    result = _backfill("--start", "2024-01-01", "--end", "2024-01-02", "--interval", "7h")
    _assert_refused(result, "'7h'", "1m", "1d", home=home, database=database)


def test_misspelt_source_in_environment(isolated, monkeypatch):
    home, database = isolated
    monkeypatch.setenv("CRYPTOLAKE_SOURCE", "simulted")
    result = _backfill("--start", "2024-01-01", "--end", "2024-01-02")
    _assert_refused(result, "CRYPTOLAKE_SOURCE='simulted'", "simulated, binance", home=home, database=database)


def test_range_before_listing_says_so(isolated):
    home, database = isolated
    result = _backfill("--start", "2024-01-01", "--end", "2024-01-31", "--symbols", "TAOUSDT")
    _assert_refused(result, "TAOUSDT", "listed 2024-04-11", "2024-01-01..2024-01-31", home=home, database=database)


def test_unknown_symbol(isolated):
    home, database = isolated
    result = _backfill("--start", "2024-01-01", "--end", "2024-01-02", "--symbols", "BTCUSDT,NOPEUSDT")
    _assert_refused(result, "NOPEUSDT", home=home, database=database)


def test_partly_listed_range_runs_with_a_notice(isolated):
    request = validate_request(
        dt.date(2024, 4, 9), dt.date(2024, 4, 12), ["TAOUSDT", "BTCUSDT"], today=dt.date(2026, 1, 1)
    )
    assert request.symbols == ["TAOUSDT", "BTCUSDT"]
    assert request.notices == ["TAOUSDT is listed from 2024-04-11: 2024-04-09..2024-04-10 stay empty"]
    delisted = validate_request(dt.date(2024, 6, 30), dt.date(2024, 7, 3), ["AGIXUSDT"], today=dt.date(2026, 1, 1))
    assert delisted.notices == ["AGIXUSDT is delisted after 2024-07-01: later days stay empty"]


def test_end_before_start(isolated):
    with pytest.raises(RunRequestError, match="--end 2024-01-01 is before --start 2024-01-05"):
        validate_request(dt.date(2024, 1, 5), dt.date(2024, 1, 1), None)


def test_whole_universe_notice_is_one_line(isolated):
    request = validate_request(dt.date(2024, 1, 1), dt.date(2024, 1, 2), None, today=dt.date(2026, 1, 1))
    assert request.symbols == []
    assert request.notices == [
        "2 symbol(s) not listed on every day of 2024-01-01..2024-01-02 (BUSDUSDT, TAOUSDT): those partitions stay empty"
    ]


def test_whole_universe_notice_names_a_symbol_listed_late_and_delisted_once(isolated):
    request = validate_request(dt.date(2023, 1, 1), dt.date(2024, 12, 31), None, today=dt.date(2026, 1, 1))
    (notice,) = request.notices
    named = notice.split(" (", 1)[1].split(")", 1)[0].split(", ")
    # AGIXUSDT: listed 2023-02-07 and delisted 2024-07-01, both inside the range: named once.
    assert named.count("AGIXUSDT") == 1
    assert len(named) == len(set(named))
    assert notice.startswith(f"{len(named)} symbol(s) not listed on every day of 2023-01-01..2024-12-31")
