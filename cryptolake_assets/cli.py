"""The ``cryptolake`` command: run the pipeline through Dagster without opening the UI.

* ``cryptolake demo``: the offline quickstart (simulated exchange, the last 60 days by default, every layer).
* ``cryptolake backfill``: any date range and symbols, live Binance by default, as few runs as possible.
* ``cryptolake ui``: ``dagster dev`` on 127.0.0.1 with the same instance and DuckDB file.
* ``cryptolake summary``: tables, rows and partitions in the DuckDB file.
* ``cryptolake doctor``: dead runs, pool slots, DuckDB lock holders; ``--fix`` repairs dead runs.
* ``cryptolake prune``: old finished runs' step and log events and compute logs (asset events stay).
* ``cryptolake serve``: the read API over the published lake.
* ``cryptolake collect``: the live trade/quote stream into landing files (``--materialize``: then the tables).
* ``cryptolake dashboard``: Streamlit dashboards over the published lake.
"""

import datetime as dt
import importlib
import os
import shlex
import shutil
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from resources.lake import DeltaLake

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DAGSTER_HOME = ".dagster_home"
# Rows one run may hold in memory; long ranges are split into runs of about this size.
ROWS_PER_RUN = 3_000_000


@dataclass(frozen=True)
class RunChunk:
    """One Dagster run: a rectangle of days × a contiguous block of symbols."""

    first_day: dt.date
    last_day: dt.date
    symbols: tuple[str, ...]

    @property
    def days(self) -> int:
        return (self.last_day - self.first_day).days + 1

    def describe(self) -> str:
        return (
            f"{self.first_day}..{self.last_day} × {len(self.symbols)} symbol(s) ({self.symbols[0]}..{self.symbols[-1]})"
        )

    def range_tags(self) -> dict[str, str]:
        """The run's partition-range tags (Dagster's public tag names)."""
        return {
            "dagster/asset_partition_range_start": f"{self.first_day}|{self.symbols[0]}",
            "dagster/asset_partition_range_end": f"{self.last_day}|{self.symbols[-1]}",
        }


def _worker_queues(chunks: list[RunChunk], workers: int) -> list[list[RunChunk]]:
    """The chunks each worker runs, in order: a symbol block's chunks stay with one worker, and
    blocks go to the worker with the fewest partitions so far."""
    if workers <= 1:
        return [chunks]
    by_block: dict[tuple[str, ...], list[RunChunk]] = {}
    for chunk in chunks:
        by_block.setdefault(chunk.symbols, []).append(chunk)
    queues: list[list[RunChunk]] = [[] for _ in range(min(workers, len(by_block)))]
    for block_chunks in sorted(by_block.values(), key=lambda c: -sum(x.days * len(x.symbols) for x in c)):
        lightest = min(queues, key=lambda q: sum(x.days * len(x.symbols) for x in q))
        lightest.extend(block_chunks)
    return [queue for queue in queues if queue]


def _run_chunk_queue(queue: list[RunChunk]) -> int:
    """In a worker process: the code location, the instance and the queue's runs, one after another."""
    from dagster import DagsterInstance

    defs = _load_definitions()
    instance = DagsterInstance.get()
    for chunk in queue:
        click.echo(f"[worker {os.getpid()}] daily × symbol assets: {chunk.describe()}")
        try:
            _run_job(defs, instance, "daily_symbol_assets", tags=chunk.range_tags())
        except click.ClickException as error:  # re-raised as a plain error: click's does not pickle its message
            raise RuntimeError(error.format_message()) from None
    return len(queue)


