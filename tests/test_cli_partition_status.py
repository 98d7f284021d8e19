"""``cryptolake backfill`` builds the partition status the UI reads, once per asset that has none.

Nothing stores an asset's partition status while runs materialize; the first UI visit after a
large backfill built it from every materialization (the partitions tab of gold/daily_features
took 34 s over the full history, ADR 0005). ``build_partition_status`` builds it through the public
``DagsterInstance.get_status_by_partition``. The webserver rebuilds the partitions definition
from the code location's snapshot (a plain ``MultiPartitionsDefinition``) and uses the stored
status only when its identifier matches: that contract is pinned here, on SQLite and PostgreSQL.
"""

from dagster import (
    AssetKey,
    AssetPartitionStatus,
    DailyPartitionsDefinition,
    Definitions,
    MultiPartitionsDefinition,
    StaticPartitionsDefinition,
    asset,
    materialize,
)

from cryptolake_assets.cli import build_partition_status
from partitions import daily_symbol_partitions
from partitions.daily_symbol import DATE_DIMENSION, SYMBOL_DIMENSION, daily_partitions, symbol_partitions

DONE = ["2024-03-01|BTCUSDT", "2024-03-02|BTCUSDT", "2024-03-01|ETHUSDT"]
NOT_DONE = "2024-03-02|ETHUSDT"


@asset(key=["gold", "stub_features"], partitions_def=daily_symbol_partitions)
def stub_features() -> None:
    """A date x symbol asset with nothing to store."""


@asset(key=["gold", "stub_unmaterialized"], partitions_def=daily_symbol_partitions)
def stub_unmaterialized() -> None:
    """Never materialized: it has no record, so nothing is built for it."""


def _cached(instance, key: AssetKey):
    [record] = instance.get_asset_records([key])
    return record.asset_entry.cached_status


def test_backfill_builds_the_status_the_ui_reads_once(project_instance):
    instance = project_instance
    defs = Definitions(assets=[stub_features, stub_unmaterialized])
    for key in DONE:
        assert materialize([stub_features], partition_key=key, instance=instance).success
    key = AssetKey(["gold", "stub_features"])
    assert _cached(instance, key) is None  # runs do not store it

    assert build_partition_status(defs, instance) == [key]

    stored = _cached(instance, key)
    # What the webserver builds from the snapshot: the same dimensions, Dagster's own class.
    as_the_ui_sees_it = MultiPartitionsDefinition(
        {DATE_DIMENSION: daily_partitions, SYMBOL_DIMENSION: symbol_partitions}
    )
    assert type(as_the_ui_sees_it) is not type(daily_symbol_partitions)
    assert stored.partitions_def_id == as_the_ui_sees_it.get_serializable_unique_identifier()
    assert sorted(stored.deserialize_materialized_partition_subsets(as_the_ui_sees_it).get_partition_keys()) == sorted(
        DONE
    )
    assert instance.get_status_by_partition(key, [*DONE, NOT_DONE], as_the_ui_sees_it) == {
        **{k: AssetPartitionStatus.MATERIALIZED for k in DONE},
        NOT_DONE: None,
    }

    # Built once: a later backfill leaves the stored status to the UI's own incremental update.
    assert build_partition_status(defs, instance) == []


def test_a_daily_asset_gets_its_status_too(project_instance):
    daily = DailyPartitionsDefinition(start_date="2024-03-01", end_offset=1)

    @asset(key=["gold", "stub_daily"], partitions_def=daily)
    def stub_daily() -> None:
        """A date-level asset."""

    @asset(key=["gold", "stub_static"], partitions_def=StaticPartitionsDefinition(["a", "b"]))
    def stub_static() -> None:
        """A static-partitioned asset."""

    assert materialize([stub_daily], partition_key="2024-03-02", instance=project_instance).success
    assert materialize([stub_static], partition_key="b", instance=project_instance).success
    built = build_partition_status(Definitions(assets=[stub_daily, stub_static]), project_instance)
    assert sorted(built) == [AssetKey(["gold", "stub_daily"]), AssetKey(["gold", "stub_static"])]
    stored = _cached(project_instance, AssetKey(["gold", "stub_static"]))
    assert list(
        stored.deserialize_materialized_partition_subsets(StaticPartitionsDefinition(["a", "b"])).get_partition_keys()
    ) == ["b"]
