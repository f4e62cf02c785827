"""`vitalsd user add`, `vitalsd serve` and the settings they read."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from vitalsd import cli
from vitalsd.auth import PasswordHasher
from vitalsd.clinic import Clinic
from vitalsd.daemon import configure_logging
from vitalsd.domain import Role
from vitalsd.settings import load_settings

BIN = Path(sys.executable).parent
# Guards against a hang, never timing assertions.
PATIENCE_S = 60.0


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "vitalsd.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\nport = 0\nble = "tcp-client:127.0.0.1:9"\n')
    return path


def add_user(
    config: Path, name: str, role: str, password: str, monkeypatch: pytest.MonkeyPatch
) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    return cli.main(
        ["user", "add", name, "--role", role, "--password-stdin", "--config", str(config)]
    )


def stored_user(config: Path, name: str) -> tuple[str, str]:
    async def look_up() -> tuple[str, str]:
        clinic = await Clinic.open(load_settings(config))
        try:
            user = await clinic.get_user(name)
            return user.role, user.password_hash
        finally:
            await clinic.close()

    return asyncio.run(look_up())


def test_user_add_stores_an_argon2_hash_of_the_password(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert add_user(config, "ana", "admin", "a long passphrase", monkeypatch) == 0
    role, password_hash = stored_user(config, "ana")
    assert role == "admin"
    assert PasswordHasher().verify("a long passphrase", password_hash)


def test_user_add_of_an_existing_name_fails_with_a_reason(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    add_user(config, "ana", "nurse", "a long passphrase", monkeypatch)
    assert add_user(config, "ana", "nurse", "another passphrase", monkeypatch) == 1
    assert "exists" in capsys.readouterr().err


def test_user_add_refuses_a_short_password(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert add_user(config, "ana", "nurse", "short", monkeypatch) == 1
    assert "at least 12" in capsys.readouterr().err


def test_user_add_refuses_an_unknown_role(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        cli.main(["user", "add", "ana", "--role", "janitor", "--password-stdin"])
    assert "invalid choice" in capsys.readouterr().err


def test_serve_with_a_bad_setting_says_which(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text("port = 70000\n")
    assert cli.main(["serve", "--config", str(config)]) == 2
    assert "port" in capsys.readouterr().err


def test_serve_reports_a_failed_radio_and_stops_cleanly_on_sigterm(config: Path) -> None:
    """No radio answers on the configured transport: the API still serves, `/healthz`
    says why Bluetooth is down, the first start says how to create the first admin,
    and SIGTERM ends the process with status 0."""
    process = subprocess.Popen(
        # `-m` from the checkout: the code under test, whichever the venv has installed.
        [sys.executable, "-m", "vitalsd.cli", "serve", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ | {"VITALSD_TOKEN_LIFETIME_MINUTES": "60"},
        cwd=Path(__file__).parents[2],
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.put(line)

    threading.Thread(target=read, daemon=True).start()
    seen: list[str] = []
    url = None
    try:
        deadline = time.monotonic() + PATIENCE_S
        while url is None and time.monotonic() < deadline and process.poll() is None:
            try:
                seen.append(lines.get(timeout=1.0))
            except queue.Empty:
                continue
            if seen[-1].startswith("{"):
                message = json.loads(seen[-1])["message"]
                if message.startswith("serving at "):
                    url = message.split()[2]
        assert url is not None, "".join(seen)
        # The details of /healthz are an admin's (issue #17): make the first one.
        asyncio.run(_create_admin(config))
        login = httpx.post(
            f"{url}api/auth/token", data={"username": "ana", "password": ADMIN_PASSWORD}
        )
        admin = {"Authorization": f"Bearer {login.json()['access_token']}"}
        health = httpx.get(f"{url}healthz", headers=admin)
        for _ in range(50):  # the radio fails in its own task, just after start
            if health.json()["ble"]["state"] == "failed":
                break
            time.sleep(0.1)
            health = httpx.get(f"{url}healthz", headers=admin)
        anyone = httpx.get(f"{url}healthz")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=PATIENCE_S) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert health.status_code == 200
    assert health.json()["database"]["ok"] is True
    assert health.json()["ble"]["state"] == "failed"
    assert anyone.json() == {"status": "ok"}  # no radio error strings for an outsider
    assert any("vitalsd user add NAME --role admin" in line for line in seen)


ADMIN_PASSWORD = "a long admin passphrase"


async def _create_admin(config: Path) -> None:
    clinic = await Clinic.open(load_settings(config))
    try:
        await clinic.create_user("ana", PasswordHasher().hash(ADMIN_PASSWORD), Role.ADMIN)
    finally:
        await clinic.close()


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    uvicorn_filters = logging.getLogger("uvicorn.error").filters[:]
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("uvicorn.error").filters[:] = uvicorn_filters


def test_logs_are_json_lines_off_a_terminal(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)
    logging.getLogger("vitalsd.test").warning("cuff %s gone", "D0:01")
    entry = json.loads(stream.getvalue().splitlines()[-1])
    assert (entry["level"], entry["logger"], entry["message"]) == (
        "warning",
        "vitalsd.test",
        "cuff D0:01 gone",
    )


def test_a_refused_websocket_is_not_logged_as_an_error(restore_logging: None) -> None:
    stream = io.StringIO()
    configure_logging(stream=stream)
    logging.getLogger("uvicorn.error").error("ASGI callable returned without completing handshake.")
    assert json.loads(stream.getvalue().splitlines()[-1])["level"] == "info"


def test_scan_without_a_radio_says_what_to_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["scan", "--ble", "tcp-client:127.0.0.1:9", "--duration", "1"]) == 1
    assert "simulator is listening" in capsys.readouterr().err


def test_scan_lists_a_simulated_cuff(capsys: pytest.CaptureFixture[str]) -> None:
    """`vitalsd scan` over HCI on TCP, against a `vitals-sim` cuff in another process."""
    port = free_port()
    simulator = subprocess.Popen(
        [BIN / "vitals-sim", "--scenario", "normotensive", "--hci", f"tcp-server:127.0.0.1:{port}"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert simulator.stdout is not None
        assert "ready" in simulator.stdout.readline()
        code = cli.main(["scan", "--ble", f"tcp-client:127.0.0.1:{port}", "--duration", "2"])
    finally:
        simulator.send_signal(signal.SIGTERM)
        simulator.wait(timeout=PATIENCE_S)
    assert code == 0
    assert "SIM-BP" in capsys.readouterr().out


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port
