"""The printable session report (issue #8, "Session report"): patient, protocol, doses,
every reading, checks with their outcome, alerts with who acknowledged them and when,
side effects, the REMS form values of an esketamine session, and the timeline chart.

Pure and in two steps: `report_content(record, now=..., tz=...)` decides what the report
says (plain text, in the clinic's time zone `tz` with its UTC offset, so a printed page
is unambiguous); `session_report_html` renders it as one self-contained HTML page (no
script, no external file; every text HTML-escaped) and `vitalsd.exports.pdf` as a PDF.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from html import escape
from typing import Final

from vitalsd.exports.record import SessionRecord
from vitalsd.exports.rems import (
    FormBloodPressure,
    NotARemsSession,
    RemsFormData,
    Timing,
    rems_form,
    session_protocol,
)
from vitalsd.exports.timeline import timeline_svg
from vitalsd.exports.words import word, words
from vitalsd.protocol import Protocol, ProtocolError

EMPTY: Final = "-"
# Side-effect severity as the clinic service grades it (0 none to 3 severe).
SEVERITY: Final = {0: "none", 1: "mild", 2: "moderate", 3: "severe"}


@dataclass(frozen=True)
class Cell:
    """A table cell's text; `alarm` marks what a reader must not miss (an overdue check,
    a missing form value, a high-priority alert)."""

    text: str
    alarm: bool = False


@dataclass(frozen=True)
class Row:
    kind: str  # "reading", "alert", ... (the HTML row's data-<kind>-id)
    id: int | None
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class Table:
    section: str
    title: str
    headers: tuple[str, ...]
    rows: tuple[Row, ...]
    empty: str


@dataclass(frozen=True)
class ReportContent:
    title: str
    facts: tuple[tuple[str, str], ...]
    chart_svg: str
    rems: Table | None
    rems_problems: tuple[str, ...]
    tables: tuple[Table, ...]
    footer: str


def _text(value: object) -> str:
    return EMPTY if value is None or value == "" else str(value)


def _when(value: datetime | None, tz: tzinfo) -> str:
    return EMPTY if value is None else value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %z")


def _number(value: float | None, unit: str = "") -> str:
    return EMPTY if value is None else f"{value:g}{unit}"


def _cells(*values: str | Cell) -> tuple[Cell, ...]:
    return tuple(v if isinstance(v, Cell) else Cell(v) for v in values)


def _yes_no(value: bool | None) -> Cell:
    if value is None:
        return Cell("unknown", alarm=True)
    return Cell("yes") if value else Cell("no", alarm=True)


def _form_bp(bp: FormBloodPressure, tz: tzinfo) -> Cell:
    late = bp.timing not in (Timing.ON_TIME, Timing.PENDING)
    if bp.reading_id is None:
        return Cell(word(bp.timing.value), alarm=late)
    after = (
        f", {bp.minutes_after_first_dose:g} min after the first dose"
        if bp.minutes_after_first_dose is not None
        else ""
    )
    return Cell(
        f"{bp.shown} at {_when(bp.measured_at, tz)}{after} (reading #{bp.reading_id}) - "
        f"{word(bp.timing.value)}",
        alarm=late,
    )


def _rems_table(form: RemsFormData, tz: tzinfo) -> Table:
    minutes = (
        EMPTY if form.total_monitoring_minutes is None else f"{form.total_monitoring_minutes} min"
    )
    if form.minimum_monitoring_met is False:
        minutes += " (under 2 hours)"
    rows = (
        ("Blood pressure prior to administration", _form_bp(form.bp_before_dosing, tz)),
        ("About 40 minutes post-administration", _form_bp(form.bp_post_dose, tz)),
        ("Prior to treatment session completion", _form_bp(form.bp_before_completion, tz)),
        (
            "Vital signs acceptable prior to administration",
            _yes_no(form.vital_signs_acceptable_before_dosing),
        ),
        (
            "Vital signs acceptable prior to completion",
            _yes_no(form.vital_signs_acceptable_at_completion),
        ),
        (
            "Total monitoring time (first administration to completion)",
            Cell(minutes, alarm=form.minimum_monitoring_met is False),
        ),
        ("Esketamine administered", Cell(_number(form.esketamine_mg, " mg"))),
    )
    return Table(
        "rems",
        "REMS patient monitoring form",
        ("Form field", "Value"),
        tuple(Row("rems-field", None, _cells(label, value)) for label, value in rows),
        "",
    )


def _protocol(record: SessionRecord) -> Protocol | None:
    try:
        return session_protocol(record)
    except ProtocolError:
        return None


def report_content(record: SessionRecord, *, now: datetime, tz: tzinfo) -> ReportContent:
    """What the report says. `now` is the generation time (and the chart's end for an
    open session); `tz` the clinic's time zone for every time shown."""
    protocol = _protocol(record)
    patient = record.patient
    readings_by_id = {r.id: r for r in record.readings}
    title = f"Session {record.id} - {patient.display_name or f'patient {patient.id}'}"

    closed = (
        f"{_when(record.closed_at, tz)} by {_text(record.closed_by)}"
        if record.closed_at
        else "open"
    )
    facts = (
        ("Patient", _text(patient.display_name)),
        ("Identifier", _text(patient.identifier)),
        ("Date of birth", _text(patient.date_of_birth)),
        ("Chair", _text(record.chair_name)),
        ("Protocol", _text(protocol.title if protocol else record.protocol)),
        ("Course session", _text(record.course_session)),
        ("Started", f"{_when(record.started_at, tz)} by {_text(record.started_by)}"),
        ("Closed", closed),
        ("Close reason", _text(record.close_reason)),
        ("Phase", _text(word(record.phase))),
    )

    doses = Table(
        "doses",
        "Doses",
        ("Given", "Drug", "Amount", "Route", "Infusion stop", "Increase", "Flags",
         "Hold override", "Recorded by"),
        tuple(
            Row("dose", d.id, _cells(
                _when(d.given_at, tz), d.drug, _number(d.amount_mg, " mg"), d.route,
                _when(d.ended_at, tz), "yes" if d.increase else "no",
                _text(words(d.flags)), _text(d.override_reason), _text(d.recorded_by),
            ))
            for d in record.doses
        ),
        "No dose recorded.",
    )  # fmt: skip

    def source(reading_source: str, by: str | None) -> str:
        shown = word(reading_source)
        return f"{shown} ({by})" if reading_source == "manual" and by else shown

    readings = Table(
        "readings",
        "Readings",
        ("#", "Measured", "Systolic", "Diastolic", "MAP", "Pulse", "Category", "Source",
         "Cuff", "Flags", "Note"),
        tuple(
            Row("reading", r.id, _cells(
                str(r.id), _when(r.measured_at, tz), _number(r.systolic, " mmHg"),
                _number(r.diastolic, " mmHg"), _number(r.mean_arterial_pressure, " mmHg"),
                _number(r.pulse_rate, "/min"), _text(word(r.category)),
                source(r.source, r.recorded_by), _text(r.device_address),
                _text(words(r.flags)),
                "" if r.valid else f"failed: {r.failure_reason or 'no values'}",
            ))
            for r in record.readings
        ),
        "No reading recorded.",
    )  # fmt: skip

    def satisfied(reading_id: int | None) -> str:
        if reading_id is None:
            return EMPTY
        reading = readings_by_id.get(reading_id)
        return f"#{reading_id} {_when(reading.measured_at, tz) if reading else ''}".strip()

    def waiver(reason: str | None, by: str | None, at: datetime | None) -> str:
        return EMPTY if reason is None else f"{reason} ({_text(by)}, {_when(at, tz)})"

    checks = Table(
        "checks",
        "Checks",
        ("Check", "Window opens", "Window closes", "Outcome", "Reading", "Waiver"),
        tuple(
            Row("check", c.id, _cells(
                c.label, _when(c.window_start, tz), _when(c.window_end, tz),
                Cell(word(c.state) + ("" if c.required else " (no longer required)"),
                     alarm=c.state == "overdue"),
                satisfied(c.satisfied_by), waiver(c.waiver_reason, c.waived_by, c.waived_at),
            ))
            for c in record.checks
        ),
        "No check recorded.",
    )  # fmt: skip

    def who_when(by: str | None, at: datetime | None) -> str:
        return EMPTY if at is None else f"{_text(by)}, {_when(at, tz)}"

    alerts = Table(
        "alerts",
        "Alerts",
        ("Raised", "Priority", "Alert", "State", "Acknowledged", "Escalated", "Resolved"),
        tuple(
            Row("alert", a.id, _cells(
                _when(a.raised_at, tz), Cell(word(a.priority), alarm=a.priority == "high"),
                a.message + (" (unverified)" if a.unverified else ""), word(a.state),
                who_when(a.acknowledged_by, a.acknowledged_at), _when(a.escalated_at, tz),
                who_when(a.resolved_by, a.resolved_at)
                + (f": {a.resolution_note}" if a.resolution_note else ""),
            ))
            for a in record.alerts
        ),
        "No alert raised.",
    )  # fmt: skip

    side_effects = Table(
        "side-effects",
        "Side effects",
        ("Observed", "Effect", "Severity", "Note", "Recorded by"),
        tuple(
            Row("side-effect", s.id, _cells(
                _when(s.observed_at, tz), word(s.effect),
                f"{s.severity} ({SEVERITY.get(s.severity, 'ungraded')})", _text(s.note),
                _text(s.recorded_by),
            ))
            for s in record.side_effects
        ),
        "No side effect logged.",
    )  # fmt: skip

    rems: Table | None = None
    problems: tuple[str, ...] = ()
    if protocol is not None:
        try:
            form = rems_form(record, now=now)
        except NotARemsSession:
            form = None
        if form is not None:
            rems, problems = _rems_table(form, tz), form.problems

    return ReportContent(
        title=title,
        facts=facts,
        chart_svg=timeline_svg(
            record, now=now, tz=tz, limits=protocol.thresholds if protocol else None
        ),
        rems=rems,
        rems_problems=problems,
        tables=(doses, readings, checks, alerts, side_effects),
        footer=f"Generated {_when(now, tz)} by vitalsd. Pressures in mmHg, pulse in beats "
        "per minute.",
    )


