"""Issue 17's scale targets: the full Binance history of the default universe on one machine.

    python -m benchmarks.scale_bench                       # everything, full history (≈ 1 h here)
    python -m benchmarks.scale_bench --sections cli,newday,ui --start 2024-01-01   # a quicker look
    python -m benchmarks.scale_bench --instance postgres   # the instance on a PostgreSQL server started here

Sections (each on the simulated source, hourly klines, ``CRYPTOLAKE_START_DATE`` = ``--start``):

* ``cli``: ``cryptolake backfill`` of ``--start``..``--end`` for the whole universe on a fresh instance
  and DuckDB file (target ≤ 15 min for the full history); then the instance on disk: its size
  (target ≤ 2 GB), the event log's bytes per partition materialization (target ≤ 5 kB) and the
  events by type;
* ``newday``: on that instance, ``cryptolake backfill`` of the next day for the whole universe
  (target ≤ 60 s);
* ``ui``: ``dagster-webserver`` (no daemon) on that instance and headless Chromium: the asset page and
  the partitions tab of ``gold/daily_features``, from navigation to the figures on screen
  (target ≤ 3 s), cold (first visit) and warm;
* ``daemon``: the same backfill launched the way the UI launches it (``dagster dev``, GraphQL
  ``launchPartitionBackfill``) on another fresh instance (target ≤ 30 min).

``--instance postgres`` starts a PostgreSQL server from the Debian package on 127.0.0.1 (the tests'
``tests/postgres_server.py``, with fsync on) and runs every section on the production instance
(deploy/postgres/dagster.yaml, ``CRYPTOLAKE_INSTANCE=postgres``); the instance size is then the
database's ``pg_database_size`` plus ``$DAGSTER_HOME``'s files (compute logs).

Prints one line per figure and writes ``benchmarks/results/scale-<UTC time>.json``.
"""

import argparse
import datetime as dt
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.backfill_bench import via_daemon
from benchmarks.dagster_dev import free_port
from benchmarks.measure import run_process
from tests.e2e_support import CHROMIUM_ARGS  # the flags the browser tests use (no network here)

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"
FULL_HISTORY_START = dt.date(2017, 8, 17)  # BTCUSDT's first day on Binance
TARGETS = {
    "cli_seconds": 15 * 60,
    "daemon_seconds": 30 * 60,
    "newday_seconds": 60,
    "ui_seconds": 3.0,
    "instance_bytes": 2 * 1024**3,
    "event_log_bytes_per_partition_materialization": 5 * 1024,
}


def _env(workdir: Path, name: str, start: dt.date, postgres_url: str | None = None) -> dict[str, str]:
    instance = {"CRYPTOLAKE_INSTANCE": "postgres", "DAGSTER_POSTGRES_URL": postgres_url} if postgres_url else {}
    return {
        **instance,
        "DAGSTER_HOME": str(workdir / f"home_{name}"),
        "CRYPTOLAKE_SOURCE": "simulated",
        "CRYPTOLAKE_INTERVAL": "1h",
        "CRYPTOLAKE_START_DATE": str(start),
        "CRYPTOLAKE_DUCKDB": str(workdir / f"{name}.duckdb"),
        "CRYPTOLAKE_UNIVERSE": "",
        "CRYPTOLAKE_AUTOMATION": "off",  # only the measured backfills run
    }


