"""The warning policy: deprecations from the project's own code fail; only chosen beta/preview notices are hidden."""

import tomllib
import warnings
from pathlib import Path

import dagster
import pytest

from cryptolake_assets.cli import ACCEPTED_DAGSTER_WARNINGS, _accept_dagster_warnings

ROOT = Path(__file__).resolve().parents[1]
FILTERS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["filterwarnings"]


@pytest.mark.parametrize("module", ["cryptolake_assets.cli", "resources.duckdb_io", "partitions", "benchmarks.run"])
def test_a_deprecation_raised_from_project_code_fails_the_test(module):
    with pytest.raises(DeprecationWarning, match="old call"):
        warnings.warn_explicit("old call", DeprecationWarning, "x.py", 1, module=module)
    with pytest.raises(FutureWarning, match="superseded call"):
        warnings.warn_explicit("superseded call", FutureWarning, "x.py", 1, module=module)


def test_a_third_party_deprecation_is_reported_not_raised():
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn_explicit("a library's own old call", DeprecationWarning, "lib.py", 1, module="somelib.core")
    assert [str(w.message) for w in caught] == ["a library's own old call"]


def test_pytest_ignores_exactly_the_beta_and_preview_notices_the_cli_accepts():
    ignored = {f for f in FILTERS if f.endswith(("dagster.BetaWarning", "dagster.PreviewWarning"))}
    assert ignored == {f"ignore:{message}:dagster.{category}" for message, category in ACCEPTED_DAGSTER_WARNINGS}
    assert not any("ignore::DeprecationWarning" in f for f in FILTERS)


def test_the_cli_hides_the_accepted_notices_and_shows_any_other():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _accept_dagster_warnings()
        warnings.warn(
            "Class `MultiPartitionMapping` is currently in beta, and may change", dagster.BetaWarning, stacklevel=1
        )
        warnings.warn(
            "Parameter `backfill_policy` of function `asset` is currently in beta", dagster.BetaWarning, stacklevel=1
        )
        warnings.warn(
            "Specifying a partitions_def on an AssetCheckSpec is currently in preview",
            dagster.PreviewWarning,
            stacklevel=1,
        )
        warnings.warn("Class `SomethingNew` is currently in beta", dagster.BetaWarning, stacklevel=1)
        warnings.warn("Function `old` is deprecated", DeprecationWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == [
        "Class `SomethingNew` is currently in beta",
        "Function `old` is deprecated",
    ]
