"""The printable session report and its timeline chart (issue #8, "Session report")."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, timedelta
from html.parser import HTMLParser
from zoneinfo import ZoneInfo

from tests.exports.clinic_records import (
    START,
    esketamine_dose,
    failed_reading,
    minutes,
    reading,
    session,
)
from vitalsd.exports.record import (
    AlertRecord,
    CheckRecord,
    PatientRecord,
    SessionRecord,
    SideEffectRecord,
)
from vitalsd.exports.report import session_report_html
from vitalsd.exports.timeline import timeline_svg
from vitalsd.protocol import load_protocol

NOW = START + timedelta(hours=3)
BERLIN = ZoneInfo("Europe/Berlin")
SVG = "{http://www.w3.org/2000/svg}"


class _Rows(HTMLParser):
    """Collects the text of each table row carrying a `data-*-id` attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[str, list[str]] = {}
        self._current: list[str] | None = None
        self._depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr":
            for name, value in attrs:
                if name.startswith("data-") and name.endswith("-id"):
                    self._current = self.rows.setdefault(f"{name[5:-3]}:{value}", [])

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._current is not None and data.strip():
            self._current.append(data.strip())


def _rows(html: str) -> dict[str, str]:
    parser = _Rows()
    parser.feed(html)
    return {key: " ".join(texts) for key, texts in parser.rows.items()}


def _acknowledged_alert() -> AlertRecord:
    return AlertRecord(
        id=5,
        kind="severe_hypertension",
        priority="high",
        state="acknowledged",
        message="Severe hypertension 182/96 mmHg (>= 180/110)",
        raised_at=minutes(40),
        acknowledged_at=minutes(41.5),
        acknowledged_by="nurse.kim",
        reading_id=2,
    )


def _overdue_check() -> CheckRecord:
    return CheckRecord(
        id=9,
        key="post_dose:d1",
        kind="post_dose",
        label="Post-dose check 35-45 min after the dose",
        window_start=minutes(35),
        window_end=minutes(45),
        state="overdue",
    )


def _record() -> SessionRecord:
    satisfied = CheckRecord(
        id=8, key="baseline", kind="baseline", label="Baseline before the first dose",
        window_start=minutes(-30), window_end=minutes(0), state="satisfied", satisfied_by=1,
    )  # fmt: skip
    return session(
        (
            reading(1, -5, 128, 84, pulse=71),
            reading(2, 40, 182, 96, flags=("body_movement",)),
            failed_reading(3, 60),
        ),
        doses=(esketamine_dose(1, 0),),
        closed_at_minute=130,
        side_effects=(SideEffectRecord(4, "nausea", 2, minutes(25), note="gave water"),),
        checks=(satisfied, _overdue_check()),
        alerts=(_acknowledged_alert(),),
    )


def test_report_lists_every_reading_with_its_values() -> None:
    rows = _rows(session_report_html(_record(), now=NOW, tz=UTC))
    assert "128 mmHg 84 mmHg" in rows["reading:1"]
    assert "71/min" in rows["reading:1"]
    assert "Body movement" in rows["reading:2"]
    assert "failed: all-NaN error frame" in rows["reading:3"]


def test_report_shows_who_acknowledged_an_alert_and_when() -> None:
    rows = _rows(session_report_html(_record(), now=NOW, tz=UTC))
    assert "nurse.kim, 2026-11-27 09:41:30 +0000" in rows["alert:5"]


def test_report_shows_each_check_with_its_outcome() -> None:
    rows = _rows(session_report_html(_record(), now=NOW, tz=UTC))
    assert "Overdue" in rows["check:9"]
    assert "Satisfied #1 2026-11-27 08:55:00 +0000" in rows["check:8"]


def test_report_shows_doses_and_side_effects() -> None:
    rows = _rows(session_report_html(_record(), now=NOW, tz=UTC))
    assert "esketamine 56 mg intranasal" in rows["dose:1"]
    assert "Nausea 2 (moderate) gave water" in rows["side-effect:4"]


def test_report_times_are_in_the_clinic_time_zone_with_offset() -> None:
    rows = _rows(session_report_html(_record(), now=NOW, tz=BERLIN))
    assert "2026-11-27 09:55:00 +0100" in rows["reading:1"]


def test_report_of_esketamine_session_carries_the_rems_form_values() -> None:
    html = session_report_html(_record(), now=NOW, tz=UTC)
    assert 'id="rems"' in html
    assert "128/84 mmHg" in html
    assert "130 min" in html


def test_report_of_ketamine_session_has_no_rems_section() -> None:
    record = session((reading(1, -5),), protocol="ketamine-psychotherapy")
    assert 'id="rems"' not in session_report_html(record, now=NOW, tz=UTC)


def test_report_escapes_text_entered_by_people() -> None:
    record = replace(
        session((reading(1, -5),)),
        patient=PatientRecord(1, "<b>MRN</b>", "<script>alert(1)</script>"),
    )
    html = session_report_html(record, now=NOW, tz=UTC)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_report_is_self_contained_without_scripts_or_external_files() -> None:
    html = session_report_html(_record(), now=NOW, tz=UTC)
    assert "<script" not in html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)


def test_timeline_is_well_formed_svg_with_a_mark_per_reading() -> None:
    svg = ET.fromstring(timeline_svg(_record(), now=NOW, tz=UTC))
    readings = svg.findall(f".//{SVG}g[@class='reading']")
    assert [g.get("data-reading-id") for g in readings] == ["1", "2"]
    (failed,) = svg.findall(f".//{SVG}g[@class='failed-reading']")
    assert failed.get("data-reading-id") == "3"


def test_timeline_draws_doses_alerts_side_effects_and_check_windows() -> None:
    svg = ET.fromstring(timeline_svg(_record(), now=NOW, tz=UTC))
    assert len(svg.findall(f".//{SVG}g[@class='dose']")) == 1
    assert len(svg.findall(f".//{SVG}path[@class='alert']")) == 1
    assert len(svg.findall(f".//{SVG}g[@class='side-effect']")) == 1
    windows = svg.findall(f".//{SVG}rect[@class='check-window']")
    assert sorted(w.get("data-check-id") or "" for w in windows) == ["8", "9"]


def test_timeline_places_higher_pressure_higher_on_the_chart() -> None:
    svg = ET.fromstring(timeline_svg(_record(), now=NOW, tz=UTC))
    (first,) = [
        g for g in svg.findall(f".//{SVG}g[@class='reading']") if g.get("data-reading-id") == "1"
    ]
    systolic, diastolic = first.findall(f"{SVG}circle")
    assert float(systolic.get("cy") or 0) < float(diastolic.get("cy") or 0)


def test_timeline_draws_the_protocol_thresholds() -> None:
    limits = load_protocol("esketamine-rems").thresholds
    svg = ET.fromstring(timeline_svg(_record(), now=NOW, tz=UTC, limits=limits))
    titles = [
        line.findtext(f"{SVG}title") for line in svg.findall(f".//{SVG}line[@class='threshold']")
    ]
    assert "dosing hold: systolic 160 mmHg" in titles


def test_timeline_of_an_empty_session_is_still_a_chart() -> None:
    svg = ET.fromstring(timeline_svg(session(), now=NOW, tz=UTC))
    assert svg.findall(f".//{SVG}g[@class='reading']") == []
