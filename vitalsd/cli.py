"""The `vitalsd` command: serve, demo, scan, user."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitalsd",
        description="Blood-pressure monitoring for ketamine and esketamine treatment sessions.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the daemon and the API")
    serve.add_argument("--config", help="settings file (TOML)")
    demo = commands.add_parser("demo", help="serve a simulated six-chair clinic")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument("--data-dir")
    demo.add_argument("--speed", type=float, default=30.0)
    commands.add_parser("scan", help="list nearby blood-pressure cuffs")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "demo":
        print(
            "vitalsd demo will start the daemon on an embedded SQLite database, a simulated\n"
            "clinic of six chairs (Bumble cuffs on a virtual radio) and the dashboard at\n"
            f"http://{args.host}:{args.port}/ . Not built yet: see issues #3-#7."
        )
        return 0
    print(f"vitalsd {args.command}: not yet built.", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
