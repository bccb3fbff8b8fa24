"""Where alerts go: a JSON webhook, Slack, e-mail or the Python log.

A channel is any object with ``send(alert)`` that raises when the alert was not taken; the
alert manager records that error on the alert and carries on with the other channels.
Secrets (Slack webhook URLs, SMTP passwords, header values) never appear in a channel's repr
or in the errors it raises.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

from loopml._version import __version__
from loopml.core.alerts import Alert
from loopml.core.jsonable import to_jsonable
from loopml.errors import InvalidArgument

__all__ = [
    "Channel",
    "EmailChannel",
    "LogChannel",
    "SlackChannel",
    "WebhookChannel",
    "alert_payload",
]

_SLACK_HEADER_MAX = 150
_SLACK_TEXT_MAX = 3000


@runtime_checkable
class Channel(Protocol):
    """Delivers one alert; raises if the receiver did not take it."""

    def send(self, alert: Alert) -> None: ...


def alert_payload(alert: Alert) -> dict[str, Any]:
    """The alert as the JSON object a webhook receives (every field but ``deliveries``)."""
    body: dict[str, Any] = to_jsonable(alert)
    body.pop("deliveries", None)
    return body


def _utc(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _check_url(url: object, what: str) -> str:
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        shown = url if not isinstance(url, str) else url.split("?", 1)[0][:60]
        raise InvalidArgument(f"invalid {what} {shown!r}: must be an http:// or https:// URL")
    return url


def _check_timeout(timeout_s: object) -> float:
    if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or timeout_s <= 0:
        raise InvalidArgument(f"invalid timeout_s {timeout_s!r}: must be a number of seconds > 0")
    return float(timeout_s)


def _post_json(
    url: str, body: object, headers: Mapping[str, str], timeout_s: float, shown: str
) -> None:
    """POST ``body`` as JSON; raise ``OSError`` naming ``shown`` unless the answer is 2xx."""
    import urllib.error
    import urllib.request

    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            "User-Agent": f"loopml/{__version__}",
            **headers,
        },
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read(200).decode(errors="replace").strip()
        raise OSError(
            f"{shown} answered HTTP {exc.code}" + (f": {detail}" if detail else "")
        ) from None
    except (urllib.error.URLError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise OSError(f"cannot reach {shown}: {reason}") from None


class WebhookChannel:
    """POSTs the alert as JSON (:func:`alert_payload`) to ``url``; any 2xx answer is success."""

    def __init__(
        self, url: str, headers: Mapping[str, str] | None = None, timeout_s: float = 5.0
    ) -> None:
        self.url = _check_url(url, "webhook url")
        if headers is not None and not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise InvalidArgument(
                f"invalid webhook headers for {url!r}: must map header names to string values"
            )
        self.headers = dict(headers or {})
        self.timeout_s = _check_timeout(timeout_s)

    def send(self, alert: Alert) -> None:
        shown = f"webhook {self.url.split('?', 1)[0]}"
        _post_json(self.url, alert_payload(alert), self.headers, self.timeout_s, shown)

    def __repr__(self) -> str:
        return f"WebhookChannel(url={self.url.split('?', 1)[0]!r}, headers=<{len(self.headers)}>)"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(alert: Alert) -> dict[str, Any]:
    """A Slack incoming-webhook message: ``text`` (the notification) and Block Kit ``blocks``."""
    icon = ":rotating_light:" if alert.severity == "critical" else ":warning:"
    title = f"{alert.severity.upper()}: {alert.model_name} / {alert.rule}"
    fields = {
        "Metric": f"`{_slack_escape(alert.metric)}`",
        "Value": f"{alert.value:.6g}",
        "Condition": _slack_escape(f"{alert.op} {alert.threshold:.6g}"),
        "Severity": alert.severity,
    }
    return {
        "text": f"{icon} {_slack_escape(title)}: {_slack_escape(alert.message)}"[:_SLACK_TEXT_MAX],
        "blocks": [
            {
                "type": "header",
                "text": {"type": "plain_text", "text": f"{title}"[:_SLACK_HEADER_MAX]},
            },
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": _slack_escape(alert.message)[:_SLACK_TEXT_MAX]},
            },
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{name}*\n{value}"[:2000]}
                    for name, value in fields.items()
                ],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": f"window end {_utc(alert.window_end_ms)} | alert {alert.alert_id}",
                    }
                ],
            },
        ],
    }


class SlackChannel:
    """Posts a Slack-compatible message (:func:`slack_payload`) to an incoming-webhook URL."""

    def __init__(self, webhook_url: str, timeout_s: float = 5.0) -> None:
        self.webhook_url = _check_url(webhook_url, "Slack webhook url")
        self.timeout_s = _check_timeout(timeout_s)

    def send(self, alert: Alert) -> None:
        # The URL is the secret: only its host is ever shown.
        host = self.webhook_url.split("/")[2]
        _post_json(
            self.webhook_url, slack_payload(alert), {}, self.timeout_s, f"Slack webhook on {host}"
        )

    def __repr__(self) -> str:
        return f"SlackChannel(webhook_url='https://{self.webhook_url.split('/')[2]}/...')"


def email_message(alert: Alert, sender: str, recipients: Sequence[str]) -> Any:
    """The plain-text ``email.message.EmailMessage`` an :class:`EmailChannel` sends."""
    from email.message import EmailMessage
    from email.utils import formatdate, make_msgid

    msg = EmailMessage()
    msg["Subject"] = f"[loopml {alert.severity.upper()}] {alert.model_name}: {alert.rule}"
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Date"] = formatdate(alert.fired_ms / 1000, usegmt=True)
    msg["Message-ID"] = make_msgid(idstring=alert.alert_id, domain="loopml")
    msg.set_content(
        f"{alert.message}\n\n"
        f"model:       {alert.model_name}\n"
        f"rule:        {alert.rule}\n"
        f"metric:      {alert.metric}\n"
        f"value:       {alert.value:.6g}\n"
        f"condition:   {alert.op} {alert.threshold:.6g}\n"
        f"severity:    {alert.severity}\n"
        f"window end:  {_utc(alert.window_end_ms)}\n"
        f"fired:       {_utc(alert.fired_ms)}\n"
        f"alert id:    {alert.alert_id}\n"
    )
    return msg


class EmailChannel:
    """Sends a plain-text e-mail through an SMTP server (``starttls``: upgrade the connection)."""

    def __init__(
        self,
        host: str,
        port: int,
        sender: str,
        recipients: Sequence[str],
        *,
        username: str | None = None,
        password: str | None = None,
        starttls: bool = False,
        timeout_s: float = 10.0,
    ) -> None:
        if not isinstance(host, str) or not host:
            raise InvalidArgument(f"invalid SMTP host {host!r}: must be a host name or address")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise InvalidArgument(f"invalid SMTP port {port!r}: must be an integer from 1 to 65535")
        if not isinstance(sender, str) or "@" not in sender:
            raise InvalidArgument(f"invalid e-mail sender {sender!r}: must be an address")
        if isinstance(recipients, str) or not recipients:
            raise InvalidArgument(
                f"invalid e-mail recipients {recipients!r}: must be a non-empty list of addresses"
            )
        bad = [r for r in recipients if not isinstance(r, str) or "@" not in r]
        if bad:
            raise InvalidArgument(f"invalid e-mail recipients {bad!r}: each must be an address")
        if (username is None) != (password is None):
            raise InvalidArgument("SMTP username and password go together: give both or neither")
        self.host = host
        self.port = port
        self.sender = sender
        self.recipients = tuple(recipients)
        self.username = username
        self.password = password
        self.starttls = bool(starttls)
        self.timeout_s = _check_timeout(timeout_s)

    def send(self, alert: Alert) -> None:
        import smtplib
        import ssl

        msg = email_message(alert, self.sender, self.recipients)
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username is not None and self.password is not None:
                smtp.login(self.username, self.password)
            smtp.send_message(msg, self.sender, list(self.recipients))

    def __repr__(self) -> str:
        return (
            f"EmailChannel(host={self.host!r}, port={self.port}, sender={self.sender!r}, "
            f"recipients={list(self.recipients)!r}, starttls={self.starttls})"
        )


class LogChannel:
    """Writes the alert to the Python log: WARNING for warnings, ERROR for critical alerts."""

    def __init__(self, logger: str = "loopml.alerts") -> None:
        self.logger = logger

    def send(self, alert: Alert) -> None:
        level = logging.ERROR if alert.severity == "critical" else logging.WARNING
        logging.getLogger(self.logger).log(
            level, "alert %s: %s", alert.alert_id, alert.message, extra={"alert": alert}
        )

    def __repr__(self) -> str:
        return f"LogChannel(logger={self.logger!r})"
