"""The alert sensor against a real Dagster instance, delivering to a real HTTP receiver.

The problems are recorded the way Dagster records them in production: materializations and
check evaluations from runs (``materialize``) or reported runless, freshness state changes as the
freshness daemon writes them. Each problem must produce exactly one alert per episode (the
cursor remembers it), a "resolved" message when it clears, and a daily digest.
"""

import datetime as dt
import logging

import pytest
from alert_webhook_receiver import SECRET_PATH, start_receiver
from conftest import project_instance_home
from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetKey,
    AssetMaterialization,
    DagsterEvent,
    DagsterEventType,
    DagsterInstance,
    Definitions,
    asset,
    asset_check,
    build_sensor_context,
    instance_for_test,
    materialize,
)

import cryptolake_assets.sensors.alerts as alerts_module
from cryptolake_assets.freshness import apply_freshness
from cryptolake_assets.sensors import SENSORS, alert_sensor
from cryptolake_assets.sensors.alert_state import AlertState
from partitions import daily_symbol_partitions, universe_symbols
from resources.alerting import AlertWebhook
from resources.dagster_internals import FreshnessState, FreshnessStateChange

BRONZE = AssetKey(["bronze", "klines"])
SILVER = AssetKey(["silver", "ohlcv"])
NOW = dt.datetime(2024, 7, 3, 2, 0, tzinfo=dt.UTC)  # 2024-07-02 closed, its 01:00 deadline passed
DAY = "2024-07-02"
# Not trading on 2024-07-02 (universe.csv): BUSD delisted 2023-12-15, AGIX/OCEAN after 2024-07-01.
LISTED = [s for s in universe_symbols() if s not in {"BUSDUSDT", "AGIXUSDT", "OCEANUSDT"}]
CHECK_PASSES = {"value": False}


@asset(key=["bronze", "klines"], partitions_def=daily_symbol_partitions, group_name="bronze")
def bronze_stub():
    return 1


@asset(key=["silver", "ohlcv"], partitions_def=daily_symbol_partitions, group_name="silver")
def silver_stub():
    return 1


@asset_check(asset=silver_stub, blocking=True, partitions_def=daily_symbol_partitions, name="ohlcv_schema")
def silver_schema_check():
    if CHECK_PASSES["value"]:
        return AssetCheckResult(passed=True)
    return AssetCheckResult(passed=False, description="2 rows with high < low")


@asset_check(asset=silver_stub, blocking=False, partitions_def=daily_symbol_partitions, name="row_count")
def silver_row_count_check():
    return AssetCheckResult(passed=True)


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as instance:
        yield instance


@pytest.fixture(params=["ephemeral", "sqlite_run_sharded", "postgres"])
def any_instance(request, tmp_path, monkeypatch):
    """``dagster dev`` uses the run-sharded SQLite event log, where cross-run event cursors fail;
    ``postgres``: deploy/postgres/dagster.yaml on the session's real server, where ids commit out of order."""
    if request.param == "ephemeral":
        with DagsterInstance.ephemeral() as instance:
            yield instance
    elif request.param == "postgres":
        home = project_instance_home(request, tmp_path / "home", monkeypatch, "postgres")
        with DagsterInstance.from_config(str(home)) as instance:
            yield instance
    else:
        with instance_for_test() as instance:
            yield instance


@pytest.fixture
def receiver():
    server, state = start_receiver()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def clock(monkeypatch):
    now = {"value": NOW}
    monkeypatch.setattr(alerts_module, "utc_now", lambda: now["value"])
    CHECK_PASSES["value"] = False
    return now


def record_day(instance, key, symbols, day=DAY, rows=24):
    for symbol in symbols:
        instance.report_runless_asset_event(
            AssetMaterialization(asset_key=key, partition=f"{day}|{symbol}", metadata={"rows": rows})
        )


def tick(instance, assets, cursor, webhook, checks=()):
    definitions = Definitions(assets=apply_freshness(assets), asset_checks=list(checks))
    context = build_sensor_context(
        instance=instance, cursor=cursor, definitions=definitions, resources={"alert_webhook": webhook}
    )
    return alert_sensor(context)


