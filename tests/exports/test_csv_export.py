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
    assert [row["reading_id"] for row in _rows(readings_csv(readings))] == ["3", "4", "9"]


def test_values_round_trip_exactly_through_csv() -> None:
    stored = reading(1, 42.5, 131.7, 86.25, pulse=71.0, mean=101.41666666666667,
                     flags=("body_movement", "irregular_pulse"))  # fmt: skip
    (row,) = _rows(readings_csv([stored]))
    back = ReadingRecord(
        id=int(row["reading_id"]),
        measured_at=datetime.fromisoformat(row["measured_at_utc"]),
        systolic=float(row["systolic_mmHg"]),
        diastolic=float(row["diastolic_mmHg"]),
        mean_arterial_pressure=float(row["mean_arterial_pressure_mmHg"]),
        pulse_rate=float(row["pulse_rate_per_min"]),
        source=row["source"],
        device_address=row["device_address"],
        flags=tuple(row["flags"].split(";")),
        valid=row["valid"] == "true",
        session_id=int(row["session_id"]),
        patient_id=int(row["patient_id"]),
        chair_id=int(row["chair_id"]),
    )
    assert back == stored


def test_unknown_values_are_empty_cells() -> None:
    (row,) = _rows(readings_csv([failed_reading(1, 0)]))
    assert row["systolic_mmHg"] == row["pulse_rate_per_min"] == ""
    assert row["valid"] == "false"
    assert row["failure_reason"] == "all-NaN error frame"


def test_times_are_utc_with_an_offset() -> None:
    (row,) = _rows(readings_csv([reading(1, 0)]))
    assert row["measured_at_utc"] == "2026-11-27T09:00:00+00:00"


def test_text_that_a_spreadsheet_would_run_as_a_formula_is_neutralised() -> None:
    hostile = ReadingRecord(
        id=1, measured_at=reading(1, 0).measured_at, systolic=None, diastolic=None,
        valid=False, failure_reason='=HYPERLINK("http://x")', recorded_by="@nurse",
    )  # fmt: skip
    (row,) = _rows(readings_csv([hostile]))
    assert row["failure_reason"] == '\'=HYPERLINK("http://x")'
    assert row["recorded_by"] == "'@nurse"


def test_text_with_commas_quotes_and_newlines_survives() -> None:
    awkward = ReadingRecord(
        id=1, measured_at=reading(1, 0).measured_at, systolic=None, diastolic=None,
        valid=False, failure_reason='cuff said "E2",\nretry',
    )  # fmt: skip
    (row,) = _rows(readings_csv([awkward]))
    assert row["failure_reason"] == 'cuff said "E2",\nretry'
