"""The resources every CryptoLake deployment binds: storage and market-data clients."""

from typing import Any

from resources.alerting import AlertWebhook
from resources.binance import BinanceClient
from resources.binance_archive import BinanceArchiveClient
from resources.coingecko import CoinGeckoClient
from resources.duckdb_io import CryptoLakeDuckDBIOManager
from resources.fear_greed import FearGreedClient
from resources.lake import DeltaLake
from resources.lake_io import CryptoLakeLakeIOManager
from resources.landing import StreamLanding
from resources.settings import default_lake_root, duckdb_path, storage


def build_io_manager() -> CryptoLakeDuckDBIOManager | CryptoLakeLakeIOManager:
    """``CRYPTOLAKE_STORAGE``: the DuckDB file (publishing silver/gold to the lake) or the lake itself."""
    lake = DeltaLake.from_env(default_lake_root())
    if storage() == "lake":
        return CryptoLakeLakeIOManager(lake=lake)
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
