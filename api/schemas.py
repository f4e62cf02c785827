"""Request and response bodies. Field names are DESIGN.md's ("Interfaces others depend
on"); responses mirror `vitalsd.views`, which are also the `data` of WebSocket events.

Input is checked here, once, so that a bad value is a 422 naming the field: times must
carry an offset, pressures are finite mmHg within what a cuff can report, text has a
length the database column holds and no NUL character.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)

from vitalsd.accounts import valid_username
from vitalsd.domain import (
    AlertKind,
    AlertState,
    CheckKind,
    CheckState,
    Drug,
    Phase,
    Priority,
    ReadingSource,
    Role,
    Route,
    SideEffect,
)
from vitalsd.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH


def _utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("datetime is out of range once converted to UTC") from None


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("text must not contain NUL characters")
    return value


def _plain(value: str, *, allowed: str = "") -> str:
    """Refuse control and format characters (Unicode Cc, Cf: NUL, escape sequences,
    zero-width marks, and the bidirectional controls of UAX #9: U+202E in a name shows
    "Alex" as "xelA", one name looking like another) but those in `allowed`."""
    for char in value:
        if char in allowed:
            continue
        if unicodedata.category(char) in ("Cc", "Cf"):
            raise ValueError(
                f"text must not contain control or formatting characters (U+{ord(char):04X})"
            )
    return value


def _plain_line(value: str) -> str:
    return _plain(value)


def _plain_note(value: str) -> str:
    return _plain(value, allowed="\n\t\r")


# An ISO 8601 time: a number (read as seconds since 1970 by pydantic) or digits of
# another script are refused: `until=0.5` is a typing error, not 1970.
_ISO_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9:.,]+([Zz]|[+-][0-9]{2}(:?[0-9]{2})?)")


def _iso_text(value: object) -> object:
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _ISO_TIME.fullmatch(value.strip()):
        raise ValueError("a time is ISO 8601 text with an offset, e.g. 2026-01-05T09:00:00+01:00")
    return value.strip()


def _iso(value: datetime) -> str:
    return value.isoformat()


# In: ISO 8601 with an offset (a naive time is refused: whose clock would it be?).
TimeIn = Annotated[AwareDatetime, BeforeValidator(_iso_text), AfterValidator(_utc)]
# Out: ISO 8601 with offset, the same text as in WebSocket events ("+00:00").
TimeOut = Annotated[datetime, PlainSerializer(_iso, return_type=str, when_used="json")]


def _text(max_length: int) -> StringConstraints:
    """Stripped, not blank, at most `max_length` characters (the column's size)."""
    return StringConstraints(
        strip_whitespace=True, min_length=1, max_length=max_length, pattern=r"\S"
    )


Identifier = Annotated[str, _text(64), AfterValidator(_no_nul), AfterValidator(_plain_line)]
PersonName = Annotated[str, _text(128), AfterValidator(_no_nul), AfterValidator(_plain_line)]
ChairName = Annotated[str, _text(64), AfterValidator(_no_nul), AfterValidator(_plain_line)]
Username = Annotated[str, _text(128), AfterValidator(_no_nul), AfterValidator(valid_username)]
Note = Annotated[str, _text(2000), AfterValidator(_no_nul), AfterValidator(_plain_note)]
ProtocolName = Annotated[str, _text(64), AfterValidator(_no_nul), AfterValidator(_plain_line)]
CuffAddress = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=64, pattern=r"^[^\s\x00]+$"),
]
# GATT Specification Supplement 3.31 reports pressures as SFLOAT; a cuff's range ends
# near 300 mmHg, and the domain refuses 400 and above.
Pressure = Annotated[float, Field(gt=0, lt=400, allow_inf_nan=False, description="mmHg")]
PulseRate = Annotated[float, Field(gt=0, lt=300, allow_inf_nan=False, description="/min")]
Id = Annotated[int, Field(ge=1, le=2**31 - 1)]
# New passwords: the length here, the rest of the policy (vitalsd.passwords) in the route,
# which knows the username.
Password = Annotated[
    str,
    StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH),
    AfterValidator(_no_nul),
]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# -- auth and users ----------------------------------------------------------------------


class TokenOut(BaseModel):
    access_token: str
    token_type: Literal["bearer"] = "bearer"
    expires_at: TimeOut
    username: str
    role: Role


class UserOut(Out):
    id: int
    username: str
    role: Role
    disabled: bool
    created_at: TimeOut
    locked: bool = False


class UserIn(Body):
    username: Username
    password: Password
    role: Role


