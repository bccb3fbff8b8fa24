"""Alert rules, channels and the manager, against real receivers and real stores."""

from __future__ import annotations

import dataclasses
import json
import logging
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from loopml.core.alerts import Alert
from loopml.errors import InvalidArgument, NotFound
from loopml.monitoring.alerts import (
    AlertManager,
    AlertRule,
    EmailChannel,
    LogChannel,
    SlackChannel,
    WebhookChannel,
    alert_payload,
    load_rules,
)
from loopml.store.base import MetadataStore
from loopml.store.sql import SqlStore

HOUR_MS = 3_600_000
T0 = 1_700_000_000_000


class Receiver:
    """An HTTP server on loopback that records every POST and answers with ``status``."""

    def __init__(self, status: int = 200) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = status
        received = self.requests
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(
                    {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
                )
                self.send_response(owner.status)
                self.end_headers()
                self.wfile.write(b"receiver says no" if owner.status >= 300 else b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _closed_url() -> str:
    return f"http://127.0.0.1:{_free_port()}/hook"  # nothing listens there


def _rule(**params: Any) -> AlertRule:
    defaults: dict[str, Any] = {"op": ">=", "threshold": 0.5, "channels": ("log",)}
    return AlertRule("drift-share", "drift.share", **{**defaults, **params})


# -- channels ----------------------------------------------------------------------------------


def test_webhook_receives_the_alert_as_json(store: MetadataStore, receiver: Receiver) -> None:
    hook = WebhookChannel(f"{receiver.url}/alerts", headers={"Authorization": "Bearer t0ken"})
    manager = AlertManager(store, [_rule(channels=("ops",), severity="critical")], {"ops": hook})

    [alert] = manager.evaluate("churn", {"drift.share": 0.75}, window_end_ms=T0)

    [request] = receiver.requests
    assert request["path"] == "/alerts"
    assert request["headers"]["Authorization"] == "Bearer t0ken"
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["json"] == {
        "alert_id": alert.alert_id,
        "model_name": "churn",
        "rule": "drift-share",
        "metric": "drift.share",
        "value": 0.75,
        "threshold": 0.5,
        "op": ">=",
        "severity": "critical",
        "fired_ms": alert.fired_ms,
        "window_end_ms": T0,
        "message": "churn: drift.share = 0.75, >= 0.5 (rule 'drift-share', critical)",
    }
    assert alert.deliveries == {"ops": "ok"}
    assert store.list_alerts("churn") == [alert]


def test_slack_gets_text_and_blocks(store: MetadataStore, receiver: Receiver) -> None:
    slack = SlackChannel(f"{receiver.url}/services/T000/B000/secret")
    rule = AlertRule("acc<low>", "performance.accuracy", op="<", threshold=0.8, channels=("slack",))
    with pytest.raises(InvalidArgument, match="rule name 'acc<low>'"):
        AlertManager(store, [rule], {"slack": slack})
    rule = AlertRule("acc-low", "performance.accuracy", op="<", threshold=0.8, channels=["slack"])
    manager = AlertManager(store, [rule], {"slack": slack})

    [alert] = manager.evaluate("churn&co", {"performance.accuracy": 0.71}, window_end_ms=T0)

    [request] = receiver.requests
    assert request["path"] == "/services/T000/B000/secret"
    payload = request["json"]
    assert set(payload) == {"text", "blocks"}
    assert payload["text"].startswith(":warning: WARNING: churn&amp;co / acc-low: ")
    assert "0.71, &lt; 0.8" in payload["text"]
    assert [b["type"] for b in payload["blocks"]] == ["header", "section", "section", "context"]
    assert payload["blocks"][0]["text"] == {
        "type": "plain_text",
        "text": "WARNING: churn&co / acc-low",
    }
    fields = [f["text"] for f in payload["blocks"][2]["fields"]]
    assert fields == [
        "*Metric*\n`performance.accuracy`",
        "*Value*\n0.71",
        "*Condition*\n&lt; 0.8",
        "*Severity*\nwarning",
    ]
    assert alert.alert_id in payload["blocks"][3]["elements"][0]["text"]
    assert "secret" not in repr(slack)


def test_email_reaches_a_real_smtp_server(store: MetadataStore) -> None:
    from aiosmtpd.controller import Controller

    class Inbox:
        def __init__(self) -> None:
            self.envelopes: list[Any] = []

        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            self.envelopes.append(envelope)
            return "250 OK"

    inbox = Inbox()
    port = _free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        mail = EmailChannel("127.0.0.1", port, "loopml@example.com", ["ops@example.com"])
        manager = AlertManager(store, [_rule(channels=("mail",))], {"mail": mail})
        [alert] = manager.evaluate("churn", {"drift.share": 0.6}, window_end_ms=T0)
    finally:
        controller.stop()

    [envelope] = inbox.envelopes
    assert envelope.mail_from == "loopml@example.com"
    assert envelope.rcpt_tos == ["ops@example.com"]
    message = message_from_bytes(envelope.content)
    assert message["Subject"] == "[loopml WARNING] churn: drift-share"
    assert message["To"] == "ops@example.com"
    assert message.get_content_type() == "text/plain"
    body = message.get_payload(decode=True).decode()
    assert body.startswith(alert.message)
    assert "metric:      drift.share" in body
    assert f"alert id:    {alert.alert_id}" in body
    assert alert.deliveries == {"mail": "ok"}


def test_log_channel_writes_critical_alerts_as_errors(
    store: MetadataStore, caplog: pytest.LogCaptureFixture
) -> None:
    manager = AlertManager(store, [_rule(severity="critical")])
    with caplog.at_level(logging.WARNING, logger="loopml.alerts"):
        [alert] = manager.evaluate("churn", {"drift.share": 0.9}, window_end_ms=T0)
    [record] = [r for r in caplog.records if r.name == "loopml.alerts"]
    assert record.levelno == logging.ERROR
    assert alert.alert_id in record.getMessage()
    assert record.alert == dataclasses.replace(alert, deliveries={})


def test_a_failing_channel_is_recorded_and_the_others_still_deliver(
    store: MetadataStore, receiver: Receiver
) -> None:
    with Receiver(status=503) as refusing:
        channels = {
            "down": WebhookChannel(_closed_url(), timeout_s=2),
            "refuses": WebhookChannel(f"{refusing.url}/x?token=hidden"),
            "ops": WebhookChannel(f"{receiver.url}/ok"),
        }
        rule = _rule(channels=("down", "refuses", "ops", "log"))
        manager = AlertManager(store, [rule], channels)
        [alert] = manager.evaluate("churn", {"drift.share": 0.6}, window_end_ms=T0)

    assert alert.deliveries["down"].startswith("OSError: cannot reach webhook http://127.0.0.1:")
    assert alert.deliveries["refuses"] == (
        f"OSError: webhook {refusing.url}/x answered HTTP 503: receiver says no"
    )
    assert alert.deliveries["ops"] == "ok"
    assert alert.deliveries["log"] == "ok"
    assert not alert.delivered
    assert [r["path"] for r in refusing.requests] == ["/x?token=hidden"]
    assert [r["json"]["alert_id"] for r in receiver.requests] == [alert.alert_id]
    assert store.list_alerts() == [alert]


# -- firing logic --------------------------------------------------------------------------------


def _fires(manager: AlertManager, value: float, at_ms: int) -> bool:
    return bool(manager.evaluate("churn", {"drift.share": value}, window_end_ms=at_ms))


def test_a_breach_fires_once_until_the_cooldown_passes(store: MetadataStore) -> None:
    manager = AlertManager(store, [_rule(cooldown_s=3600)])
    assert _fires(manager, 0.6, T0)
    assert not _fires(manager, 0.7, T0 + 60_000)  # still breached: deduplicated
    assert not _fires(manager, 0.1, T0 + 120_000)  # recovered
    assert not _fires(manager, 0.8, T0 + 180_000)  # breached again within the cooldown
    assert _fires(manager, 0.8, T0 + HOUR_MS + 1)  # after the cooldown
    assert not _fires(manager, 0.9, T0 + HOUR_MS + 60_000)
    assert _fires(manager, 0.9, T0 + 2 * HOUR_MS + 1)  # still breached: a reminder per cooldown
    assert [a.window_end_ms for a in store.list_alerts("churn")] == [
        T0 + 2 * HOUR_MS + 1,
        T0 + HOUR_MS + 1,
        T0,
    ]


def test_a_rule_needs_consecutive_breached_windows(store: MetadataStore) -> None:
    manager = AlertManager(store, [_rule(windows=3, cooldown_s=0)])
    values = [0.6, 0.7, 0.2, 0.6, 0.6, 0.6, 0.6]
    fired = [_fires(manager, v, T0 + i * 60_000) for i, v in enumerate(values)]
    assert fired == [False, False, False, False, False, True, True]
    [_latest, first] = store.list_alerts()
    assert "for 3 consecutive windows" in first.message
    assert first.window_end_ms == T0 + 5 * 60_000


def test_state_survives_a_restart(store_uri: str) -> None:
    rule = _rule(windows=2, cooldown_s=3600)
    with SqlStore.from_uri(store_uri) as first:
        assert not _fires(AlertManager(first, [rule]), 0.6, T0)
    with SqlStore.from_uri(store_uri) as second:
        manager = AlertManager(second, [rule])
        assert _fires(manager, 0.6, T0 + 60_000)  # second consecutive breach
    with SqlStore.from_uri(store_uri) as third:
        manager = AlertManager(third, [rule])
        assert not _fires(manager, 0.6, T0 + 120_000)  # the cooldown was remembered
        assert len(third.list_alerts("churn")) == 1


def test_a_window_already_evaluated_is_not_counted_again(store: MetadataStore) -> None:
    manager = AlertManager(store, [_rule(windows=2)])
    assert not _fires(manager, 0.6, T0)
    assert not _fires(manager, 0.6, T0)  # a replay of the same window
    assert not _fires(manager, 0.6, T0 - 1)  # an older window
    assert store.get_alert_states("churn")["drift-share"].breaches == 1
    assert _fires(manager, 0.6, T0 + 1)


def test_missing_and_nan_metrics_leave_the_rule_alone(store: MetadataStore) -> None:
    manager = AlertManager(store, [_rule(windows=2)])
    assert not _fires(manager, 0.6, T0)
    assert manager.evaluate("churn", {"other.metric": 1.0}, window_end_ms=T0 + 1) == []
    assert not _fires(manager, float("nan"), T0 + 2)
    assert _fires(manager, 0.6, T0 + 3)  # the two breaches are still consecutive


def test_rules_are_kept_apart_by_model_and_rule(store: MetadataStore) -> None:
    rules = [
        _rule(),
        AlertRule("dataset", "drift.dataset", op="==", threshold=1, severity="critical"),
        AlertRule("acc", "performance.accuracy", op="<", threshold=0.8),
    ]
    manager = AlertManager(store, rules)
    values = {"drift.share": 0.6, "drift.dataset": True, "performance.accuracy": 0.9}
    fired = manager.evaluate("churn", values, window_end_ms=T0)
    assert sorted(a.rule for a in fired) == ["dataset", "drift-share"]
    assert [a.rule for a in manager.evaluate("fraud", values, window_end_ms=T0 + 1)] == [
        "drift-share",
        "dataset",
    ]
    assert {a.model_name for a in store.list_alerts(rule="dataset")} == {"churn", "fraud"}


def test_a_non_numeric_metric_value_names_the_metric(store: MetadataStore) -> None:
    manager = AlertManager(store, [_rule()])
    with pytest.raises(InvalidArgument, match=r"'high' for metric 'drift\.share'"):
        manager.evaluate("churn", {"drift.share": "high"}, window_end_ms=T0)  # type: ignore[dict-item]


# -- rule validation and configuration files -------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"op": "=>"}, "invalid comparison '=>': must be one of '>', '>='"),
        ({"threshold": float("nan")}, "threshold of rule 'drift-share'"),
        ({"threshold": "0.5"}, "must be a number"),
        ({"windows": 0}, "invalid windows 0 of rule 'drift-share': must be an integer >= 1"),
        ({"cooldown_s": -1}, "invalid cooldown_s -1"),
        ({"severity": "page"}, "invalid severity 'page': must be one of 'warning', 'critical'"),
        ({"channels": "log"}, "must be a non-empty list of channel names"),
        ({"channels": ("pager",)}, r"unknown channels \['pager'\]: defined channels are \['log'\]"),
    ],
)
def test_a_bad_rule_is_refused_with_the_valid_choices(
    store: MetadataStore, params: dict[str, Any], message: str
) -> None:
    rule = _rule(**params)  # __init__ only stores
    assert rule.get_params()["name"] == "drift-share"
    with pytest.raises(InvalidArgument, match=message):
        AlertManager(store, [rule])


