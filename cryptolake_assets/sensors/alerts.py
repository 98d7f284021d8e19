"""The alert sensor (running by default): problems → one alert per episode → webhook, log and UI.

Each tick: recompute state problems (freshness FAIL, stale symbols), replay new check/run events,
diff against the open episodes in the cursor, add the daily digest when due, then deliver. Every
alert is logged (the tick's log and skip message are the UI); with a webhook configured it is also
posted. A delivery failure never fails the tick: the alert waits in the outbox for the next ticks.
"""

import datetime as dt

from dagster import AssetCheckKey, AssetKey, SensorEvaluationContext, SensorResult, sensor

from cryptolake_assets.automation_status import default_sensor_status
from cryptolake_assets.freshness import STALENESS_DEADLINES
from cryptolake_assets.sensors.alert_state import AlertState, Changes, alerts_for, apply_states, apply_transitions
from cryptolake_assets.sensors.closed_days import DATE_LEVEL_GOLD
from cryptolake_assets.sensors.digest import build_digest, digest_due
from cryptolake_assets.sensors.problems import (
    check_transitions,
    closed_day_gold_problems,
    freshness_failures,
    run_transitions,
    stale_symbol_problems,
)
from resources.alerting import Alert, AlertWebhook, WebhookDeliveryError

ALERT_SENSOR_NAME = "cryptolake_alerts"
FIRST_TICK_LOOKBACK = dt.timedelta(hours=24)
MAX_POSTS_PER_TICK = 10  # keeps a tick far below the 60 s sensor time limit
MAX_DELIVERY_TICKS = 5  # ticks an undeliverable alert is retried before it is dropped (logged)
MAX_OUTBOX = 50


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _asset_keys(context: SensorEvaluationContext) -> list[AssetKey]:
    repository = context.repository_def
    if repository is not None:
        return sorted(repository.asset_graph.materializable_asset_keys, key=lambda k: k.to_user_string())
    return list(context.instance.get_asset_keys())


def _blocking_by_check(context: SensorEvaluationContext) -> dict[AssetCheckKey, bool]:
    repository = context.repository_def
    if repository is None:
        return {}
    graph = repository.asset_graph
    return {key: graph.get_check_spec(key).blocking for key in graph.asset_check_keys}


def evaluate_alerts(context: SensorEvaluationContext, now: dt.datetime) -> tuple[list[Alert], AlertState]:
    """The alerts this tick produces and the next cursor state (nothing is delivered here)."""
    instance = context.instance
    state = AlertState.from_cursor(context.cursor)
    lookback = (now - FIRST_TICK_LOOKBACK).timestamp()
    keys = _asset_keys(context)
    blocking_by_check = _blocking_by_check(context)

    stale = stale_symbol_problems(instance, [k for k in keys if k in STALENESS_DEADLINES], now)
    closed = closed_day_gold_problems(instance, now) if DATE_LEVEL_GOLD in keys else []
    state_changes = apply_states(state, freshness_failures(instance, keys) + stale + closed, now)

    # Event cursors re-read a window behind them and skip what they reported (ids can commit out
    # of order on Postgres): see problems.IdWindow.
    windows = {name: state.window(name) for name in ("check", "run_failure", "run_success")}
    checks = check_transitions(instance, blocking_by_check, windows["check"], lookback, now.timestamp())
    runs = run_transitions(instance, windows["run_failure"], windows["run_success"], lookback, now.timestamp())
    for name, window in windows.items():
        state.set_window(name, window)
    event_changes = apply_transitions(state, checks + runs, now)

    changes = Changes(
        opened=state_changes.opened + event_changes.opened, closed=state_changes.closed + event_changes.closed
    )
    alerts = alerts_for(changes, now)
    if digest_due(now, state.digest_day):
        since = (
            dt.datetime.fromtimestamp(state.last_digest_at, dt.UTC)
            if state.last_digest_at
            else now - dt.timedelta(days=1)
        )
        alerts.append(
            build_digest(
                instance, keys, sorted(blocking_by_check, key=str), since, now, stale, open_problems=len(state.open)
            )
        )
        state.digest_day, state.last_digest_at = now.date().isoformat(), now.timestamp()
    return alerts, state


def deliver(context: SensorEvaluationContext, webhook: AlertWebhook, alerts: list[Alert], state: AlertState) -> int:
    """Post the outbox, then the new alerts; failures go (back) to the outbox. Returns posts made."""
    queue = state.outbox + [{"alert": alert.to_dict(), "attempts": 0} for alert in alerts]
    state.outbox = []
    if not webhook.configured:
        return 0
    delivered = 0
    blocked = False
    for item in queue:
        alert = Alert.from_dict(item["alert"])
        if blocked or delivered >= MAX_POSTS_PER_TICK:
            state.outbox.append(item)
            continue
        try:
            webhook.post(alert)
            delivered += 1
        except WebhookDeliveryError as exc:
            _requeue(context, state, item, str(exc))
            blocked = True  # the receiver is struggling: keep the rest for the next tick
        except Exception as exc:
            _requeue(context, state, item, f"unexpected {type(exc).__name__}")
            blocked = True
    if len(state.outbox) > MAX_OUTBOX:
        dropped = len(state.outbox) - MAX_OUTBOX
        context.log.error(f"alert outbox full: dropping the {dropped} oldest undelivered alerts")
        state.outbox = state.outbox[dropped:]
    return delivered


def _requeue(context: SensorEvaluationContext, state: AlertState, item: dict, reason: str) -> None:
    attempts = item["attempts"] + 1
    title = item["alert"]["title"]
    if attempts >= MAX_DELIVERY_TICKS:
        context.log.error(f"alert delivery failed ({reason}); giving up on '{title}' after {attempts} ticks")
        return
    context.log.warning(f"alert delivery failed ({reason}); '{title}' will be retried on the next tick")
    state.outbox.append({"alert": item["alert"], "attempts": attempts})


@sensor(
    name=ALERT_SENSOR_NAME,
    minimum_interval_seconds=60,
    default_status=default_sensor_status(),
    description=(
        "Alerts on freshness failures, stale symbols, failed blocking checks and failed runs (one per "
        "episode, plus 'resolved'), and a daily digest; posts to CRYPTOLAKE_ALERT_WEBHOOK_URL if set."
    ),
)
def alert_sensor(context: SensorEvaluationContext, alert_webhook: AlertWebhook) -> SensorResult:
    alerts, state = evaluate_alerts(context, utc_now())
    for alert in alerts:
        log = context.log.info if alert.status in ("resolved", "digest") else context.log.warning
        log(f"{alert.summary()}\n{alert.text}")
    delivered = deliver(context, alert_webhook, alerts, state)
    target = "webhook" if alert_webhook.configured else "log only (no CRYPTOLAKE_ALERT_WEBHOOK_URL)"
    summary = f"{len(alerts)} new alert(s), {delivered} posted, {len(state.outbox)} waiting; {len(state.open)} open problem(s); {target}"
    if alerts:
        summary += ": " + "; ".join(alert.summary() for alert in alerts)[:900]
    return SensorResult(skip_reason=summary, cursor=state.to_cursor())
