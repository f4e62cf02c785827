"""A private, throwaway PostgreSQL cluster on loopback for the storage tests.

Tests never touch a system database: each run initialises its own cluster in a temporary
directory from Debian's server binaries (installed by `make test` when missing) and removes
it afterwards. PostgreSQL refuses to run as root, so as root the cluster runs as `postgres`.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Sequence
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """The server binaries are missing: run `make test`, which installs them."""


def _server_bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).parent
    raise PostgresUnavailable(
        "PostgreSQL server binaries (pg_ctl) not found; `make test` installs the Debian "
        "package `postgresql` when it is missing"
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class PostgresCluster:
    """initdb + pg_ctl on a free loopback port; `database()` hands out fresh databases."""

    USER = "vitalsd"

    def __init__(self) -> None:
        self.bin_dir = _server_bin_dir()
        self.root = Path(tempfile.mkdtemp(prefix="vitalsd-pg-"))
        self.data_dir = self.root / "data"
        self.port = _free_port()
        self._as_postgres = os.geteuid() == 0

    def _run(self, argv: Sequence[str]) -> None:
        command = list(argv)
        if self._as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, timeout=120)

    def start(self) -> None:
        if self._as_postgres:
            shutil.chown(self.root, user="postgres")
        self._run(
            [
                str(self.bin_dir / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                self.USER,
                "-A",
                "trust",
                "--no-sync",
            ]
        )
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
            "-c max_connections=200"
        )
        self._run(
            [
                str(self.bin_dir / "pg_ctl"),
                "-D",
                str(self.data_dir),
                "-o",
                options,
                "-l",
                str(self.root / "server.log"),
                "-w",
                "start",
            ]
        )

    def stop(self) -> None:
        try:
            self._run(
                [str(self.bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-m", "immediate", "stop"]
            )
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://{self.USER}@127.0.0.1:{self.port}/{database}"

    def database(self) -> str:
        """Create an empty database and return its SQLAlchemy async URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        self._run(
            [
                str(self.bin_dir / "createdb"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                self.USER,
                name,
            ]
        )
        return self.url(name)
