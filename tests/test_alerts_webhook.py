"""Alert delivery to a real HTTP server on 127.0.0.1.

Slack incoming webhooks answer 200 "ok", 400 "invalid_payload" for a malformed body, 429 with a
``Retry-After`` header when rate limited and 5xx on their own trouble. The webhook URL is a
credential (the path is the secret), and httpx logs every request URL at INFO: neither our errors
nor the captured logs may contain it.
"""

import logging

import pytest
from alert_webhook_receiver import SECRET_PATH, start_receiver
from dagster import EnvVar

from resources.alerting import REDACTED, WEBHOOK_URL_ENV_VAR, Alert, AlertWebhook, WebhookDeliveryError

ALERT = Alert(
    status="firing",
    kind="stale_symbols",
    title="Stale symbols: bronze/klines (1)",
    text="• BTCUSDT: 2024-07-02 missing (due 2024-07-03 01:00 UTC)",
    fields={"Asset": "bronze/klines", "Expected day": "2024-07-02", "Symbols": "BTCUSDT"},
    problems=("stale:bronze/klines:BTCUSDT",),
)


@pytest.fixture
def receiver():
    server, state = start_receiver()
    yield state
    server.shutdown()
    server.server_close()


def webhook(url: str, **overrides) -> AlertWebhook:
    settings = {"webhook_url": url, "timeout_seconds": 2.0, "max_attempts": 3, "backoff_seconds": 0.01} | overrides
    return AlertWebhook(**settings)


def test_payload_is_slack_compatible_with_structured_fields(receiver):
    assert webhook(receiver.url).post(ALERT) == 1

    [request] = receiver.received
    assert request.path == SECRET_PATH
    assert request.headers["Content-Type"] == "application/json"
    assert request.body == {
        "text": ":red_circle: Stale symbols: bronze/klines (1)\n• BTCUSDT: 2024-07-02 missing (due 2024-07-03 01:00 UTC)",
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Stale symbols: bronze/klines (1)"}},
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "• BTCUSDT: 2024-07-02 missing (due 2024-07-03 01:00 UTC)"},
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": "*Asset*\nbronze/klines"},
                    {"type": "mrkdwn", "text": "*Expected day*\n2024-07-02"},
                    {"type": "mrkdwn", "text": "*Symbols*\nBTCUSDT"},
                ],
            },
        ],
        "cryptolake": {
            "status": "firing",
            "kind": "stale_symbols",
            "title": "Stale symbols: bronze/klines (1)",
            "fields": {"Asset": "bronze/klines", "Expected day": "2024-07-02", "Symbols": "BTCUSDT"},
            "problems": ["stale:bronze/klines:BTCUSDT"],
        },
    }


def test_slack_limits_are_respected():
    long = Alert(
        status="digest", kind="digest", title="T" * 200, text="x" * 4000, fields={f"f{i}": "v" for i in range(12)}
    )
    payload = long.to_payload()
    assert len(payload["blocks"][0]["text"]["text"]) == 150
    assert len(payload["blocks"][1]["text"]["text"]) == 3000
    assert len(payload["blocks"][2]["fields"]) == 10


def test_server_error_then_success_is_retried(receiver):
    receiver.script = [(500, {}, 0.0)]

    assert webhook(receiver.url).post(ALERT) == 2

    assert len(receiver.received) == 2
    assert receiver.received[0].body == receiver.received[1].body


def test_rate_limit_honours_retry_after(receiver):
    receiver.script = [(429, {"Retry-After": "0"}, 0.0), (503, {}, 0.0)]

    assert webhook(receiver.url).post(ALERT) == 3


def test_retries_are_bounded_and_the_error_hides_the_url(receiver):
    receiver.script = [(500, {}, 0.0)] * 5

    with pytest.raises(WebhookDeliveryError) as error:
        webhook(receiver.url, max_attempts=3).post(ALERT)

    assert len(receiver.received) == 3
    assert str(error.value) == "alert webhook answered HTTP 500 on all 3 attempts"
    assert error.value.__cause__ is None and error.value.__suppress_context__


def test_client_error_is_not_retried_within_the_call(receiver):
    receiver.script = [(400, {}, 0.0)]

    with pytest.raises(WebhookDeliveryError, match=r"HTTP 400 \('invalid_payload'\)"):
        webhook(receiver.url).post(ALERT)

    assert len(receiver.received) == 1


def test_timeout_is_retried_then_reported_without_url(receiver, caplog):
    caplog.set_level(logging.DEBUG)
    receiver.script = [(200, {}, 1.0), (200, {}, 1.0)]

    with pytest.raises(WebhookDeliveryError) as error:
        webhook(receiver.url, timeout_seconds=0.2, max_attempts=2).post(ALERT)

    assert str(error.value) == "alert webhook unreachable (ReadTimeout) after 2 attempts"
    assert len(receiver.received) == 2
    assert SECRET_PATH not in caplog.text


def test_httpx_request_log_is_redacted(receiver, caplog):
    caplog.set_level(logging.DEBUG)

    webhook(receiver.url).post(ALERT)

    assert REDACTED in caplog.text  # httpx did log the request line...
    assert SECRET_PATH not in caplog.text  # ...without the secret


def test_url_comes_from_env_var(monkeypatch):
    monkeypatch.delenv(WEBHOOK_URL_ENV_VAR, raising=False)
    assert AlertWebhook.from_env().configured is False

    monkeypatch.setenv(WEBHOOK_URL_ENV_VAR, "http://127.0.0.1:9/hook")
    resource = AlertWebhook.from_env()
    # The config holds the EnvVar (its name, shown in the UI), resolved only when the resource is built.
    assert isinstance(resource.webhook_url, EnvVar) and resource.webhook_url.env_var_name == WEBHOOK_URL_ENV_VAR
    assert resource.process_config_and_initialize().webhook_url == "http://127.0.0.1:9/hook"
