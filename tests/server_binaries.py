"""The rule every test that starts a real server follows when the server's binaries are missing:
skip with the reason outside CI (a user's clone without the Debian package), fail under
``CI=true``, where ``.ci/run`` installs the package and the tests must run."""

import os
from typing import TypeVar

import pytest

Found = TypeVar("Found")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require_binary(found: Found | None, missing: str, in_ci: bool) -> Found:
    """``found``; when it is None, skip the test with ``missing`` as the reason, or fail it under CI."""
    if found is None:
        if in_ci:
            pytest.fail(f"CI=true and {missing}", pytrace=False)
        pytest.skip(missing)
    return found
