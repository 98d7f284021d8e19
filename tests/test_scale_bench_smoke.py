"""Smoke test of ``benchmarks/scale_bench.py`` at a tiny range (the published figures come from the
full history, docs/performance.md): every section it reports runs end to end on the real CLI, the
real webserver and Chromium, and its counts match the asset graph. No timing assertions."""

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.e2e]
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def chromium() -> str:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: install it with `apt-get install -y chromium` (.ci/run does this).")
    return CHROMIUM


def _partitioned_asset_counts() -> tuple[int, int]:
    """(date × symbol assets, date-only assets) of the code location, leaving out the live stream's."""
    from dagster import MultiPartitionsDefinition, TimeWindowPartitionsDefinition

    from cryptolake_assets.definitions import defs

    multi = daily = 0
    for node in defs.resolve_asset_graph().asset_nodes:
        if not node.is_materializable or node.tags.get("pipeline") == "stream":
            continue
        if isinstance(node.partitions_def, MultiPartitionsDefinition):
            multi += 1
        elif isinstance(node.partitions_def, TimeWindowPartitionsDefinition):
            daily += 1
    return multi, daily


def test_scale_bench_reports_every_section_with_counts_from_the_asset_graph(tmp_path, chromium):
    from partitions import universe_symbols

    today = dt.datetime.now(dt.UTC).date()
    start, end = today - dt.timedelta(days=5), today - dt.timedelta(days=4)
    workdir = tmp_path / "work"
    process = subprocess.run(
        [sys.executable, "-m", "benchmarks.scale_bench", "--start", str(start), "--end", str(end)]
        + ["--sections", "cli,newday,ui", "--workdir", str(workdir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "CRYPTOLAKE_CHROMIUM": chromium},
    )
    assert process.returncode == 0, process.stdout[-3000:] + process.stderr[-6000:]
    path = Path(process.stdout.strip().splitlines()[-1].removeprefix("results: "))
    results = json.loads(path.read_text())
    path.unlink()

    symbols, (multi, daily) = len(universe_symbols()), _partitioned_asset_counts()
    days = (end - start).days + 1
    cli = results["cli"]
    assert cli["finished"] and cli["first_day"] == str(start) and cli["last_day"] == str(end)
    # Every date × symbol partition of the range (empty ones included) and every day of the date-only
    # assets; gold/dim_date twice (the CLI materializes the dimensions first, then with the day's assets).
    assert cli["partition_materializations"] == multi * symbols * days + daily * days + days
    assert cli["events"]["ASSET_MATERIALIZATION"] >= cli["partition_materializations"]
    assert 0 < cli["event_log_bytes_per_partition_materialization"] < cli["event_log_bytes"]
    assert cli["instance_bytes"] >= cli["event_log_bytes"]
    assert results["newday"]["finished"] and results["newday"]["first_day"] == str(end + dt.timedelta(days=1))
    ui = results["ui"]
    # gold/daily_features: the range and the new day, every symbol.
    assert ui["materialized_partitions_shown"] == symbols * (days + 1)
    assert len(ui["asset_page"]) == len(ui["partitions_tab"]) == len(ui["partitions_tab_click"]) == ui["visits"]
    assert all(seconds > 0 for seconds in ui["asset_page"] + ui["partitions_tab"] + ui["partitions_tab_click"])