def _chunk_queue_process(queue: list[RunChunk], results) -> None:
    """A worker process: run the queue, send ``("ok", runs)`` or ``("error", message)``, and leave
    with ``os._exit``. A full-history run leaves millions of Python objects (its events, the run's
    result) that a normal interpreter exit frees one by one: 1.8 min between the last worker's run
    ending and the backfill going on (benchmarks/scale_bench.py, ADR 0005). Everything the run wrote
    is committed by then; only stdout and stderr are flushed."""
    code = 0
    try:
        results.send(("ok", _run_chunk_queue(queue)))
    except BaseException as error:  # every failure goes back to the parent as text
        results.send(("error", str(error) or type(error).__name__))
        code = 1
    finally:
        results.close()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _run_chunk_queues(queues: list[list[RunChunk]]) -> int:
    """Each queue in its own process (a run of Python-heavy Dagster steps uses one core); the first
    failure stops the backfill with its message once the others are done."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    workers = []
    for queue in queues:
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_chunk_queue_process, args=(queue, sender), daemon=False)
        process.start()
        sender.close()  # the child holds the sending end now
        workers.append((process, receiver))
    errors, runs = [], 0
    for process, receiver in workers:
        try:
            outcome, value = receiver.recv()
        except EOFError:  # the process died before it could answer (killed, out of memory)
            outcome, value = "error", "a worker process ended without a result"
        process.join()
        if outcome == "ok":
            runs += value
        else:
            errors.append(value if process.exitcode in (0, 1) else f"{value} (exit code {process.exitcode})")
    if errors:
        raise click.ClickException("\n".join(errors))
    return runs


def plan_runs(
    first_day: dt.date,
    last_day: dt.date,
    symbols: list[str],
    all_symbols: list[str],
    bars_per_day: int,
    workers: int = 1,
) -> list[RunChunk]:
    """Split days × symbols into as few rectangular runs as memory allows.

    A Dagster range run covers a contiguous range of the static symbol dimension, so the chosen
    symbols are grouped into blocks that are contiguous in universe order. With ``workers`` > 1
    each block is cut into that many contiguous sub-blocks of near-equal size, so that as many
    runs can go at once (``run_pipeline`` gives each worker its own sub-blocks).
    """
    if last_day < first_day:
        raise click.BadParameter(f"--end {last_day} is before --start {first_day}")
    order = {symbol: index for index, symbol in enumerate(all_symbols)}
    unknown = [s for s in symbols if s not in order]
    if unknown:
        raise click.BadParameter(
            f"unknown symbol(s) {', '.join(unknown)}: not in the universe ({', '.join(all_symbols)})"
        )
    blocks: list[list[str]] = []
    for symbol in sorted(set(symbols), key=order.__getitem__):
        if blocks and order[symbol] == order[blocks[-1][-1]] + 1:
            blocks[-1].append(symbol)
        else:
            blocks.append([symbol])
    if workers > 1:
        blocks = [part for block in blocks for part in _split_block(block, workers)]
    chunks = []
    for block in blocks:
        days_per_run = max(1, ROWS_PER_RUN // max(1, bars_per_day * len(block)))
        day = first_day
        while day <= last_day:
            end = min(last_day, day + dt.timedelta(days=days_per_run - 1))
            chunks.append(RunChunk(day, end, tuple(block)))
            day = end + dt.timedelta(days=1)
    return chunks


def _split_block(block: list[str], parts: int) -> list[list[str]]:
    """``block`` cut into at most ``parts`` contiguous pieces whose sizes differ by at most one."""
    parts = min(parts, len(block))
    size, extra = divmod(len(block), parts)
    pieces, start = [], 0
    for index in range(parts):
        end = start + size + (1 if index < extra else 0)
        pieces.append(block[start:end])
        start = end
    return pieces


# Which instance configuration `ensure_dagster_home` copies into a new DAGSTER_HOME.
INSTANCE_ENV_VAR = "CRYPTOLAKE_INSTANCE"
INSTANCE_CONFIGS = {
    "sqlite": PROJECT_ROOT / "dagster.yaml",  # the default: everything under $DAGSTER_HOME
    "postgres": PROJECT_ROOT / "deploy" / "postgres" / "dagster.yaml",  # needs DAGSTER_POSTGRES_URL
}


def ensure_dagster_home() -> Path:
    """``DAGSTER_HOME`` (default ``.dagster_home``) holding a copy of the project's dagster.yaml.

    ``CRYPTOLAKE_INSTANCE=postgres`` copies deploy/postgres/dagster.yaml instead (run, event-log and
    schedule storage on the PostgreSQL server at ``$DAGSTER_POSTGRES_URL``). An existing
    dagster.yaml is kept, but one that does not match an explicitly chosen instance is refused.
    """
    choice = (os.environ.get(INSTANCE_ENV_VAR) or "sqlite").strip().lower()
    if choice not in INSTANCE_CONFIGS:
        raise click.ClickException(f"{INSTANCE_ENV_VAR}={choice!r}: choose one of {', '.join(INSTANCE_CONFIGS)}")
    url = os.environ.get("DAGSTER_POSTGRES_URL") or ""
    if choice == "postgres" and not url:
        raise click.ClickException(
            f"{INSTANCE_ENV_VAR}=postgres needs DAGSTER_POSTGRES_URL (postgresql+psycopg2://USER:PASSWORD@HOST:PORT/DB)"
        )
    if choice == "postgres" and url.split("://", 1)[0] in ("postgresql", "postgres"):
        # SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3; dagster-postgres ships psycopg2.
        raise click.ClickException("DAGSTER_POSTGRES_URL must start with postgresql+psycopg2:// (the driver installed)")
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).expanduser().resolve()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    project_config = INSTANCE_CONFIGS[choice]
    if project_config.exists() and not config.exists():
        shutil.copyfile(project_config, config)
    elif os.environ.get(INSTANCE_ENV_VAR) and config.exists():
        on_postgres = "dagster_postgres" in config.read_text()
        if on_postgres != (choice == "postgres"):
            raise click.ClickException(
                f"{config} is {'a Postgres' if on_postgres else 'a SQLite'} instance but {INSTANCE_ENV_VAR}={choice}: "
                "use another DAGSTER_HOME, or replace that dagster.yaml"
            )
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _load_definitions():
    """Import the code location after the environment is set (resources read it at load time)."""
    module = importlib.import_module("cryptolake_assets.definitions")
    return module.defs


def _database_for_source(home: Path) -> str:
    """The configured database, after settling which source it holds (refusing a mix)."""
    from cryptolake_assets.source_identity import SourceMismatchError, record_source, resolve_source
    from resources.settings import store_location

    database = store_location()  # the DuckDB file, or the lake root with CRYPTOLAKE_STORAGE=lake
    try:
        record_source(home, database, resolve_source(home, database))
    except SourceMismatchError as error:
        raise click.ClickException(str(error)) from None
    return database


def _run_job(
    defs,
    instance,
    job_name: str,
    tags: dict[str, str] | None = None,
    partition_key: str | None = None,
    asset_selection: list | None = None,
):
    from resources.run_health import process_tags, recover_dead_runs

    # Runs killed earlier must not hold the pool this run's steps claim (resources/run_health.py).
    recover_dead_runs(instance, echo=lambda line: click.echo(f"recovered: {line}", err=True))
    run_config = {"loggers": {"console": {"config": {"log_level": os.environ.get("CRYPTOLAKE_LOG_LEVEL", "INFO")}}}}
    if _executor_choice() == "celery":
        result = _run_job_on_celery(instance, job_name, tags, partition_key, asset_selection, run_config)
    else:
        job = defs.resolve_job_def(job_name)
        result = job.execute_in_process(
            instance=instance,
            tags={**(tags or {}), **process_tags()},
            partition_key=partition_key,
            asset_selection=asset_selection,
            raise_on_error=False,
            run_config=run_config,
        )
    if not result.success:
        failures = [
            f"{event.step_key}: {event.event_specific_data.error.message.strip()}"  # type: ignore[union-attr]
            for event in result.all_events
            if event.is_step_failure
        ]
        # A run that failed outside its steps (e.g. it gave up waiting for a pool slot).
        failures = failures or [
            (
                event.event_specific_data.error.message
                if getattr(event.event_specific_data, "error", None)
                else event.message or ""
            ).strip()
            for event in result.all_events
            if event.is_run_failure
        ]
        raise click.ClickException(
            f"run {result.run_id} of {job_name} failed:\n  " + "\n  ".join(failures or ["see the run in the UI"])
        )
    return result


def _executor_choice() -> str:
    from resources.executors import executor_choice

    try:
        return executor_choice()
    except ValueError as error:
        raise click.ClickException(str(error)) from None


def _run_job_on_celery(instance, job_name, tags, partition_key, asset_selection, run_config):
    """CRYPTOLAKE_EXECUTOR=celery: this process orchestrates the run, Celery workers run its steps
    (they load the job through the reconstructable pointer; resources/executors.py)."""
    from dagster import build_reconstructable_job, execute_job

    from resources.run_health import process_tags

    job = build_reconstructable_job("cryptolake_assets.definitions", "job_named", reconstructable_args=(job_name,))
    run_tags = {**(tags or {}), **process_tags()}
    if partition_key is not None:
        run_tags["dagster/partition"] = partition_key
    return execute_job(
        job,
        instance=instance,
        tags=run_tags,
        asset_selection=asset_selection,
        raise_on_error=False,
        run_config=run_config,
    )


def run_pipeline(
    first_day: dt.date,
    last_day: dt.date,
    symbols: list[str] | None,
    echo=click.echo,
    showcase_partitions: tuple[str, ...] = (),
    workers: int = 1,
) -> dict:
    """Materialize every layer for the range through Dagster; returns counts for the summary.

    ``showcase_partitions`` (``date|symbol`` keys) are re-materialized alone at the end, so their
    latest events carry the previews and charts that large range runs leave out.
    """
    from dagster import AssetKey, DagsterInstance

    from cryptolake_assets.run_request_validation import RunRequestError, validate_request
    from partitions import universe_symbols
    from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG
    from resources.kline_format import interval_ms

    # Before the code location loads (a bad setting fails there) and before any run exists.
    try:
        request = validate_request(first_day, last_day, symbols)
    except RunRequestError as error:
        raise click.ClickException(str(error)) from None
    symbols = request.symbols or None
    home = ensure_dagster_home()
    _database_for_source(home)  # a live run into a simulated database is refused here, before any run
    for notice in request.notices:
        echo(f"note: {notice}")
    defs = _load_definitions()
    instance = DagsterInstance.get()
    job_names = {job.name for job in defs.jobs or []}
    binance = defs.resources["binance"]
    refuse_other_interval(storage_target(defs.resources["io_manager"]), binance.interval)
    bars_per_day = 86_400_000 // interval_ms(binance.interval)
    all_symbols = universe_symbols()
    chunks = plan_runs(first_day, last_day, symbols or all_symbols, all_symbols, bars_per_day, workers)
    runs = 0
    started = time.monotonic()
    if {"daily_assets", "reference_assets"} <= job_names:
        # The dimensions first: referential checks of the facts read them (they have no upstream).
        echo(f"dimensions: gold/dim_symbol, gold/dim_date {first_day}..{last_day}")
        _run_job(defs, instance, "reference_assets", asset_selection=[AssetKey(["gold", "dim_symbol"])])
        _run_job(
            defs,
            instance,
            "daily_assets",
            tags={ASSET_PARTITION_RANGE_START_TAG: str(first_day), ASSET_PARTITION_RANGE_END_TAG: str(last_day)},
            asset_selection=[AssetKey(["gold", "dim_date"])],
        )
        runs += 2
    queues = _worker_queues(chunks, workers)
    if len(queues) > 1:
        echo(f"daily × symbol assets: {len(chunks)} runs in {len(queues)} worker processes")
        runs += _run_chunk_queues(queues)
    for index, chunk in enumerate(chunks if len(queues) <= 1 else [], start=1):
        echo(f"[{index}/{len(chunks)}] daily × symbol assets: {chunk.describe()}")
        _run_job(defs, instance, "daily_symbol_assets", tags=chunk.range_tags())
        runs += 1
    if "daily_assets" in job_names:
        echo(f"daily (cross-symbol) assets: {first_day}..{last_day}")
        _run_job(
            defs,
            instance,
            "daily_assets",
            tags={ASSET_PARTITION_RANGE_START_TAG: str(first_day), ASSET_PARTITION_RANGE_END_TAG: str(last_day)},
        )
        runs += 1
    if "reference_assets" in job_names:
        echo("reference tables")
        _run_job(defs, instance, "reference_assets")
        runs += 1
    for key in showcase_partitions:
        echo(f"single partition {key} (previews and charts for the UI)")
        _run_job(defs, instance, "daily_symbol_assets", partition_key=key)
        runs += 1
    built = build_partition_status(defs, instance)
    if built:
        echo(f"partition status for the UI: {len(built)} assets")
    return {
        "runs": runs,
        "seconds": time.monotonic() - started,
        "database": storage_target(defs.resources["io_manager"]),
    }


def build_partition_status(defs, instance) -> list:
    """Build Dagster's partition status of every partitioned asset that has none yet; returns their keys.

    The UI reads an asset's partitions from a status Dagster stores per asset and brings up to date
    from the events after it (cheap). Nothing writes it while runs materialize, so after a first
    large backfill the first UI visit built it from every materialization (the partitions tab of
    gold/daily_features took 34 s over the full history, ADR 0005). Built here once, through the public
    ``DagsterInstance.get_status_by_partition`` (which stores it); assets that already have one are
    left to the UI's own cheap update, so a new day's backfill pays nothing here.
    """
    specs = [spec for spec in defs.resolve_all_asset_specs() if spec.partitions_def is not None]
    records = {record.asset_entry.asset_key: record for record in instance.get_asset_records([s.key for s in specs])}
    built = []
    for spec in specs:
        record = records.get(spec.key)
        # ``AssetRecord`` is public; its entry's ``cached_status`` is the stored status (None until
        # built). tests/test_cli_partition_status.py pins that the UI reads what this builds.
        if record is None or record.asset_entry.cached_status is not None:
            continue
        instance.get_status_by_partition(spec.key, [], spec.partitions_def)
        built.append(spec.key)
    return built


def storage_target(io_manager) -> "str | DeltaLake":
    """The store an ``io_manager`` resource writes: its DuckDB file (a path), or its lake
    (``CRYPTOLAKE_STORAGE=lake``: a ``DeltaLake``)."""
    from resources.lake_io import CryptoLakeLakeIOManager

    return io_manager.lake if isinstance(io_manager, CryptoLakeLakeIOManager) else io_manager.database


def storage_label(target: "str | DeltaLake") -> str:
    return f"DuckDB file: {target}" if isinstance(target, str) else f"Lake (the working store): {target.root}"


def refuse_other_interval(database: "str | DeltaLake", interval: str) -> None:
    """Before any run: a store keeps one kline interval (the I/O manager refuses mixed writes too)."""
    from resources.duckdb_io import stored_identity
    from resources.lake_io import lake_stored_identity

    if isinstance(database, str):
        stored = stored_identity(database, "bronze.klines")
        other = f"--duckdb with another file for {interval} bars"
    else:
        stored = lake_stored_identity(database, "bronze.klines")
        other = f"another CRYPTOLAKE_LAKE for {interval} bars"
    if stored and stored != [interval]:
        raise click.ClickException(
            f"{database if isinstance(database, str) else database.root} holds {'/'.join(stored)} klines; CRYPTOLAKE_INTERVAL={interval} would mix "
            f"intervals in one table. Use --interval {stored[0]}, or {other}"
        )


def _scalar(connection, sql: str) -> int:
    row = connection.execute(sql).fetchone()
    return int(row[0]) if row else 0


def table_summary(database: str) -> list[tuple[str, int, int]]:
    """(table, rows, distinct partitions) for every table in the DuckDB file."""
    from resources.duckdb_io import connect_duckdb

    connection = connect_duckdb(database, read_only=True)
    try:
        tables = connection.execute(
            "SELECT table_schema, table_name FROM information_schema.tables ORDER BY 1, 2"
        ).fetchall()
        summary = []
        for schema, table in tables:
            columns = {row[0] for row in connection.execute(f'DESCRIBE "{schema}"."{table}"').fetchall()}
            rows = _scalar(connection, f'SELECT count(*) FROM "{schema}"."{table}"')
            if {"date", "symbol"} <= columns:
                parts = _scalar(connection, f'SELECT count(DISTINCT (date, symbol)) FROM "{schema}"."{table}"')
            elif "date" in columns:
                parts = _scalar(connection, f'SELECT count(DISTINCT date) FROM "{schema}"."{table}"')
            else:
                parts = 0
            summary.append((f"{schema}.{table}", int(rows), int(parts)))
        return summary
    finally:
        connection.close()


def print_summary(database: "str | DeltaLake", echo=click.echo) -> None:
    if isinstance(database, str):
        rows = table_summary(database)
    else:
        from cryptolake_assets.definitions import ASSETS
        from resources.lake_io import lake_table_summary

        tables = sorted({(key.path[0], key.path[-1]) for asset in ASSETS for key in asset.keys})
        rows = lake_table_summary(database, tables)
    width = max([len(name) for name, _, _ in rows] + [5])
    echo(f"\n{'table'.ljust(width)}  {'rows':>10}  {'partitions':>10}")
    for name, count, parts in rows:
        echo(f"{name.ljust(width)}  {count:>10,}  {parts:>10,}")


def _parse_symbols(value: str | None) -> list[str] | None:
    return [s.strip().upper() for s in value.split(",") if s.strip()] if value else None


def _set_env(**values: str | None) -> None:
    for name, value in values.items():
        if value is not None:
            os.environ[name] = value


@click.group()
def main() -> None:
    """CryptoLake: crypto market data, bronze → silver → gold, on Dagster and DuckDB."""
    _accept_dagster_warnings()
    _show_pool_waits()


#: The beta/preview Dagster APIs the design relies on on purpose (message regex, category name): the
#: date × symbol partition mappings, single-run backfill policies and per-partition check specs. They
#: are not news to a CLI user, so only these are hidden (matched by message, not the whole category):
#: any other beta/preview notice still shows. pyproject.toml's pytest filterwarnings lists the same.
ACCEPTED_DAGSTER_WARNINGS = (
    ("Specifying a partitions_def on an AssetCheckSpec is currently in preview", "PreviewWarning"),
    ("Class .(MultiPartitionMapping|MultiToSingleDimensionPartitionMapping). is currently in beta", "BetaWarning"),
    # resource_defs: bronze/klines' graph asset keeps its staging I/O manager on the asset (ADR 0004).
    (
        "Parameter .(backfill_policy|allow_nonexistent_upstream_partitions|resource_defs). of .* is currently in beta",
        "BetaWarning",
    ),
)


def _accept_dagster_warnings() -> None:
    import dagster

    for message, category in ACCEPTED_DAGSTER_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=getattr(dagster, category))


def _show_pool_waits() -> None:
    """Print what a step waiting for a pool slot waits for (resources/dagster_event_log.py)."""
    import logging

    logger = logging.getLogger("cryptolake.pool")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s pool: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


@main.command()
@click.option(
    "--days", default=60, show_default=True, help="How many days up to today to materialize (30+ for correlations)."
)
@click.option("--symbols", help="Comma-separated symbols (default: the whole universe).")
@click.option("--duckdb", "duckdb_path", help="DuckDB file (default: $CRYPTOLAKE_DUCKDB or data/cryptolake.duckdb).")
@click.option(
    "--stream-seconds",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Then stream BTCUSDT/ETHUSDT from the simulated WebSocket server this long into the live-stream tables (0: skip).",
)
def demo(days: int, symbols: str | None, duckdb_path: str | None, stream_seconds: float) -> None:
    """Offline quickstart: simulated exchange → every layer in DuckDB, then a summary."""
    _set_env(CRYPTOLAKE_SOURCE="simulated", CRYPTOLAKE_DUCKDB=duckdb_path)
    if days < 1:
        raise click.BadParameter("--days must be at least 1")
    today = dt.datetime.now(dt.UTC).date()
    first_day = today - dt.timedelta(days=days - 1)
    click.echo(f"CryptoLake demo: simulated exchange, {first_day}..{today} (offline; no network used)")
    chosen = _parse_symbols(symbols)
    showcase = tuple(f"{today}|{s}" for s in ("BTCUSDT", "ETHUSDT") if chosen is None or s in chosen)
    outcome = run_pipeline(first_day, today, chosen, showcase_partitions=showcase)
    streamed = [s for s in ("BTCUSDT", "ETHUSDT") if chosen is None or s in chosen]
    if stream_seconds and streamed:
        click.echo(f"live stream: {', '.join(streamed)} for {stream_seconds:g}s from the simulated WebSocket server")
        collect_stream(streamed, stream_seconds, materialize=True, summary=False)
    print_summary(outcome["database"])
    from resources.lake import lake_root, table_uri
    from resources.settings import default_lake_root

    lake = lake_root(default_lake_root())
    python = shlex.quote(sys.executable)
    installed = Path(sys.executable).with_name("cryptolake")
    command = shlex.quote(str(installed)) if installed.exists() else f"{python} -m cryptolake_assets.cli"
    features = table_uri(lake, "gold", "daily_features")
    click.echo(
        f"\nDone in {outcome['seconds']:.0f}s ({outcome['runs']} Dagster runs). {storage_label(outcome['database'])}\n"
        f"Dagster instance: {os.environ['DAGSTER_HOME']}\n"
        f"Lake (Delta, readable while the pipeline runs): {lake}\n"
        f"Open the UI:  {command} ui   (then http://127.0.0.1:3000)\n"
        f"Serve it:     {command} serve   (then http://127.0.0.1:8000/docs; docs/reading-the-lake.md)\n"
        f"Dashboards:   {command} dashboard   (then http://127.0.0.1:8501; docs/dashboards.md)\n"
        f"Query it:     {python} -c \"import polars as pl; print(pl.read_delta('{features}').head())\""
    )


@main.command()
@click.option("--start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First UTC day (YYYY-MM-DD).")
@click.option("--end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last UTC day, inclusive.")
@click.option("--symbols", help="Comma-separated symbols (default: the whole universe).")
@click.option("--source", type=click.Choice(["simulated", "binance"]), help="Default: $CRYPTOLAKE_SOURCE or binance.")
@click.option("--interval", help="Kline interval, e.g. 1m, 1h (default: $CRYPTOLAKE_INTERVAL or 1h).")
@click.option("--duckdb", "duckdb_path", help="DuckDB file (default: $CRYPTOLAKE_DUCKDB or data/cryptolake.duckdb).")
@click.option(
    "--workers",
    type=click.IntRange(1, 16),
    default=lambda: int(os.environ.get("CRYPTOLAKE_BACKFILL_WORKERS") or min(2, os.cpu_count() or 1)),
    show_default="$CRYPTOLAKE_BACKFILL_WORKERS or min(2, cores)",
    help="Processes running the date × symbol runs at once, each on its own block of symbols.",
)
def backfill(start, end, symbols, source, interval, duckdb_path, workers) -> None:
    """Materialize a date range for some or all symbols through Dagster, in as few runs as possible."""
    _set_env(CRYPTOLAKE_SOURCE=source, CRYPTOLAKE_INTERVAL=interval, CRYPTOLAKE_DUCKDB=duckdb_path)
    outcome = run_pipeline(start.date(), end.date(), _parse_symbols(symbols), workers=workers)
    print_summary(outcome["database"])
    click.echo(
        f"\nBackfill done in {outcome['seconds']:.0f}s ({outcome['runs']} runs). {storage_label(outcome['database'])}"
    )


@main.command()
@click.option("--duckdb", "duckdb_path", help="DuckDB file (default: $CRYPTOLAKE_DUCKDB or data/cryptolake.duckdb).")
def summary(duckdb_path: str | None) -> None:
    """Tables, rows and partitions in the DuckDB file (the lake with CRYPTOLAKE_STORAGE=lake)."""
    _set_env(CRYPTOLAKE_DUCKDB=duckdb_path)
    from resources.settings import duckdb_path as resolved
    from resources.settings import storage

    if storage() == "lake":
        from resources.lake import DeltaLake

        print_summary(DeltaLake.from_env())
        return
    print_summary(resolved())


@main.command()
@click.option("--fix", is_flag=True, help="Fail runs whose process is gone and free their pool slots.")
@click.option("--duckdb", "duckdb_path", help="DuckDB file (default: $CRYPTOLAKE_DUCKDB or data/cryptolake.duckdb).")
def doctor(fix: bool, duckdb_path: str | None) -> None:
    """Dead runs, claimed pool slots, DuckDB lock holders; --fix repairs what is safe."""
    from dagster import DagsterInstance

    from cryptolake_assets.doctor import DoctorContext, run_doctor
    from resources.settings import duckdb_path as resolved
    from resources.settings import storage

    _set_env(CRYPTOLAKE_DUCKDB=duckdb_path)
    ensure_dagster_home()
    findings = run_doctor(DoctorContext(DagsterInstance.get(), resolved(), fix, storage()))
    for finding in findings:
        click.echo(f"{'PROBLEM' if finding.problem else 'ok'}  [{finding.check}] {finding.message}")
    problems = [f for f in findings if f.problem]
    if problems:
        hint = "" if fix else "; `cryptolake doctor --fix` repairs dead runs and their slots"
        click.echo(f"\n{len(problems)} problem(s){hint}.")
        raise SystemExit(1)


@main.command()
@click.option(
    "--older-than-days",
    type=int,
    help="Purge finished runs created more than this many days ago (default: run_log_retention_days in dagster.yaml, 30).",
)
def prune(older_than_days: int | None) -> None:
    """Delete old finished runs' step/log events and compute logs; asset and check events stay."""
    from dagster import DagsterInstance

    from resources.run_log_retention import purge_all

    ensure_dagster_home()
    total = purge_all(DagsterInstance.get(), older_than_days, echo=click.echo)
    click.echo(f"total: {total.summary()}")


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("dagster_args", nargs=-1, type=click.UNPROCESSED)
def ui(dagster_args) -> None:
    """Start the Dagster UI and daemons (``dagster dev``) on 127.0.0.1 for this project."""
    from cryptolake_assets.source_identity import SourceMismatchError, recorded_sources, resolve_source
    from resources.settings import store_location

    home = ensure_dagster_home()
    database = store_location()  # the DuckDB file, or the lake root with CRYPTOLAKE_STORAGE=lake
    recorded = recorded_sources(home).get(database)
    try:
        chosen = resolve_source(home, database)
    except SourceMismatchError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"DAGSTER_HOME={home}")
    click.echo(
        f"source: {chosen} for {database}"
        + (" (recorded when this database was filled; the schedules stay on it)" if recorded else "")
    )
    command = [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-w",
        str(PROJECT_ROOT / "workspace.yaml"),
        "-h",
        "127.0.0.1",
        *dagster_args,
    ]
    raise SystemExit(subprocess.call(command, cwd=PROJECT_ROOT))


