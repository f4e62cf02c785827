"""`vitalsd demo` on a newcomer's terminal (issue #14): short log lines, the banner after
the start-up lines once the dashboard answers; JSON lines when the output is a pipe."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

DEMO_ARGS = ("--port", "0", "--speed", "60")
# Guards against a hang, never timing assertions.
START_PATIENCE_S = 60.0
EXIT_PATIENCE_S = 30.0
TEXT_LINE = re.compile(r"^\d\d:\d\d:\d\d (?:WARNING |ERROR |CRITICAL |debug )?[\w.]+: ")
ROOT = Path(__file__).parents[2]


def _start(tmp_path: Path, **streams: int) -> subprocess.Popen[bytes]:
    environment = os.environ | {"VITALSD_DEMO_PASSWORD": "demo-test-password"}
    environment.pop("VITALSD_LOG_FORMAT", None)
    return subprocess.Popen(
        [sys.executable, "-m", "vitalsd.cli", "demo", *DEMO_ARGS, f"--data-dir={tmp_path}"],
        env=environment,
        cwd=ROOT,
        **streams,  # type: ignore[call-overload]
    )


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(EXIT_PATIENCE_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _read_terminal_until(master: int, marker: str) -> list[str]:
    """What the demo wrote on its terminal up to the line holding `marker`."""
    seen = b""
    deadline = time.monotonic() + START_PATIENCE_S
    while marker.encode() not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 1.0)
        if ready:
            try:
                seen += os.read(master, 65536)
            except OSError:  # the demo exited and closed the terminal
                break
    text = seen.decode(errors="replace").replace("\r\n", "\n")
    assert marker in text, f"no {marker!r} on the terminal; it showed:\n{text}"
    return text.split("\n")


def test_demo_on_a_terminal_logs_short_lines_and_prints_the_banner_last(tmp_path: Path) -> None:
    master, terminal = pty.openpty()
    process = _start(tmp_path, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal)
    os.close(terminal)
    try:
        lines = _read_terminal_until(master, "Ctrl-C stops it.")
    finally:
        _stop(process)
        os.close(master)
    banner_at = next(i for i, line in enumerate(lines) if "dashboard:" in line)
    before = [line for line in lines[: banner_at - 1] if line.strip()]
    assert before, "no log line before the banner"
    assert all(TEXT_LINE.match(line) for line in before), before
    assert not any(line.lstrip().startswith("{") for line in before)
    # The banner comes once the dashboard answers: after the server said where it is.
    assert any("serving at http://" in line for line in before)


def test_demo_piped_logs_json_lines(tmp_path: Path) -> None:
    log_path = tmp_path / "stderr.log"
    with log_path.open("wb") as log_file:  # a file, not a pipe: no pipe fills and stalls it
        process = _start(
            tmp_path / "data", stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_file
        )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + START_PATIENCE_S
        for line in process.stdout:
            if b"Ctrl-C stops it." in line or time.monotonic() > deadline:
                break
    finally:
        _stop(process)
    logged = [line for line in log_path.read_text().splitlines() if line.strip()]
    entries = [json.loads(line) for line in logged]
    assert entries and all({"at", "level", "logger", "message"} <= set(e) for e in entries)
    assert any(e["message"].startswith("serving at http://") for e in entries)
