"""The read API (``cryptolake serve``): FastAPI over the published Delta lake, never the DuckDB file."""