def _backfill(env: dict[str, str], first: dt.date, last: dt.date, timeout: float) -> dict:
    command = [str(Path(sys.executable).with_name("cryptolake")), "backfill", "--source", "simulated"]
    command += ["--interval", "1h", "--start", str(first), "--end", str(last)]
    Path(env["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    outcome = run_process(command, env=env, sample_tree=True, timeout=timeout, check=False)
    if outcome.returncode != 0 and not outcome.timed_out:
        raise RuntimeError(f"cryptolake backfill failed ({outcome.returncode}):\n{outcome.stderr[-6000:]}")
    return {
        "first_day": str(first),
        "last_day": str(last),
        "finished": not outcome.timed_out,
        "wall_seconds": round(outcome.wall_seconds, 1),
        "peak_rss_mb_process_tree": round(outcome.tree_peak_rss_mb),
    }


def _event_log_files(home: Path) -> list[Path]:
    return sorted((home / "history").rglob("*.db"))


def postgres_instance_figures(home: Path, url: str) -> dict:
    """The same figures for an instance on PostgreSQL: the database's size plus ``home``'s files."""
    import sqlalchemy as db

    engine = db.create_engine(url)
    try:
        with engine.connect() as conn:
            database_bytes = conn.execute(db.text("SELECT pg_database_size(current_database())")).scalar_one()
            event_bytes = conn.execute(
                db.text("SELECT pg_total_relation_size('event_logs') + pg_total_relation_size('asset_event_tags')")
            ).scalar_one()
            events = dict(
                conn.execute(db.text("SELECT dagster_event_type, count(*) FROM event_logs GROUP BY 1")).fetchall()
            )
            partition_materializations = conn.execute(
                db.text(
                    "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
                    "AND partition IS NOT NULL"
                )
            ).scalar_one()
    finally:
        engine.dispose()
    home_bytes = sum(path.stat().st_size for path in home.rglob("*") if path.is_file())
    return {
        "instance_bytes": int(database_bytes) + home_bytes,
        "database_bytes": int(database_bytes),
        "event_log_bytes": int(event_bytes),
        "partition_materializations": int(partition_materializations),
        "event_log_bytes_per_partition_materialization": round(int(event_bytes) / max(1, partition_materializations)),
        "events": {str(k or "LOG"): int(v) for k, v in sorted(events.items(), key=lambda item: -item[1])},
    }


def instance_figures(home: Path) -> dict:
    """Bytes on disk of the instance and of its event log, and the event log's events by type."""
    files = [path for path in home.rglob("*") if path.is_file()]
    event_files = _event_log_files(home)
    events: dict[str, int] = {}
    partition_materializations = 0
    for path in event_files:
        with sqlite3.connect(path) as connection:
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if "event_logs" not in tables:
                continue
            if path.name == "index.db" and len(event_files) > 2:
                continue  # the run-sharded layout: index.db repeats the run shards' asset events
            for kind, count in connection.execute("SELECT dagster_event_type, count(*) FROM event_logs GROUP BY 1"):
                events[kind or "LOG"] = events.get(kind or "LOG", 0) + count
            partition_materializations += connection.execute(
                "SELECT count(*) FROM event_logs WHERE dagster_event_type = 'ASSET_MATERIALIZATION' "
                "AND partition IS NOT NULL"
            ).fetchone()[0]
    event_bytes = sum(path.stat().st_size for path in event_files)
    return {
        "instance_bytes": sum(path.stat().st_size for path in files),
        "event_log_bytes": event_bytes,
        "event_log_files": len(event_files),
        "partition_materializations": partition_materializations,
        "event_log_bytes_per_partition_materialization": round(event_bytes / max(1, partition_materializations)),
        "events": dict(sorted(events.items(), key=lambda item: -item[1])),
    }


UI_TIMEOUT_MS = 300_000  # a page that takes longer is reported as a failure, with this bound


def _webserver(home: Path, env: dict[str, str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).with_name("dagster-webserver")), "-w", str(REPO / "workspace.yaml")]
        + ["-h", "127.0.0.1", "-p", str(port)],
        cwd=REPO,
        env={**os.environ, **env, "DAGSTER_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return process, f"http://127.0.0.1:{port}"


def ui_load(env: dict[str, str], materialized: int, visits: int = 3) -> dict:
    """Seconds until the asset page and the partitions tab of gold/daily_features show their figures: each
    opened by its URL (a full page load), and the tab once more from a click on the asset page (the app loaded)."""
    import httpx
    from playwright.sync_api import sync_playwright

    home = Path(env["DAGSTER_HOME"])
    process, url = _webserver(home, env)
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/server_info", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.5)
        chromium = os.environ.get("CRYPTOLAKE_CHROMIUM", "/usr/bin/chromium")
        figures: dict[str, list[float]] = {"asset_page": [], "partitions_tab": [], "partitions_tab_click": []}
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1600, "height": 1000})
                page.set_default_timeout(UI_TIMEOUT_MS)
                page.set_default_navigation_timeout(UI_TIMEOUT_MS)
                page.goto(f"{url}/runs", wait_until="load")  # the app's bundle, once (a light page)
                for _ in range(visits):
                    started = time.perf_counter()
                    page.goto(f"{url}/assets/gold/daily_features", wait_until="commit")
                    page.get_by_text("Latest materialization", exact=False).first.wait_for()
                    page.wait_for_function("() => !document.body.innerText.includes('Loading')")
                    figures["asset_page"].append(round(time.perf_counter() - started, 2))

                    started = time.perf_counter()
                    page.goto(f"{url}/assets/gold/daily_features?view=partitions", wait_until="commit")
                    page.wait_for_function(
                        "n => document.body.innerText.replace(/,/g, '').includes(String(n))"
                        " && !document.body.innerText.includes('Loading')",
                        arg=materialized,
                    )
                    figures["partitions_tab"].append(round(time.perf_counter() - started, 2))

                    # The way a user opens it: the asset page, then a click on its Partitions tab.
                    page.goto(f"{url}/assets/gold/daily_features", wait_until="commit")
                    page.get_by_text("Latest materialization", exact=False).first.wait_for()
                    page.wait_for_function("() => !document.body.innerText.includes('Loading')")
                    started = time.perf_counter()
                    page.get_by_role("tab", name="Partitions").click()
                    page.wait_for_function(
                        "n => document.body.innerText.replace(/,/g, '').includes(String(n))"
                        " && !document.body.innerText.includes('Loading')",
                        arg=materialized,
                    )
                    figures["partitions_tab_click"].append(round(time.perf_counter() - started, 2))
            finally:
                browser.close()
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
    return {
        "visits": visits,
        **figures,
        "asset_page_cold_seconds": figures["asset_page"][0],
        "partitions_tab_cold_seconds": figures["partitions_tab"][0],
        "materialized_partitions_shown": materialized,
    }


