"""Issue #17, findings 5, 9, 10 and 11 replayed from the command line: `vitalsd user
passwd` and `unlock`, the password policy, and a data directory that is private and
says clearly when it cannot be used."""

from __future__ import annotations

import asyncio
import io
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.cli.test_commands import PATIENCE_S, add_user
from vitalsd import cli
from vitalsd.auth import PasswordHasher
from vitalsd.clinic import Clinic
from vitalsd.datadir import DataDirError, prepare_data_dir
from vitalsd.settings import Settings, load_settings


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "vitalsd.toml"
    path.write_text(f'data_dir = "{tmp_path / "data"}"\nport = 0\nble = "tcp-client:127.0.0.1:9"\n')
    return path


def run(config: Path, monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = "") -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    return cli.main([*argv, "--config", str(config)])


def account(config: Path, name: str) -> tuple[str, int, bool]:
    async def look_up() -> tuple[str, int, bool]:
        clinic = await Clinic.open(load_settings(config))
        try:
            user = await clinic.get_user(name)
            found = await clinic.get_account(name)
            return user.password_hash, found.token_version, found.locked
        finally:
            await clinic.close()

    return asyncio.run(look_up())


def test_user_passwd_sets_a_new_password_and_ends_the_users_tokens(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert add_user(config, "ana", "nurse", "a long passphrase", monkeypatch) == 0
    _hash, version, _locked = account(config, "ana")
    new = "another long passphrase"
    assert run(config, monkeypatch, "user", "passwd", "ANA", "--password-stdin", stdin=new) == 0
    password_hash, new_version, _locked = account(config, "ana")
    assert PasswordHasher().verify(new, password_hash)
    assert new_version == version + 1
    assert "tokens have ended" in capsys.readouterr().out


def test_user_passwd_refuses_a_common_password(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    add_user(config, "ana", "nurse", "a long passphrase", monkeypatch)
    code = run(
        config, monkeypatch, "user", "passwd", "ana", "--password-stdin", stdin="password1234"
    )
    assert code == 1
    assert "common passwords" in capsys.readouterr().err


def test_user_passwd_of_nobody_fails_with_a_reason(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = run(
        config,
        monkeypatch,
        "user",
        "passwd",
        "ghost",
        "--password-stdin",
        stdin="x" * 6 + "yz12345",
    )
    assert code == 1
    assert "no user" in capsys.readouterr().err


@pytest.mark.parametrize("password", ["password", "12345678", "        "])
def test_user_add_refuses_the_passwords_the_review_got_through(
    config: Path, monkeypatch: pytest.MonkeyPatch, password: str
) -> None:
    assert add_user(config, "ana", "nurse", password, monkeypatch) == 1


def test_user_add_refuses_a_name_differing_only_in_case(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert add_user(config, "nurse", "nurse", "a long passphrase", monkeypatch) == 0
    assert add_user(config, "Nurse", "nurse", "a long passphrase", monkeypatch) == 1
    assert "exists" in capsys.readouterr().err


def test_user_unlock_lifts_a_lockout(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    add_user(config, "ana", "nurse", "a long passphrase", monkeypatch)

    async def lock() -> None:
        clinic = await Clinic.open(load_settings(config))
        try:
            for _ in range(3):
                await clinic.record_login("ana", address="10.1.1.1", succeeded=False, lock_after=3)
        finally:
            await clinic.close()

    asyncio.run(lock())
    assert account(config, "ana")[2] is True
    assert run(config, monkeypatch, "user", "unlock", "ana") == 0
    assert account(config, "ana")[2] is False


def test_the_data_directory_and_database_are_private(
    config: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    add_user(config, "ana", "nurse", "a long passphrase", monkeypatch)
    data = tmp_path / "data"
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    for path in data.iterdir():
        if path.name.startswith("vitalsd.sqlite3"):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path.name


def test_an_existing_world_readable_data_directory_is_tightened(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir(mode=0o755)
    database = data / "vitalsd.sqlite3"
    database.touch(mode=0o644)
    database.chmod(0o644)
    Path(f"{database}-wal").touch()
    Path(f"{database}-wal").chmod(0o644)
    prepare_data_dir(Settings(data_dir=data))
    assert stat.S_IMODE(data.stat().st_mode) == 0o700
    assert stat.S_IMODE(database.stat().st_mode) == 0o600
    assert stat.S_IMODE(Path(f"{database}-wal").stat().st_mode) == 0o600


def test_an_unusable_data_directory_names_the_path_and_the_cause(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(DataDirError) as error:
        prepare_data_dir(Settings(data_dir=blocker / "data"))
    message = str(error.value)
    assert str(blocker / "data") in message
    assert "Not a directory" in message


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_data_directory_says_it_is_not_writable(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o500)
    try:
        with pytest.raises(DataDirError, match="is not writable: Permission denied"):
            prepare_data_dir(Settings(data_dir=data))
    finally:
        data.chmod(0o700)


def test_serve_with_an_unusable_data_directory_exits_with_one_clear_line(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    config = tmp_path / "vitalsd.toml"
    config.write_text(f'data_dir = "{blocker / "data"}"\nport = 0\n')
    result = subprocess.run(
        [sys.executable, "-m", "vitalsd.cli", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=PATIENCE_S,
        cwd=Path(__file__).parents[2],
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1
    assert str(blocker / "data") in lines[0] and "Not a directory" in lines[0]