class PasswordChangeIn(Body):
    """Your own new password; the current one proves it is you (a tablet left signed in
    must not be enough to take the account over)."""

    current_password: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    new_password: Password


class PasswordResetIn(Body):
    """An admin sets another user's password (they forgot theirs)."""

    new_password: Password


class RoleIn(Body):
    role: Role


class WsTicketOut(BaseModel):
    """A one-time ticket for `/ws?ticket=`: short-lived, so a URL in a log is no secret."""

    ticket: str
    expires_at: TimeOut


class Me(BaseModel):
    username: str
    role: Role
    permissions: list[str]


# -- patients, chairs, devices -------------------------------------------------------------


class PatientIn(Body):
    identifier: Identifier = Field(description="The clinic's record number")
    display_name: PersonName
    date_of_birth: date


class PatientOut(Out):
    id: int
    identifier: str
    display_name: str
    date_of_birth: date
    created_at: TimeOut


class ChairIn(Body):
    name: ChairName


class ChairOut(Out):
    id: int
    name: str
    cuff_address: str | None
    session_id: int | None = None
    retired_at: TimeOut | None = Field(
        default=None, description="When an admin took the chair out of service (off the ward)"
    )


class MoveConfirmation(Body):
    """DESIGN.md "Cuffs and chairs": taking a cuff from a chair with an open session, or
    onto a chair whose open session has another cuff, needs both (audited); else 409."""

    confirm: bool = Field(
        default=False,
        description="Move the cuff although a chair's open session is measured by it or "
        "by the cuff it replaces",
    )
    reason: Note | None = Field(default=None, description="Why (audited); needed with confirm")


class CuffAssignment(MoveConfirmation):
    """The cuff (its Bluetooth address) to bind to the chair; null unbinds."""

    cuff_address: CuffAddress | None


class ChairAssignment(MoveConfirmation):
    chair_id: Id


class DeviceOut(Out):
    id: int
    address: str
    name: str | None
    manufacturer: str | None
    model: str | None
    serial: str | None
    firmware: str | None
    battery_percent: int | None
    rssi: int | None
    connection_state: str
    last_seen_at: TimeOut | None
    first_seen_at: TimeOut
    chair_id: int | None


# -- sessions --------------------------------------------------------------------------------


class SessionIn(Body):
    patient_id: Id
    chair_id: Id
    protocol: ProtocolName | None = Field(
        default=None, description="A loaded protocol's name; the clinic's default if omitted"
    )
    started_at: TimeIn | None = Field(
        default=None, description="In the past: a session begun before it was entered"
    )
    course_session: Annotated[int, Field(ge=1, le=10_000)] | None = Field(
        default=None, description="1 = the patient's first session; counted if omitted"
    )


class CheckOut(Out):
    id: int
    session_id: int
    key: str
    kind: CheckKind
    label: str
    window_start: TimeOut | None
    window_end: TimeOut | None
    state: CheckState
    satisfied_by: int | None
    waiver_reason: str | None
    waived_by: str | None
    required: bool
    chair_id: int | None = None


class BaselineOut(Out):
    systolic: float
    diastolic: float
    confirmed: bool
    reading_ids: list[int | None]


class SessionOut(Out):
    id: int
    patient_id: int
    chair_id: int
    protocol: str
    phase: Phase
    course_session: int
    started_at: TimeOut
    started_by: str
    closed_at: TimeOut | None
    closed_by: str | None
    close_reason: str | None
    baseline: BaselineOut | None = None
    next_check: CheckOut | None = None
    last_reading_at: TimeOut | None = None


class DoseIn(Body):
    drug: Drug
    amount_mg: Annotated[float, Field(gt=0, le=10_000, allow_inf_nan=False)]
    route: Route
    given_at: TimeIn | None = None
    ended_at: TimeIn | None = Field(default=None, description="An infusion's stop, if over")
    increase: bool | None = Field(
        default=None, description="A dose increase; derived from the last session if omitted"
    )
    override_reason: Note | None = Field(
        default=None, description="A clinician's reason to dose despite a dosing hold"
    )


class DoseOut(Out):
    id: int
    session_id: int
    drug: Drug
    amount_mg: float
    route: Route
    given_at: TimeOut
    ended_at: TimeOut | None
    increase: bool
    increase_stated: bool
    flags: list[str]
    override_reason: str | None
    recorded_by: str


class InfusionStopIn(Body):
    at: TimeIn | None = None


