"""The demo's database stays simulated: no later command writes live data into it behind the user's back.

Otherwise ``cryptolake ui`` after ``cryptolake demo`` would start the default-on schedules on the live
source against the demo's database (mixing live Binance bars into the simulated file, or failing on
DNS offline). The instance records which source each database holds.
"""

import json

import pytest
from click.testing import CliRunner

from cryptolake_assets import cli
from cryptolake_assets.source_identity import (
    RECORD_FILE,
    SourceMismatchError,
    record_source,
    recorded_sources,
    resolve_source,
)


@pytest.fixture
def instance_dirs(tmp_path, monkeypatch):
    home, database = tmp_path / "home", tmp_path / "demo.duckdb"
    home.mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("CRYPTOLAKE_DUCKDB", str(database))
    monkeypatch.setenv("CRYPTOLAKE_INTERVAL", "1h")
    monkeypatch.delenv("CRYPTOLAKE_SOURCE", raising=False)
    return home, str(database.resolve())


def test_recorded_source_is_used_when_none_is_set(instance_dirs):
    home, database = instance_dirs
    record_source(home, database, "simulated")
    assert json.loads((home / RECORD_FILE).read_text()) == {database: "simulated"}
    assert resolve_source(home, database) == "simulated"


def test_another_source_on_a_recorded_database_is_refused(instance_dirs, monkeypatch):
    home, database = instance_dirs
    record_source(home, database, "simulated")
    monkeypatch.setenv("CRYPTOLAKE_SOURCE", "binance")
    with pytest.raises(SourceMismatchError, match="holds simulated data; CRYPTOLAKE_SOURCE=binance would mix"):
        resolve_source(home, database)


def test_unrecorded_database_defaults_to_live(instance_dirs):
    home, database = instance_dirs
    assert resolve_source(home, database) == "binance"
    assert recorded_sources(home) == {}


def test_ui_after_demo_runs_the_schedules_on_the_simulated_source(instance_dirs, monkeypatch):
    home, database = instance_dirs
    record_source(home, database, "simulated")
    seen = {}

    def fake_dagster_dev(command, cwd):
        import os

        seen["source"], seen["command"] = os.environ.get("CRYPTOLAKE_SOURCE"), command
        return 0

    monkeypatch.setattr(cli.subprocess, "call", fake_dagster_dev)
    result = CliRunner().invoke(cli.main, ["ui"])
    assert result.exit_code == 0, result.output
    assert seen["source"] == "simulated"
    assert "dev" in seen["command"]
    assert f"source: simulated for {database} (recorded" in result.output


def test_live_backfill_into_the_demo_database_is_refused_before_any_run(instance_dirs, monkeypatch):
    home, database = instance_dirs
    record_source(home, database, "simulated")
    monkeypatch.setenv("CRYPTOLAKE_SOURCE", "binance")
    result = CliRunner().invoke(
        cli.main, ["backfill", "--start", "2024-01-01", "--end", "2024-01-02", "--source", "binance"]
    )
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "holds simulated data" in lines[0], result.output
    assert not (home / "storage").exists() and not (home / "runs.db").exists()
    assert recorded_sources(home) == {database: "simulated"}
