"""Alert delivery: a Slack-compatible incoming webhook, posted with httpx, retried with tenacity.

The URL comes from ``CRYPTOLAKE_ALERT_WEBHOOK_URL`` through a Dagster ``EnvVar``; without it the
resource is "not configured" and the alert sensor only logs. The URL is a secret (for Slack the path
*is* the credential), so it never appears in our messages, and a log filter redacts it from httpx's
own request log lines.
"""

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import httpx
from dagster import ConfigurableResource, EnvVar
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

WEBHOOK_URL_ENV_VAR = "CRYPTOLAKE_ALERT_WEBHOOK_URL"
REDACTED = "<alert-webhook-url>"
# Slack limits: header text 150 chars, section text 3000, at most 10 fields of 2000 chars.
_HEADER_MAX, _SECTION_MAX, _FIELDS_MAX, _FIELD_MAX = 150, 3000, 10, 2000
_STATUS_EMOJI = {"firing": ":red_circle:", "resolved": ":white_check_mark:", "digest": ":newspaper:"}


@dataclass(frozen=True)
class Alert:
    """One message: a problem firing, a problem resolved, or the daily digest."""

    status: str  # "firing" | "resolved" | "digest"
    kind: str  # "freshness" | "stale_symbols" | "check" | "run" | "digest"
    title: str
    text: str
    fields: dict[str, str] = field(default_factory=dict)
    problems: tuple[str, ...] = ()

    def summary(self) -> str:
        return f"[{self.status}] {self.title}"

    def to_payload(self) -> dict[str, Any]:
        """Slack-compatible body: ``text`` (fallback/notification), ``blocks``, and a machine-readable
        ``cryptolake`` object that Slack ignores and other receivers can parse."""
        emoji = _STATUS_EMOJI.get(self.status, "")
        blocks: list[dict[str, Any]] = [
            {"type": "header", "text": {"type": "plain_text", "text": _clip(self.title, _HEADER_MAX)}},
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(self.text, _SECTION_MAX)}},
        ]
        if self.fields:
            blocks.append(
                {
                    "type": "section",
                    "fields": [
                        {"type": "mrkdwn", "text": _clip(f"*{name}*\n{value}", _FIELD_MAX)}
                        for name, value in list(self.fields.items())[:_FIELDS_MAX]
                    ],
                }
            )
        return {
            "text": f"{emoji} {self.title}\n{self.text}".strip(),
            "blocks": blocks,
            "cryptolake": {
                "status": self.status,
                "kind": self.kind,
                "title": self.title,
                "fields": dict(self.fields),
                "problems": list(self.problems),
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "kind": self.kind,
            "title": self.title,
            "text": self.text,
            "fields": dict(self.fields),
            "problems": list(self.problems),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Alert":
        return cls(
            status=data["status"],
            kind=data["kind"],
            title=data["title"],
            text=data["text"],
            fields=dict(data.get("fields") or {}),
            problems=tuple(data.get("problems") or ()),
        )


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class WebhookDeliveryError(Exception):
    """Delivery failed after the allowed attempts. The message never contains the URL."""


class _TransientWebhookError(Exception):
    """A response worth retrying (HTTP 408, 429, 5xx); ``retry_after`` from the header, if any."""

    def __init__(self, status_code: int, retry_after: float | None):
        super().__init__(f"HTTP {status_code}")
        self.status_code = status_code
        self.retry_after = retry_after


class _RedactFilter(logging.Filter):
    """Replaces registered secrets in log records (httpx logs every request URL at INFO)."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(secret in message for secret in self.secrets):
            for secret in self.secrets:
                message = message.replace(secret, REDACTED)
            record.msg, record.args = message, ()
        return True


_REDACT = _RedactFilter()
for _name in ("httpx", "httpcore"):
    logging.getLogger(_name).addFilter(_REDACT)


def _is_transient(exc: BaseException) -> bool:
    return isinstance(exc, (_TransientWebhookError, httpx.TimeoutException, httpx.TransportError))


def _parse_retry_after(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: fall back to exponential backoff


class AlertWebhook(ConfigurableResource):
    """Posts alerts to a Slack-compatible incoming webhook; without a URL alerts stay in the log/UI.

    Retries timeouts, connection errors, HTTP 408/429/5xx up to ``max_attempts`` times with
    exponential backoff and jitter (honouring ``Retry-After``, capped by ``max_backoff_seconds``
    so a sensor tick stays well inside its time limit). Other 4xx answers are not retried here:
    the alert sensor keeps the alert and tries again on its next ticks.
    """

    webhook_url: str | None = None
    timeout_seconds: float = 5.0
    max_attempts: int = 3
    backoff_seconds: float = 1.0
    max_backoff_seconds: float = 8.0

    @classmethod
    def from_env(cls) -> "AlertWebhook":
        """The URL through ``EnvVar`` when ``CRYPTOLAKE_ALERT_WEBHOOK_URL`` is set, else log-only."""
        if os.environ.get(WEBHOOK_URL_ENV_VAR):
            return cls(webhook_url=EnvVar(WEBHOOK_URL_ENV_VAR))
        return cls()

    @property
    def configured(self) -> bool:
        return bool(self.webhook_url)

    def redact(self, text: str) -> str:
        return text.replace(self.webhook_url, REDACTED) if self.webhook_url else text

    def _wait(self, retry_state) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, _TransientWebhookError) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_backoff_seconds)
        backoff = wait_exponential_jitter(
            multiplier=self.backoff_seconds, max=self.max_backoff_seconds, jitter=self.backoff_seconds
        )
        return backoff(retry_state)

    def post(self, alert: Alert, transport: httpx.BaseTransport | None = None) -> int:
        """Deliver one alert; returns the number of attempts. Raises ``WebhookDeliveryError``."""
        if not self.webhook_url:
            raise WebhookDeliveryError("no alert webhook configured")
        _REDACT.secrets.add(self.webhook_url)
        payload = alert.to_payload()
        attempts = 0
        try:
            with httpx.Client(timeout=self.timeout_seconds, transport=transport) as client:
                for attempt in Retrying(
                    stop=stop_after_attempt(self.max_attempts),
                    wait=self._wait,
                    retry=retry_if_exception(_is_transient),
                    reraise=True,
                ):
                    with attempt:
                        attempts += 1
                        response = client.post(self.webhook_url, json=payload)
                        if response.status_code in (408, 429) or response.status_code >= 500:
                            raise _TransientWebhookError(
                                response.status_code, _parse_retry_after(response.headers.get("Retry-After"))
                            )
                        if response.status_code >= 400:
                            body = self.redact(response.text[:200])
                            raise WebhookDeliveryError(
                                f"alert webhook answered HTTP {response.status_code} ({body!r}); not retried now"
                            )
        except WebhookDeliveryError:
            raise
        except _TransientWebhookError as exc:
            raise WebhookDeliveryError(
                f"alert webhook answered HTTP {exc.status_code} on all {attempts} attempts"
            ) from None
        except httpx.HTTPError as exc:
            # httpx messages can carry the URL: report the exception type only.
            raise WebhookDeliveryError(
                f"alert webhook unreachable ({type(exc).__name__}) after {attempts} attempts"
            ) from None
        return attempts
