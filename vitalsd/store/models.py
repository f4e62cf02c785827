"""The database schema (SQLAlchemy 2.0 ORM). Alembic migrations in `vitalsd/migrations`
create it; these classes must match them (a test compares the two).

Times are stored as UTC (`UTCDateTime`); readings, the audit log and events are
append-only (triggers in the migration refuse UPDATE and DELETE).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# GSS 3.31.2.5: user id 0xFF is "unknown user"; a cuff reading without one is stored so.
UNKNOWN_CUFF_USER = 255
# A cuff's own identity of a record (`Reading.cuff_key`), opaque text from the link.
CUFF_KEY_LENGTH = 128


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out; naive UTC text in SQLite, timestamptz in PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: JSON,
        list[str]: JSON,
    }


# The site of a single-site clinic, and of everything stored before sites (issue #16).
DEFAULT_SITE = "default"


class EventCounter(Base):
    """One row per site: the last event sequence number handed out in that site's stream
    (gapless within it, see `store.events`); writers at different sites never queue on
    each other's row."""

    __tablename__ = "event_counter"
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, nullable=False)


class EventRow(Base):
    """A stored event: numbered gaplessly within its site's stream."""

    __tablename__ = "events"
    site: Mapped[str] = mapped_column(String(64), primary_key=True, default=DEFAULT_SITE)
    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    type: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    data: Mapped[dict[str, Any]]


def username_key(username: str) -> str:
    """What makes two usernames the same one: case does not (`Nurse` is `nurse`)."""
    return username.casefold()


def _username_key_default(context: Any) -> str:
    return username_key(str(context.get_current_parameters()["username"]))


class User(Base):
    __tablename__ = "users"
    __table_args__ = (Index("uq_users_username_key", "username_key", unique=True),)
    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(128), unique=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    role: Mapped[str] = mapped_column(String(16))
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime]
    # Migration 0003 (issue #17): the case-folded name, unique; every token carries the
    # version it was issued under and stops working when it moves on (logout, disable,
    # password or role change); failed logins in a row lock the account until an admin
    # unlocks it.
    username_key: Mapped[str] = mapped_column(String(128), default=_username_key_default)
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    failed_logins: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    locked_at: Mapped[datetime | None]


class Patient(Base):
    __tablename__ = "patients"
    id: Mapped[int] = mapped_column(primary_key=True)
    identifier: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(128))
    date_of_birth: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime]


class Chair(Base):
    """A treatment place, bound to at most one cuff (and a cuff to at most one chair)."""

    __tablename__ = "chairs"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    cuff_address: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    # Taken out of service (issue #14): off the ward, no new session; its records keep it.
    retired_at: Mapped[datetime | None]
    # The site whose daemon writes for the chair, and whose event stream numbers its
    # events (issue #16).
    site: Mapped[str] = mapped_column(String(64), default=DEFAULT_SITE, server_default=DEFAULT_SITE)


class Device(Base):
    """Every cuff seen."""

    __tablename__ = "devices"
    id: Mapped[int] = mapped_column(primary_key=True)
    address: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str | None] = mapped_column(String(128))
    manufacturer: Mapped[str | None] = mapped_column(String(128))
    model: Mapped[str | None] = mapped_column(String(128))
    serial: Mapped[str | None] = mapped_column(String(128))
    firmware: Mapped[str | None] = mapped_column(String(128))
    battery_percent: Mapped[int | None] = mapped_column(Integer)
    rssi: Mapped[int | None] = mapped_column(Integer)
    connection_state: Mapped[str] = mapped_column(String(16), default="unknown")
    last_seen_at: Mapped[datetime | None]
    first_seen_at: Mapped[datetime]


