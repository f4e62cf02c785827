"""Readings as CSV (issue #8, "CSV"): one row per reading, a header, round trip via `csv`."""

from __future__ import annotations

import csv
import io
from datetime import datetime

from tests.exports.clinic_records import failed_reading, reading
from vitalsd.exports.csv_export import COLUMNS, readings_csv
from vitalsd.exports.record import ReadingRecord


def _rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_header_names_every_column_in_order() -> None:
    text = readings_csv([])
    assert next(csv.reader(io.StringIO(text))) == list(COLUMNS)


def test_one_row_per_reading_in_the_order_given() -> None:
    readings = [reading(3, 0), failed_reading(4, 5), reading(9, 10)]
    assert [row["Reading"] for row in _rows(readings_csv(readings))] == ["3", "4", "9"]


def test_values_round_trip_exactly_through_csv() -> None:
    stored = reading(1, 42.5, 131.7, 86.25, pulse=71.0, mean=101.41666666666667,
                     flags=("body_movement", "irregular_pulse"))  # fmt: skip
    (row,) = _rows(readings_csv([stored]))
    back = ReadingRecord(
        id=int(row["Reading"]),
        measured_at=datetime.fromisoformat(row["Measured at"]),
        systolic=float(row["Systolic (mmHg)"]),
        diastolic=float(row["Diastolic (mmHg)"]),
        mean_arterial_pressure=float(row["Mean arterial pressure (mmHg)"]),
        pulse_rate=float(row["Pulse (per min)"]),
        source=row["Source"],
        device_address=row["Cuff"],
        flags=tuple(row["Flags"].split(";")),
        valid=row["Valid"] == "true",
        session_id=int(row["Session"]),
        patient_id=int(row["Patient"]),
        chair_id=int(row["Chair"]),
    )
    assert back == stored


def test_unknown_values_are_empty_cells() -> None:
    (row,) = _rows(readings_csv([failed_reading(1, 0)]))
    assert row["Systolic (mmHg)"] == row["Pulse (per min)"] == ""
    assert row["Valid"] == "false"
    assert row["Failure reason"] == "all-NaN error frame"


def test_times_are_utc_with_an_offset() -> None:
    (row,) = _rows(readings_csv([reading(1, 0)]))
    assert row["Measured at"] == "2026-11-27T09:00:00+00:00"


def test_text_that_a_spreadsheet_would_run_as_a_formula_is_neutralised() -> None:
    hostile = ReadingRecord(
        id=1, measured_at=reading(1, 0).measured_at, systolic=None, diastolic=None,
        valid=False, failure_reason='=HYPERLINK("http://x")', recorded_by="@nurse",
    )  # fmt: skip
    (row,) = _rows(readings_csv([hostile]))
    assert row["Failure reason"] == '\'=HYPERLINK("http://x")'
    assert row["Recorded by"] == "'@nurse"


def test_text_with_commas_quotes_and_newlines_survives() -> None:
    awkward = ReadingRecord(
        id=1, measured_at=reading(1, 0).measured_at, systolic=None, diastolic=None,
        valid=False, failure_reason='cuff said "E2",\nretry',
    )  # fmt: skip
    (row,) = _rows(readings_csv([awkward]))
    assert row["Failure reason"] == 'cuff said "E2",\nretry'
