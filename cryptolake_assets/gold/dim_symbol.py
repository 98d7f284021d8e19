"""gold/dim_symbol: the symbol dimension of the star schema, from the universe file."""

import polars as pl
from dagster import MetadataValue, Output

from cryptolake_assets.medallion import medallion_asset
from cryptolake_assets.metadata import markdown_preview
from partitions import SymbolInfo, load_universe
from partitions.universe import universe_path

DIM_SYMBOL_SCHEMA = pl.Schema(
    {
        "symbol": pl.String(),
        "base_asset": pl.String(),
        "name": pl.String(),
        "category": pl.String(),
        "coingecko_id": pl.String(),
        "listed_on": pl.Date(),
        "delisted_on": pl.Date(),
        "stablecoin": pl.Boolean(),
    }
)

COLUMNS = {
    "symbol": "Binance spot pair, the key facts join on",
    "base_asset": "base asset (quote is USDT)",
    "name": "asset name",
    "category": "category (Layer 1, DeFi, Meme, NFT, Payment, Infrastructure)",
    "coingecko_id": "CoinGecko coin id",
    "listed_on": "first UTC day traded on Binance spot",
    "delisted_on": "last UTC day traded (null: still trading)",
    "stablecoin": "true for stablecoins",
}


def symbol_dimension(universe: tuple[SymbolInfo, ...]) -> pl.DataFrame:
    """One row per symbol of the universe."""
    return pl.DataFrame(
        [{name: getattr(info, name) for name in DIM_SYMBOL_SCHEMA} for info in universe], schema=DIM_SYMBOL_SCHEMA
    ).sort("symbol")


@medallion_asset("gold", "dim_symbol", schema=DIM_SYMBOL_SCHEMA, columns=COLUMNS)
def dim_symbol() -> Output[pl.DataFrame]:
    """Symbol dimension: base asset, name, category, CoinGecko id and listing window per symbol."""
    rows = symbol_dimension(load_universe())
    return Output(
        rows,
        metadata={
            "rows": len(rows),
            "by_category": MetadataValue.json(
                {c: n for c, n in rows.group_by("category").len().sort("category").iter_rows()}
            ),
            "universe_file": MetadataValue.path(str(universe_path())),
            "preview": markdown_preview(rows, rows=50),
        },
    )
