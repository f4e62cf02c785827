"""Settings: defaults, then the TOML file, then VITALSD_* variables, then overrides."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from vitalsd.settings import Settings, load_settings


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "vitalsd.toml"
    path.write_text('port = 9000\nprotocol = "iv-infusion"\nescalation_delay_minutes = 3\n')
    return path


def test_defaults_are_the_design_numbers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    settings = load_settings()
    assert (settings.escalation_delay, settings.protocol, settings.ble) == (
        timedelta(minutes=2),
        "ketamine-psychotherapy",
        "bluez",
    )
    assert settings.effective_database_url == (
        f"sqlite+aiosqlite:///{tmp_path / 'vitalsd' / 'vitalsd.sqlite3'}"
    )


def test_file_values_apply(config: Path) -> None:
    settings = load_settings(config)
    assert (settings.port, settings.protocol, settings.escalation_delay) == (
        9000,
        "iv-infusion",
        timedelta(minutes=3),
    )


def test_environment_wins_over_the_file(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITALSD_PORT", "9100")
    assert load_settings(config).port == 9100


def test_overrides_win_over_everything(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VITALSD_PORT", "9100")
    assert load_settings(config, port=1234).port == 1234


def test_unknown_key_in_the_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("escalation_minutes = 2\n")
    with pytest.raises(ValidationError, match="escalation_minutes"):
        load_settings(path)


def test_database_url_needs_an_async_driver() -> None:
    with pytest.raises(ValidationError, match="postgresql\\+asyncpg"):
        load_settings(database_url="postgresql://clinic@db/vitalsd")


def test_missing_settings_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_settings(tmp_path / "absent.toml")


def test_low_finding_the_clinics_time_zone_is_an_iana_name_defaulting_to_utc() -> None:
    """Issue #13, low finding: setting `timezone` (ages and day boundaries are local)."""
    assert Settings().zone == ZoneInfo("UTC")
    assert Settings(timezone="America/New_York").zone == ZoneInfo("America/New_York")
    with pytest.raises(ValidationError, match="IANA time zone"):
        Settings(timezone="Mars/Olympus_Mons")
