"""Alert delivery to a webhook (issue #15): from a simulated cuff's Measurement
indication to a signed webhook receiver getting the `alert` envelope, against the same
alerts' `/ws` latency in the same run (bench/latency.py measures that one).

The daemon of bench/latency.py (50 cuffs, one in five severe, the bench nurse resolving
each severe alert half a second after it is raised) with one webhook channel for
`severe_hypertension`; the receiver is a real HTTP server (tests/notify/receiver.py, in a
process of its own) that verifies each signature with `standardwebhooks`. `/ws`
clients run in a second process as in bench/latency.py. Every time is CLOCK_MONOTONIC.
Reported: p99 indication -> webhook and indication -> `/ws` client, their ratio, and
the notifier's own share (alert event published -> webhook received).

    .venv/bin/python bench/notify.py [--cuffs 50] [--clients 10] [--seconds 60] [--rate 1]
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import asyncio
import json
import logging
import shutil
import subprocess
import tempfile
from collections.abc import Sequence

from pydantic import SecretStr

from bench.harness import Latencies, header, load, ratio
from bench.latency import (
    SEVERE_EVERY,
    SPEED,
    WANTED,
    drive_measurements,
    indication_stamps,
    latencies_by_type,
    running_daemon,
    warm_up,
)
from bench.ws_clients import ClientFleet
from tests.notify.receiver import SECRET, Delivery
from vitalsd.notify.config import ChannelSettings, NotifySettings, RuleSettings


def notify_settings(receiver: ReceiverProcess) -> NotifySettings:
    return NotifySettings(
        channels=[
            ChannelSettings(
                name="bench", kind="webhook", url=receiver.url, secret=SecretStr(SECRET)
            )
        ],
        rules=[RuleSettings(kinds=["severe_hypertension"], channels=["bench"])],
    )


class ReceiverProcess:
    """tests/notify/receiver.py in a process of its own, as the `/ws` clients are: the
    daemon's event loop and the receiver's threads do not share a GIL."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.notify.receiver", str(out)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        assert self.process.stdout is not None
        self.url = self.process.stdout.readline().strip()
        self.deliveries: list[Delivery] = []
        self.refused: list[str] = []

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)
        for line in self.out.read_text().splitlines():
            entry = json.loads(line)
            if "refused" in entry:
                self.refused.append(entry["refused"])
            else:
                self.deliveries.append(Delivery(**entry))

    def accepted(self) -> list[Delivery]:
        return [d for d in self.deliveries if 200 <= d.status < 300]


async def measure(cuffs: int, clients: int, rate: float, seconds: float) -> list[str]:
    scratch = Path(tempfile.mkdtemp(prefix="vitalsd-notify-bench-"))
    receiver = ReceiverProcess(scratch / "received.jsonl")
    try:
        async with running_daemon(cuffs, notify=notify_settings(receiver)) as daemon:
            await warm_up(daemon, timeout_s=120 + 3 * cuffs)
            fleet = ClientFleet(daemon.url, clients, scratch / "ours.json", first=True)
            await fleet.start()
            try:
                await asyncio.sleep(2.0)
                since_seq = max((seq for _, _, seq in daemon.capture.groups), default=0)
                await drive_measurements(daemon.cuffs, rate, seconds)
                await asyncio.sleep(2.0)
                received, errors = await fleet.stop()
            finally:
                fleet.kill()
            receiver.stop()
            _reading, ws_alert = latencies_by_type(received, daemon, since_seq)
            stamps = indication_stamps(daemon)
            capture = daemon.capture
            published = {seq: at for at, _text, seq in capture.groups}
            to_webhook: list[float] = []
            notifier_share: list[float] = []
            alerts = [s for s in capture.alert_seq if s > since_seq]
            delivered = {
                d.envelope["seq"]: d.received_at
                for d in receiver.accepted()
                if d.envelope.get("type") == "alert"
            }
            for seq in alerts:
                at = delivered.get(seq)
                reading = capture.alert_seq[seq]
                if at is None or reading not in stamps:
                    continue
                to_webhook.append(at - stamps[reading])
                notifier_share.append(at - published[seq])
            webhook = Latencies.of_seconds(to_webhook)
            share = Latencies.of_seconds(notifier_share)
            missing = len([s for s in alerts if s not in delivered])
    finally:
        if receiver.process.poll() is None:
            receiver.process.kill()
        shutil.rmtree(scratch, ignore_errors=True)
    label = f"{cuffs} cuffs / {clients} clients"
    lines = [
        f"({load()})",
        f"notify {label}: /ws alert   {ws_alert}"
        + (f"; {len(errors)} client(s) closed" if errors else ""),
        f"notify {label}: webhook     {webhook}",
        f"notify {label}: (alert event published -> webhook received: {share})",
        f"notify {label}: webhook p99 / /ws alert p99: {ratio(webhook.p99_ms, ws_alert.p99_ms):.2f}"
        f"; severe alerts {len(alerts)}, not delivered before the bench nurse resolved them: "
        f"{missing}; signatures refused: {len(receiver.refused)}",
    ]
    for line in lines:
        print(line, flush=True)
    return lines


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cuffs", type=int, default=50)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rate", type=float, default=1.0, help="measurements started per s")
    return parser.parse_args(argv)


async def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    header("alert delivery to a webhook (issue #15)", ["bench/notify.py", *argv])
    print(
        f"speed {SPEED:g}, {args.rate:g} measurements/s for {args.seconds:g} s, 1 cuff in "
        f"{SEVERE_EVERY} severe; /ws clients ?types={WANTED} in a second process; the webhook "
        "receiver in a third"
    )
    await measure(args.cuffs, args.clients, args.rate, args.seconds)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main(sys.argv[1:])))