@main.command()
@click.option("--symbols", default="BTCUSDT,ETHUSDT", show_default=True, help="Comma-separated symbols to stream.")
@click.option(
    "--duration",
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to collect, then exit cleanly (default: until SIGINT/SIGTERM).",
)
@click.option(
    "--materialize",
    is_flag=True,
    help="Then materialize the landed partitions: bronze/trades → silver/bars_1s → gold/bars_1m, compaction.",
)
@click.option("--source", type=click.Choice(["simulated", "binance"]), help="Default: $CRYPTOLAKE_SOURCE or binance.")
@click.option("--landing", help="Landing directory (default: $CRYPTOLAKE_LANDING or landing/ beside the DuckDB file).")
@click.option("--duckdb", "duckdb_path", help="DuckDB file (default: $CRYPTOLAKE_DUCKDB or data/cryptolake.duckdb).")
def collect(
    symbols: str,
    duration: float | None,
    materialize: bool,
    source: str | None,
    landing: str | None,
    duckdb_path: str | None,
) -> None:
    """Stream Binance trades and top-of-book quotes over WebSocket into rotating landing files."""
    from partitions import universe_symbols

    _set_env(CRYPTOLAKE_SOURCE=source, CRYPTOLAKE_LANDING=landing, CRYPTOLAKE_DUCKDB=duckdb_path)
    chosen = _parse_symbols(symbols) or []
    known = set(universe_symbols())
    unknown = [s for s in chosen if s not in known]
    if not chosen or unknown:
        raise click.BadParameter(
            f"unknown symbol(s) {', '.join(unknown) or '(none given)'}: the partitions hold {', '.join(sorted(known))}"
        )
    if materialize:  # settle the database's source before collecting, not after
        ensure_dagster_home()
        _database_for_source(Path(os.environ["DAGSTER_HOME"]))
    collect_stream(chosen, duration, materialize)


