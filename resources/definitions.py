"""The resources every CryptoLake deployment binds: storage and market-data clients."""

from typing import Any

from resources.alerting import AlertWebhook
from resources.binance import BinanceClient
from resources.duckdb_io import CryptoLakeDuckDBIOManager
from resources.settings import duckdb_path


def build_resources() -> dict[str, Any]:
    """Resources by key, configured from the environment (see README, Configuration)."""
    return {
        "io_manager": CryptoLakeDuckDBIOManager(database=duckdb_path()),
        "binance": BinanceClient.from_env(),
        "alert_webhook": AlertWebhook.from_env(),
    }
