"""Row <-> domain <-> view conversions: what a stored row means to the rules
(`vitalsd.domain`, `vitalsd.alerts`) and how the API shows it (`vitalsd.views`); and the
checks of free text a caller hands in."""

from __future__ import annotations

import math

from vitalsd import views
from vitalsd.alerts import Alert
from vitalsd.domain import (
    AlertKind,
    AlertState,
    CheckState,
    Drug,
    Priority,
    ReadingFlag,
    ReadingSource,
    Role,
    Route,
    mean_arterial_pressure,
)
from vitalsd.domain import Dose as DoseFacts
from vitalsd.domain import Reading as ReadingFacts
from vitalsd.errors import InvalidInput
from vitalsd.evaluation import StoredCheck
from vitalsd.store import models


def reading_facts(row: models.Reading) -> ReadingFacts:
    return ReadingFacts(
        id=row.id,
        measured_at=row.measured_at,
        systolic=row.systolic,
        diastolic=row.diastolic,
        mean_arterial_pressure=row.mean_arterial_pressure,
        pulse_rate=row.pulse_rate,
        source=ReadingSource(row.source),
        flags=frozenset(ReadingFlag(f) for f in row.flags),
        valid=row.valid,
    )


def dose_facts(row: models.Dose) -> DoseFacts:
    return DoseFacts(
        id=row.id,
        drug=Drug(row.drug),
        amount_mg=row.amount_mg,
        route=Route(row.route),
        given_at=row.given_at,
        ended_at=row.ended_at,
        increase=row.increase,
    )


ALERT_FIELDS = (
    "kind",
    "priority",
    "message",
    "state",
    "condition",
    "raised_at",
    "notified_at",
    "session_id",
    "chair_id",
    "reading_id",
    "check_id",
    "unverified",
    "addressed_to",
    "acknowledged_at",
    "acknowledged_by",
    "snoozed_until",
    "escalated_at",
    "resolved_at",
    "resolved_by",
    "resolution_note",
)


def alert_of(row: models.Alert) -> Alert:
    return Alert(
        id=row.id,
        kind=AlertKind(row.kind),
        priority=Priority(row.priority),
        message=row.message,
        state=AlertState(row.state),
        condition=row.condition,
        raised_at=row.raised_at,
        notified_at=row.notified_at,
        session_id=row.session_id,
        chair_id=row.chair_id,
        reading_id=row.reading_id,
        check_id=row.check_id,
        unverified=row.unverified,
        addressed_to=Role(row.addressed_to),
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        snoozed_until=row.snoozed_until,
        escalated_at=row.escalated_at,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        resolution_note=row.resolution_note,
    )


def write_alert(row: models.Alert, alert: Alert) -> None:
    for name in ALERT_FIELDS:
        value = getattr(alert, name)
        setattr(row, name, value.value if hasattr(value, "value") else value)


def alert_view(row: models.Alert) -> views.AlertView:
    return views.AlertView(
        id=row.id,
        kind=row.kind,
        priority=row.priority,
        state=row.state,
        message=row.message,
        session_id=row.session_id,
        chair_id=row.chair_id,
        reading_id=row.reading_id,
        check_id=row.check_id,
        unverified=row.unverified,
        addressed_to=row.addressed_to,
        raised_at=row.raised_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        snoozed_until=row.snoozed_until,
        escalated_at=row.escalated_at,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        resolution_note=row.resolution_note,
    )


def reading_view(row: models.Reading) -> views.ReadingView:
    return views.ReadingView(
        id=row.id,
        session_id=row.session_id,
        chair_id=row.chair_id,
        patient_id=row.patient_id,
        systolic=row.systolic,
        diastolic=row.diastolic,
        mean_arterial_pressure=row.mean_arterial_pressure,
        pulse_rate=row.pulse_rate,
        measured_at=row.measured_at,
        received_at=row.received_at,
        source=row.source,
        flags=tuple(row.flags),
        category=row.category,
        valid=row.valid,
        device_address=row.device_address,
        failure_reason=row.failure_reason,
        recorded_by=row.recorded_by,
    )


