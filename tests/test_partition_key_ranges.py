"""The date x symbol partitions definition remembers the keys of a range (issue 17: creating a
full-history run listed 85,000 keys once per planned asset and check, 80 s before it started)."""

import pytest
from dagster import MultiPartitionKey, MultiPartitionsDefinition, PartitionKeyRange

from partitions import daily_symbol_partitions
from partitions.daily_symbol import RangeMemoMultiPartitionsDefinition


def plain() -> MultiPartitionsDefinition:
    return MultiPartitionsDefinition({d.name: d.partitions_def for d in daily_symbol_partitions.partitions_defs})


def test_the_keys_of_a_range_are_dagsters_and_the_definition_equals_dagsters():
    key_range = PartitionKeyRange("2023-03-30|BTCUSDT", "2023-04-02|ETHUSDT")
    keys = daily_symbol_partitions.get_partition_keys_in_range(key_range)
    assert keys == plain().get_partition_keys_in_range(key_range)
    # 4 days x the symbols from BTCUSDT to ETHUSDT in the universe's order
    symbols = daily_symbol_partitions.partitions_defs[1].partitions_def.get_partition_keys()
    block = symbols[symbols.index("BTCUSDT") : symbols.index("ETHUSDT") + 1]
    expected = [
        MultiPartitionKey({"date": d, "symbol": s})
        for d in ("2023-03-30", "2023-03-31", "2023-04-01", "2023-04-02")
        for s in block
    ]
    assert keys == expected
    assert daily_symbol_partitions == plain() and hash(daily_symbol_partitions) == hash(plain())


def test_a_range_is_listed_once_and_a_caller_cannot_change_the_memo(monkeypatch):
    definition = RangeMemoMultiPartitionsDefinition(
        {d.name: d.partitions_def for d in daily_symbol_partitions.partitions_defs}
    )
    calls = []
    listed = MultiPartitionsDefinition.get_partition_keys_in_range

    def counting(self, key_range, dynamic_partitions_store=None):
        calls.append((key_range.start, key_range.end))
        return listed(self, key_range, dynamic_partitions_store)

    monkeypatch.setattr(MultiPartitionsDefinition, "get_partition_keys_in_range", counting)
    key_range = PartitionKeyRange("2023-01-01|BTCUSDT", "2023-01-03|BTCUSDT")
    first = definition.get_partition_keys_in_range(key_range)
    first.clear()  # callers get their own list
    second = definition.get_partition_keys_in_range(key_range)
    assert second == ["2023-01-01|BTCUSDT", "2023-01-02|BTCUSDT", "2023-01-03|BTCUSDT"]
    assert calls == [("2023-01-01|BTCUSDT", "2023-01-03|BTCUSDT")]


def test_only_the_last_few_ranges_are_kept(monkeypatch):
    definition = RangeMemoMultiPartitionsDefinition(
        {d.name: d.partitions_def for d in daily_symbol_partitions.partitions_defs}
    )
    days = [f"2023-01-{day:02d}|BTCUSDT" for day in range(1, 11)]
    for day in days:
        definition.get_partition_keys_in_range(PartitionKeyRange(days[0], day))
    assert len(definition._memo) == RangeMemoMultiPartitionsDefinition.MEMO_RANGES
    assert list(definition._memo)[-1] == (days[0], days[-1])


@pytest.mark.parametrize("bad", ["2023-01-01|NOSUCHUSDT", "not-a-key"])
def test_an_unknown_key_is_refused_as_by_dagster(bad):
    key_range = PartitionKeyRange("2023-01-01|BTCUSDT", bad)
    with pytest.raises(Exception) as ours:
        daily_symbol_partitions.get_partition_keys_in_range(key_range)
    with pytest.raises(Exception) as theirs:
        plain().get_partition_keys_in_range(key_range)
    assert type(ours.value) is type(theirs.value)
