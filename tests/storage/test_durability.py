"""A daemon killed with SIGKILL mid-burst loses no acknowledged reading, and after a
restart its open sessions, checks and active alerts are exactly what its committed
readings imply (a real subprocess on a real SQLite file)."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.storage import durability_child as child

ROOT = Path(__file__).resolve().parents[2]
BURST = 400


def run_child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.storage.durability_child", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )


def burst_then_kill(path: Path, start: int, kill_after: int, delay: float) -> list[int]:
    """Ingest from `start`, SIGKILL the daemon right after its `kill_after`-th
    acknowledgement (while it is inside the next ingest); return the acknowledged ids."""
    process = run_child("burst", str(path), str(start), str(BURST))
    assert process.stdout is not None
    acknowledged: list[int] = []
    for line in process.stdout:
        acknowledged.append(int(line))
        if len(acknowledged) == kill_after:
            time.sleep(delay)  # somewhere inside the next ingest or its commit
            process.send_signal(signal.SIGKILL)
            break
    process.wait(timeout=60)
    assert process.returncode == -signal.SIGKILL
    return acknowledged


def restarted_state(path: Path) -> dict[str, Any]:
    process = run_child("report", str(path))
    out, _ = process.communicate(timeout=120)
    assert process.returncode == 0
    return dict(json.loads(out))


async def expected_state(path: Path, ingests: int) -> dict[str, Any]:
    """The same setup and the same first `ingests` readings, in one uninterrupted run."""
    clock = child.FakeClock(child.T0)
    clinic = await child.open_clinic(str(path), clock)
    try:
        await child.setup(clinic, clock)
        for index in range(ingests):
            await child.ingest(clinic, clock, index)
        return await child.state(clinic)
    finally:
        await clinic.close()


async def stored_reading_ids(path: Path) -> set[int]:
    clinic = await child.open_clinic(str(path), child.FakeClock(child.T0))
    try:
        return {r.id for r in await clinic.list_readings(limit=100_000)}
    finally:
        await clinic.close()


@pytest.mark.slow
async def test_sigkill_during_ingest_burst_loses_no_acknowledged_reading(
    tmp_path: Path,
) -> None:
    database = tmp_path / "clinic.sqlite3"
    clock = child.FakeClock(child.T0)
    clinic = await child.open_clinic(str(database), clock)
    await child.setup(clinic, clock)
    await clinic.close()
    rng = random.Random(20250303)
    acknowledged: list[int] = []
    ingested = 0
    for _round in range(3):
        acked = burst_then_kill(
            database, ingested, kill_after=rng.randint(5, 40), delay=rng.uniform(0, 0.02)
        )
        acknowledged += acked
        stored = await stored_reading_ids(database)
        assert set(acknowledged) <= stored
        # Setup stored one reading; the rest are the burst's, in order, without holes.
        ingested = len(stored) - 1
        assert ingested >= len(acknowledged)
    after_restart = restarted_state(database)
    assert after_restart["alerts"], "the burst should leave alerts open"
    assert after_restart == await expected_state(tmp_path / "replay.sqlite3", ingested)
