"""`vitalsd demo` as a new user runs it: one command, a URL, six chairs reading, alerts,
and a clean exit on SIGTERM (issue #6, "The commands" and "Tests")."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.sync.client import connect

DEMO_ARGS = ("--port", "0", "--speed", "60")
PASSWORD = "demo-test-password"
# Guards against a hang, never timing assertions. The issue asks for "within a minute":
# on an idle two-core machine all six chairs have read within about 10 s at --speed 60;
# the guard leaves room for a machine shared with other test runs.
START_PATIENCE_S = 60.0
STREAM_PATIENCE_S = 120.0
EXIT_PATIENCE_S = 30.0


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    environment = os.environ | {"VITALSD_DEMO_PASSWORD": PASSWORD}
    process = subprocess.Popen(
        # `-m` from the checkout: the code under test, whichever the venv has installed.
        [sys.executable, "-m", "vitalsd.cli", "demo", *DEMO_ARGS, f"--data-dir={tmp_path}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=environment,
        cwd=Path(__file__).parents[2],
    )
    try:
        yield process, dashboard_url(process)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def dashboard_url(process: subprocess.Popen[str]) -> str:
    """The URL from the banner the demo prints when it is ready."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    deadline = time.monotonic() + START_PATIENCE_S
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1.0)
        except queue.Empty:
            if process.poll() is not None:
                break
            continue
        found = re.search(r"dashboard:\s+(http://\S+)", line)
        if found:
            return found.group(1)
    raise AssertionError(f"the demo printed no dashboard URL (exit code {process.poll()})")


def test_demo_serves_six_chairs_with_readings_and_alerts_and_stops_on_sigterm(
    demo: tuple[subprocess.Popen[str], str],
) -> None:
    process, url = demo
    assert httpx.get(url).status_code == 200
    login = httpx.post(f"{url}api/auth/token", data={"username": "nurse", "password": PASSWORD})
    token = login.json()["access_token"]
    chairs_reading: set[int] = set()
    alerts: list[dict[str, Any]] = []
    stream = url.replace("http://", "ws://") + f"ws?token={token}&since=0"
    deadline = time.monotonic() + STREAM_PATIENCE_S
    with connect(stream) as websocket:
        while (len(chairs_reading) < 6 or not alerts) and time.monotonic() < deadline:
            event = json.loads(websocket.recv(timeout=STREAM_PATIENCE_S))
            if event["type"] == "reading" and event["data"]["chair_id"] is not None:
                chairs_reading.add(event["data"]["chair_id"])
            elif event["type"] == "alert":
                alerts.append(event["data"])
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=EXIT_PATIENCE_S) == 0
    assert len(chairs_reading) == 6
    assert alerts
