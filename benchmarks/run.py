"""CryptoLake benchmarks (issue 8): ``python benchmarks/run.py --scale small|medium|large``.

Sections: (1) silver → gold features vs bare Polars and pandas, (2) full Dagster backfill (daemon
backfill as the UI launches it, and ``cryptolake backfill``), (3) REST ingestion against a
rate-limited fake exchange on 127.0.0.1, (4) archive vs REST backfill. Prints a table and writes
``benchmarks/results/<scale>-<UTC time>.json`` (and ``<scale>-latest.json``).
"""

import argparse
import datetime as dt
import json
import os
import platform
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from benchmarks.report import table  # noqa: E402
from benchmarks.scales import SCALES  # noqa: E402

SECTIONS = ("features", "backfill", "rest", "archive")
# Opt-in (``--sections api``): the read API under load while the lake is written (benchmarks/api_bench.py).
OPTIONAL_SECTIONS = ("api",)
API_SCALES = {"small": {"symbols": 4, "seconds": 2.0}, "medium": {"symbols": 20, "seconds": 10.0}}


def environment() -> dict:
    import dagster
    import duckdb
    import pandas
    import polars

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "machine": platform.machine(),
        "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "polars": polars.__version__,
        "pandas": pandas.__version__,
        "duckdb": duckdb.__version__,
        "dagster": dagster.__version__,
    }


def run_section(name: str, scale, results: dict) -> dict | list:
    if name == "api":
        from benchmarks.api_bench import run as run_api

        return run_api(**API_SCALES.get(scale.name, {"symbols": 50, "seconds": 20.0}))
    if name == "features":
        from benchmarks.features_bench import run

        return run(scale.feature_sets)
    if name == "backfill":
        from benchmarks.backfill_bench import run

        return run(scale)
    if name == "rest":
        from benchmarks.rest_bench import run

        return run(scale)
    from benchmarks.archive_bench import run

    return run(scale, rest=results.get("rest"))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument(
        "--sections", default=",".join(SECTIONS), help=f"comma-separated subset of {','.join(SECTIONS)}"
    )
    parser.add_argument("--output", type=Path, help="JSON file (default: benchmarks/results/<scale>-<time>.json)")
    args = parser.parse_args(argv)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    unknown = sorted(set(sections) - set(SECTIONS) - set(OPTIONAL_SECTIONS))
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {SECTIONS}")
    scale = SCALES[args.scale]
    started = dt.datetime.now(dt.UTC)
    results: dict = {
        "scale": scale.name,
        "started_at": started.isoformat(timespec="seconds"),
        "environment": environment(),
    }
    for name in sections:
        results[name] = run_section(name, scale, results)
    results["finished_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    output = args.output or REPO / "benchmarks" / "results" / f"{scale.name}-{started:%Y%m%dT%H%M%SZ}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, default=str))
    if args.output is None:
        (output.parent / f"{scale.name}-latest.json").write_text(output.read_text())
    print()
    print(table(results))
    print(f"\nJSON: {output}")
    return results


if __name__ == "__main__":
    main()