STYLE: Final = """
body { font-family: system-ui, sans-serif; font-size: 12px; color: #111; margin: 16px; }
h1 { font-size: 18px; margin: 0 0 4px; }
h2 { font-size: 14px; margin: 18px 0 6px; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: 2px 5px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
dl.facts { display: grid; grid-template-columns: max-content auto max-content auto;
  gap: 2px 12px; margin: 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
.alarm { color: #b00000; font-weight: 600; }
.empty { color: #666; font-style: italic; }
.footer { margin-top: 18px; color: #555; }
@media print {
  body { margin: 0; }
  h2 { break-after: avoid; }
  tr, svg { break-inside: avoid; }
}
"""


def _html_cell(cell: Cell) -> str:
    text = escape(cell.text)
    return f'<td class="alarm">{text}</td>' if cell.alarm else f"<td>{text}</td>"


def _html_table(table: Table, extra: str = "") -> str:
    if not table.rows:
        body = f'<p class="empty">{escape(table.empty)}</p>'
    else:
        head = "".join(f"<th>{escape(h)}</th>" for h in table.headers)
        rows = "".join(
            (f'<tr data-{row.kind}-id="{row.id}">' if row.id is not None else "<tr>")
            + "".join(_html_cell(c) for c in row.cells)
            + "</tr>"
            for row in table.rows
        )
        body = f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    return f'<section id="{table.section}"><h2>{escape(table.title)}</h2>{body}{extra}</section>'


def render_html(content: ReportContent) -> str:
    facts = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in content.facts)
    rems = ""
    if content.rems is not None:
        problems: Sequence[str] = content.rems_problems
        review = (
            "<p>To review before submitting:</p><ul>"
            + "".join(f"<li>{escape(p)}</li>" for p in problems)
            + "</ul>"
            if problems
            else ""
        )
        rems = _html_table(content.rems, review)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(content.title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(content.title)}</h1>"
        f'<section id="session"><dl class="facts">{facts}</dl></section>'
        f'<section id="timeline"><h2>Timeline</h2>{content.chart_svg}</section>'
        f"{rems}"
        + "".join(_html_table(table) for table in content.tables)
        + f'<p class="footer">{escape(content.footer)}</p></body></html>\n'
    )


def session_report_html(record: SessionRecord, *, now: datetime, tz: tzinfo) -> str:
    """The whole page for one session (see `report_content`)."""
    return render_html(report_content(record, now=now, tz=tz))
