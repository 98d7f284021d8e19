"""Smoke test of ``benchmarks/run.py --scale small`` (what CI runs): the whole benchmark runs end to end
and its JSON has every section with sane row counts. No timing assertions: timings on a shared CI
machine prove nothing; the published figures come from the medium/large scales (docs/performance.md).

Row counts are derived independently from the small scale's definition: the synthetic generator
keeps whole days except one missing day for every symbol whose index is 3 mod 7, so feature rows =
symbols × days − those days; the Dagster backfill writes at most 24 hourly bars per symbol and day.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.scales import SCALES  # noqa: E402

SMALL = SCALES["small"]

# Runs `benchmarks/run.py --scale small` in a subprocess: a few minutes.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def small_results(tmp_path_factory) -> dict:
    output = tmp_path_factory.mktemp("bench") / "small.json"
    process = subprocess.run(
        [sys.executable, "benchmarks/run.py", "--scale", "small", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-6000:]
    results = json.loads(output.read_text())
    results["_stdout"] = process.stdout
    return results


def test_json_has_every_section_and_the_printed_table(small_results):
    assert {"features", "backfill", "rest", "archive", "environment"} <= small_results.keys()
    assert small_results["scale"] == "small"
    table = small_results["_stdout"]
    for label in ("(1) hourly", "(1) minute", "(2) backfill", "(3) REST", "(4)"):
        assert label in table


def test_features_three_implementations_agree_with_exact_row_counts(small_results):
    sections = {entry["data_set"]: entry for entry in small_results["features"]}
    assert set(sections) == {spec.name for spec in SMALL.feature_sets}
    for spec in SMALL.feature_sets:
        entry = sections[spec.name]
        whole_missing_days = sum(1 for index in range(spec.symbols) if index % 7 == 3)
        expected_rows = spec.symbols * spec.days - whole_missing_days
        assert (
            0.99 * spec.nominal_rows
            <= entry["silver_rows"]
            <= spec.nominal_rows - whole_missing_days * spec.bars_per_day
        )
        assert set(entry["implementations"]) == {"features_project", "features_polars_floor", "features_pandas"}
        for result in entry["implementations"].values():
            assert result["rows_in"] == entry["silver_rows"]
            assert result["rows_out"] == expected_rows
            assert result["seconds"] > 0 and result["peak_rss_mb"] > 0
        for check in entry["agreement_with_project"].values():
            assert check["rows_on_one_side_only"] == 0 and check["null_mismatches"] == {}
            assert check["agrees"], check
        assert set(entry["ratios"]) == {
            "project_vs_floor_time",
            "pandas_vs_project_time",
            "project_vs_floor_peak_rss",
            "pandas_vs_project_peak_rss",
        }


def test_backfill_both_launches_succeed_and_write_the_same_tables(small_results):
    section = small_results["backfill"]
    days = (SMALL.backfill_end - SMALL.backfill_start).days + 1
    assert section["days"] == days
    daemon, cli = section["results"]
    assert daemon["launch"].startswith("daemon") and cli["launch"] == "cryptolake backfill"
    assert daemon["backfill_status"] in ("COMPLETED", "COMPLETED_SUCCESS")
    for result in (daemon, cli):
        assert result["symbols"] == SMALL.backfill_symbols
        assert result["runs"] >= 1 and result["runs_succeeded"] == result["runs"]
        bronze = result["tables"]["bronze.klines"]
        assert 0.9 * SMALL.backfill_symbols * days * 24 <= bronze <= SMALL.backfill_symbols * days * 24
        assert result["tables"]["silver.ohlcv"] <= bronze
        assert result["tables"]["gold.daily_features"] <= SMALL.backfill_symbols * days
    # Same simulated exchange, same range: both launch paths must produce identical tables.
    assert daemon["tables"] == cli["tables"]
    assert daemon["finished"] and cli["finished"]


def test_rest_and_archive_fetch_the_same_klines(small_results):
    rest, archive = small_results["rest"], small_results["archive"]
    assert len(rest["symbols"]) == SMALL.ingest_symbols and archive["symbols"] == rest["symbols"]
    days = (SMALL.ingest_end - SMALL.ingest_start).days
    nominal = SMALL.ingest_symbols * days * 1440
    # The simulated market has rare exchange-wide outages: allow a few missing minutes, never extra ones.
    assert 0.95 * nominal <= rest["rows"] <= nominal
    assert rest["http_429"] == 0 and rest["requests_seen_by_exchange"] >= rest["rows"] / 1000
    assert rest["total_weight"] == 2 * rest["requests_seen_by_exchange"]
    assert archive["rows_match"] and archive["archive"]["rows_in"] == rest["rows"]
    assert archive["archive"]["files"] == SMALL.ingest_symbols * SMALL.ingest_months