def hook(receiver, **overrides):
    settings = {"webhook_url": receiver.url, "timeout_seconds": 2.0, "max_attempts": 2, "backoff_seconds": 0.01}
    return AlertWebhook(**(settings | overrides))


def summaries(payloads):
    return [(p["cryptolake"]["status"], p["cryptolake"]["title"], p["cryptolake"]["problems"]) for p in payloads]


def test_sensor_is_registered_and_running_by_default():
    assert alert_sensor in SENSORS
    assert alert_sensor.default_status.value == "RUNNING"
    assert alert_sensor.name == "cryptolake_alerts"


def test_stale_symbol_alerts_once_then_resolves(instance, receiver, clock):
    record_day(instance, BRONZE, [s for s in LISTED if s != "BTCUSDT"])
    webhook = hook(receiver)

    first = tick(instance, [bronze_stub], None, webhook)
    [payload] = receiver.payloads()
    assert payload["cryptolake"] == {
        "status": "firing",
        "kind": "stale_symbols",
        "title": "Stale symbols: bronze/klines (1)",
        "fields": {"Asset": "bronze/klines", "Expected day": "2024-07-02", "Symbols": "BTCUSDT"},
        "problems": ["stale:bronze/klines:BTCUSDT"],
    }
    assert payload["text"] == (
        ":red_circle: Stale symbols: bronze/klines (1)\n• BTCUSDT: 2024-07-02 missing (due 2024-07-03 01:00 UTC)"
    )

    clock["value"] = NOW + dt.timedelta(minutes=5)
    second = tick(instance, [bronze_stub], first.cursor, webhook)
    assert len(receiver.payloads()) == 1  # still the same episode: no repeat
    assert "0 new alert(s)" in second.skip_reason.skip_message

    record_day(instance, BRONZE, ["BTCUSDT"])
    clock["value"] = NOW + dt.timedelta(minutes=65)
    third = tick(instance, [bronze_stub], second.cursor, webhook)
    resolved = receiver.payloads()[1]
    assert resolved["cryptolake"] == {
        "status": "resolved",
        "kind": "stale_symbols",
        "title": "Resolved: Stale symbols: bronze/klines (1)",
        "fields": {
            "Asset": "bronze/klines",
            "Expected day": "2024-07-02",
            "Symbols": "BTCUSDT",
            "Open for": "1 h 05 min",
        },
        "problems": ["stale:bronze/klines:BTCUSDT"],
    }
    assert AlertState.from_cursor(third.cursor).open == {}


def test_new_day_missing_for_one_symbol_is_a_new_episode_only_after_resolution(instance, receiver, clock):
    record_day(instance, BRONZE, LISTED)
    webhook = hook(receiver)
    cursor = tick(instance, [bronze_stub], None, webhook).cursor
    assert receiver.payloads() == []

    # Next day: everything but ETHUSDT lands; AGIX/OCEAN stay out (delisted), TAO is expected.
    record_day(instance, BRONZE, [s for s in LISTED if s != "ETHUSDT"], day="2024-07-03")
    clock["value"] = NOW + dt.timedelta(days=1)
    tick(instance, [bronze_stub], cursor, webhook)
    assert summaries(receiver.payloads()) == [
        ("firing", "Stale symbols: bronze/klines (1)", ["stale:bronze/klines:ETHUSDT"])
    ]


