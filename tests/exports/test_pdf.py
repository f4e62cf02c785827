"""The session report as PDF, read back with pypdf."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, timedelta
from pathlib import Path

import pytest
from pypdf import PdfReader

from tests.exports.clinic_records import START, reading, session
from tests.exports.test_report import _record
from vitalsd.exports.pdf import FONT_DIRS, session_report_pdf
from vitalsd.exports.record import PatientRecord

NOW = START + timedelta(hours=3)
HAS_DEJAVU = any((d / "DejaVuSans.ttf").is_file() for d in FONT_DIRS)


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def test_pdf_is_a_pdf_document() -> None:
    pdf = session_report_pdf(_record(), now=NOW, tz=UTC)
    assert pdf.startswith(b"%PDF-")
    assert len(PdfReader(io.BytesIO(pdf)).pages) >= 1


def test_pdf_holds_readings_alerts_checks_and_the_rems_form() -> None:
    text = _text(session_report_pdf(_record(), now=NOW, tz=UTC))
    assert "128 mmHg" in text
    assert "nurse.kim" in text
    assert "Overdue" in text
    assert "REMS patient monitoring form" in text


def test_pdf_of_the_same_report_is_the_same_bytes() -> None:
    first = session_report_pdf(_record(), now=NOW, tz=UTC)
    assert session_report_pdf(_record(), now=NOW, tz=UTC) == first


@pytest.mark.skipif(not HAS_DEJAVU, reason="DejaVu Sans is not installed (fonts-dejavu-core)")
def test_pdf_prints_names_outside_latin_1_with_dejavu() -> None:
    record = replace(session((reading(1, -5),)), patient=PatientRecord(1, "MRN-1", "Łucja Ząb"))
    assert "Łucja Ząb" in _text(session_report_pdf(record, now=NOW, tz=UTC))


def test_pdf_without_a_unicode_font_replaces_what_helvetica_cannot_print(tmp_path: Path) -> None:
    record = replace(session((reading(1, -5),)), patient=PatientRecord(1, "MRN-1", "Łucja Ząb"))
    text = _text(session_report_pdf(record, now=NOW, tz=UTC, font_dirs=(tmp_path,)))
    assert "?ucja Z?b" in text
