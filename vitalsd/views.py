"""What the clinic service returns: frozen, typed, JSON-ready via `as_dict()`.

The same dictionaries are the `data` of the WebSocket events (DESIGN.md "Interfaces"),
so a REST response and an event about the same thing look alike.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date, datetime
from enum import Enum
from typing import Any


def _json(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple | frozenset | set):
        items = [_json(v) for v in value]
        return sorted(items) if isinstance(value, frozenset | set) else items
    if isinstance(value, View):
        return value.as_dict()
    if isinstance(value, dict):
        return {k: _json(v) for k, v in value.items()}
    return value


class View:
    def as_dict(self) -> dict[str, Any]:
        return {f.name: _json(getattr(self, f.name)) for f in fields(self)}  # type: ignore[arg-type]


@dataclass(frozen=True)
class PatientView(View):
    id: int
    identifier: str
    display_name: str
    date_of_birth: date
    created_at: datetime


@dataclass(frozen=True)
class ChairView(View):
    id: int
    name: str
    cuff_address: str | None
    session_id: int | None = None
    retired_at: datetime | None = None


@dataclass(frozen=True)
class DeviceView(View):
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
    last_seen_at: datetime | None
    first_seen_at: datetime
    chair_id: int | None


@dataclass(frozen=True)
class BaselineView(View):
    systolic: float
    diastolic: float
    confirmed: bool
    reading_ids: tuple[int | None, ...]


@dataclass(frozen=True)
class CheckView(View):
    id: int
    session_id: int
    key: str
    kind: str
    label: str
    window_start: datetime | None
    window_end: datetime | None
    state: str
    satisfied_by: int | None
    waiver_reason: str | None
    waived_by: str | None
    required: bool
    chair_id: int | None = None


@dataclass(frozen=True)
class SessionView(View):
    id: int
    patient_id: int
    chair_id: int
    protocol: str
    phase: str
    course_session: int
    started_at: datetime
    started_by: str
    closed_at: datetime | None
    closed_by: str | None
    close_reason: str | None
    baseline: BaselineView | None = None
    next_check: CheckView | None = None
    last_reading_at: datetime | None = None


@dataclass(frozen=True)
class DoseView(View):
    id: int
    session_id: int
    drug: str
    amount_mg: float
    route: str
    given_at: datetime
    ended_at: datetime | None
    increase: bool
    increase_stated: bool
    flags: tuple[str, ...]
    override_reason: str | None
    recorded_by: str


@dataclass(frozen=True)
class ReadingView(View):
    id: int
    session_id: int | None
    chair_id: int | None
    patient_id: int | None
    systolic: float | None
    diastolic: float | None
    mean_arterial_pressure: float | None
    pulse_rate: float | None
    measured_at: datetime
    received_at: datetime
    source: str
    flags: tuple[str, ...]
    category: str | None
    valid: bool
    device_address: str | None
    failure_reason: str | None
    recorded_by: str | None


@dataclass(frozen=True)
class SideEffectView(View):
    id: int
    session_id: int
    effect: str
    severity: int
    observed_at: datetime
    note: str | None
    recorded_by: str
    recorded_at: datetime | None


@dataclass(frozen=True)
class AlertView(View):
    id: int
    kind: str
    priority: str
    state: str
    message: str
    session_id: int | None
    chair_id: int | None
    reading_id: int | None
    check_id: int | None
    unverified: bool
    addressed_to: str
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    snoozed_until: datetime | None
    escalated_at: datetime | None
    resolved_at: datetime | None
    resolved_by: str | None
    resolution_note: str | None
    # Alarm behaviour (DESIGN.md): a latched high alert whose condition cleared (it stays
    # until acknowledged); the latest reading of the condition and its words (`message`
    # keeps the value that raised or last re-sounded it).
    condition_cleared_at: datetime | None = None
    latest_reading_id: int | None = None
    latest_message: str | None = None
    # The limit the condition crossed, in words ("≥ 180/110 mmHg"); None for alerts
    # without one (checks, technical alarms).
    limit: str | None = None


@dataclass(frozen=True)
class AuditView(View):
    id: int
    at: datetime
    actor: str
    action: str
    entity: str
    entity_id: int
    session_id: int | None
    from_state: str | None
    to_state: str | None
    note: str | None


@dataclass(frozen=True)
class UserView(View):
    id: int
    username: str
    role: str
    disabled: bool
    created_at: datetime
    password_hash: str

    def as_dict(self) -> dict[str, Any]:
        shown = super().as_dict()
        del shown["password_hash"]
        return shown


@dataclass(frozen=True)
class IngestResult(View):
    """`duplicate`: the cuff delivered this record before (stored once). `attached`:
    tied to a session (an unknown or unassigned cuff's reading is stored unattached)."""

    reading: ReadingView
    duplicate: bool
    attached: bool


@dataclass(frozen=True)
class Snapshot(View):
    """What a new WebSocket client gets first: the state `seq` describes."""

    seq: int
    chairs: tuple[ChairView, ...]
    sessions: tuple[SessionView, ...]
    latest_readings: tuple[ReadingView, ...]
    active_alerts: tuple[AlertView, ...]
    due_checks: tuple[CheckView, ...]
    devices: tuple[DeviceView, ...]


@dataclass(frozen=True)
class AlertHistoryEntry(View):
    """One alert of the alarm history (issue #14): the alert as it stands, whose patient
    it concerned, and every transition the audit log kept (who acknowledged, snoozed,
    escalated, resolved, and when), oldest first."""

    alert: AlertView
    patient_id: int | None
    transitions: tuple[AuditView, ...]
