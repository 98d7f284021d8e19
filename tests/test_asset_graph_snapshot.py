"""The asset graph as a reviewed snapshot: a renamed asset, a new dependency, a changed partitions
definition or a dropped check shows up as a diff of tests/snapshots/asset_graph.json.

After an intended change: ``CRYPTOLAKE_UPDATE_SNAPSHOT=1 pytest tests/test_asset_graph_snapshot.py``
rewrites the file; review and commit the diff with the change.
"""

import json
import os
from pathlib import Path

from asset_graph import describe_asset_graph

from cryptolake_assets.definitions import defs

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def test_asset_graph_matches_the_snapshot():
    current = json.loads(json.dumps(describe_asset_graph(defs), default=str))
    if os.environ.get("CRYPTOLAKE_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=1, sort_keys=True) + "\n")
    recorded = json.loads(SNAPSHOT.read_text())
    for name in sorted(set(recorded["assets"]) | set(current["assets"])):
        assert current["assets"].get(name) == recorded["assets"].get(name), f"asset {name} differs from the snapshot"
    assert current == recorded


def test_every_medallion_table_follows_the_house_conventions():
    assets = describe_asset_graph(defs)["assets"]
    assert assets, "no assets"
    for name, asset in assets.items():
        layer = name.split("/")[0]
        assert asset["has_description"], f"{name} has no docstring/description (the UI shows it)"
        if layer not in ("bronze", "silver", "gold"):
            continue
        assert asset["group"] == layer and asset["tags"]["layer"] == layer, name
        assert asset["pools"] == ["duckdb"], name
        assert asset["columns"], f"{name} declares no column schema"
        if asset["partitions"] is not None:
            assert asset["backfill_policy"] == "BackfillPolicyType.SINGLE_RUN", name
            assert asset["partition_expr"], name
