"""Retries: back off and retry transient failures, never retry permanent ones.

A Dagster ``RetryPolicy`` cannot filter by exception type, so the split happens where the error is
raised: code that knows an error is permanent (an unknown symbol or interval, a checksum mismatch)
wraps the call in ``permanent_errors(...)``, which turns it into ``Failure(allow_retries=False)``;
everything else (timeouts, 5xx, DuckDB lock contention) fails the step and the policy retries it.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from dagster import Backoff, Failure, Jitter, MetadataValue, RetryPolicy

# 4 attempts over roughly 30 s + 60 s + 120 s (±50 %): rides out an exchange hiccup or a
# rate-limit window without holding the DuckDB pool for long.
TRANSIENT_RETRY_POLICY = RetryPolicy(max_retries=3, delay=30, backoff=Backoff.EXPONENTIAL, jitter=Jitter.PLUS_MINUS)


@contextmanager
def permanent_errors(*error_types: type[BaseException]) -> Iterator[None]:
    """Re-raise ``error_types`` as a non-retryable ``Failure`` that keeps the original message."""
    try:
        yield
    except error_types as exc:
        raise Failure(
            description=f"{type(exc).__name__}: {exc} (permanent error, not retried)",
            metadata={"error_type": MetadataValue.text(type(exc).__name__), "retryable": False},
            allow_retries=False,
        ) from exc