def test_two_rules_cannot_share_a_name(store: MetadataStore) -> None:
    with pytest.raises(InvalidArgument, match="two rules are named 'drift-share'"):
        AlertManager(store, [_rule(), _rule(threshold=0.9)])


def test_rules_and_channels_load_from_yaml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPS_TOKEN", "s3cret")
    path = tmp_path / "alerts.yaml"
    path.write_text(
        """
channels:
  ops:
    type: webhook
    url: https://hooks.example.com/loopml
    headers: {Authorization: "Bearer ${OPS_TOKEN}"}
  team: {type: slack, webhook_url: "https://hooks.slack.com/services/T/B/X"}
  mail:
    type: email
    host: smtp.example.com
    port: 587
    sender: loopml@example.com
    recipients: [ops@example.com]
    starttls: true
rules:
  - {name: drift-share, metric: drift.share, op: ">=", threshold: 0.5, windows: 2,
     severity: critical, channels: [ops, team, log]}
  - {name: accuracy, metric: performance.accuracy, op: "<", threshold: 0.8, channels: [mail]}
"""
    )
    config = load_rules(path)
    assert config.rules == (
        AlertRule(
            "drift-share",
            "drift.share",
            op=">=",
            threshold=0.5,
            windows=2,
            severity="critical",
            channels=("ops", "team", "log"),
        ),
        AlertRule("accuracy", "performance.accuracy", op="<", threshold=0.8, channels=("mail",)),
    )
    ops = config.channels["ops"]
    assert isinstance(ops, WebhookChannel)
    assert ops.headers == {"Authorization": "Bearer s3cret"}
    assert isinstance(config.channels["team"], SlackChannel)
    mail = config.channels["mail"]
    assert isinstance(mail, EmailChannel)
    assert (mail.port, mail.recipients, mail.starttls) == (587, ("ops@example.com",), True)