def test_failed_blocking_check_and_failed_run_alert_once_and_resolve(any_instance, receiver, clock):
    instance = any_instance
    record_day(instance, BRONZE, LISTED)
    record_day(instance, SILVER, LISTED)
    assets, checks = [bronze_stub, silver_stub], [silver_schema_check, silver_row_count_check]
    webhook = hook(receiver)
    cursor = tick(instance, assets, None, webhook, checks).cursor
    assert receiver.payloads() == []

    failed = materialize(
        [silver_stub, silver_schema_check], partition_key="2024-07-02|ETHUSDT", instance=instance, raise_on_error=False
    )
    assert not failed.success
    # A non-blocking failure elsewhere is digest material, not an alert.
    instance.report_runless_asset_event(
        AssetCheckEvaluation(
            asset_key=SILVER, check_name="row_count", passed=False, blocking=False, partition="2024-07-02|BTCUSDT"
        )
    )
    cursor = tick(instance, assets, cursor, webhook, checks).cursor
    payloads = receiver.payloads()
    # One problem, one alert: the run failed only because the blocking check failed, so the check
    # alerts and the run does not alert a second time.
    assert summaries(payloads) == [
        (
            "firing",
            "Blocking check failed: silver/ohlcv:ohlcv_schema (1)",
            ["check:silver/ohlcv:ohlcv_schema:2024-07-02|ETHUSDT"],
        ),
    ]
    assert payloads[0]["cryptolake"]["fields"]["Check"] == "ohlcv_schema"
    assert payloads[0]["cryptolake"]["fields"]["Run"] == failed.run_id
    assert payloads[0]["blocks"][1]["text"]["text"] == "• `2024-07-02|ETHUSDT`: 2 rows with high < low"

    # The same check failing again on the same partition is the same episode.
    materialize(
        [silver_stub, silver_schema_check], partition_key="2024-07-02|ETHUSDT", instance=instance, raise_on_error=False
    )
    cursor = tick(instance, assets, cursor, webhook, checks).cursor
    assert len(receiver.payloads()) == 1

    CHECK_PASSES["value"] = True
    fixed = materialize([silver_stub, silver_schema_check], partition_key="2024-07-02|ETHUSDT", instance=instance)
    cursor = tick(instance, assets, cursor, webhook, checks).cursor
    assert summaries(receiver.payloads()[1:]) == [
        (
            "resolved",
            "Resolved: Blocking check failed: silver/ohlcv:ohlcv_schema (1)",
            ["check:silver/ohlcv:ohlcv_schema:2024-07-02|ETHUSDT"],
        ),
    ]
    assert receiver.payloads()[1]["cryptolake"]["fields"]["Run"] == fixed.run_id
    assert AlertState.from_cursor(cursor).open == {}


def test_freshness_failure_alerts_and_resolves(instance, receiver, clock):
    record_day(instance, BRONZE, LISTED)
    webhook = hook(receiver)

    def change(new, previous):
        instance.report_runless_asset_event(
            FreshnessStateChange(
                key=BRONZE, new_state=new, previous_state=previous, state_change_timestamp=NOW.timestamp()
            )
        )

    change(FreshnessState.WARN, FreshnessState.PASS)
    cursor = tick(instance, [bronze_stub], None, webhook).cursor
    assert receiver.payloads() == []  # WARN shows in the UI only

    change(FreshnessState.FAIL, FreshnessState.WARN)
    cursor = tick(instance, [bronze_stub], cursor, webhook).cursor
    cursor = tick(instance, [bronze_stub], cursor, webhook).cursor
    change(FreshnessState.PASS, FreshnessState.FAIL)
    tick(instance, [bronze_stub], cursor, webhook)

    assert summaries(receiver.payloads()) == [
        ("firing", "Freshness policy failing: bronze/klines", ["freshness:bronze/klines"]),
        ("resolved", "Resolved: Freshness policy failing: bronze/klines", ["freshness:bronze/klines"]),
    ]
    assert receiver.payloads()[0]["cryptolake"]["fields"] == {
        "Asset": "bronze/klines",
        "Freshness": "FAIL",
        "Since": "2024-07-03 02:00 UTC",
    }


