"""Which Dagster executor runs the steps: ``CRYPTOLAKE_EXECUTOR`` (configuration only, no asset change).

* ``in_process`` (the default): every step of a run in the run's process, as before.
* ``celery``: dagster-celery's ``celery_executor``; each step is a Celery task that any worker
  started with ``dagster-celery worker start -A dagster_celery.app -y deploy/celery/celery.yaml``
  picks up (deploy/celery/README.md). The executor reads the same YAML as the workers
  (``CRYPTOLAKE_CELERY_CONFIG``, default deploy/celery/celery.yaml), so both sides agree on the
  broker, the result backend and the delivery settings; the URLs come from the environment
  (``CRYPTOLAKE_CELERY_BROKER``, ``CRYPTOLAKE_CELERY_BACKEND``), never from a file.

Celery runs need a persistent instance the workers share (deploy/celery/dagster.yaml, PostgreSQL)
and a run launched from a reconstructable job (``cryptolake backfill`` does it:
``reconstructable_job``), since each worker loads the job itself.

* ``k8s``: dagster-k8s' ``k8s_job_executor`` (the ``k8s`` extra); each step is a Kubernetes Job
  from the run's image, with the run launcher's and code location's container context (env,
  Secrets, resources, security context) as deploy/k8s/values.yaml sets them. For runs launched by
  the ``K8sRunLauncher`` of Dagster's Helm chart (deploy/k8s/README.md); no config is needed here.
"""

import os
from pathlib import Path
from typing import Any

import yaml
from dagster import ExecutorDefinition, in_process_executor

EXECUTOR_ENV_VAR = "CRYPTOLAKE_EXECUTOR"
EXECUTORS = ("in_process", "celery", "k8s")
CELERY_CONFIG_ENV_VAR = "CRYPTOLAKE_CELERY_CONFIG"
DEFAULT_CELERY_CONFIG = Path(__file__).resolve().parents[1] / "deploy" / "celery" / "celery.yaml"
CELERY_ENV_VARS = ("CRYPTOLAKE_CELERY_BROKER", "CRYPTOLAKE_CELERY_BACKEND")


def executor_choice() -> str:
    """``in_process`` (default), ``celery`` or ``k8s``, from ``$CRYPTOLAKE_EXECUTOR``."""
    value = (os.environ.get(EXECUTOR_ENV_VAR) or "in_process").strip().lower().replace("-", "_")
    if value not in EXECUTORS:
        raise ValueError(f"{EXECUTOR_ENV_VAR}={value!r}: expected one of {', '.join(EXECUTORS)}")
    return value


def celery_config_path() -> Path:
    return Path(os.environ.get(CELERY_CONFIG_ENV_VAR) or DEFAULT_CELERY_CONFIG).expanduser().resolve()


def celery_executor_config(path: Path | None = None) -> dict[str, Any]:
    """The ``execution: config:`` block of the workers' YAML (the celery executor's config)."""
    path = path or celery_config_path()
    if not path.exists():
        raise FileNotFoundError(f"{EXECUTOR_ENV_VAR}=celery: no Celery config at {path} (set {CELERY_CONFIG_ENV_VAR})")
    parsed = yaml.safe_load(path.read_text()) or {}
    return dict(parsed.get("execution", {}).get("config", {}))


def build_executor() -> ExecutorDefinition:
    """The executor ``$CRYPTOLAKE_EXECUTOR`` selects (see the module docstring)."""
    choice = executor_choice()
    if choice == "in_process":
        return in_process_executor
    if choice == "k8s":
        try:
            from dagster_k8s import k8s_job_executor
        except ImportError as error:  # the image installs it; a laptop needs the extra
            raise ValueError(f"{EXECUTOR_ENV_VAR}=k8s needs dagster-k8s: pip install -e '.[k8s]'") from error
        return k8s_job_executor
    missing = [name for name in CELERY_ENV_VARS if not os.environ.get(name)]
    if missing:
        raise ValueError(
            f"{EXECUTOR_ENV_VAR}=celery needs {' and '.join(missing)} (e.g. redis://127.0.0.1:6379/0; "
            "deploy/celery/README.md)"
        )
    from dagster_celery import celery_executor

    return celery_executor.configured(celery_executor_config(), name="celery")
