"""The resources every CryptoLake deployment binds: storage and market-data clients."""

import os
from typing import Any

from resources.alerting import AlertWebhook
from resources.binance import BinanceClient
from resources.binance_archive import BinanceArchiveClient
from resources.coingecko import CoinGeckoClient
from resources.duckdb_io import CryptoLakeDuckDBIOManager
from resources.fear_greed import FearGreedClient
from resources.lake import LAKE_ENV_VAR, DeltaLake
from resources.lake_io import CryptoLakeLakeIOManager
from resources.landing import StreamLanding
from resources.settings import default_lake_root, duckdb_path, storage


def build_io_manager() -> CryptoLakeDuckDBIOManager | CryptoLakeLakeIOManager:
    """``CRYPTOLAKE_STORAGE``: the DuckDB file (publishing silver/gold to the lake) or the lake itself."""
    if storage() == "lake":
        if not (os.environ.get(LAKE_ENV_VAR) or "").strip():
            # Each process would otherwise default to data/lake under its own working directory:
            # workers on several hosts (or folders) would silently write separate lakes.
            raise ValueError(
                f"CRYPTOLAKE_STORAGE=lake needs {LAKE_ENV_VAR}: the lake every process writes "
                "(an s3:// URI, or a path all of them share)"
            )
        return CryptoLakeLakeIOManager(lake=DeltaLake.from_env())
    lake = DeltaLake.from_env(default_lake_root())
    return CryptoLakeDuckDBIOManager(database=duckdb_path(), lake=lake)


def build_resources() -> dict[str, Any]:
    """Resources by key, configured from the environment (see docs/configuration.md)."""
    return {
        "io_manager": build_io_manager(),
        "binance": BinanceClient.from_env(),
        "alert_webhook": AlertWebhook.from_env(),
        "coingecko": CoinGeckoClient.from_env(),
        "fear_greed": FearGreedClient.from_env(),
        "binance_archive": BinanceArchiveClient.from_env(),
        "stream_landing": StreamLanding.from_env(),
    }