def check_view(row: models.Check, chair_id: int | None = None) -> views.CheckView:
    return views.CheckView(
        id=row.id,
        session_id=row.session_id,
        key=row.key,
        kind=row.kind,
        label=row.label,
        window_start=row.window_start,
        window_end=row.window_end,
        state=row.state,
        satisfied_by=row.satisfied_by,
        waiver_reason=row.waiver_reason,
        waived_by=row.waived_by,
        required=row.required,
        chair_id=chair_id,
    )


def dose_view(row: models.Dose) -> views.DoseView:
    return views.DoseView(
        id=row.id,
        session_id=row.session_id,
        drug=row.drug,
        amount_mg=row.amount_mg,
        route=row.route,
        given_at=row.given_at,
        ended_at=row.ended_at,
        increase=row.increase,
        increase_stated=row.increase_stated,
        flags=tuple(row.flags),
        override_reason=row.override_reason,
        recorded_by=row.recorded_by,
    )


def patient_view(row: models.Patient) -> views.PatientView:
    return views.PatientView(
        id=row.id,
        identifier=row.identifier,
        display_name=row.display_name,
        date_of_birth=row.date_of_birth,
        created_at=row.created_at,
    )


def device_view(row: models.Device, chair_id: int | None) -> views.DeviceView:
    return views.DeviceView(
        id=row.id,
        address=row.address,
        name=row.name,
        manufacturer=row.manufacturer,
        model=row.model,
        serial=row.serial,
        firmware=row.firmware,
        battery_percent=row.battery_percent,
        rssi=row.rssi,
        connection_state=row.connection_state,
        last_seen_at=row.last_seen_at,
        first_seen_at=row.first_seen_at,
        chair_id=chair_id,
    )


def side_effect_view(row: models.SideEffect) -> views.SideEffectView:
    return views.SideEffectView(
        id=row.id,
        session_id=row.session_id,
        effect=row.effect,
        severity=row.severity,
        observed_at=row.observed_at,
        note=row.note,
        recorded_by=row.recorded_by,
    )


def audit_view(row: models.AuditRecord) -> views.AuditView:
    return views.AuditView(
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        entity=row.entity,
        entity_id=row.entity_id,
        session_id=row.session_id,
        from_state=row.from_state,
        to_state=row.to_state,
        note=row.note,
    )


def user_view(row: models.User) -> views.UserView:
    return views.UserView(
        id=row.id,
        username=row.username,
        role=row.role,
        disabled=row.disabled,
        created_at=row.created_at,
        password_hash=row.password_hash,
    )


def finite(value: float | None) -> float | None:
    return None if value is None or math.isnan(value) or math.isinf(value) else value


def cuff_key(value: str | None) -> str | None:
    """A cuff's own key of a record: opaque to us, compared exactly (never trimmed)."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > models.CUFF_KEY_LENGTH:
        raise InvalidInput(
            f"cuff_key must be 1-{models.CUFF_KEY_LENGTH} characters of text, got {value!r}"
        )
    return value


def text(value: str | None, name: str, *, required: bool = False) -> str | None:
    if value is None or not value.strip():
        if required:
            raise InvalidInput(f"{name} must not be empty")
        return None
    return value.strip()


def mean_arterial_pressure_of(reading: ReadingFacts) -> float | None:
    """MAP of a reading without one of its own (a manual reading), to 0.1 mmHg."""
    if reading.systolic is None or reading.diastolic is None:
        return None
    return round(mean_arterial_pressure(reading.systolic, reading.diastolic), 1)


def stored_check(row: models.Check) -> StoredCheck:
    """A stored check as the evaluation compares with it."""
    return StoredCheck(
        key=row.key,
        state=CheckState(row.state),
        required=bool(row.required),
        id=row.id,
    )