def test_daily_digest_once_per_day(any_instance, receiver, clock):
    instance = any_instance
    record_day(instance, BRONZE, [s for s in LISTED if s not in {"BTCUSDT", "TAOUSDT"}], rows=24)
    record_day(instance, SILVER, LISTED, rows=23)
    for symbol, passed in (("BTCUSDT", True), ("ETHUSDT", True), ("SOLUSDT", False)):
        instance.report_runless_asset_event(
            AssetCheckEvaluation(
                asset_key=SILVER, check_name="ohlcv_schema", passed=passed, blocking=False, partition=f"{DAY}|{symbol}"
            )
        )
    clock["value"] = dt.datetime(2024, 7, 3, 6, 30, tzinfo=dt.UTC)
    webhook = hook(receiver)

    cursor = tick(instance, [bronze_stub, silver_stub], None, webhook, [silver_schema_check]).cursor
    stale, digest = receiver.payloads()
    assert stale["cryptolake"]["problems"] == ["stale:bronze/klines:BTCUSDT", "stale:bronze/klines:TAOUSDT"]
    assert digest["cryptolake"]["title"] == "CryptoLake daily digest 2024-07-03"
    assert digest["cryptolake"]["fields"] == {
        "Window": "2024-07-02 06:30 → 2024-07-03 06:30 UTC",
        # bronze: the listed symbols but BTCUSDT and TAOUSDT (24 rows each); silver: all listed (23 each).
        "Materializations": str((len(LISTED) - 2) + len(LISTED)),
        "Rows": f"{(len(LISTED) - 2) * 24 + len(LISTED) * 23:,}",
        "Checks passed": "2",
        "Checks failed": "1",
        "Failed runs": "0",
        "Stale symbols": "2",
        "Open problems": "2",
    }
    text = digest["blocks"][1]["text"]["text"]
    bronze, silver = len(LISTED) - 2, len(LISTED)
    assert f"• `bronze/klines`: {bronze} materializations, {bronze} partitions, {bronze * 24:,} rows" in text
    assert f"• `silver/ohlcv`: {silver} materializations, {silver} partitions, {silver * 23:,} rows" in text
    assert "• `silver/ohlcv:ohlcv_schema`: 2 passed, 1 failed" in text
    assert "• `bronze/klines`: BTCUSDT, TAOUSDT" in text

    clock["value"] = dt.datetime(2024, 7, 3, 23, 0, tzinfo=dt.UTC)
    cursor = tick(instance, [bronze_stub, silver_stub], cursor, webhook).cursor
    assert len(receiver.payloads()) == 2  # one digest per day

    clock["value"] = dt.datetime(2024, 7, 4, 6, 0, tzinfo=dt.UTC)
    tick(instance, [bronze_stub, silver_stub], cursor, webhook)
    titles = [p["cryptolake"]["title"] for p in receiver.payloads()[2:]]
    assert "CryptoLake daily digest 2024-07-04" in titles


def test_webhook_timeout_keeps_the_tick_alive_and_retries_next_tick(instance, receiver, clock, caplog, capsys):
    caplog.set_level(logging.DEBUG)
    record_day(instance, BRONZE, [s for s in LISTED if s != "BTCUSDT"])
    receiver.script = [(200, {}, 1.0)]
    slow = hook(receiver, timeout_seconds=0.2, max_attempts=1)

    result = tick(instance, [bronze_stub], None, slow)

    state = AlertState.from_cursor(result.cursor)
    assert [item["alert"]["title"] for item in state.outbox] == ["Stale symbols: bronze/klines (1)"]
    assert state.outbox[0]["attempts"] == 1
    assert "0 posted, 1 waiting" in result.skip_reason.skip_message

    clock["value"] = NOW + dt.timedelta(minutes=1)
    result = tick(instance, [bronze_stub], result.cursor, hook(receiver))
    assert AlertState.from_cursor(result.cursor).outbox == []
    titles = [p["cryptolake"]["title"] for p in receiver.payloads()]
    assert titles == [
        "Stale symbols: bronze/klines (1)",
        "Stale symbols: bronze/klines (1)",
    ]  # timed out, then delivered

    logs = caplog.text + capsys.readouterr().err
    assert "ReadTimeout" in logs
    assert SECRET_PATH not in logs


