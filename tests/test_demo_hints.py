"""What ``cryptolake demo`` prints works as printed, from any shell.

The old hint started with a bare ``python -c "import duckdb ..."``: outside the project's venv that
python has no duckdb (or is another Python), and it opened the DuckDB file the pipeline writes.
The hint now names the venv's interpreter and reads the published lake.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Runs `cryptolake demo` in a subprocess (about a minute on two shared cores).
pytestmark = pytest.mark.slow

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_query_hint_runs_outside_the_venv_and_reads_the_lake(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRYPTOLAKE_")}
    env |= {"DAGSTER_HOME": str(tmp_path / "home"), "CRYPTOLAKE_DUCKDB": str(tmp_path / "demo.duckdb")}
    demo = subprocess.run(
        [sys.executable, "-m", "cryptolake_assets.cli", "demo", "--days", "2", "--symbols", "BTCUSDT,ETHUSDT"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]
    hints = dict(re.findall(r"^(Query it|Open the UI|Serve it):\s+(.*)$", demo.stdout, flags=re.M))
    assert hints["Query it"].startswith(sys.executable), hints
    assert f"{tmp_path}/lake/gold/daily_features" in hints["Query it"]

    # A plain shell: no venv on PATH, no VIRTUAL_ENV, started from another directory.
    plain = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    query = subprocess.run(
        ["bash", "-c", hints["Query it"]], cwd=tmp_path, env=plain, capture_output=True, text=True, timeout=120
    )
    assert query.returncode == 0, query.stderr
    assert "BTCUSDT" in query.stdout and "ETHUSDT" in query.stdout
    assert "(4, " in query.stdout  # 2 days × 2 symbols of features

    ui_command = hints["Open the UI"].split("   ")[0]
    help_text = subprocess.run(
        ["bash", "-c", ui_command.replace(" ui", " --help")],
        cwd=tmp_path,
        env=plain,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert help_text.returncode == 0 and "serve" in help_text.stdout, help_text.stderr
