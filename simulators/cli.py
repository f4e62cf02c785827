"""The `vitals-sim` command: run simulated blood-pressure cuffs."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitals-sim", description="Run simulated Bluetooth LE blood-pressure cuffs."
    )
    parser.add_argument("--scenario", default="clinic")
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--hci", help="Bumble transport, e.g. tcp-server:127.0.0.1:9100")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    build_parser().parse_args(argv)
    print("vitals-sim: not yet built (issue #3).", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