def collect_stream(
    symbols: list[str], duration: float | None, materialize: bool, echo=click.echo, summary: bool = True
) -> list[str]:
    """Collect ``symbols`` into the landing directory, then (``materialize``) run ``stream_assets`` for
    every partition that landed; returns those partition keys."""
    import asyncio
    import logging

    from resources.binance import BinanceClient
    from resources.binance_stream import collect_async, ws_base_url
    from resources.landing import landing_root, rotate_seconds
    from resources.settings import source as configured_source

    stream_log = logging.getLogger("cryptolake.stream")
    if not stream_log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s stream: %(message)s"))
        stream_log.addHandler(handler)
        stream_log.setLevel(os.environ.get("CRYPTOLAKE_LOG_LEVEL", "INFO"))
        stream_log.propagate = False
    chosen_source = configured_source()
    root = landing_root()
    echo(
        f"collecting {', '.join(symbols)} from {'the simulated exchange (127.0.0.1)' if chosen_source == 'simulated' else ws_base_url()} "
        f"into {root} for {f'{duration:g}s' if duration else 'ever (Ctrl-C stops)'}"
    )
    client = BinanceClient.from_env()
    try:
        collector, stats = asyncio.run(
            collect_async(
                symbols, root, duration, source=chosen_source, rest_client=client, rotate_seconds=rotate_seconds()
            )
        )
    finally:
        client.close()
    echo("collected: " + ", ".join(f"{k}={v}" for k, v in stats.as_dict().items()))
    echo(f"closed files: {len(collector.writer.closed)} under {root}")
    if not materialize:
        return []
    partitions = _landed_partitions(collector.writer.closed)
    if not partitions:
        raise click.ClickException("nothing landed: no partitions to materialize")
    from dagster import DagsterInstance

    from cryptolake_assets.schedules import STREAM_JOB_NAME

    defs = _load_definitions()
    instance = DagsterInstance.get()
    from cryptolake_assets.sensors.landing import stream_run_requests
    from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

    for request in stream_run_requests(partitions, purpose="collect"):
        label = (
            request.partition_key
            or f"{request.tags[ASSET_PARTITION_RANGE_START_TAG]}...{request.tags[ASSET_PARTITION_RANGE_END_TAG]}"
        )
        echo(f"materializing {STREAM_JOB_NAME} {label}")
        _run_job(defs, instance, STREAM_JOB_NAME, tags=dict(request.tags), partition_key=request.partition_key)
    if summary:
        print_summary(storage_target(defs.resources["io_manager"]), echo=echo)
    return partitions