def test_rules_load_from_json_and_drive_a_manager(tmp_path: Path, store: MetadataStore) -> None:
    path = tmp_path / "alerts.json"
    spec = {"rules": [{"name": "share", "metric": "drift.share", "threshold": 0.3}]}
    path.write_text(json.dumps(spec))
    manager = AlertManager.from_file(store, path)
    assert isinstance(manager.channels["log"], LogChannel)
    [alert] = manager.evaluate("churn", {"drift.share": 0.31}, window_end_ms=T0)
    assert (alert.op, alert.severity, alert.deliveries) == (">", "warning", {"log": "ok"})


@pytest.mark.parametrize(
    ("name", "text", "error", "message"),
    [
        ("rules.toml", "", InvalidArgument, r"must end in \.yaml, \.yml or \.json"),
        ("missing.yaml", None, NotFound, "not found"),
        ("bad.json", "{", InvalidArgument, "not valid JSON"),
        ("bad.yaml", "rules: [", InvalidArgument, "not valid YAML"),
        ("keys.yaml", "rules: []\nalerts: 1", InvalidArgument, r"unknown keys \['alerts'\]"),
        ("empty.yaml", "rules: []", InvalidArgument, "non-empty list of rules"),
        (
            "nothr.yaml",
            "rules: [{name: a, metric: m}]",
            InvalidArgument,
            r"rules\[0\] lacks threshold",
        ),
        (
            "op.yaml",
            "rules: [{name: a, metric: m, threshold: 1, op: '!='}]",
            InvalidArgument,
            r"rules\[0\]: invalid comparison '!='",
        ),
        (
            "chan.yaml",
            "channels: {x: {type: pager}}\nrules: [{name: a, metric: m, threshold: 1}]",
            InvalidArgument,
            "channel 'x' has type 'pager': must be one of webhook, slack, email, log",
        ),
        (
            "env.yaml",
            "channels: {x: {type: slack, webhook_url: '${NO_SUCH_VAR_HERE}'}}\n"
            "rules: [{name: a, metric: m, threshold: 1}]",
            InvalidArgument,
            "environment variable NO_SUCH_VAR_HERE is not set",
        ),
        (
            "unknown.yaml",
            "rules: [{name: a, metric: m, threshold: 1, channels: [ops]}]",
            InvalidArgument,
            r"unknown channels \['ops'\]",
        ),
    ],
)
def test_a_bad_rules_file_says_what_is_wrong(
    tmp_path: Path, name: str, text: str | None, error: type[Exception], message: str
) -> None:
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    with pytest.raises(error, match=message):
        load_rules(path)


def test_the_webhook_payload_is_plain_json() -> None:
    alert = Alert(
        alert_id="a" * 32,
        model_name="m",
        rule="r",
        metric="x",
        value=float("inf"),
        threshold=1.0,
        op=">",
        severity="warning",
        fired_ms=2,
        window_end_ms=1,
        message="m: x = inf",
        deliveries={"log": "ok"},
    )
    payload = alert_payload(alert)
    assert payload["value"] == "Infinity"
    assert "deliveries" not in payload
    json.dumps(payload, allow_nan=False)
