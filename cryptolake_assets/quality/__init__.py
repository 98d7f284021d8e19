"""Data quality: one Pandera model per table (``models``), the rules and severities (``catalog``),
and the factory that turns them into partitioned, blocking Dagster asset checks (``factory``)."""
