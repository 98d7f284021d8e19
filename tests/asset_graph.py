"""A plain, diffable description of the project's asset graph (keys, deps, partitions, checks and
the conventions every medallion asset carries), for the snapshot test."""

from typing import Any

from dagster import AssetsDefinition, Definitions, GraphDefinition, OpDefinition


def _retry_policies(assets_def: AssetsDefinition) -> str | dict[str, str]:
    """The op's retry policy; for a graph-backed asset, each op's by name (and its pool)."""
    node = assets_def.node_def
    if not isinstance(node, GraphDefinition):
        return repr(assets_def.op.retry_policy)
    ops = [n for n in node.iterate_node_defs() if isinstance(n, OpDefinition)]
    return {f"{o.name} (pool {o.pool})": repr(o.retry_policy) for o in sorted(ops, key=lambda o: o.name)}


def describe_asset_graph(defs: Definitions) -> dict[str, Any]:
    graph = defs.resolve_asset_graph()
    assets: dict[str, Any] = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        partitions = node.partitions_def
        spec_metadata = node.metadata or {}
        assets[key.to_user_string()] = {
            "deps": sorted(parent.to_user_string() for parent in node.parent_keys),
            "group": node.group_name,
            "kinds": sorted(node.kinds),
            "owners": sorted(node.owners),
            "tags": {k: v for k, v in sorted(node.tags.items()) if not k.startswith("dagster/kind/")},
            "partitions": type(partitions).__name__ if partitions is not None else None,
            "backfill_policy": str(node.backfill_policy.policy_type) if node.backfill_policy else None,
            "pools": sorted(node.pools or []),
            "retry_policy": _retry_policies(defs.get_assets_def(key)),
            "partition_expr": spec_metadata.get("partition_expr"),
            "columns": [c.name for c in spec_metadata["dagster/column_schema"].columns]
            if "dagster/column_schema" in spec_metadata
            else None,
            "checks": sorted(check.name for check in graph.get_check_keys_for_assets({key})),
            "has_description": bool(node.description),
        }
    return {
        "assets": assets,
        "jobs": sorted(job.name for job in defs.jobs or []),
        "schedules": sorted(s.name for s in defs.schedules or []),
        "sensors": sorted(s.name for s in defs.sensors or []),
    }
