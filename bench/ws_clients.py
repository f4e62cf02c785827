"""Many WebSocket clients in one process: the other end of the fan-out and latency
benchmarks (issue #9: "with the clients in a second Python process").

Each client decodes every message (JSON, as a dashboard would) and records its `seq`
with the receive time on `time.monotonic()` (CLOCK_MONOTONIC: one clock for every process
on the machine, so the server's publish stamps and these receive stamps compare).

Protocol with the parent on stdin/stdout: prints `ready N` once N clients are connected
(and have read their first message when `--first` says one comes, e.g. the snapshot),
then runs until a line arrives on stdin (or stdin closes), and writes
`{"clients": [[[seq, t], ...], ...], "errors": [...]}` to `--out`, then prints `done`.

    python bench/ws_clients.py URL --clients 100 --out received.json [--first]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

# Connections opened at once: the server authenticates and snapshots each one.
CONNECT_CONCURRENCY = 20
CONNECT_TIMEOUT_S = 120.0
THIS_SCRIPT = str(Path(__file__).resolve())


class Client:
    """One connection and what it received."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.received: list[tuple[int | None, float]] = []
        self.error: str | None = None
        self.connection: ClientConnection | None = None

    async def open(self, first: bool) -> None:
        self.connection = await connect(
            self.url, max_size=None, open_timeout=CONNECT_TIMEOUT_S, ping_interval=None
        )
        if first:
            message = json.loads(await self.connection.recv())
            if message.get("type") != "snapshot":
                self.received.append((message.get("seq"), time.monotonic()))

    async def read(self) -> None:
        assert self.connection is not None
        try:
            async for raw in self.connection:
                now = time.monotonic()
                message: dict[str, Any] = json.loads(raw)
                self.received.append((message.get("seq"), now))
        except ConnectionClosed as closed:
            self.error = f"closed: {closed}"

    async def close(self) -> None:
        if self.connection is not None:
            await self.connection.close()


async def open_all(clients: Sequence[Client], first: bool) -> None:
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)

    async def one(client: Client) -> None:
        async with gate:
            await client.open(first)

    await asyncio.gather(*(one(c) for c in clients))


async def wait_for_stop_line() -> None:
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)


async def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--first", action="store_true", help="each client reads a snapshot first")
    args = parser.parse_args(argv)
    clients = [Client(args.url) for _ in range(args.clients)]
    await open_all(clients, args.first)
    readers = [asyncio.create_task(c.read()) for c in clients]
    print(f"ready {len(clients)}", flush=True)
    await wait_for_stop_line()
    for reader in readers:
        reader.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
    args.out.write_text(
        json.dumps(
            {
                "clients": [[[seq, t] for seq, t in c.received] for c in clients],
                "errors": [c.error for c in clients if c.error],
            }
        )
    )
    print("done", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))


Received = list[list[tuple[int | None, float]]]


class ClientFleet:
    """The parent's handle on a `ws_clients.py` process."""

    def __init__(self, url: str, clients: int, out: Path, *, first: bool) -> None:
        self.url = url
        self.clients = clients
        self.out = out
        self.first = first
        self.process: asyncio.subprocess.Process | None = None

    async def start(self, timeout_s: float = 900.0) -> None:
        command = [sys.executable, THIS_SCRIPT, self.url]
        command += ["--clients", str(self.clients), "--out", str(self.out)]
        if self.first:
            command.append("--first")
        self.process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
        )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), timeout_s)
        if not line.startswith(b"ready"):
            await self.process.wait()
            raise RuntimeError(f"client process failed to connect (exit {self.process.returncode})")

    async def stop(self, timeout_s: float = 120.0) -> tuple[Received, list[str]]:
        assert self.process is not None
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(b"stop\n")
        await self.process.stdin.drain()
        await asyncio.wait_for(self.process.stdout.readline(), timeout_s)
        await asyncio.wait_for(self.process.wait(), timeout_s)
        result = json.loads(self.out.read_text())
        received = [[(seq, t) for seq, t in client] for client in result["clients"]]
        return received, list(result["errors"])

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
