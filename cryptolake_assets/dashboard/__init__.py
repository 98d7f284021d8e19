"""``cryptolake dashboard``: Streamlit pages over the published lake (never the pipeline's DuckDB file).

This module stays free of Streamlit imports: the code location imports it to link each asset to
its dashboard page (``with_dashboard_link``).
"""

import os
from collections.abc import Iterable
from pathlib import Path

from dagster import AssetsDefinition, AssetSpec, MetadataValue, map_asset_specs

DEFAULT_URL = "http://127.0.0.1:8501"
URL_ENV_VAR = "CRYPTOLAKE_DASHBOARD_URL"
APP_PATH = Path(__file__).with_name("app.py")

#: url path -> page title, in navigation order; the first is the default page, served at ``/``.
PAGES = {
    "overview": "Overview",
    "price": "Price analysis",
    "correlations": "Correlations",
    "sentiment": "Sentiment",
    "predictions": "Predictions",
    "quality": "Data quality",
}

#: The page that shows an asset's data; assets not listed link to the data quality page.
PAGE_BY_ASSET = {
    "gold/market_overview": "overview",
    "gold/market_daily": "overview",
    "gold/category_daily": "overview",
    "gold/dim_symbol": "overview",
    "gold/dim_symbol_market": "overview",
    "silver/coingecko_markets": "overview",
    "bronze/coingecko_markets": "overview",
    "gold/daily_features": "price",
    "gold/daily_returns": "price",
    "silver/ohlcv": "price",
    "gold/correlations": "correlations",
    "silver/fear_greed": "sentiment",
    "bronze/fear_greed": "sentiment",
    "gold/ml_features": "predictions",
    "gold/predictions": "predictions",
    "gold/model_evaluation": "predictions",
}


def dashboard_url(page: str) -> str:
    """``<CRYPTOLAKE_DASHBOARD_URL or http://127.0.0.1:8501>/<page>`` (``/`` for the default page:
    Streamlit answers the default page's own path with "page not found")."""
    base = (os.environ.get(URL_ENV_VAR) or DEFAULT_URL).rstrip("/")
    return f"{base}/{'' if page == next(iter(PAGES)) else page}"


def with_dashboard_link(spec: AssetSpec) -> AssetSpec:
    """The asset with a ``dashboard`` URL to its page (for ``map_asset_specs``)."""
    page = PAGE_BY_ASSET.get(spec.key.to_user_string(), "quality")
    return spec.merge_attributes(metadata={"dashboard": MetadataValue.url(dashboard_url(page))})


def link_assets(assets: Iterable) -> list:
    """``with_dashboard_link`` over a list of assets; other objects (source assets) pass through."""
    return [
        map_asset_specs(with_dashboard_link, [item])[0] if isinstance(item, (AssetsDefinition, AssetSpec)) else item
        for item in assets
    ]
