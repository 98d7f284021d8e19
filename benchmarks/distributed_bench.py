"""The same backfill on one process and on Celery workers (issue 21), side by side.

``python benchmarks/distributed_bench.py [--days 14] [--symbols 6] [--workers 2] [--json out.json]``

* **single**: ``cryptolake backfill --workers 1`` with the defaults: in-process executor, one DuckDB
  file, SQLite instance.
* **celery**: the same command with ``CRYPTOLAKE_EXECUTOR=celery``, ``CRYPTOLAKE_STORAGE=lake`` on
  moto's S3 server, the PostgreSQL instance (deploy/celery/dagster.yaml) and ``--workers`` Celery
  workers (one process each, own working directory), Redis as broker, result backend and shared
  Binance weight budget: the deployment of deploy/celery/README.md on one machine
  (tests/distributed_stack.py starts it, as tests/test_distributed_e2e.py does).

Simulated source, 1h bars. Prints wall time, Dagster runs and steps each worker ran. Every server
runs on this machine, so the figure is Celery's per-step cost (task hand-off, a code location and
resources per step, S3 round trips), not what more hosts would buy.
"""

import argparse
import datetime as dt
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from distributed_stack import CELERY_DIR, DistributedStack, MotoS3Server, celery_config_copy  # noqa: E402
from postgres_server import PostgresServer, postgres_bin_dir  # noqa: E402
from redis_server import RedisServer, redis_server_binary  # noqa: E402

from partitions import universe_symbols  # noqa: E402

START = dt.date(2024, 3, 1)
CLI = str(Path(sys.executable).with_name("cryptolake"))


def _backfill(env: dict[str, str], cwd: Path, days: int, symbols: list[str], workers: int) -> dict:
    cwd.mkdir(parents=True, exist_ok=True)
    end = START + dt.timedelta(days=days - 1)
    command = [CLI, "backfill", "--start", str(START), "--end", str(end), "--symbols", ",".join(symbols)]
    started = time.monotonic()
    result = subprocess.run(
        [*command, "--interval", "1h", "--workers", str(workers)], env=env, cwd=cwd, capture_output=True, text=True
    )
    seconds = time.monotonic() - started
    (cwd / "backfill.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"backfill failed in {cwd}:\n{(result.stdout + result.stderr)[-6000:]}")
    runs = re.search(r"\((\d+) runs\)", result.stdout)
    return {"seconds": round(seconds, 1), "runs": int(runs.group(1)) if runs else None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--symbols", type=int, default=6)
    parser.add_argument("--workers", type=int, default=2, help="Celery workers (and cryptolake backfill --workers)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    universe = universe_symbols()
    first = universe.index("BTCUSDT")
    symbols = universe[first : first + args.symbols]
    root = Path(tempfile.mkdtemp(prefix="cryptolake-distributed-bench-"))
    base = {**os.environ, "CRYPTOLAKE_SOURCE": "simulated", "CRYPTOLAKE_START_DATE": str(START)}
    for key in ("CRYPTOLAKE_EXECUTOR", "CRYPTOLAKE_STORAGE", "CRYPTOLAKE_INSTANCE", "CRYPTOLAKE_WEIGHT_BUDGET_URL"):
        base.pop(key, None)
    results = {}

    single_env = {
        **base,
        "DAGSTER_HOME": str(root / "single" / "home"),
        "CRYPTOLAKE_DUCKDB": str(root / "single" / "cryptolake.duckdb"),
        "CRYPTOLAKE_LAKE": str(root / "single" / "lake"),
    }
    print(f"single process: {args.days} days × {len(symbols)} symbols ...", flush=True)
    results["single"] = _backfill(single_env, root / "single", args.days, symbols, workers=1)
    results["single"]["steps_per_worker"] = {}

    bin_dir = postgres_bin_dir()
    redis_binary = redis_server_binary()
    if bin_dir is None or redis_binary is None:
        raise SystemExit("needs the Debian packages postgresql and redis-server (.ci/run installs both)")
    postgres, redis, moto = PostgresServer(bin_dir).start(), RedisServer(redis_binary).start(), MotoS3Server().start()
    stack = None
    try:
        env = {
            **base,
            **moto.env(),
            "DAGSTER_POSTGRES_URL": postgres.new_database(),
            "CRYPTOLAKE_CELERY_BROKER": redis.url(0),
            "CRYPTOLAKE_CELERY_BACKEND": redis.url(1),
            "CRYPTOLAKE_WEIGHT_BUDGET_URL": redis.url(2),
            "CRYPTOLAKE_STAGING": str(root / "staging"),
            "CRYPTOLAKE_EXECUTOR": "celery",
            "CRYPTOLAKE_STORAGE": "lake",
            "CRYPTOLAKE_LAKE": "s3://cryptolake/lake",
            "CRYPTOLAKE_INSTANCE": "postgres",
        }
        config = celery_config_copy(root, visibility_timeout=3600, restore_interval=10)
        env["CRYPTOLAKE_CELERY_CONFIG"] = str(config)
        stack = DistributedStack(root, env, config)
        stack.start_workers([f"w{n}" for n in range(1, args.workers + 1)])
        home = root / "celery" / "home"
        home.mkdir(parents=True)
        (home / "dagster.yaml").write_bytes((CELERY_DIR / "dagster.yaml").read_bytes())
        print(f"celery, {args.workers} workers, lake on moto S3 ...", flush=True)
        results["celery"] = _backfill(
            {**env, "DAGSTER_HOME": str(home)}, root / "celery", args.days, symbols, workers=args.workers
        )
        results["celery"]["steps_per_worker"] = {w.name: w.tasks_done() for w in stack.workers}
    finally:
        if stack is not None:
            stack.stop_workers()
        moto.stop()
        redis.stop()
        postgres.stop()

    print(f"\n{args.days} days × {len(symbols)} symbols, 1h bars, simulated source ({root})")
    print(f"{'mode':<8} {'wall s':>8} {'runs':>5}  steps per worker")
    for mode, result in results.items():
        workers = ", ".join(f"{name}: {count}" for name, count in result["steps_per_worker"].items()) or "-"
        print(f"{mode:<8} {result['seconds']:>8.1f} {result['runs'] or '?':>5}  {workers}")
    if args.json:
        args.json.write_text(json.dumps({"days": args.days, "symbols": symbols, **results}, indent=2))


if __name__ == "__main__":
    main()