class Session(Base):
    """A dosing session. `protocol_toml` keeps the protocol as it was at the start, so
    the schedule is the same after a restart even if the clinic edits its file."""

    __tablename__ = "sessions"
    __table_args__ = (
        # At most one open session per chair.
        Index(
            "uq_sessions_open_chair",
            "chair_id",
            unique=True,
            sqlite_where=text("closed_at IS NULL"),
            postgresql_where=text("closed_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    chair_id: Mapped[int] = mapped_column(ForeignKey("chairs.id"), index=True)
    protocol: Mapped[str] = mapped_column(String(64))
    protocol_toml: Mapped[str] = mapped_column(Text)
    phase: Mapped[str] = mapped_column(String(16))
    course_session: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    started_by: Mapped[str] = mapped_column(String(128))
    closed_at: Mapped[datetime | None]
    closed_by: Mapped[str | None] = mapped_column(String(128))
    close_reason: Mapped[str | None] = mapped_column(Text)


class Dose(Base):
    __tablename__ = "doses"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    drug: Mapped[str] = mapped_column(String(16))
    amount_mg: Mapped[float] = mapped_column(Float)
    route: Mapped[str] = mapped_column(String(16))
    given_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    increase: Mapped[bool] = mapped_column(Boolean)
    increase_stated: Mapped[bool] = mapped_column(Boolean)
    flags: Mapped[list[str]]
    override_reason: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime]


class Reading(Base):
    """Append-only. A cuff reading is identified by what the cuff itself reported
    (`cuff_key`: its raw timestamp, user id, values or BPS 1.1 record sequence number, as
    the link derives it), and else by cuff + corrected timestamp + user id, so a record
    the cuff delivers twice is stored once, also after the daemon restarted and corrected
    the cuff's clock differently."""

    __tablename__ = "readings"
    __table_args__ = (
        UniqueConstraint("device_address", "measured_at", "cuff_user_id"),
        # NULLs never collide: manual readings and cuffs that report no key.
        Index("uq_readings_device_address_cuff_key", "device_address", "cuff_key", unique=True),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"), index=True)
    chair_id: Mapped[int | None] = mapped_column(ForeignKey("chairs.id"))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"))
    source: Mapped[str] = mapped_column(String(8))
    device_address: Mapped[str | None] = mapped_column(String(64))
    cuff_user_id: Mapped[int] = mapped_column(Integer, default=UNKNOWN_CUFF_USER)
    cuff_key: Mapped[str | None] = mapped_column(String(CUFF_KEY_LENGTH))
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    received_at: Mapped[datetime]
    systolic: Mapped[float | None] = mapped_column(Float)
    diastolic: Mapped[float | None] = mapped_column(Float)
    mean_arterial_pressure: Mapped[float | None] = mapped_column(Float)
    pulse_rate: Mapped[float | None] = mapped_column(Float)
    flags: Mapped[list[str]]
    valid: Mapped[bool] = mapped_column(Boolean)
    category: Mapped[str | None] = mapped_column(String(16))
    failure_reason: Mapped[str | None] = mapped_column(Text)
    raw: Mapped[bytes | None] = mapped_column(LargeBinary)
    recorded_by: Mapped[str | None] = mapped_column(String(128))


class SideEffect(Base):
    __tablename__ = "side_effects"
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    effect: Mapped[str] = mapped_column(String(32))
    severity: Mapped[int] = mapped_column(Integer)
    observed_at: Mapped[datetime]
    note: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(128))
    recorded_at: Mapped[datetime | None]


class Check(Base):
    """A check of a session as last computed (the schedule derives it; the row gives it
    an id, keeps its state for queries and events, and holds a user's waiver)."""

    __tablename__ = "checks"
    __table_args__ = (UniqueConstraint("session_id", "key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("sessions.id"), index=True)
    key: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    label: Mapped[str] = mapped_column(String(128))
    window_start: Mapped[datetime | None]
    window_end: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(16))
    satisfied_by: Mapped[int | None] = mapped_column(ForeignKey("readings.id"))
    waiver_reason: Mapped[str | None] = mapped_column(Text)
    waived_by: Mapped[str | None] = mapped_column(String(128))
    waived_at: Mapped[datetime | None]
    # False once the schedule no longer asks for it (e.g. an infusion stopped early).
    required: Mapped[bool] = mapped_column(Boolean, default=True)


class Alert(Base):
    __tablename__ = "alerts"
    __table_args__ = (Index("ix_alerts_state_session", "state", "session_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    session_id: Mapped[int | None] = mapped_column(ForeignKey("sessions.id"), index=True)
    chair_id: Mapped[int | None] = mapped_column(ForeignKey("chairs.id"))
    kind: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(8))
    state: Mapped[str] = mapped_column(String(16))
    condition: Mapped[str] = mapped_column(String(96))
    message: Mapped[str] = mapped_column(Text)
    reading_id: Mapped[int | None] = mapped_column(ForeignKey("readings.id"))
    check_id: Mapped[int | None] = mapped_column(ForeignKey("checks.id"))
    unverified: Mapped[bool] = mapped_column(Boolean, default=False)
    # Alarm behaviour (migration 0004): latched, latest value, worsening, snoozes.
    condition_cleared_at: Mapped[datetime | None]
    latest_reading_id: Mapped[int | None] = mapped_column(Integer)
    latest_message: Mapped[str | None] = mapped_column(Text)
    notified_systolic: Mapped[float | None] = mapped_column(Float)
    notified_diastolic: Mapped[float | None] = mapped_column(Float)
    # The limit crossed, in words (migration 0010); `limit` in the domain and the views.
    limit: Mapped[str | None] = mapped_column("crossed_limit", String(96))
    # The site whose daemon raised it, and whose timers re-notify and escalate it
    # (migration 0011; issue #16: a ward-level alert has no chair to tell).
    site: Mapped[str] = mapped_column(
        String(64), default=DEFAULT_SITE, server_default=DEFAULT_SITE, index=True
    )
    snoozed_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    addressed_to: Mapped[str] = mapped_column(String(16))
    raised_at: Mapped[datetime]
    notified_at: Mapped[datetime]
    acknowledged_at: Mapped[datetime | None]
    acknowledged_by: Mapped[str | None] = mapped_column(String(128))
    snoozed_until: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolution_note: Mapped[str | None] = mapped_column(Text)


class AuditRecord(Base):
    """Append-only: who did what, when, to which alert, session, dose or check."""

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_entity", "entity", "entity_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[int] = mapped_column(Integer)
    session_id: Mapped[int | None] = mapped_column(Integer, index=True)
    from_state: Mapped[str | None] = mapped_column(String(64))
    to_state: Mapped[str | None] = mapped_column(String(64))
    note: Mapped[str | None] = mapped_column(Text)


APPEND_ONLY_TABLES = ("readings", "audit_log", "events")


class PushSubscription(Base):
    """A device a user subscribed to Web Push (RFC 8030) from their profile (issue #15):
    the push service's endpoint and the browser's keys for the payload (RFC 8291)."""

    __tablename__ = "push_subscriptions"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    endpoint: Mapped[str] = mapped_column(String(2048), unique=True)
    p256dh: Mapped[str] = mapped_column(String(128))
    auth: Mapped[str] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(256))
    created_at: Mapped[datetime]
    last_success_at: Mapped[datetime | None]


# -- notify (issue #15, migration 0005): the notifier's cursor, chains and outbox ----------


class NotifyCursor(Base):
    """How far the notifier has read the event log, per site."""

    __tablename__ = "notify_cursors"
    site: Mapped[str] = mapped_column(String(64), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime]


class NotifyChain(Base):
    """One alert's escalation chain: its generation (a worsening starts a new one), when
    it started, which tiers went out, and the alert as its latest event showed it."""

    __tablename__ = "notify_chains"
    alert_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    site: Mapped[str] = mapped_column(String(64))
    priority: Mapped[str] = mapped_column(String(8))
    kind: Mapped[str] = mapped_column(String(32))
    addressed_to: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), index=True)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime]
    fired: Mapped[dict[str, Any]]
    hurried: Mapped[bool] = mapped_column(Boolean, default=False)
    envelope: Mapped[dict[str, Any]]
    updated_at: Mapped[datetime]


class NotifyReceipt(Base):
    """The outbox and the receipt in one row: a notification for one recipient, queued
    until sent, then followed to delivered, shown, acknowledged (or failed, with why)."""

    __tablename__ = "notify_receipts"
    __table_args__ = (Index("ix_notify_receipts_state_next", "state", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    site: Mapped[str] = mapped_column(String(64))
    alert_id: Mapped[int] = mapped_column(Integer, index=True)
    channel: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(128))
    tier: Mapped[int] = mapped_column(Integer)
    generation: Mapped[int] = mapped_column(Integer, default=0)
    transition: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime]
    notification: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    shown_at: Mapped[datetime | None]
    acknowledged_at: Mapped[datetime | None]
