"""The `vitalsd` command: serve, demo, scan, user."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import logging
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from pydantic import ValidationError

from vitalsd.datadir import DataDirError
from vitalsd.domain import Role

if TYPE_CHECKING:
    from vitalsd.accounts import Account
    from vitalsd.auth import Actor
    from vitalsd.clinic import Clinic
    from vitalsd.settings import Settings

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vitalsd",
        description="Blood-pressure monitoring for ketamine and esketamine treatment sessions.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser(
        "serve",
        help="run the daemon and the API",
        description="Run the API, the cuff supervisor and the clinic's timers. Settings come "
        "from --config (TOML) and VITALSD_* environment variables.",
    )
    serve.add_argument("--config", type=Path, help="settings file (TOML)")

    demo = commands.add_parser(
        "demo",
        help="serve a simulated six-chair clinic",
        description="Start the daemon on an embedded SQLite database with six simulated cuffs "
        "on an in-process virtual radio, demo users (nurse, clinician, admin; password from "
        "VITALSD_DEMO_PASSWORD or random, printed) and patients in session. Runs until Ctrl-C.",
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--data-dir", type=Path, help="keep the database here (default: a new temporary directory)"
    )
    demo.add_argument(
        "--speed", type=float, default=30.0, help="simulated seconds per real second (default 30)"
    )
    demo.add_argument(
        "--config", type=Path, help="settings file (TOML), e.g. its [notify] alert channels"
    )

    scan = commands.add_parser("scan", help="list nearby blood-pressure cuffs")
    scan.add_argument("--config", type=Path, help="settings file (TOML)")
    scan.add_argument(
        "--ble", help="bluez, or a Bumble transport (e.g. usb:0, tcp-client:127.0.0.1:9100)"
    )
    scan.add_argument("--duration", type=float, default=5.0, help="seconds to listen (default 5)")

    user = commands.add_parser("user", help="manage user accounts")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    add = user_commands.add_parser(
        "add",
        help="create a user",
        description="Create a user. The password is asked twice on a terminal, or read from "
        "the first line of standard input with --password-stdin.",
    )
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[r.value for r in Role])
    add.add_argument("--config", type=Path, help="settings file (TOML)")
    add.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    listing = user_commands.add_parser("list", help="list users")
    listing.add_argument("--config", type=Path, help="settings file (TOML)")
    passwd = user_commands.add_parser(
        "passwd",
        help="set a user's password",
        description="Set (reset) a user's password: every token of the user ends and a "
        "lockout after failed logins is lifted. The password is asked twice on a terminal, "
        "or read from the first line of standard input with --password-stdin.",
    )
    passwd.add_argument("name")
    passwd.add_argument("--config", type=Path, help="settings file (TOML)")
    passwd.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    unlock = user_commands.add_parser(
        "unlock", help="let a user locked out after failed logins sign in again"
    )
    unlock.add_argument("name")
    unlock.add_argument("--config", type=Path, help="settings file (TOML)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "demo":
            return _demo(args)
        if args.command == "scan":
            return _scan(args)
        if args.command == "user" and args.user_command == "add":
            return _user_add(args, sys.stdin, sys.stdout)
        if args.command == "user" and args.user_command == "list":
            return _user_list(args, sys.stdout)
        if args.command == "user" and args.user_command == "passwd":
            return _user_passwd(args, sys.stdin, sys.stdout)
        if args.command == "user" and args.user_command == "unlock":
            return _user_unlock(args, sys.stdout)
    except DataDirError as error:
        print(f"vitalsd {args.command}: {error}", file=sys.stderr)
        return EXIT_FAILED
    except (ValidationError, FileNotFoundError, ValueError) as error:
        print(f"vitalsd {args.command}: {error}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    parser.error(f"unknown command {args.command}")
    return EXIT_USAGE  # not reached: parser.error exits


def _settings(config: Path | None, *, prepare: bool = True, **overrides: object):  # type: ignore[no-untyped-def]
    """The settings, with the data directory made ready (0700, writable: else a
    `DataDirError` naming the path and the cause, before any database is opened)."""
    from vitalsd.datadir import prepare_data_dir
    from vitalsd.settings import load_settings

    settings = load_settings(config, **overrides)
    if prepare:
        prepare_data_dir(settings)
    return settings


def _serve(args: argparse.Namespace) -> int:
    from vitalsd.daemon import configure_logging, serve

    settings = _settings(args.config)
    configure_logging(log_format=settings.log_format)
    asyncio.run(serve(settings))
    return EXIT_OK


def _demo(args: argparse.Namespace) -> int:
    from vitalsd.daemon import configure_logging
    from vitalsd.demo import run_demo
    from vitalsd.logformat import wants_json

    if not args.speed > 0:
        print("vitalsd demo: --speed must be above 0", file=sys.stderr)
        return EXIT_USAGE
    # The demo's own settings are built in run_demo; the log format comes from --config
    # or the environment (VITALSD_LOG_FORMAT) like any other setting.
    log_format = _settings(args.config, prepare=False).log_format
    configure_logging(log_format=log_format)
    if not wants_json(log_format, sys.stderr):
        # A person reads this terminal: the simulated cuffs' radio chatter and the
        # migrations would bury the banner; the daemon still logs what it sees.
        for chatty in ("simulators", "alembic", "httpx"):
            logging.getLogger(chatty).setLevel(logging.WARNING)
    asyncio.run(
        run_demo(
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            speed=args.speed,
            config=args.config,
        )
    )
    return EXIT_OK


def _scan(args: argparse.Namespace) -> int:
    from bleak.exc import BleakError

    from devices.scan import scan_cuffs
    from vitalsd.daemon import ble_spec

    ble = ble_spec(args.ble if args.ble else _settings(args.config, prepare=False).ble)
    try:
        cuffs = asyncio.run(scan_cuffs(ble, args.duration))
    except (BleakError, OSError) as error:
        print(f"vitalsd scan: {error}", file=sys.stderr)
        return EXIT_FAILED
    if not cuffs:
        print(f"no blood-pressure cuffs heard in {args.duration:g} s on {ble}")
        return EXIT_OK
    print(f"{'ADDRESS':<18} {'RSSI':>5}  {'NAME':<20} MODEL")
    for cuff in cuffs:
        model = " ".join(part for part in (cuff.manufacturer, cuff.model) if part) or "-"
        print(f"{cuff.address:<18} {cuff.rssi:>5}  {cuff.name or '-':<20} {model}")
    return EXIT_OK


def read_password(stdin: TextIO, *, from_stdin: bool) -> str:
    if from_stdin:
        return stdin.readline().rstrip("\r\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise ValueError("the passwords differ")
    return first


def _user_add(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    from vitalsd.accounts import valid_username
    from vitalsd.auth import PasswordHasher, WeakPassword
    from vitalsd.errors import InvalidInput

    try:
        valid_username(args.name)
    except InvalidInput as error:
        print(f"vitalsd user add: {error.reason}", file=sys.stderr)
        return EXIT_USAGE
    settings = _settings(args.config)
    password = read_password(stdin, from_stdin=args.password_stdin)
    try:
        password_hash = PasswordHasher().hash(password, args.name)
    except WeakPassword as error:
        print(f"vitalsd user add: {error}", file=sys.stderr)
        return EXIT_FAILED
    return asyncio.run(_create_user(settings, args.name, Role(args.role), password_hash, stdout))


async def _create_user(settings, name: str, role: Role, password_hash: str, stdout: TextIO) -> int:  # type: ignore[no-untyped-def]
    from vitalsd.clinic import Clinic
    from vitalsd.errors import DomainError

    clinic = await Clinic.open(settings)
    try:
        user = await clinic.create_user(name, password_hash, role)
    except DomainError as error:
        print(f"vitalsd user add: {error.reason}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        await clinic.close()
    print(f"created {user.role} {user.username!r}", file=stdout)
    return EXIT_OK


def _user_list(args: argparse.Namespace, stdout: TextIO) -> int:
    async def listing() -> int:
        from vitalsd.clinic import Clinic

        clinic = await Clinic.open(_settings(args.config))
        try:
            for user in await clinic.list_users():
                state = " (disabled)" if user.disabled else ""
                print(f"{user.username:<24} {user.role}{state}", file=stdout)
        finally:
            await clinic.close()
        return EXIT_OK

    return asyncio.run(listing())


def _user_passwd(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """`vitalsd user passwd NAME`: the admin's reset, from the server's command line (also
    the way back in when every admin forgot their password)."""
    from vitalsd.auth import PasswordHasher, WeakPassword

    settings = _settings(args.config)
    password = read_password(stdin, from_stdin=args.password_stdin)
    try:
        password_hash = PasswordHasher().hash(password, args.name)
    except WeakPassword as error:
        print(f"vitalsd user passwd: {error}", file=sys.stderr)
        return EXIT_FAILED

    return _account_change(
        settings,
        "passwd",
        lambda clinic, by: clinic.set_password(args.name, password_hash, by=by),
        "password of {name!r} set; their tokens have ended",
        stdout,
    )


def _user_unlock(args: argparse.Namespace, stdout: TextIO) -> int:
    return _account_change(
        _settings(args.config),
        "unlock",
        lambda clinic, by: clinic.unlock_user(args.name, by=by),
        "{name!r} may sign in again",
        stdout,
    )


def _account_change(
    settings: Settings,
    command: str,
    change: Callable[[Clinic, Actor], Awaitable[Account]],
    done: str,
    stdout: TextIO,
) -> int:
    """Run one account change as the server's own user (`cli:<login>`), audited as such."""

    async def changing() -> int:
        from vitalsd.clinic import SYSTEM_ACTOR, Actor, Clinic
        from vitalsd.errors import DomainError

        clinic = await Clinic.open(settings)
        try:
            account = await change(clinic, Actor(f"cli:{getpass.getuser()}", SYSTEM_ACTOR.role))
        except DomainError as error:
            print(f"vitalsd user {command}: {error.reason}", file=sys.stderr)
            return EXIT_FAILED
        finally:
            await clinic.close()
        print(done.format(name=account.username), file=stdout)
        return EXIT_OK

    return asyncio.run(changing())


if __name__ == "__main__":
    raise SystemExit(main())
