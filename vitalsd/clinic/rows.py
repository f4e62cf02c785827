"""Row <-> domain <-> view conversions: what a stored row means to the rules
(`vitalsd.domain`, `vitalsd.alerts`) and how the API shows it (`vitalsd.views`); and the
checks of free text a caller hands in."""

from __future__ import annotations

import math
from dataclasses import fields
from datetime import timedelta
from typing import Any, TypeVar

from vitalsd import views
from vitalsd.accounts import Account
from vitalsd.alerts import Alert
from vitalsd.domain import (
    AlertKind,
    AlertState,
    CheckState,
    DoseFlag,
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

Shown = TypeVar("Shown")


_FIELD_NAMES: dict[type[Any], tuple[str, ...]] = {}


def _field_names(shape: type[Any]) -> tuple[str, ...]:
    names = _FIELD_NAMES.get(shape)
    if names is None:
        names = _FIELD_NAMES[shape] = tuple(f.name for f in fields(shape))
    return names


def copied(shape: type[Shown], row: object, /, **given: Any) -> Shown:
    """A `shape` (a view, or a domain value) of a row: each field is the row's
    attribute of that name, unless `given` (a conversion, or what the row lacks)."""
    values = {name: getattr(row, name) for name in _field_names(shape) if name not in given}
    return shape(**values, **given)


def reading_facts(row: models.Reading) -> ReadingFacts:
    return copied(
        ReadingFacts,
        row,
        source=ReadingSource(row.source),
        flags=frozenset(ReadingFlag(f) for f in row.flags),
    )


def dose_facts(row: models.Dose) -> DoseFacts:
    return copied(
        DoseFacts,
        row,
        drug=Drug(row.drug),
        route=Route(row.route),
        flags=frozenset(DoseFlag(f) for f in row.flags),
    )


# What a stored alert row holds of the domain's `Alert` (its id is the row's own; the
# snoozing so far is stored in seconds).
ALERT_FIELDS = tuple(name for name in _field_names(Alert) if name not in ("id", "snoozed_total"))


def alert_of(row: models.Alert) -> Alert:
    return copied(
        Alert,
        row,
        kind=AlertKind(row.kind),
        priority=Priority(row.priority),
        state=AlertState(row.state),
        addressed_to=Role(row.addressed_to),
        snoozed_total=timedelta(seconds=row.snoozed_seconds or 0.0),
    )


def write_alert(row: models.Alert, alert: Alert) -> None:
    for name in ALERT_FIELDS:
        value = getattr(alert, name)
        setattr(row, name, value.value if hasattr(value, "value") else value)
    row.snoozed_seconds = alert.snoozed_total.total_seconds()


def alert_view(row: models.Alert) -> views.AlertView:
    return copied(views.AlertView, row)


def reading_view(row: models.Reading) -> views.ReadingView:
    return copied(views.ReadingView, row, flags=tuple(row.flags))


def check_view(row: models.Check, chair_id: int | None = None) -> views.CheckView:
    return copied(views.CheckView, row, chair_id=chair_id)


def dose_view(row: models.Dose) -> views.DoseView:
    return copied(views.DoseView, row, flags=tuple(row.flags))


def patient_view(row: models.Patient) -> views.PatientView:
    return copied(views.PatientView, row)


def device_view(row: models.Device, chair_id: int | None) -> views.DeviceView:
    return copied(views.DeviceView, row, chair_id=chair_id)


def side_effect_view(row: models.SideEffect) -> views.SideEffectView:
    return copied(views.SideEffectView, row)


def audit_view(row: models.AuditRecord) -> views.AuditView:
    return copied(views.AuditView, row)


def user_view(row: models.User) -> views.UserView:
    return copied(views.UserView, row)


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


def account_of(row: models.User) -> Account:
    """A user as sign-in sees them (`vitalsd.accounts`)."""
    return copied(Account, row)
