"""Readings as CSV (RFC 4180): one row per reading, a header naming each column's unit.

Pure: `readings_csv(readings, tz=...)` returns the text. Numbers are written with
Python's shortest round-trip form (`repr` of a float), so reading the file back with
`csv` and `float()` gives the stored values exactly; times are ISO 8601 in the clinic's
time zone with its offset (issue #14: what a person opens reads in local time, and the
offset keeps it unambiguous). Headers are words with units; category, source and flag
cells keep their codes, so a script can filter on them.
An empty cell is an unknown value. Free-text cells that a spreadsheet would run as a
formula (starting with = + - @, tab or CR) get a leading apostrophe (OWASP "CSV
Injection"); numbers and times never start so.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import UTC, tzinfo
from typing import Final

from vitalsd.exports.record import ReadingRecord

# Column order is part of the interface: spreadsheets and scripts index by it.
COLUMNS: Final = (
    "Reading",
    "Session",
    "Patient",
    "Chair",
    "Measured at",
    "Systolic (mmHg)",
    "Diastolic (mmHg)",
    "Mean arterial pressure (mmHg)",
    "Pulse (per min)",
    "Source",
    "Cuff",
    "Valid",
    "Flags",
    "Category",
    "Failure reason",
    "Recorded by",
)
FLAG_SEPARATOR: Final = ";"
_FORMULA_STARTS: Final = ("=", "+", "-", "@", "\t", "\r")


def _number(value: float | int | None) -> str:
    return "" if value is None else repr(value)


def _text(value: str | None) -> str:
    if value is None:
        return ""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def reading_row(reading: ReadingRecord, tz: tzinfo = UTC) -> dict[str, str]:
    """One row, keyed by the headers of `COLUMNS`; the time in `tz` with its offset."""
    values = (
        str(reading.id),
        _number(reading.session_id),
        _number(reading.patient_id),
        _number(reading.chair_id),
        reading.measured_at.astimezone(tz).isoformat(),
        _number(reading.systolic),
        _number(reading.diastolic),
        _number(reading.mean_arterial_pressure),
        _number(reading.pulse_rate),
        reading.source,
        _text(reading.device_address),
        "true" if reading.valid else "false",
        FLAG_SEPARATOR.join(reading.flags),
        _text(reading.category),
        _text(reading.failure_reason),
        _text(reading.recorded_by),
    )
    return dict(zip(COLUMNS, values, strict=True))


def readings_csv(readings: Iterable[ReadingRecord], tz: tzinfo = UTC) -> str:
    """The readings in the order given, under a header row; CRLF line ends (RFC 4180);
    times in `tz` (the clinic's time zone) with their UTC offset."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\r\n")
    writer.writeheader()
    for reading in readings:
        writer.writerow(reading_row(reading, tz))
    return buffer.getvalue()
