"""The docs' "Reading the lake" examples (docs/reading-the-lake.md) run, unchanged, against a small demo lake."""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import materialize

from cryptolake_assets.bronze.klines import bronze_klines
from cryptolake_assets.quality.catalog import SILVER_OHLCV
from cryptolake_assets.quality.factory import build_table_checks
from cryptolake_assets.silver.ohlcv import silver_ohlcv
from resources.binance import BinanceClient
from resources.binance_archive import BinanceArchiveClient
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
from resources.duckdb_io import CryptoLakeDuckDBIOManager
from resources.lake import DeltaLake

PAGE = Path(__file__).resolve().parents[1] / "docs" / "reading-the-lake.md"


def _section_blocks() -> list[str]:
    """Every Python block of the page (the page is the former README section "Reading the lake")."""
    return re.findall(r"```python\n(.*?)```", PAGE.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory):
    root = tmp_path_factory.mktemp("demo")
    lake = DeltaLake(root=str(root / "lake"))
    resources = {
        "io_manager": CryptoLakeDuckDBIOManager(database=str(root / "c.duckdb"), lake=lake),
        "binance": BinanceClient(source="simulated", simulation_seed=7),
        "binance_archive": BinanceArchiveClient(source="simulated"),
    }
    tags = {ASSET_PARTITION_RANGE_START_TAG: "2024-02-01|BTCUSDT", ASSET_PARTITION_RANGE_END_TAG: "2024-02-02|ETHUSDT"}
    assert materialize(
        [bronze_klines, silver_ohlcv, build_table_checks(SILVER_OHLCV)], resources=resources, tags=tags
    ).success
    # The first commit stands for history: back-date it 10 days so "as of last Tuesday" finds it.
    ten_days_ago = time.time() - 10 * 86400
    for log in (root / "lake" / "silver" / "ohlcv" / "_delta_log").glob("*.json"):
        os.utime(log, (ten_days_ago, ten_days_ago))
    assert materialize([bronze_klines, silver_ohlcv], resources=resources, partition_key="2024-02-03|BTCUSDT").success
    return str(root / "lake")


def test_page_has_the_five_reading_examples():
    blocks = _section_blocks()
    assert len(blocks) == 5
    assert "pl.read_delta" in blocks[0] and "to_pyarrow_dataset" in blocks[1]
    assert "to_pandas" in blocks[2] and "last_tuesday" in blocks[3] and "check_results" in blocks[4]


@pytest.mark.parametrize("index", range(5))
def test_reading_example_runs(demo_lake, index):
    block = _section_blocks()[index]
    result = subprocess.run(
        [sys.executable, "-c", block],
        env={**os.environ, "CRYPTOLAKE_LAKE": demo_lake},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    if index == 1:  # DuckDB: 2 symbols x 2 days of 24 hourly bars, then BTCUSDT 2024-02-03
        assert re.search(r"BTCUSDT\s*│\s*2024-02-01\s*│\s*24", out) and re.search(
            r"BTCUSDT\s*│\s*2024-02-03\s*│\s*24", out
        )
    if index == 3:  # last Tuesday saw only the first commit: 4 partitions x 24 bars
        assert "96 bars" in out
    if index == 4:  # the silver checks of the first run: 4 partitions x 11 checks, all passing
        assert "44 results, 0 failing" in out