def _landed_partitions(paths) -> list[str]:
    """``date|symbol`` keys of closed landing files (the day before too for files of a day's first minutes)."""
    from partitions import daily_partitions
    from resources.landing import parse_name

    days = set(daily_partitions.get_partition_keys())
    keys: set[str] = set()
    for path in paths:
        landed = parse_name(Path(path))
        if landed is None or landed.symbol.startswith("_"):
            continue
        candidates = [landed.day]
        if landed.window_start.hour == 0 and landed.window_start.minute < 2:
            candidates.append(landed.day - dt.timedelta(days=1))
        keys.update(f"{day}|{landed.symbol}" for day in candidates if str(day) in days)
    return sorted(keys)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (127.0.0.1: this machine only).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--lake", "lake_root", help="Lake root (default: $CRYPTOLAKE_LAKE or data/lake).")
@click.option("--max-range-days", default=731, show_default=True, type=click.IntRange(1), help="Longest start..end.")
def serve(host: str, port: int, lake_root: str | None, max_range_days: int) -> None:
    """Read API over the published lake (never the DuckDB file); OpenAPI docs at /docs."""
    from cryptolake_assets.api.server import serve as run_server

    _set_env(CRYPTOLAKE_LAKE=lake_root)
    click.echo(f"CryptoLake API on http://{host}:{port} (docs: /docs), reading the lake")
    run_server(host=host, port=port, max_range_days=max_range_days)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (127.0.0.1: this machine only).")
@click.option("--port", default=8501, show_default=True, type=click.IntRange(1, 65535))
@click.option("--lake", "lake_root", help="Lake root (default: $CRYPTOLAKE_LAKE or data/lake).")
def dashboard(host: str, port: int, lake_root: str | None) -> None:
    """Streamlit dashboards over the published lake (never the DuckDB file); runs read-only from DAGSTER_HOME."""
    from cryptolake_assets.dashboard import APP_PATH
    from resources.lake import lake_root as resolve_lake
    from resources.settings import default_lake_root

    _set_env(CRYPTOLAKE_LAKE=lake_root)
    os.environ["CRYPTOLAKE_LAKE"] = lake = resolve_lake(default_lake_root())
    home = Path(os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).expanduser().resolve()
    if home.is_dir():  # the instance the demo recorded its runs in; never created here
        os.environ["DAGSTER_HOME"] = str(home)
    click.echo(f"CryptoLake dashboards on http://{host}:{port}, reading the lake at {lake}")
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP_PATH),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--client.toolbarMode",
        "viewer",
    ]
    raise SystemExit(subprocess.call(command))


if __name__ == "__main__":
    main()
