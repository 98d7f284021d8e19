"""deploy/celery/ and the executor switch (resources/executors.py): configuration only, checked without servers."""

from pathlib import Path

import pytest
import yaml
from dagster import in_process_executor

from resources.executors import (
    CELERY_CONFIG_ENV_VAR,
    DEFAULT_CELERY_CONFIG,
    EXECUTOR_ENV_VAR,
    build_executor,
    celery_executor_config,
    executor_choice,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_celery_instance_is_the_postgres_instance():
    celery = yaml.safe_load((REPO_ROOT / "deploy" / "celery" / "dagster.yaml").read_text())
    postgres = yaml.safe_load((REPO_ROOT / "deploy" / "postgres" / "dagster.yaml").read_text())
    assert celery == postgres


def test_default_executor_is_in_process(monkeypatch):
    monkeypatch.delenv(EXECUTOR_ENV_VAR, raising=False)
    assert executor_choice() == "in_process"
    assert build_executor() is in_process_executor


def test_unknown_executor_is_refused(monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV_VAR, "dask")
    with pytest.raises(ValueError, match="CRYPTOLAKE_EXECUTOR='dask': expected one of in_process, celery, k8s"):
        executor_choice()


def test_celery_executor_needs_the_broker_urls(monkeypatch):
    monkeypatch.setenv(EXECUTOR_ENV_VAR, "celery")
    monkeypatch.delenv("CRYPTOLAKE_CELERY_BROKER", raising=False)
    monkeypatch.setenv("CRYPTOLAKE_CELERY_BACKEND", "redis://127.0.0.1:6379/1")
    with pytest.raises(ValueError, match="needs CRYPTOLAKE_CELERY_BROKER "):
        build_executor()


def test_celery_executor_reads_the_workers_yaml(monkeypatch, tmp_path):
    monkeypatch.setenv(EXECUTOR_ENV_VAR, "celery")
    monkeypatch.setenv("CRYPTOLAKE_CELERY_BROKER", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("CRYPTOLAKE_CELERY_BACKEND", "redis://127.0.0.1:6379/1")
    monkeypatch.delenv(CELERY_CONFIG_ENV_VAR, raising=False)
    config = celery_executor_config()
    assert DEFAULT_CELERY_CONFIG == REPO_ROOT / "deploy" / "celery" / "celery.yaml"
    # URLs stay env references (resolved in each process), redelivery settings are the documented ones.
    assert config["broker"] == {"env": "CRYPTOLAKE_CELERY_BROKER"}
    assert config["backend"] == {"env": "CRYPTOLAKE_CELERY_BACKEND"}
    source = config["config_source"]
    assert (source["task_acks_late"], source["task_reject_on_worker_lost"], source["worker_prefetch_multiplier"]) == (
        True,
        True,
        1,
    )
    assert source["broker_transport_options"]["visibility_timeout"] == 3600
    executor = build_executor()
    assert executor.name == "celery"
    # A copy elsewhere is honoured.
    copy = tmp_path / "celery.yaml"
    copy.write_text(yaml.safe_dump({"execution": {"config": {**config, "include": ["my_module"]}}}))
    monkeypatch.setenv(CELERY_CONFIG_ENV_VAR, str(copy))
    assert celery_executor_config()["include"] == ["my_module"]


def test_dagster_celery_cli_validates_the_yaml(monkeypatch):
    """The workers' side: dagster-celery's own loader accepts the file and resolves the env URLs."""
    from dagster_celery.cli import get_validated_config

    monkeypatch.setenv("CRYPTOLAKE_CELERY_BROKER", "redis://127.0.0.1:6379/0")
    monkeypatch.setenv("CRYPTOLAKE_CELERY_BACKEND", "redis://127.0.0.1:6379/1")
    config = get_validated_config(str(DEFAULT_CELERY_CONFIG))
    assert (config["broker"], config["backend"]) == ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/1")
    assert config["config_source"]["task_acks_late"] is True
