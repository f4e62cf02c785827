"""The printable session report: one self-contained HTML page (no script, no external
file) with patient, protocol, doses, every reading, checks with their outcome, alerts
with who acknowledged them and when, side effects, the REMS form values of an esketamine
session, and the timeline chart (issue #8, "Session report").

Pure: `session_report_html(record, now=..., tz=...)`. Times are shown in the clinic's
time zone `tz` with its UTC offset, so a printed page is unambiguous. Every text that
came from a person (names, notes, reasons, messages) is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, tzinfo
from html import escape
from typing import Final

from vitalsd.exports.record import SessionRecord
from vitalsd.exports.rems import (
    FormBloodPressure,
    NotARemsSession,
    RemsFormData,
    rems_form,
    session_protocol,
)
from vitalsd.exports.timeline import timeline_svg
from vitalsd.protocol import Protocol, ProtocolError

STYLE: Final = """
body { font-family: system-ui, sans-serif; font-size: 12px; color: #111; margin: 16px; }
h1 { font-size: 18px; margin: 0 0 4px; }
h2 { font-size: 14px; margin: 18px 0 6px; border-bottom: 1px solid #999; }
table { border-collapse: collapse; width: 100%; }
th, td { border: 1px solid #ccc; padding: 2px 5px; text-align: left; vertical-align: top; }
th { background: #f2f2f2; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
dl.facts { display: grid; grid-template-columns: max-content auto max-content auto;
  gap: 2px 12px; margin: 0; }
dl.facts dt { font-weight: 600; }
dl.facts dd { margin: 0; }
.priority-high { color: #b00000; font-weight: 600; }
.priority-medium { color: #8a6d00; font-weight: 600; }
.state-overdue, .timing-missing, .timing-late, .timing-early, .no { color: #b00000;
  font-weight: 600; }
.empty { color: #666; font-style: italic; }
.footer { margin-top: 18px; color: #555; }
@media print {
  body { margin: 0; }
  h2 { break-after: avoid; }
  tr, svg { break-inside: avoid; }
}
"""
EMPTY: Final = "-"


def _text(value: object) -> str:
    if value is None or value == "":
        return EMPTY
    return escape(str(value))


def _when(value: datetime | None, tz: tzinfo) -> str:
    if value is None:
        return EMPTY
    return escape(value.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S %z"))


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return EMPTY
    return escape(f"{value:g}{unit}")


def _table(headers: Sequence[str], rows: Iterable[tuple[str, Sequence[str]]], empty: str) -> str:
    """`rows` are (attributes of the <tr>, already-escaped cells)."""
    body = [
        f"<tr{attributes}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"
        for attributes, cells in rows
    ]
    if not body:
        return f'<p class="empty">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _facts(pairs: Sequence[tuple[str, str]]) -> str:
    items = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in pairs)
    return f'<dl class="facts">{items}</dl>'


def _yes_no(value: bool | None) -> str:
    if value is None:
        return '<span class="timing-missing">unknown</span>'
    return "yes" if value else '<span class="no">no</span>'


def _form_bp(bp: FormBloodPressure, tz: tzinfo) -> str:
    timing = f'<span class="timing-{bp.timing.value}">{escape(bp.timing.value)}</span>'
    if bp.reading_id is None:
        return timing
    after = (
        f", {bp.minutes_after_first_dose:g} min after the first dose"
        if bp.minutes_after_first_dose is not None
        else ""
    )
    return (
        f"{escape(bp.shown)} at {_when(bp.measured_at, tz)}{escape(after)} "
        f"(reading #{bp.reading_id}) - {timing}"
    )


def _rems_section(form: RemsFormData, tz: tzinfo) -> str:
    minutes = (
        EMPTY if form.total_monitoring_minutes is None else f"{form.total_monitoring_minutes} min"
    )
    rows: list[tuple[str, Sequence[str]]] = [
        ("", ["Blood pressure prior to administration", _form_bp(form.bp_before_dosing, tz)]),
        ("", ["About 40 minutes post-administration", _form_bp(form.bp_post_dose, tz)]),
        (
            "",
            [
                "Prior to treatment session completion",
                _form_bp(form.bp_before_completion, tz),
            ],
        ),
        (
            "",
            [
                "Vital signs acceptable prior to administration",
                _yes_no(form.vital_signs_acceptable_before_dosing),
            ],
        ),
        (
            "",
            [
                "Vital signs acceptable prior to completion",
                _yes_no(form.vital_signs_acceptable_at_completion),
            ],
        ),
        (
            "",
            [
                "Total monitoring time (first administration to completion)",
                escape(minutes)
                + (
                    ""
                    if form.minimum_monitoring_met is not False
                    else ' <span class="no">(under 2 hours)</span>'
                ),
            ],
        ),
        ("", ["Esketamine administered", _number(form.esketamine_mg, " mg")]),
    ]
    problems = "".join(f"<li>{escape(p)}</li>" for p in form.problems)
    return (
        '<section id="rems"><h2>REMS patient monitoring form</h2>'
        + _table(["Form field", "Value"], rows, "")
        + (f"<p>To review before submitting:</p><ul>{problems}</ul>" if problems else "")
        + "</section>"
    )


def _protocol(record: SessionRecord) -> Protocol | None:
    try:
        return session_protocol(record)
    except ProtocolError:
        return None


def session_report_html(record: SessionRecord, *, now: datetime, tz: tzinfo) -> str:
    """The whole page. `now` is the generation time (and the chart's end for an open
    session); `tz` the clinic's time zone for every time shown."""
    protocol = _protocol(record)
    patient = record.patient
    readings_by_id = {r.id: r for r in record.readings}
    title = f"Session {record.id} - {patient.display_name or f'patient {patient.id}'}"

    facts = _facts(
        [
            ("Patient", _text(patient.display_name)),
            ("Identifier", _text(patient.identifier)),
            ("Date of birth", _text(patient.date_of_birth)),
            ("Chair", _text(record.chair_name)),
            ("Protocol", _text(protocol.title if protocol else record.protocol)),
            ("Course session", _text(record.course_session)),
            ("Started", f"{_when(record.started_at, tz)} by {_text(record.started_by)}"),
            (
                "Closed",
                f"{_when(record.closed_at, tz)} by {_text(record.closed_by)}"
                if record.closed_at
                else "open",
            ),
            ("Close reason", _text(record.close_reason)),
            ("Phase", _text(record.phase)),
        ]
    )

    doses = _table(
        [
            "Given",
            "Drug",
            "Amount",
            "Route",
            "Infusion stop",
            "Increase",
            "Flags",
            "Hold override",
            "Recorded by",
        ],
        (
            (
                f' data-dose-id="{d.id}"',
                [
                    _when(d.given_at, tz),
                    _text(d.drug),
                    _number(d.amount_mg, " mg"),
                    _text(d.route),
                    _when(d.ended_at, tz),
                    "yes" if d.increase else "no",
                    _text(", ".join(d.flags)),
                    _text(d.override_reason),
                    _text(d.recorded_by),
                ],
            )
            for d in record.doses
        ),
        "No dose recorded.",
    )

    readings = _table(
        [
            "#",
            "Measured",
            "Systolic",
            "Diastolic",
            "MAP",
            "Pulse",
            "Category",
            "Source",
            "Cuff",
            "Flags",
            "Note",
        ],
        (
            (
                f' data-reading-id="{r.id}"',
                [
                    str(r.id),
                    _when(r.measured_at, tz),
                    _number(r.systolic, " mmHg"),
                    _number(r.diastolic, " mmHg"),
                    _number(r.mean_arterial_pressure, " mmHg"),
                    _number(r.pulse_rate, "/min"),
                    _text(r.category),
                    _text(
                        f"{r.source} ({r.recorded_by})"
                        if r.source == "manual" and r.recorded_by
                        else r.source
                    ),
                    _text(r.device_address),
                    _text(", ".join(f.replace("_", " ") for f in r.flags)),
                    "" if r.valid else _text(f"failed: {r.failure_reason or 'no values'}"),
                ],
            )
            for r in record.readings
        ),
        "No reading recorded.",
    )

    def satisfied(reading_id: int | None) -> str:
        if reading_id is None:
            return EMPTY
        reading = readings_by_id.get(reading_id)
        when = _when(reading.measured_at, tz) if reading else ""
        return f"#{reading_id} {when}"

    checks = _table(
        ["Check", "Window opens", "Window closes", "Outcome", "Reading", "Waiver"],
        (
            (
                f' data-check-id="{c.id}"',
                [
                    _text(c.label),
                    _when(c.window_start, tz),
                    _when(c.window_end, tz),
                    f'<span class="state-{escape(c.state)}">{escape(c.state)}</span>'
                    + ("" if c.required else " (no longer required)"),
                    satisfied(c.satisfied_by),
                    EMPTY
                    if c.waiver_reason is None
                    else f"{_text(c.waiver_reason)} ({_text(c.waived_by)}, "
                    f"{_when(c.waived_at, tz)})",
                ],
            )
            for c in record.checks
        ),
        "No check recorded.",
    )

    alerts = _table(
        ["Raised", "Priority", "Alert", "State", "Acknowledged", "Escalated", "Resolved"],
        (
            (
                f' data-alert-id="{a.id}"',
                [
                    _when(a.raised_at, tz),
                    f'<span class="priority-{escape(a.priority)}">{escape(a.priority)}</span>',
                    f"{_text(a.message)}" + (" (unverified)" if a.unverified else ""),
                    _text(a.state),
                    EMPTY
                    if a.acknowledged_at is None
                    else f"{_text(a.acknowledged_by)}, {_when(a.acknowledged_at, tz)}",
                    _when(a.escalated_at, tz),
                    EMPTY
                    if a.resolved_at is None
                    else f"{_text(a.resolved_by)}, {_when(a.resolved_at, tz)}"
                    + (f": {_text(a.resolution_note)}" if a.resolution_note else ""),
                ],
            )
            for a in record.alerts
        ),
        "No alert raised.",
    )

    side_effects = _table(
        ["Observed", "Effect", "Severity", "Note", "Recorded by"],
        (
            (
                f' data-side-effect-id="{s.id}"',
                [
                    _when(s.observed_at, tz),
                    _text(s.effect.replace("_", " ")),
                    _text(s.severity),
                    _text(s.note),
                    _text(s.recorded_by),
                ],
            )
            for s in record.side_effects
        ),
        "No side effect logged.",
    )

    rems = ""
    if protocol is not None:
        try:
            rems = _rems_section(rems_form(record, now=now), tz)
        except NotARemsSession:
            rems = ""

    chart = timeline_svg(record, now=now, tz=tz, limits=protocol.thresholds if protocol else None)

    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f'<section id="session">{facts}</section>'
        f'<section id="timeline"><h2>Timeline</h2>{chart}</section>'
        f"{rems}"
        f'<section id="doses"><h2>Doses</h2>{doses}</section>'
        f'<section id="readings"><h2>Readings</h2>{readings}</section>'
        f'<section id="checks"><h2>Checks</h2>{checks}</section>'
        f'<section id="alerts"><h2>Alerts</h2>{alerts}</section>'
        f'<section id="side-effects"><h2>Side effects</h2>{side_effects}</section>'
        f'<p class="footer">Generated {_when(now, tz)} by vitalsd. Pressures in mmHg, '
        "pulse in beats per minute.</p>"
        "</body></html>\n"
    )
