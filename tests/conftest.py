"""Shared fixtures: one real PostgreSQL server per test session, and project instances on it.

``postgres_server`` starts the Debian package's server on first use (tests/postgres_server.py) and
stops it at the end of the session. Without the binaries the Postgres tests skip with the reason
outside CI and fail under ``CI=true``: CI must run them (``.ci/run`` installs the package).
"""

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from dagster import DagsterInstance
from postgres_server import INSTALL_HINT, PostgresServer, postgres_bin_dir
from server_binaries import in_ci, require_binary

REPO_ROOT = Path(__file__).resolve().parents[1]
INSTANCE_CONFIGS = {
    "sqlite": REPO_ROOT / "dagster.yaml",
    "postgres": REPO_ROOT / "deploy" / "postgres" / "dagster.yaml",
}
# The instance kinds the instance-level tests run on (parametrize with these).
INSTANCE_KINDS = tuple(INSTANCE_CONFIGS)


def require_postgres_binaries(bin_dir: Path | None, in_ci: bool) -> Path:
    """The binaries' folder; without one, skip the test (with the reason), or fail it under CI."""
    return require_binary(
        bin_dir, f"PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: {INSTALL_HINT}", in_ci
    )


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    server = PostgresServer(require_postgres_binaries(postgres_bin_dir(), in_ci())).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh, empty database on the session's server."""
    return postgres_server.new_database()


def project_instance_home(request, home: Path, monkeypatch, kind: str) -> Path:
    """``home`` holding the project's instance config of ``kind`` (Postgres: a fresh database), as DAGSTER_HOME."""
    home.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(INSTANCE_CONFIGS[kind], home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    if kind == "postgres":
        monkeypatch.setenv("DAGSTER_POSTGRES_URL", request.getfixturevalue("postgres_url"))
    return home


@pytest.fixture(params=INSTANCE_KINDS)
def instance_kind(request) -> str:
    """``sqlite`` (the project's dagster.yaml) or ``postgres`` (deploy/postgres/dagster.yaml)."""
    return request.param


@pytest.fixture
def project_instance(request, instance_kind, tmp_path, monkeypatch) -> Iterator[DagsterInstance]:
    """The project's instance, once on SQLite and once on the session's PostgreSQL server."""
    home = project_instance_home(request, tmp_path / "home", monkeypatch, instance_kind)
    with DagsterInstance.from_config(str(home)) as instance:
        yield instance