def _materialized_partitions(env: dict[str, str]) -> int:
    """Materialized partitions of gold/daily_features, as the instance reports them (what the tab shows)."""
    code = (
        "from dagster import AssetKey, DagsterInstance; i = DagsterInstance.get(); "
        "print(len(i.get_materialized_partitions(AssetKey(['gold', 'daily_features']))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, cwd=REPO, capture_output=True, text=True, check=True
    )
    return int(out.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--start", type=dt.date.fromisoformat, default=FULL_HISTORY_START)
    parser.add_argument("--end", type=dt.date.fromisoformat, help="default: the day before yesterday (UTC)")
    parser.add_argument("--sections", default="cli,newday,ui,daemon")
    parser.add_argument("--workdir", type=Path, help="keep the instances here (default: a temporary folder)")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per backfill before it is stopped")
    parser.add_argument("--instance", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument(
        "--daemon-symbols", type=int, help="daemon section: the first N symbols of the universe (default: all)"
    )
    args = parser.parse_args(argv)
    if args.instance == "postgres":
        sys.path.insert(0, str(REPO))
        from tests.postgres_server import PostgresServer, postgres_bin_dir

        bin_dir = postgres_bin_dir()
        if bin_dir is None:
            raise SystemExit("no PostgreSQL server binaries: apt-get install -y postgresql")
        server = PostgresServer(bin_dir, fsync=True).start()
        try:
            return _main(args, server)
        finally:
            server.stop()
    return _main(args, None)


def _main(args: argparse.Namespace, server) -> dict:
    today = dt.datetime.now(dt.UTC).date()
    end = args.end or today - dt.timedelta(days=2)
    sections = set(args.sections.split(","))
    results: dict = {
        "instance": args.instance,
        "start": str(args.start),
        "end": str(end),
        "targets": TARGETS,
        "measured_on": str(today),
    }
    with tempfile.TemporaryDirectory(prefix="cryptolake-scale-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        url = server.new_database() if server else None
        env = _env(workdir, "cli", args.start, url)
        if "cli" in sections:
            print(f"cli: cryptolake backfill {args.start}..{end}, whole universe ({args.instance}) ...", flush=True)
            results["cli"] = _backfill(env, args.start, end, args.timeout)
            home = Path(env["DAGSTER_HOME"])
            results["cli"].update(postgres_instance_figures(home, url) if url else instance_figures(home))
            print(f"    {json.dumps(results['cli'])}", flush=True)
        if "newday" in sections:
            day = end + dt.timedelta(days=1)
            print(f"newday: cryptolake backfill {day} (whole universe) on the same instance ...", flush=True)
            results["newday"] = _backfill(env, day, day, 600)
            print(f"    {json.dumps(results['newday'])}", flush=True)
        if "ui" in sections:
            materialized = _materialized_partitions(env)
            print(f"ui: gold/daily_features with {materialized:,} materialized partitions ...", flush=True)
            results["ui"] = ui_load(env, materialized)
            print(f"    {json.dumps(results['ui'])}", flush=True)
        if "daemon" in sections:
            from benchmarks.scales import SCALES

            scale = SCALES["medium"].__class__(
                **{
                    **SCALES["medium"].__dict__,
                    "name": "full-history",
                    "backfill_start": args.start,
                    "backfill_end": end,
                    "backfill_symbols": args.daemon_symbols,
                    "backfill_timeout": args.timeout,
                }
            )
            daemon_url = server.new_database() if server else None
            extra = {"CRYPTOLAKE_INSTANCE": "postgres", "DAGSTER_POSTGRES_URL": daemon_url} if daemon_url else {}
            results["daemon"] = via_daemon(scale, workdir, start_date=str(args.start), extra_env=extra)
            home = workdir / "home_daemon"
            results["daemon"].update(
                postgres_instance_figures(home, daemon_url) if daemon_url else instance_figures(home)
            )
            print(f"    {json.dumps({k: v for k, v in results['daemon'].items() if k != 'tables'})}", flush=True)
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"scale-{args.instance}-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}.json"
    path.write_text(json.dumps(results, indent=2))
    print(f"results: {path}")
    return results


if __name__ == "__main__":
    main()
