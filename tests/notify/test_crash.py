"""A SIGKILL while a delivery is in flight: after the restart every due notification
goes out, and none twice (the receiver counts by `webhook-id`, as a Standard Webhooks
receiver drops a retried duplicate)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path

import httpx
import pytest

from tests.notify.daemon_process import DaemonProcess
from tests.notify.receiver import HELD, SECRET, WebhookReceiver
from vitalsd.auth import PasswordHasher
from vitalsd.clinic import Actor, Clinic
from vitalsd.domain import Role
from vitalsd.settings import load_settings

PASSWORD = "notify-test-Pa55word-long"
ADMIN = Actor("admin", Role.ADMIN)
PATIENCE_S = 60.0

pytestmark = pytest.mark.slow


def settings_file(directory: Path, receiver: WebhookReceiver) -> Path:
    path = directory / "vitalsd.toml"
    path.write_text(
        f"""
data_dir = "{directory / "data"}"
port = 0
# No radio here: the API and the notifier run, readings come in by hand.
ble = "tcp-client:127.0.0.1:9"
token_secret = "{"ab" * 32}"

[notify]
[[notify.channels]]
name = "ward"
kind = "webhook"
url = "{receiver.url}"
secret = "{SECRET}"

[[notify.rules]]
kinds = ["severe_hypertension"]
channels = ["ward"]
"""
    )
    return path


async def seed(config: Path) -> list[int]:
    """A nurse, two patients in session on two chairs; returns the session ids."""
    settings = load_settings(config)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    clinic = await Clinic.open(settings)
    try:
        hashed = PasswordHasher().hash(PASSWORD, "nurse")
        await clinic.create_user("nurse", hashed, Role.NURSE)
        sessions = []
        for number in (1, 2):
            patient = await clinic.create_patient(
                f"MRN-{number}", f"Pat Number{number}", date(1970, 1, number), by=ADMIN
            )
            chair = await clinic.create_chair(f"Chair {number}", by=ADMIN)
            started = await clinic.start_session(
                patient.id, chair.id, by=Actor("dr", Role.CLINICIAN)
            )
            sessions.append(started.id)
        return sessions
    finally:
        await clinic.close()


def login(url: str) -> dict[str, str]:
    answer = httpx.post(f"{url}api/auth/token", data={"username": "nurse", "password": PASSWORD})
    answer.raise_for_status()
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def severe_reading(url: str, auth: dict[str, str], session_id: int) -> None:
    answer = httpx.post(
        f"{url}api/sessions/{session_id}/readings",
        json={"systolic": 188, "diastolic": 114},
        headers=auth,
    )
    assert answer.status_code in (200, 201), answer.text


def receipt_states(url: str, auth: dict[str, str], alert_id: int) -> list[str]:
    answer = httpx.get(f"{url}api/alerts/{alert_id}/receipts", headers=auth)
    return [r["state"] for r in answer.json()]


def test_sigkill_mid_delivery_then_restart_sends_each_notification_once(
    tmp_path: Path,
) -> None:
    receiver = WebhookReceiver(hold_first=1, hold_s=5.0).start()
    config = settings_file(tmp_path, receiver)
    first, second = asyncio.run(seed(config))
    env = dict(os.environ)
    daemon = DaemonProcess("serve", f"--config={config}", env=env)
    try:
        auth = login(daemon.url)
        severe_reading(daemon.url, auth, first)
        # The first delivery is held by the receiver: in flight.
        assert receiver.wait_for(lambda r: any(d.status == HELD for d in r.deliveries), PATIENCE_S)
        severe_reading(daemon.url, auth, second)
        assert receiver.wait_for(lambda r: len(r.accepted()) == 1, PATIENCE_S)
        (sent,) = receiver.accepted()
        second_alert = sent.envelope["data"]["id"]
        # Its receipt is stored before the kill (else it would rightly go again).
        assert wait_until(lambda: receipt_states(daemon.url, auth, second_alert) == ["delivered"])
        daemon.kill()
        held = next(d for d in receiver.deliveries if d.status == HELD)
        daemon = DaemonProcess("serve", f"--config={config}", env=env)
        assert receiver.wait_for(
            lambda r: held.webhook_id in {d.webhook_id for d in r.accepted()}, PATIENCE_S
        )
        auth = login(daemon.url)
        first_alert = held.envelope["data"]["id"]
        assert wait_until(lambda: receipt_states(daemon.url, auth, first_alert) == ["delivered"])
    finally:
        daemon.kill()
        receiver.stop()
    counts = receiver.counts()
    assert counts == {held.webhook_id: 1, sent.webhook_id: 1}
    assert receiver.refused == []
    # One message per alert and recipient: no event went out under two ids.
    by_alert = {(d.envelope["data"]["id"], d.path): d.webhook_id for d in receiver.deliveries}
    assert len(by_alert) == 2


def wait_until(predicate: Callable[[], bool], timeout_s: float = PATIENCE_S) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False
