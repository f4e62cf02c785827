"""`vitalsd serve` / `vitalsd demo` as subprocesses, as an operator runs them."""

from __future__ import annotations

import json
import queue
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).parents[2]
START_PATIENCE_S = 60.0


class DaemonProcess:
    """A daemon started with `args` (after `python -m vitalsd.cli`); its URL read from
    the demo's banner (stdout) or serve's "serving at" log line (stderr, JSON)."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "vitalsd.cli", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        for stream in (self.process.stdout, self.process.stderr):
            threading.Thread(target=self._read, args=(stream,), daemon=True).start()
        self.url = self._wait_url()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self.log.append(line)
            self.lines.put(line)

    def _wait_url(self) -> str:
        deadline = time.monotonic() + START_PATIENCE_S
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.5)
            except queue.Empty:
                if self.process.poll() is not None:
                    break
                continue
            found = re.search(r"dashboard:\s+(http://\S+)", line)
            if found:
                return found.group(1)
            if line.startswith("{"):
                message = json.loads(line).get("message", "")
                found = re.search(r"serving at (http://\S+)", message)
                if found:
                    return found.group(1)
        tail = "".join(self.log[-30:])
        raise AssertionError(f"the daemon printed no URL (exit {self.process.poll()}):\n{tail}")

    def kill(self) -> None:
        """SIGKILL: no shutdown, nothing flushed."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
