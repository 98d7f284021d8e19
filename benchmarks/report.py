"""The printed table and the targets of issue 8, from the benchmark's JSON."""

TARGETS = {
    "project_vs_floor_time": 1.5,  # at most
    "pandas_vs_project_time": {"1h": 2.0, "1m": 5.0},  # at least
    "peak_rss_mb_1m": 2048,  # at most
    "backfill_seconds": 300,  # at most
    "rest_budget_share": 0.80,  # at least
    "rest_429s": 0,
    "archive_speedup": 5.0,  # at least
}


def _verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("met" if ok else "MISSED")


def feature_rows(section: list[dict]) -> list[list[str]]:
    rows = []
    for data_set in section:
        ratios = data_set["ratios"]
        for _name, result in data_set["implementations"].items():
            rows.append(
                [
                    f"(1) {data_set['data_set']} {data_set['symbols']}×{data_set['days']}d {data_set['interval']}",
                    result["label"],
                    f"{data_set['silver_rows']:,}",
                    f"{result['seconds']:.2f}",
                    f"{result['rows_per_second']:,}",
                    f"{result['peak_rss_mb']:,.0f}",
                ]
            )
        pandas_target = TARGETS["pandas_vs_project_time"][data_set["interval"]]
        notes = [
            f"project/floor {ratios['project_vs_floor_time']}× (≤1.5: {_verdict(ratios['project_vs_floor_time'] <= 1.5)})",
            f"pandas/project {ratios['pandas_vs_project_time']}× (≥{pandas_target}: {_verdict(ratios['pandas_vs_project_time'] >= pandas_target)})",
        ]
        if data_set["interval"] == "1m":
            rss = data_set["implementations"]["features_project"]["peak_rss_mb"]
            notes.append(f"RSS ≤2 GB: {_verdict(rss <= TARGETS['peak_rss_mb_1m'])}")
        agree = all(check["agrees"] for check in data_set["agreement_with_project"].values())
        notes.append("outputs agree" if agree else "OUTPUTS DIFFER")
        rows.append(["", "  " + "; ".join(notes), "", "", "", ""])
    return rows


def render(rows: list[list[str]], header: list[str]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w) for i, (c, w) in enumerate(zip(r, widths)))
        for r in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def table(results: dict) -> str:
    header = ["benchmark", "implementation / launch", "rows", "seconds", "rows/s", "peak RSS MB"]
    rows = []
    if "features" in results:
        rows += feature_rows(results["features"])
    for key in ("backfill", "rest", "archive"):
        for row in results.get(key, {}).get("table_rows", []):
            rows.append(row)
    return render(rows, header)
