"""One run of bronze/klines for one day × symbol on the instance in $DAGSTER_HOME, against the
exchange at $CRYPTOLAKE_BINANCE_URL (REST only) and the DuckDB file $CRYPTOLAKE_DUCKDB.

Started twice at once, as separate processes, by tests/test_klines_ingest_concurrency.py. Prints
the run id; exits 0 when the run succeeded.
"""

import os
import sys

from dagster import DagsterInstance, materialize

from cryptolake_assets.bronze.klines import bronze_klines
from cryptolake_assets.cli import _accept_dagster_warnings
from resources.binance import BinanceClient
from resources.binance_archive import BinanceArchiveClient
from resources.duckdb_io import CryptoLakeDuckDBIOManager


def main(day: str, symbol: str) -> int:
    _accept_dagster_warnings()  # only the beta/preview notices the project accepts (cli.py)
    with DagsterInstance.get() as instance:
        result = materialize(
            [bronze_klines],
            instance=instance,
            partition_key=f"{day}|{symbol}",
            resources={
                "io_manager": CryptoLakeDuckDBIOManager(database=os.environ["CRYPTOLAKE_DUCKDB"]),
                # timeout above the fake exchange's barrier; no client-side retries to hide a failure
                "binance": BinanceClient(
                    base_url=os.environ["CRYPTOLAKE_BINANCE_URL"], timeout_seconds=120, max_retries=0
                ),
                "binance_archive": BinanceArchiveClient(enabled=False),
            },
            raise_on_error=False,
        )
        print(result.run_id, flush=True)
        return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
