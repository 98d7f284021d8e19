"""Section (1): silver → gold daily features with the project's code, bare Polars and pandas.

Each implementation runs in a fresh process, reads the same Parquet file and writes its features;
the outputs are checked against the project's (same rows, same nulls, values within 1e-9). Times
are the median of ``repeats`` interleaved runs (one run for sets over 5 M rows); RSS the maximum.
"""

import statistics
import tempfile
from pathlib import Path

from benchmarks.compare import agreement
from benchmarks.measure import run_step
from benchmarks.scales import FeatureSet
from benchmarks.synthetic import symbol_names, write_silver, write_universe

IMPLEMENTATIONS = ("features_project", "features_polars_floor", "features_pandas")
LABELS = {
    "features_project": "CryptoLake (gold.features)",
    "features_polars_floor": "bare Polars (floor)",
    "features_pandas": "pandas",
}


def run_feature_set(spec: FeatureSet, workdir: Path, repeats: int, log=print) -> dict:
    data = workdir / f"silver_{spec.name}.parquet"
    universe = write_universe(workdir / f"universe_{spec.name}.csv", symbol_names(spec.symbols))
    log(f"  generating {spec.symbols} symbols × {spec.days} days of {spec.interval} bars ...")
    rows = write_silver(data, spec)
    env = {"CRYPTOLAKE_UNIVERSE": str(universe)}
    attempts: dict[str, list[dict]] = {name: [] for name in IMPLEMENTATIONS}
    for attempt in range(repeats):  # interleaved, so load from others on the machine hits all alike
        for name in IMPLEMENTATIONS:
            output = workdir / f"{spec.name}_{name}.parquet"
            result = run_step(name, {"silver": str(data), "universe": str(universe), "output": str(output)}, env=env)
            attempts[name].append(result)
            log(
                f"  [{attempt + 1}/{repeats}] {LABELS[name]}: {result['seconds']:.2f}s, peak RSS {result['peak_rss_mb']:.0f} MB, {result['rows_out']} feature rows"
            )
    results = {}
    for name, runs in attempts.items():
        result = dict(runs[0])
        result["seconds"] = statistics.median(r["seconds"] for r in runs)
        result["seconds_all"] = [round(r["seconds"], 3) for r in runs]
        result["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
        result["rows_per_second"] = round(result["rows_in"] / result["seconds"])
        result["label"] = LABELS[name]
        results[name] = result
    reference = str(workdir / f"{spec.name}_features_project.parquet")
    checks = {name: agreement(reference, str(workdir / f"{spec.name}_{name}.parquet")) for name in IMPLEMENTATIONS[1:]}
    project, floor, pandas = (results[n]["seconds"] for n in IMPLEMENTATIONS)
    return {
        "data_set": spec.name,
        "symbols": spec.symbols,
        "days": spec.days,
        "interval": spec.interval,
        "silver_rows": rows,
        "repeats": repeats,
        "implementations": results,
        "agreement_with_project": checks,
        "ratios": {
            "project_vs_floor_time": round(project / floor, 2),
            "pandas_vs_project_time": round(pandas / project, 2),
            "project_vs_floor_peak_rss": round(
                results["features_project"]["peak_rss_mb"] / results["features_polars_floor"]["peak_rss_mb"], 2
            ),
            "pandas_vs_project_peak_rss": round(
                results["features_pandas"]["peak_rss_mb"] / results["features_project"]["peak_rss_mb"], 2
            ),
        },
    }


def run(feature_sets, repeats: int = 3, log=print) -> list[dict]:
    with tempfile.TemporaryDirectory(prefix="cryptolake-bench-") as tmp:
        out = []
        for spec in feature_sets:
            log(f"(1) features: {spec.name} ({spec.nominal_rows:,} nominal rows)")
            out.append(run_feature_set(spec, Path(tmp), 1 if spec.nominal_rows > 5_000_000 else repeats, log))
        return out