SEVERITY_NAMES: dict[str, int] = {"none": 0, "mild": 1, "moderate": 2, "severe": 3}


class SideEffectIn(Body):
    effect: SideEffect
    severity: Annotated[int, Field(ge=0, le=3)] | Literal["none", "mild", "moderate", "severe"] = (
        Field(description="0 none, 1 mild, 2 moderate, 3 severe (number or name)")
    )
    observed_at: TimeIn | None = None
    note: Note | None = None

    @property
    def severity_level(self) -> int:
        return self.severity if isinstance(self.severity, int) else SEVERITY_NAMES[self.severity]


class SideEffectOut(Out):
    id: int
    session_id: int
    effect: SideEffect
    severity: int
    observed_at: TimeOut
    note: str | None
    recorded_by: str
    recorded_at: TimeOut | None = None


class ManualReadingIn(Body):
    systolic: Pressure
    diastolic: Pressure
    pulse_rate: PulseRate | None = None
    measured_at: TimeIn | None = Field(default=None, description="May be past, not future")


class CloseIn(Body):
    reason: Note | None = Field(
        default=None, description="Needed (from a clinician) when the close check has no reading"
    )


class WaiveIn(Body):
    reason: Note


# -- readings ---------------------------------------------------------------------------------


class ReadingOut(Out):
    id: int
    session_id: int | None
    chair_id: int | None
    patient_id: int | None
    systolic: float | None
    diastolic: float | None
    mean_arterial_pressure: float | None
    pulse_rate: float | None
    measured_at: TimeOut
    received_at: TimeOut
    source: ReadingSource
    flags: list[str]
    category: str | None
    valid: bool
    device_address: str | None
    failure_reason: str | None
    recorded_by: str | None


class ReadingPage(BaseModel):
    """One page of readings, oldest first; `next_offset` is null on the last page."""

    items: list[ReadingOut]
    offset: int
    limit: int
    next_offset: int | None


# -- alerts and audit --------------------------------------------------------------------------


class AlertOut(Out):
    id: int
    kind: AlertKind
    priority: Priority
    state: AlertState
    message: str
    session_id: int | None
    chair_id: int | None
    reading_id: int | None
    check_id: int | None
    unverified: bool
    addressed_to: Role
    raised_at: TimeOut
    acknowledged_at: TimeOut | None
    acknowledged_by: str | None
    snoozed_until: TimeOut | None
    escalated_at: TimeOut | None
    resolved_at: TimeOut | None
    resolved_by: str | None
    resolution_note: str | None
    condition_cleared_at: TimeOut | None = Field(
        None,
        description="A latched high-priority alert whose condition cleared: it stays "
        "on screen until someone acknowledges it",
    )
    latest_reading_id: int | None = Field(
        None, description="The latest reading of the alert's condition"
    )
    latest_message: str | None = Field(
        None,
        description="The alert's condition as the latest reading shows it (`message` keeps "
        "the value that raised it, or last made it sound again)",
    )
    limit: str | None = Field(
        None,
        description="The limit the condition crossed, in words (e.g. `≥ 180/110 mmHg`); "
        "none for checks and technical alarms",
    )


class SnoozeIn(Body):
    minutes: Annotated[float, Field(gt=0, le=24 * 60, allow_inf_nan=False)] = Field(
        description="How long; at most the clinic's maximum snooze (never indefinitely)"
    )


class ResolveIn(Body):
    note: Note


class AuditOut(Out):
    id: int
    at: TimeOut
    actor: str
    action: str
    entity: str
    entity_id: int
    session_id: int | None
    from_state: str | None
    to_state: str | None
    note: str | None


# -- health ------------------------------------------------------------------------------------


class DatabaseHealth(BaseModel):
    ok: bool
    dialect: str
    last_seq: int | None = None
    error: str | None = None


class StreamHealth(BaseModel):
    clients: int
    cut_off: int
    # Streams that receive alerts (dashboards, pager views) on this node: none while a
    # session is open raises `nobody_watching` (README "Technical alarms").
    watching: int = 0


class Health(BaseModel):
    """`status` for anyone; the details for a signed-in admin only (issue #17: error
    strings and versions tell an outsider what to attack)."""

    status: Literal["ok", "degraded"]
    # For any signed-in user: the last stored event (a tablet's resume point check).
    last_seq: int | None = None
    database: DatabaseHealth | None = None
    ble: dict[str, Any] | None = None
    streams: StreamHealth | None = None
    # Several daemons on one PostgreSQL (#16): following the others' events; None alone.
    feed: dict[str, Any] | None = None