def test_without_webhook_alerts_go_to_log_and_tick_message(instance, clock, caplog, capsys):
    caplog.set_level(logging.INFO)
    record_day(instance, BRONZE, [s for s in LISTED if s != "BTCUSDT"])

    result = tick(instance, [bronze_stub], None, AlertWebhook())

    assert result.skip_reason.skip_message == (
        "1 new alert(s), 0 posted, 0 waiting; 1 open problem(s); log only (no CRYPTOLAKE_ALERT_WEBHOOK_URL): "
        "[firing] Stale symbols: bronze/klines (1)"
    )
    assert AlertState.from_cursor(result.cursor).outbox == []
    logs = caplog.text + capsys.readouterr().err
    assert "BTCUSDT: 2024-07-02 missing (due 2024-07-03 01:00 UTC)" in logs


def _check_storage_ids(instance) -> list[int]:
    """Storage ids of every stored (passed or failed) check evaluation, read straight from the index table."""
    import sqlalchemy as db

    from resources.dagster_internals import AssetCheckExecutionsTable

    table = AssetCheckExecutionsTable
    with instance.event_log_storage.index_connection() as conn:
        rows = conn.execute(
            db.select(table.c.evaluation_event_storage_id).where(table.c.execution_status.in_(["SUCCEEDED", "FAILED"]))
        ).fetchall()
    return sorted(int(row[0]) for row in rows)


def test_check_transitions_read_only_evaluations_after_the_cursor(any_instance):
    """New materializations alone cost a tick nothing; each evaluation is seen once, in order."""
    from dagster import AssetCheckKey

    from cryptolake_assets.sensors.problems import SETTLE_SECONDS, IdWindow, check_transitions

    instance = any_instance
    blocking = {AssetCheckKey(SILVER, "ohlcv_schema"): True, AssetCheckKey(SILVER, "row_count"): False}
    now = NOW.timestamp()

    def evaluate_schema(passed, partition):
        monkeypatch = pytest.MonkeyPatch()
        monkeypatch.setitem(CHECK_PASSES, "value", passed)
        materialize(
            [silver_stub, silver_schema_check], partition_key=partition, instance=instance, raise_on_error=False
        )
        monkeypatch.undo()

    evaluate_schema(False, "2024-07-01|BTCUSDT")  # before the cursor: never read again
    (before,) = _check_storage_ids(instance)
    # A first tick looks back only to its timestamp: an evaluation older than that is not read, and
    # everything stored so far is settled.
    window = IdWindow()
    assert check_transitions(instance, blocking, window, dt.datetime.now(dt.UTC).timestamp() + 60, now) == []
    assert (window.after, window.seen) == (before, set())
    record_day(instance, SILVER, LISTED)  # one materialization per listed symbol, no evaluation
    assert check_transitions(instance, blocking, window, 0.0, now + 60) == []
    assert (window.after, window.seen) == (before, set())

    evaluate_schema(False, "2024-07-02|ETHUSDT")
    instance.report_runless_asset_event(  # not blocking: no transition, but the window records it
        AssetCheckEvaluation(asset_key=SILVER, check_name="row_count", passed=False, partition="2024-07-02|ETHUSDT")
    )
    evaluate_schema(True, "2024-07-02|ETHUSDT")
    ids = _check_storage_ids(instance)
    assert len(ids) == 4 and ids[0] == before
    transitions = check_transitions(instance, blocking, window, 0.0, now + 120)
    assert [(t.opened, t.problem.key) for t in transitions] == [
        (True, "check:silver/ohlcv:ohlcv_schema:2024-07-02|ETHUSDT"),
        (False, "check:silver/ohlcv:ohlcv_schema:2024-07-02|ETHUSDT"),
    ]
    assert [t.storage_id for t in transitions] == [ids[1], ids[3]]
    # Re-read on the next ticks (ids may commit out of order), never reported twice.
    assert window.seen == set(ids[1:]) and window.after == before
    assert check_transitions(instance, blocking, window, 0.0, now + 180) == []
    # Once a tick that read them is SETTLE_SECONDS old, they are settled and leave the cursor.
    assert check_transitions(instance, blocking, window, 0.0, now + 120 + SETTLE_SECONDS) == []
    assert (window.after, window.seen) == (ids[3], set())


