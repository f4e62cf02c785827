"""Issue #15's done-when check: `vitalsd demo --config FILE` with a webhook channel to
a local receiver. A severe reading reaches the receiver, signed, right behind the alert
event (the delay is measured and printed, not asserted); left unacknowledged it reaches
the second tier after the configured minutes; acknowledged, nothing more is sent for it
(unless it worsens, which the safety rules sound again)."""

from __future__ import annotations

import json
import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

from tests.notify.daemon_process import DaemonProcess
from tests.notify.receiver import SECRET, Delivery, WebhookReceiver

PASSWORD = "demo-test-password"
SECOND_TIER_MINUTES = 3  # clinic minutes: 3 real seconds at --speed 60
PATIENCE_S = 180.0

pytestmark = pytest.mark.slow


def config(path: Path, receiver: WebhookReceiver) -> Path:
    path.write_text(
        f"""
[notify]
[[notify.channels]]
name = "ward"
kind = "webhook"
url = "{receiver.url}"
secret = "{SECRET}"

[[notify.channels]]
name = "oncall"
kind = "webhook"
url = "{receiver.url}/oncall"
secret = "{SECRET}"

[[notify.rules]]
kinds = ["severe_hypertension"]
channels = ["ward"]

[[notify.rules]]
kinds = ["severe_hypertension"]
channels = ["oncall"]
after_minutes = {SECOND_TIER_MINUTES}
"""
    )
    return path


def of_alert(receiver: WebhookReceiver, alert_id: int, path: str) -> list[Delivery]:
    return [
        d
        for d in receiver.accepted()
        if d.path == path and d.envelope["data"].get("id") == alert_id
    ]


def test_demo_alert_reaches_the_webhook_escalates_and_stops_when_acknowledged(
    tmp_path: Path,
) -> None:
    receiver = WebhookReceiver().start()
    settings = config(tmp_path / "notify.toml", receiver)
    env = os.environ | {"VITALSD_DEMO_PASSWORD": PASSWORD}
    demo = DaemonProcess(
        "demo",
        "--port=0",
        "--speed=60",
        f"--data-dir={tmp_path / 'data'}",
        f"--config={settings}",
        env=env,
    )
    try:
        url = demo.url
        login = httpx.post(f"{url}api/auth/token", data={"username": "nurse", "password": PASSWORD})
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}
        stream = url.replace("http://", "ws://") + "ws?since=0"
        deadline = time.monotonic() + PATIENCE_S
        alert: dict[str, Any] | None = None
        with connect(stream, additional_headers=auth) as websocket:
            while alert is None and time.monotonic() < deadline:
                event = json.loads(websocket.recv(timeout=PATIENCE_S))
                if event["type"] == "alert" and event["data"]["kind"] == "severe_hypertension":
                    alert, seen_at = event["data"], time.monotonic()
            assert alert is not None, "no severe alert in the demo"
            alert_id = alert["id"]
            assert receiver.wait_for(lambda r: of_alert(r, alert_id, "/hook"), PATIENCE_S)
            first = of_alert(receiver, alert_id, "/hook")[0]
            delay = first.received_at - seen_at
            print(f"\nwebhook behind the /ws alert event: {delay * 1000:.0f} ms (issue: < 2 s)")
            assert first.envelope["type"] == "alert"
            assert first.webhook_id == f"{alert_id}:raised:0:ward"
            # Unacknowledged: the second tier after its minutes.
            assert receiver.wait_for(lambda r: of_alert(r, alert_id, "/hook/oncall"), PATIENCE_S)
            acked = httpx.post(f"{url}api/alerts/{alert_id}/acknowledge", headers=auth)
            assert acked.status_code == 200, acked.text
            acked_at = datetime.fromisoformat(acked.json()["acknowledged_at"])
            count_at_ack = len(receiver.accepted())
            # Let clinic time run well past the next re-notification and tier times.
            worsened = False
            ack_seq: int | None = None
            quiet_until = acked_at + timedelta(minutes=2 * SECOND_TIER_MINUTES + 2)
            while time.monotonic() < deadline:
                event = json.loads(websocket.recv(timeout=PATIENCE_S))
                data = event["data"]
                if event["type"] == "alert_updated" and data.get("id") == alert_id:
                    if data.get("reason") == "acknowledged" and ack_seq is None:
                        ack_seq = event["seq"]
                    worsened = worsened or data.get("reason") == "worsened"
                if datetime.fromisoformat(event["at"]) >= quiet_until:
                    break
        receipts = httpx.get(f"{url}api/alerts/{alert_id}/receipts", headers=auth).json()
    finally:
        demo.kill()
        receiver.stop()
    assert receiver.refused == []
    assert any("alerts to:  ward (webhook), oncall (webhook)" in line for line in demo.log)
    after_ack = [
        d for d in receiver.accepted()[count_at_ack:] if d.envelope["data"].get("id") == alert_id
    ]
    print(f"after the acknowledgement: {[d.webhook_id for d in after_ack]} (worsened: {worsened})")
    # Nothing more from the acknowledged state; a worsening after it sounds again (its
    # own generation of the chain, carrying the later event).
    assert ack_seq is not None
    if not worsened:
        assert after_ack == []
    assert all(d.envelope["seq"] > ack_seq for d in after_ack)
    first_generation = [r for r in receipts if r["key"].split(":")[1] in ("raised", "escalated")]
    assert [r["state"] for r in first_generation] == ["acknowledged", "acknowledged"]
