"""Daemon settings: defaults, then a TOML file, then `VITALSD_*` environment variables.

Durations carry their unit in the name (`*_minutes`); the `timedelta` properties are
what the code uses.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from limits import parse as parse_rate
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from vitalsd.notify.config import NotifySettings
from vitalsd.protocol import DEFAULT_PRESET


def default_data_dir() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "vitalsd"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VITALSD_", extra="forbid")

    data_dir: Path = Field(default_factory=default_data_dir)
    # Default: SQLite (WAL) in the data directory. For a clinic group:
    # postgresql+asyncpg://user:password@host/dbname
    database_url: str | None = None
    # Connections for readers (API requests, WebSocket snapshots); the cuffs' ingest has
    # its own connection and never waits for these.
    database_reader_pool_size: int = Field(default=5, ge=1)
    database_reader_max_overflow: int = Field(default=10, ge=0)
    # Several daemons behind a pooler in transaction mode (PgBouncer `pool_mode =
    # transaction`, `?prepared_statement_cache_size=0` on database_url): LISTEN/NOTIFY and
    # the timer leader's advisory lock need a session of their own, so give a direct (or
    # session-mode) address here. Default: database_url. README "Running several daemons".
    database_session_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    # Bluetooth transport for the cuffs: "bluez" (the host's adapter) or a Bumble
    # transport name (e.g. "usb:0", "tcp-client:127.0.0.1:9000").
    ble: str = "bluez"
    # A protocol preset name or the path of a clinic's protocol file (TOML).
    protocol: str = DEFAULT_PRESET
    # DESIGN.md "Alerts": an unacknowledged high-priority alert escalates after 2 minutes.
    escalation_delay_minutes: float = Field(default=2.0, gt=0)
    max_snooze_minutes: float = Field(default=30.0, gt=0)
    # A chair with an open session and no reading this long is marked stale.
    stale_after_minutes: float = Field(default=30.0, gt=0)
    # How the log reads (issue #14): "auto" is short lines on a terminal, JSON anywhere
    # else; "json" or "text" forces one.
    log_format: Literal["auto", "json", "text"] = "auto"
    tls_cert: Path | None = None
    tls_key: Path | None = None
    token_secret: SecretStr | None = None
    token_lifetime_minutes: float = Field(default=480.0, gt=0)
    # -- security (issue #17; SECURITY.md) --
    # Proxies whose X-Forwarded-Proto / X-Forwarded-For are believed (uvicorn's
    # `forwarded_allow_ips`: comma-separated addresses or networks, "*" for any). Unset:
    # no proxy is trusted. Behind a TLS-terminating proxy, list it here, so the session
    # cookie is `Secure` and logins are throttled per real client address.
    forwarded_allow_ips: str | None = None
    # Origins besides the dashboard's own allowed to make state-changing requests and to
    # open `/ws` from a browser (e.g. "https://nurses.clinic.example").
    allowed_origins: list[str] = Field(default_factory=list)
    # Swagger UI at /docs (it loads its script from a CDN): off unless asked for.
    api_docs: bool = False
    # `/healthz` details (database, radio, streams) for anyone, not only a signed-in
    # admin: for a monitor on a trusted network that cannot sign in.
    public_health_details: bool = False
    # Login throttling: attempts per client address, failed attempts per username (the
    # `limits` library's notation), and failures in a row that lock an account until an
    # admin unlocks it.
    login_rate_per_address: str = "30/minute"
    login_failure_rate_per_user: str = "5/minute"
    login_lockout_failures: int = Field(default=10, ge=1)
    # Open `/ws` streams one user may hold (shared tablets share a ward account).
    max_streams_per_user: int = Field(default=64, ge=1)
    # `/ws?token=` for scripted clients that cannot send a header: off by default (a URL
    # is logged by proxies; browsers use the cookie or a one-time `?ticket=`, scripts the
    # `Authorization` header); our own logs redact it when it is switched on.
    ws_token_in_url: bool = False
    # The clinic's time zone (IANA name): ages, day boundaries and times people read
    # (DESIGN.md "Time"). Stored times stay UTC.
    timezone: str = "UTC"
    # -- technical alarms (issue #15; README "Technical alarms") --
    # Sessions open and no dashboard connected this long: a high `nobody_watching` alert.
    nobody_watching_after_seconds: int = Field(default=60, ge=1)
    # A chair-in-session's cuff not heard from this long: `cuff_offline`. Longer than
    # the tightest check interval (10 min during an infusion) plus a reading's slack,
    # shorter than `stale_after_minutes`, so the cause shows before the stale chair. 0: off.
    cuff_silent_after_minutes: float = Field(default=20.0, ge=0)
    # Alerts beyond the dashboard (issue #15): channels, escalation rules, receipts
    # (`vitalsd.notify.config`; README "Getting alerts on your phone").
    notify: NotifySettings = Field(default_factory=NotifySettings)
    # The site this daemon belongs to (issue #16, README "Running several daemons"): its
    # chairs, its timers and its event stream (numbered per site). One clinic: "default".
    site: str = Field(default="default", pattern=r"^[A-Za-z0-9_.-]{1,64}$")

    @field_validator("database_url", "database_session_url")
    @classmethod
    def _known_driver(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(
            ("sqlite+aiosqlite://", "postgresql+asyncpg://")
        ):
            raise ValueError(
                "database_url must start with sqlite+aiosqlite:// or postgresql+asyncpg://"
            )
        return value

    @field_validator("login_rate_per_address", "login_failure_rate_per_user")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse_rate(value)
        except ValueError as error:
            raise ValueError(f"{value!r} is not a rate like '5/minute': {error}") from None
        return value

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone must be an IANA time zone name like 'America/New_York', got {value!r}"
            ) from None
        return value

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        for origin in value:
            if not origin.startswith(("http://", "https://")) or origin.count("/") != 2:
                raise ValueError(f"an origin is scheme://host[:port], got {origin!r}")
        return [origin.lower() for origin in value]

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @property
    def effective_database_url(self) -> str:
        if self.database_url is not None:
            return self.database_url
        return f"sqlite+aiosqlite:///{self.data_dir / 'vitalsd.sqlite3'}"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def escalation_delay(self) -> timedelta:
        return timedelta(minutes=self.escalation_delay_minutes)

    @property
    def max_snooze(self) -> timedelta:
        return timedelta(minutes=self.max_snooze_minutes)

    @property
    def nobody_watching_after(self) -> timedelta:
        return timedelta(seconds=self.nobody_watching_after_seconds)

    @property
    def cuff_silent_after(self) -> timedelta | None:
        """None: the silent-cuff rule is off."""
        if self.cuff_silent_after_minutes == 0:
            return None
        return timedelta(minutes=self.cuff_silent_after_minutes)

    @property
    def stale_after(self) -> timedelta:
        return timedelta(minutes=self.stale_after_minutes)

    @property
    def token_lifetime(self) -> timedelta:
        return timedelta(minutes=self.token_lifetime_minutes)


def load_settings(config_file: Path | str | None = None, **overrides: object) -> Settings:
    """Settings from `config_file` (TOML, optional) and the environment; `overrides`
    (e.g. from command-line options) win over both."""
    if config_file is None:
        return Settings(**overrides)  # type: ignore[arg-type]
    path = Path(config_file)
    if not path.is_file():
        raise FileNotFoundError(f"settings file not found: {path}")

    class FileSettings(Settings):
        model_config = SettingsConfigDict(toml_file=path)

    return FileSettings(**overrides)  # type: ignore[arg-type]