def test_id_window_stays_bounded_and_never_reports_an_id_twice():
    from cryptolake_assets.sensors.problems import MAX_SEEN_IDS, SETTLE_SECONDS, IdWindow

    window = IdWindow()
    window.tick(1000.0, 10)
    assert (window.after, window.seen, window.marks) == (10, set(), [(1000.0, 10)])
    assert [window.take(i) for i in (9, 10, 11, 12, 11)] == [False, False, True, True, False]
    window.tick(1060.0, 12)
    assert window.marks == [(1000.0, 10), (1060.0, 12)]
    window.tick(1120.0, 12)  # nothing new: no new mark
    assert window.marks == [(1000.0, 10), (1060.0, 12)]
    window.tick(1060.0 + SETTLE_SECONDS, 12)
    assert (window.after, window.seen, window.marks) == (12, set(), [(1060.0 + SETTLE_SECONDS, 12)])
    # Round trip through the cursor JSON.
    assert IdWindow.load(window.after, window.dump()) == window
    # A flood of ids: the lowest settle early, the cursor keeps MAX_SEEN_IDS.
    for i in range(13, 13 + MAX_SEEN_IDS + 7):
        assert window.take(i)
    window.tick(2000.0, 12 + MAX_SEEN_IDS + 7)
    assert window.after == 12 + 7 and len(window.seen) == MAX_SEEN_IDS and min(window.seen) == 20


def test_an_evaluation_whose_transaction_commits_after_a_later_one_is_reported_exactly_once(
    request, tmp_path, monkeypatch
):
    """On Postgres, id N can commit after N + 1 was read: the alert sensor must still report N, once."""
    from contextlib import contextmanager

    from dagster import AssetCheckKey

    from cryptolake_assets.sensors.problems import IdWindow, check_transitions

    home = project_instance_home(request, tmp_path / "home", monkeypatch, "postgres")
    blocking = {AssetCheckKey(SILVER, "ohlcv_schema"): True}
    now = NOW.timestamp()

    def failure(partition):
        return AssetCheckEvaluation(
            asset_key=SILVER, check_name="ohlcv_schema", passed=False, partition=partition, blocking=True
        )

    with DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        window = IdWindow()
        assert check_transitions(instance, blocking, window, 0.0, now) == [] and window.after == 0

        # Dagster's own write of evaluation N, on one connection whose transaction stays open.
        entries = []
        monkeypatch.setattr(storage, "store_event", entries.append)
        instance.report_runless_asset_event(failure("2024-07-02|BTCUSDT"))
        monkeypatch.undo()
        monkeypatch.setenv("DAGSTER_HOME", str(home))
        held = storage._engine.connect().execution_options(isolation_level="READ COMMITTED")
        transaction = held.begin()

        @contextmanager
        def same_connection():
            yield held

        monkeypatch.setattr(storage, "_connect", same_connection)
        storage.store_event(entries[0])  # takes id N, uncommitted
        monkeypatch.undo()
        monkeypatch.setenv("DAGSTER_HOME", str(home))

        instance.report_runless_asset_event(failure("2024-07-02|ETHUSDT"))  # id N + 1, committed
        first = check_transitions(instance, blocking, window, 0.0, now + 60)
        assert [t.problem.key for t in first] == ["check:silver/ohlcv:ohlcv_schema:2024-07-02|ETHUSDT"]
        n_plus_1 = first[0].storage_id

        transaction.commit()  # N commits after N + 1 was read
        held.close()
        ids = _check_storage_ids(instance)
        assert ids == [n_plus_1 - 1, n_plus_1]
        # A plain "storage id > cursor" read would now skip N for ever.
        second = check_transitions(instance, blocking, window, 0.0, now + 120)
        assert [(t.storage_id, t.problem.key) for t in second] == [
            (n_plus_1 - 1, "check:silver/ohlcv:ohlcv_schema:2024-07-02|BTCUSDT")
        ]
        assert check_transitions(instance, blocking, window, 0.0, now + 180) == []


