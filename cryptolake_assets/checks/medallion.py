"""The asset checks of every medallion table, one multi-check per table (see ``quality.catalog``)."""

from cryptolake_assets.quality.catalog import TABLES
from cryptolake_assets.quality.factory import build_table_checks

MEDALLION_CHECKS = [build_table_checks(table) for table in TABLES]
