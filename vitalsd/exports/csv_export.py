"""Readings as CSV (RFC 4180): one row per reading, a header naming each column's unit.

Pure: `readings_csv(readings)` returns the text. Numbers are written with Python's
shortest round-trip form (`repr` of a float), so reading the file back with `csv` and
`float()` gives the stored values exactly; times are ISO 8601 in UTC with an offset.
An empty cell is an unknown value. Free-text cells that a spreadsheet would run as a
formula (starting with = + - @, tab or CR) get a leading apostrophe (OWASP "CSV
Injection"); numbers and times never start so.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from typing import Final

from vitalsd.exports.record import ReadingRecord

# Column order is part of the interface: spreadsheets and scripts index by it.
COLUMNS: Final = (
    "reading_id",
    "session_id",
    "patient_id",
    "chair_id",
    "measured_at_utc",
    "systolic_mmHg",
    "diastolic_mmHg",
    "mean_arterial_pressure_mmHg",
    "pulse_rate_per_min",
    "source",
    "device_address",
    "valid",
    "flags",
    "category",
    "failure_reason",
    "recorded_by",
)
FLAG_SEPARATOR: Final = ";"
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def _number(value: float | int | None) -> str:
    return "" if value is None else repr(value)


def _text(value: str | None) -> str:
    if value is None:
        return ""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def reading_row(reading: ReadingRecord) -> dict[str, str]:
    return {
        "reading_id": str(reading.id),
        "session_id": _number(reading.session_id),
        "patient_id": _number(reading.patient_id),
        "chair_id": _number(reading.chair_id),
        "measured_at_utc": reading.measured_at.isoformat(),
        "systolic_mmHg": _number(reading.systolic),
        "diastolic_mmHg": _number(reading.diastolic),
        "mean_arterial_pressure_mmHg": _number(reading.mean_arterial_pressure),
        "pulse_rate_per_min": _number(reading.pulse_rate),
        "source": reading.source,
        "device_address": _text(reading.device_address),
        "valid": "true" if reading.valid else "false",
        "flags": FLAG_SEPARATOR.join(reading.flags),
        "category": _text(reading.category),
        "failure_reason": _text(reading.failure_reason),
        "recorded_by": _text(reading.recorded_by),
    }


def readings_csv(readings: Iterable[ReadingRecord]) -> str:
    """The readings in the order given, under a header row; CRLF line ends (RFC 4180)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for reading in readings:
        writer.writerow(reading_row(reading))
    return buffer.getvalue()