def test_digest_sums_each_partitions_own_rows_not_the_tables():
    """Partition events carry their own count and the table's (``dagster/row_count``); unpartitioned ones only the table's."""
    from cryptolake_assets.sensors.digest import build_digest

    since = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    with DagsterInstance.ephemeral() as instance:
        for symbol, rows in (("BTCUSDT", 24), ("ETHUSDT", 20)):
            instance.report_runless_asset_event(
                AssetMaterialization(
                    asset_key=SILVER,
                    partition=f"{DAY}|{symbol}",
                    metadata={"dagster/row_count": 1920, "dagster/partition_row_count": rows},
                )
            )
        dim = AssetKey(["gold", "dim_symbol"])
        instance.report_runless_asset_event(AssetMaterialization(asset_key=dim, metadata={"dagster/row_count": 35}))
        digest = build_digest(instance, [SILVER, dim], [], since, dt.datetime.now(dt.UTC), stale=[], open_problems=0)
    assert "`silver/ohlcv`: 2 materializations, 2 partitions, 44 rows" in digest.text
    assert "`gold/dim_symbol`: 1 materializations, 1 partitions, 35 rows" in digest.text
    assert digest.fields["Rows"] == "79"


def test_range_results_neither_hide_nor_resolve_another_partitions_failure(any_instance, receiver, clock):
    """A range run over 40 partitions records one result for the range plus one evaluation on each
    failing partition. The problem is BTC's partition: a passing range of other symbols does not
    resolve it, and re-checking BTC's partition does."""
    instance = any_instance
    record_day(instance, BRONZE, LISTED)
    record_day(instance, SILVER, LISTED)
    assets, checks = [bronze_stub, silver_stub], [silver_schema_check, silver_row_count_check]
    webhook = hook(receiver)
    cursor = tick(instance, assets, None, webhook, checks).cursor

    runs = iter(f"range-run-{n}" for n in range(10))

    def evaluate(passed, partition=None, metadata=None):
        # Stored as a run's evaluation (each in its own run id, as range runs are).
        evaluation = AssetCheckEvaluation(
            asset_key=SILVER,
            check_name="ohlcv_schema",
            passed=passed,
            blocking=True,
            partition=partition,
            metadata=metadata or {},
            description=None if passed else "high < low",
        )
        event = DagsterEvent(
            event_type_value=DagsterEventType.ASSET_CHECK_EVALUATION.value,
            job_name="daily_symbol_assets",
            event_specific_data=evaluation,
        )
        instance.report_dagster_event(event, run_id=next(runs))

    range_failure = {"partitions_checked": 62, "failing_partitions": "2024-07-02|BTCUSDT"}
    evaluate(False, metadata=range_failure)  # the range's one result
    evaluate(False, partition="2024-07-02|BTCUSDT")  # the failing partition's own
    cursor = tick(instance, assets, cursor, webhook, checks).cursor
    assert summaries(receiver.payloads()) == [
        (
            "firing",
            "Blocking check failed: silver/ohlcv:ohlcv_schema (1)",
            ["check:silver/ohlcv:ohlcv_schema:2024-07-02|BTCUSDT"],
        ),
    ]

    evaluate(True, metadata={"partitions_checked": 62})  # a later range of other symbols passes
    cursor = tick(instance, assets, cursor, webhook, checks).cursor
    assert len(receiver.payloads()) == 1
    assert list(AlertState.from_cursor(cursor).open) == ["check:silver/ohlcv:ohlcv_schema:2024-07-02|BTCUSDT"]

    evaluate(True, partition="2024-07-02|BTCUSDT")  # BTC's partition re-checked and passing
    cursor = tick(instance, assets, cursor, webhook, checks).cursor
    assert summaries(receiver.payloads()[1:]) == [
        (
            "resolved",
            "Resolved: Blocking check failed: silver/ohlcv:ohlcv_schema (1)",
            ["check:silver/ohlcv:ohlcv_schema:2024-07-02|BTCUSDT"],
        ),
    ]
    assert AlertState.from_cursor(cursor).open == {}
