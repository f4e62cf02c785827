"""The data directory: private to the daemon's user, and a clear error when it cannot be
(issue #17, findings 10 and 11).

It holds patient data (the SQLite database and its WAL), password hashes and the token
secret: the directory is made 0700 and the database files 0600. SQLite creates its
`-wal` and `-shm` files with the permissions of the database file, so creating that file
0600 before SQLite opens it keeps all three private. A directory that cannot be created
or written is reported with its path and the cause, before any database is opened.
"""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from pathlib import Path
from typing import Final

from vitalsd.settings import Settings

DIRECTORY_MODE: Final = 0o700
FILE_MODE: Final = 0o600
SQLITE_SUFFIXES: Final = ("", "-wal", "-shm", "-journal")


class DataDirError(RuntimeError):
    """The data directory cannot be used; the message names it, the cause and the fix."""


def prepare_data_dir(settings: Settings) -> Path:
    """Create the data directory (0700) if needed, check that it is writable, tighten
    what it holds, and create the SQLite database file 0600 if it does not exist yet."""
    directory = settings.data_dir.expanduser()
    try:
        directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    except OSError as error:
        raise DataDirError(_explain(directory, "cannot be created", error)) from error
    if not directory.is_dir():
        raise DataDirError(f"data directory {directory} is not a directory")
    try:
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise DataDirError(_explain(directory, "is not writable", error)) from error
    _tighten(directory, DIRECTORY_MODE)
    database = sqlite_file(settings)
    if database is not None:
        if not database.exists():
            try:
                os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE))
            except FileExistsError:
                pass
            except OSError as error:
                raise DataDirError(_explain(database, "cannot be created", error)) from error
        for suffix in SQLITE_SUFFIXES:
            _tighten(Path(f"{database}{suffix}"), FILE_MODE)
    for name in ("token-secret", "vapid-private.pem"):  # the second: Web Push (#15)
        _tighten(directory / name, FILE_MODE)
    return directory


def sqlite_file(settings: Settings) -> Path | None:
    """The SQLite database file the settings name, if they name one."""
    url = settings.effective_database_url
    prefix = "sqlite+aiosqlite:///"
    if not url.startswith(prefix) or url == prefix or ":memory:" in url:
        return None
    return Path(url.removeprefix(prefix).split("?", 1)[0])


def _tighten(path: Path, mode: int) -> None:
    """Remove group and other permissions from a file or directory we own."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_uid != os.geteuid():
        return
    if stat.S_IMODE(info.st_mode) & 0o077:
        path.chmod(stat.S_IMODE(info.st_mode) & mode)


def _explain(path: Path, problem: str, error: OSError) -> str:
    cause = os.strerror(error.errno) if error.errno else str(error)
    hint = ""
    if error.errno in (errno.EACCES, errno.EPERM):
        hint = f"; give the daemon's user ({_user()}) write access, or set VITALSD_DATA_DIR"
    elif error.errno == errno.EROFS:
        hint = "; the file system is read-only: set VITALSD_DATA_DIR to a writable place"
    return f"data directory {path} {problem}: {cause}{hint}"


def _user() -> str:
    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError):
        return str(os.geteuid())
