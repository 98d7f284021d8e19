"""``cryptolake serve``: uvicorn serving the read API over the lake at ``CRYPTOLAKE_LAKE``."""

import uvicorn

from cryptolake_assets.api.app import create_app
from cryptolake_assets.api.lake_reader import LakeReader
from resources.lake import DeltaLake
from resources.settings import default_lake_root


def serve(host: str = "127.0.0.1", port: int = 8000, lake: DeltaLake | None = None, max_range_days: int = 731) -> None:
    lake = lake or DeltaLake.from_env(default_lake_root())
    reader = LakeReader(lake.root, storage_options=lake.options())
    uvicorn.run(create_app(reader, max_range_days=max_range_days), host=host, port=port, log_level="warning")


def app_from_env():
    """ASGI factory (``uvicorn --factory cryptolake_assets.api.server:app_from_env``) for the lake
    at ``CRYPTOLAKE_LAKE``: lets any ASGI server or process manager run the API."""
    lake = DeltaLake.from_env(default_lake_root())
    return create_app(LakeReader(lake.root, storage_options=lake.options()))
