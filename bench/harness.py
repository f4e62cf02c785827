"""What every benchmark shares: the machine it ran on, percentiles, and the "ours / floor"
line (issue #9: each benchmark measures its own floor in the same run and prints the
ratio, because these shared 2-core machines are noisy)."""

from __future__ import annotations

import contextlib
import math
import os
import platform
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def machine() -> str:
    """`nproc`, CPU model and memory, as `bench/RESULTS.md` records them."""
    model = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = "unknown memory"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
                break
    except OSError:
        pass
    python = platform.python_version()
    return f"nproc {os.cpu_count()}, {model}, {memory} RAM, Python {python} ({sys.platform})"


def percentile(values: Sequence[float], fraction: float) -> float:
    """Nearest-rank percentile (`fraction` in 0..1); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True)
class Latencies:
    """p50 / p99 / max of a set of latencies, in milliseconds."""

    count: int
    p50_ms: float
    p99_ms: float
    max_ms: float

    @classmethod
    def of_seconds(cls, seconds: Sequence[float]) -> Latencies:
        ms = [s * 1000.0 for s in seconds]
        return cls(len(ms), percentile(ms, 0.50), percentile(ms, 0.99), max(ms, default=math.nan))

    def __str__(self) -> str:
        return (
            f"n={self.count} p50={self.p50_ms:.2f} ms p99={self.p99_ms:.2f} ms "
            f"max={self.max_ms:.2f} ms"
        )


def ratio(ours: float, floor: float) -> float:
    return math.nan if floor == 0 or math.isnan(floor) else ours / floor


def verdict(ours_over_floor: float, target: float, *, higher_is_better: bool = False) -> str:
    """'meets' or 'misses' the issue's target for a ratio."""
    if math.isnan(ours_over_floor):
        return "no ratio"
    ok = ours_over_floor >= target if higher_is_better else ours_over_floor <= target
    sign = ">=" if higher_is_better else "<="
    return f"{'meets' if ok else 'MISSES'} target {sign} {target:g}"


def load() -> str:
    """The 1/5/15-minute load averages: other work on this shared machine skews absolute
    numbers (issue #9), so every result line set is printed with it."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def header(title: str, argv: Sequence[str]) -> None:
    print(f"== {title}")
    print(f"machine: {machine()}; {load()}")
    print(f"command: {' '.join(argv)}")
    sys.stdout.flush()


@contextlib.contextmanager
def profiled(output: Path | None) -> Iterator[None]:
    """pyinstrument around the block when `output` is given; its text report (call tree
    with wall time, async-aware) is written there."""
    if output is None:
        yield
        return
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.0005, async_mode="enabled")
    profiler.start()
    try:
        yield
    finally:
        profiler.stop()
        output.write_text(profiler.output_text(unicode=True, show_all=False))
        print(f"profile written to {output}")
