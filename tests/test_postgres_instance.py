"""deploy/postgres/dagster.yaml: a production instance on a real PostgreSQL server.

The server is the Debian package's, started once per session (tests/conftest.py); every test gets
its own database.
"""

from pathlib import Path

import click
import pytest
import sqlalchemy as db
import yaml
from dagster import DagsterInstance
from dagster_postgres import PostgresRunStorage, PostgresScheduleStorage

from cryptolake_assets import cli
from resources.dagster_event_log import BatchedPostgresEventLogStorage

REPO_ROOT = Path(__file__).resolve().parents[1]
POSTGRES_CONFIG = REPO_ROOT / "deploy" / "postgres" / "dagster.yaml"
STORAGE_BLOCKS = {"run_storage", "event_log_storage", "schedule_storage", "storage"}


def test_the_postgres_config_keeps_every_other_block_of_the_projects_instance():
    project = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    deployed = yaml.safe_load(POSTGRES_CONFIG.read_text())
    assert {k: v for k, v in deployed.items() if k not in STORAGE_BLOCKS} == {
        k: v for k, v in project.items() if k not in STORAGE_BLOCKS
    }
    for block in ("run_storage", "event_log_storage", "schedule_storage"):
        assert deployed[block]["config"]["postgres_url"] == {"env": "DAGSTER_POSTGRES_URL"}
    assert deployed["event_log_storage"]["class"] == "BatchedPostgresEventLogStorage"


def test_the_instance_keeps_runs_events_and_schedules_on_the_server(tmp_path, monkeypatch, postgres_url):
    home = tmp_path / "home"
    home.mkdir()
    (home / "dagster.yaml").write_text(POSTGRES_CONFIG.read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", postgres_url)
    with DagsterInstance.from_config(str(home)) as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, BatchedPostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert instance.event_log_storage.postgres_url == postgres_url
        # The pools of the project's dagster.yaml hold on this instance too.
        assert instance.event_log_storage.get_concurrency_info("duckdb").slot_count == 0  # no step has asked yet
        instance.event_log_storage.initialize_concurrency_limit_to_default("duckdb")
        assert instance.event_log_storage.get_concurrency_info("duckdb").slot_count == 2
    engine = db.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            tables = set(db.inspect(conn).get_table_names())
    finally:
        engine.dispose()
    assert {"runs", "event_logs", "jobs", "job_ticks", "asset_check_executions", "concurrency_slots"} <= tables
    assert not (home / "history").exists()  # nothing went to SQLite files


def test_cryptolake_instance_postgres_copies_the_deploy_config(tmp_path, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "pg"))
    monkeypatch.setenv("CRYPTOLAKE_INSTANCE", "postgres")
    monkeypatch.delenv("DAGSTER_POSTGRES_URL", raising=False)
    with pytest.raises(click.ClickException, match="needs DAGSTER_POSTGRES_URL"):
        cli.ensure_dagster_home()
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", "postgresql://u@127.0.0.1:1/x")
    with pytest.raises(click.ClickException, match="must start with postgresql[+]psycopg2://"):
        cli.ensure_dagster_home()
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", "postgresql+psycopg2://u@127.0.0.1:1/x")
    home = cli.ensure_dagster_home()
    assert (home / "dagster.yaml").read_text() == POSTGRES_CONFIG.read_text()

    # A SQLite home is not silently switched, nor the other way round.
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "sqlite"))
    monkeypatch.delenv("CRYPTOLAKE_INSTANCE")
    assert (cli.ensure_dagster_home() / "dagster.yaml").read_text() == (REPO_ROOT / "dagster.yaml").read_text()
    monkeypatch.setenv("CRYPTOLAKE_INSTANCE", "postgres")
    with pytest.raises(click.ClickException, match="is a SQLite instance but CRYPTOLAKE_INSTANCE=postgres"):
        cli.ensure_dagster_home()
    monkeypatch.setenv("CRYPTOLAKE_INSTANCE", "mysql")
    with pytest.raises(click.ClickException, match="choose one of sqlite, postgres"):
        cli.ensure_dagster_home()


def test_without_the_server_binaries_the_postgres_tests_fail_in_ci_and_skip_elsewhere(tmp_path):
    from conftest import require_postgres_binaries

    with pytest.raises(pytest.fail.Exception, match="CI=true and PostgreSQL server binaries not found"):
        require_postgres_binaries(None, in_ci=True)
    with pytest.raises(pytest.skip.Exception, match="apt-get install -y postgresql"):
        require_postgres_binaries(None, in_ci=False)
    assert require_postgres_binaries(tmp_path, in_ci=True) == tmp_path


def test_the_pool_wait_timeout_can_be_set_in_the_postgres_event_log_config(tmp_path, monkeypatch, postgres_url):
    home = tmp_path / "home"
    home.mkdir()
    config = POSTGRES_CONFIG.read_text().replace(
        "    # `pool_wait_timeout_seconds: 600` here sets it instead.",
        "    pool_wait_timeout_seconds: 600",
    )
    assert "    pool_wait_timeout_seconds: 600\n" in config
    (home / "dagster.yaml").write_text(config)
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", postgres_url)
    monkeypatch.setenv("CRYPTOLAKE_POOL_WAIT_TIMEOUT_SECONDS", "5")
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.event_log_storage._pool_wait.timeout_seconds == 600.0
    (home / "dagster.yaml").write_text(POSTGRES_CONFIG.read_text())
    with DagsterInstance.from_config(str(home)) as instance:
        assert instance.event_log_storage._pool_wait.timeout_seconds == 5.0  # from the environment
