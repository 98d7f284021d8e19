"""Does Dagster's maintained Delta integration (dagster-deltalake-polars) fit CryptoLake's tables?

Not installed by the project (ADR 0006 explains why): run it after
``.venv/bin/pip install dagster-deltalake-polars==0.29.27``::

    .venv/bin/python -m benchmarks.deltalake_integration_eval

Each probe materializes a toy date × symbol asset (the project's own partitions definition and
``partition_expr``) through ``DeltaLakePolarsIOManager`` into a temporary folder and prints what
happened. Nothing here is timed.
"""

import datetime as dt
import tempfile
import warnings

import polars as pl
from dagster import AssetExecutionContext, AssetIn, asset, materialize

from partitions import DAILY_SYMBOL_PARTITION_EXPR, daily_symbol_partitions
from resources.dagster_internals import ASSET_PARTITION_RANGE_END_TAG, ASSET_PARTITION_RANGE_START_TAG

warnings.filterwarnings("ignore")


def _rows(keys) -> pl.DataFrame:
    out = []
    for key in keys:
        day, symbol = key.keys_by_dimension["date"], key.keys_by_dimension["symbol"]
        start = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
        out += [
            {"date": start.date(), "symbol": symbol, "open_time": start + dt.timedelta(hours=h), "close": float(h)}
            for h in range(2)
        ]
    return pl.DataFrame(
        out, schema={"date": pl.Date, "symbol": pl.String, "open_time": pl.Datetime("us", "UTC"), "close": pl.Float64}
    )


@asset(
    key_prefix=["silver"],
    partitions_def=daily_symbol_partitions,
    metadata={"partition_expr": DAILY_SYMBOL_PARTITION_EXPR},
)
def toy(context: AssetExecutionContext) -> pl.DataFrame:
    """Two bars per date × symbol partition."""
    return _rows(
        context.partition_keys
        and [daily_symbol_partitions.get_partition_key_from_str(k) for k in context.partition_keys]
    )


@asset(
    partitions_def=daily_symbol_partitions,
    ins={"toy": AssetIn(key=["silver", "toy"])},
    key_prefix=["gold"],
    metadata={"partition_expr": DAILY_SYMBOL_PARTITION_EXPR},
)
def toy_lazy(toy: pl.LazyFrame) -> pl.DataFrame:
    """Reads the toy lazily."""
    return toy.collect()


def probe(name: str, assets, **kwargs) -> None:
    try:
        result = materialize(assets, raise_on_error=True, **kwargs)
        print(f"{name}: success={result.success}")
    except Exception as exc:
        print(f"{name}: FAILED {type(exc).__name__}: {str(exc).splitlines()[0][:160]}")


def main() -> None:
    from dagster_deltalake import LocalConfig
    from dagster_deltalake_polars import DeltaLakePolarsIOManager

    with tempfile.TemporaryDirectory() as root:
        resources = {"io_manager": DeltaLakePolarsIOManager(root_uri=root, storage_options=LocalConfig())}
        probe("one partition 2024-02-01|BTCUSDT", [toy], resources=resources, partition_key="2024-02-01|BTCUSDT")
        table = pl.read_delta(f"{root}/silver/toy")
        print(f"  rows={len(table)} open_time dtype={table.schema['open_time']}")
        probe("re-run the same partition", [toy], resources=resources, partition_key="2024-02-01|BTCUSDT")
        print(f"  rows after re-run={len(pl.read_delta(f'{root}/silver/toy'))} (expected 2)")
        probe("another symbol, same day", [toy], resources=resources, partition_key="2024-02-01|ETHUSDT")
        print(f"  rows={len(pl.read_delta(f'{root}/silver/toy'))} (expected 4)")
        one_symbol = {
            ASSET_PARTITION_RANGE_START_TAG: "2024-02-02|BTCUSDT",
            ASSET_PARTITION_RANGE_END_TAG: "2024-02-03|BTCUSDT",
        }
        probe("range run 2 days x 1 symbol", [toy], resources=resources, tags=one_symbol)
        print(f"  rows={len(pl.read_delta(f'{root}/silver/toy'))} (expected 8)")
        rectangle = {
            ASSET_PARTITION_RANGE_START_TAG: "2024-02-04|BTCUSDT",
            ASSET_PARTITION_RANGE_END_TAG: "2024-02-05|ETHUSDT",
        }
        probe("range run 2 days x 2 symbols", [toy], resources=resources, tags=rectangle)
        print(f"  rows={len(pl.read_delta(f'{root}/silver/toy'))} (expected 16)")
        probe(
            "LazyFrame input, one partition", [toy, toy_lazy], resources=resources, partition_key="2024-02-01|BTCUSDT"
        )
        extra = pl.read_delta(f"{root}/silver/toy").with_columns(pl.lit(1).alias("new_column"))
        print("  schema: an added column is", end=" ")
        try:
            from deltalake import write_deltalake

            write_deltalake(f"{root}/silver/toy", extra.to_arrow(), mode="overwrite", predicate="symbol = 'BTCUSDT'")
            print("accepted without schema_mode")
        except Exception as exc:
            print(
                f"refused without schema_mode ({type(exc).__name__}); the integration passes schema_mode only as 'overwrite'"
            )


if __name__ == "__main__":
    main()
