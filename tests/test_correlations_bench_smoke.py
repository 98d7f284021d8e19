"""Smoke test of ``benchmarks/correlations_bench.py`` at a tiny size: the script runs its case in a
fresh process and reports the exact row count. No timing assertions (timings on a shared machine
prove nothing; the published figures are in docs/performance.md)."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.correlations_bench import synthetic_returns  # noqa: E402


def test_tiny_case_reports_every_pair_on_every_day(tmp_path):
    output = tmp_path / "corr.json"
    process = subprocess.run(
        [sys.executable, "benchmarks/correlations_bench.py", "--case", "tiny=6,4", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    [case] = json.loads(output.read_text())["cases"]
    # 6 symbols → 15 pairs, each complete on each of the 4 days; input 6 × (4 + 29) returns.
    assert (case["case"], case["symbols"], case["days"], case["rows"]) == ("tiny", 6, 4, 60)
    assert (case["input_rows"], case["null_correlations"]) == (198, 0)
    assert case["peak_rss_mb"] > 0 and case["seconds"] >= 0
    header, row = process.stdout.splitlines()
    assert header.split()[:4] == ["case", "symbols", "days", "rows"]
    assert row.split()[:4] == ["tiny", "6", "4", "60"]


def test_synthetic_returns_are_seeded_and_complete():
    first, second = synthetic_returns(3, 2), synthetic_returns(3, 2)
    assert first.equals(second)
    assert first.height == 3 * 31 and first["log_return_1d"].null_count() == 0
    assert first.group_by("symbol").len().sort("symbol").rows() == [
        ("SYN000USDT", 31),
        ("SYN001USDT", 31),
        ("SYN002USDT", 31),
    ]


def test_asset_mode_runs_the_range_through_dagster_duckdb_and_delta(tmp_path):
    output = tmp_path / "asset.json"
    process = subprocess.run(
        [sys.executable, "benchmarks/correlations_bench.py", "--asset", "--case", "tiny=4,3", "--output", str(output)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert process.returncode == 0, process.stderr[-3000:]
    [case] = json.loads(output.read_text())["cases"]
    # 4 symbols → 6 pairs on each of the 3 partitions, read back from the DuckDB table.
    assert (case["measured"], case["symbols"], case["days"], case["rows"], case["null_correlations"]) == (
        "asset",
        4,
        3,
        18,
        0,
    )
    assert case["input_rows"] == 4 * (3 + 29)
    assert process.stdout.splitlines()[0].split()[4:6] == ["asset", "s"]
