"""The session timeline chart as SVG: blood pressure and pulse over time, with doses,
check windows, alerts and side effects beside them (DESIGN.md "Side effects ... appear
on the session timeline beside the blood pressure").

Pure: `timeline_svg(record, now=..., tz=...)` returns the SVG text. Drawn by hand (no
plotting library) so that it prints crisply, needs no JavaScript and is testable as XML.
Blood pressure is drawn the way anaesthesia records draw it: per reading a bar from
diastolic to systolic, lines joining the systolics and the diastolics; the pulse as dots
on the same scale (mmHg and beats per minute share the 40-200 range).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from html import escape
from typing import Final

from vitalsd.exports.record import CheckRecord, SessionRecord
from vitalsd.protocol import ThresholdLimits
from vitalsd.timebounds import SessionSpan, chart_span

WIDTH: Final = 960
HEIGHT: Final = 380
LEFT: Final = 72
RIGHT: Final = 24
TOP: Final = 28
PLOT_BOTTOM: Final = 290
EFFECTS_ROW: Final = 318
AXIS_LABELS: Final = 345
Y_MIN_DEFAULT: Final = 40.0
Y_MAX_DEFAULT: Final = 200.0

# IEC 60601-1-8 alarm colours: high red, medium yellow, low cyan (DESIGN.md "Alerts").
PRIORITY_COLOURS: Final = {"high": "#d62728", "medium": "#e6b000", "low": "#17becf"}
CHECK_COLOURS: Final = {
    "satisfied": "#2ca02c",
    "overdue": "#d62728",
    "waived": "#7f7f7f",
    "due": "#1f77b4",
    "pending": "#1f77b4",
}
SYSTOLIC_COLOUR: Final = "#b2182b"
DIASTOLIC_COLOUR: Final = "#2166ac"
PULSE_COLOUR: Final = "#333333"
# Candidate tick spacings, smallest first; the first giving at most ~12 ticks is used.
TICK_STEPS: Final = tuple(
    timedelta(minutes=m) for m in (5, 10, 15, 30, 60, 120, 240, 480, 720, 1440)
)


@dataclass(frozen=True)
class _Scale:
    start: datetime
    end: datetime
    low: float
    high: float

    def x(self, at: datetime) -> float:
        span = (self.end - self.start).total_seconds() or 1.0
        fraction = (at - self.start).total_seconds() / span
        return round(LEFT + fraction * (WIDTH - LEFT - RIGHT), 1)

    def shows(self, at: datetime) -> bool:
        """Whether `at` falls on the axis (a time outside the session's span, from data
        stored before validation bounded it, is listed in the report, not drawn)."""
        return self.start <= at <= self.end

    def y(self, value: float) -> float:
        fraction = (value - self.low) / (self.high - self.low)
        return round(PLOT_BOTTOM - fraction * (PLOT_BOTTOM - TOP), 1)


def _time_span(record: SessionRecord, now: datetime) -> tuple[datetime, datetime]:
    """The session's span (issue #17: bounded whatever the data holds, so a year-1 time
    cannot make the axis millennia long and the chart hundreds of thousands of ticks)."""
    moments = [r.measured_at for r in record.readings]
    moments += [d.given_at for d in record.doses]
    moments += [d.ended_at for d in record.doses if d.ended_at is not None]
    moments += [s.observed_at for s in record.side_effects]
    moments += [a.raised_at for a in record.alerts]
    span = SessionSpan(record.started_at, record.closed_at)
    return chart_span(span, moments, now, minimum=timedelta(minutes=30))


def _value_span(record: SessionRecord) -> tuple[float, float]:
    values = [Y_MIN_DEFAULT, Y_MAX_DEFAULT]
    for reading in record.readings:
        for value in (reading.systolic, reading.diastolic, reading.pulse_rate):
            if reading.valid and value is not None:
                values.append(value)
    low, high = min(values), max(values)
    return (low // 10) * 10, -(-high // 10) * 10


def _tick_step(span: timedelta) -> timedelta:
    for step in TICK_STEPS:
        if span / step <= 12:
            return step
    return TICK_STEPS[-1]


def _clock(at: datetime, tz: tzinfo) -> str:
    return at.astimezone(tz).strftime("%H:%M")


def _title(text: str) -> str:
    return f"<title>{escape(text)}</title>"


def _check_band(check: CheckRecord, scale: _Scale) -> str:
    if check.window_start is None:
        return ""
    start = max(check.window_start, scale.start)
    end = min(check.window_end or scale.end, scale.end)
    if end <= start:
        return ""
    x0, x1 = scale.x(start), scale.x(end)
    colour = CHECK_COLOURS.get(check.state, "#1f77b4")
    return (
        f'<rect class="check-window" data-check-id="{check.id}" x="{x0}" y="{TOP}" '
        f'width="{round(max(x1 - x0, 1.0), 1)}" height="{PLOT_BOTTOM - TOP}" '
        f'fill="{colour}" fill-opacity="0.10" stroke="{colour}" stroke-opacity="0.4">'
        f"{_title(f'{check.label}: {check.state}')}</rect>"
    )


def _legend() -> str:
    x, y = WIDTH - RIGHT - 430, HEIGHT - 8
    return (
        f'<g class="legend" font-size="10">'
        f'<circle cx="{x}" cy="{y - 3}" r="4" fill="{SYSTOLIC_COLOUR}"/>'
        f'<text x="{x + 7}" y="{y}">systolic</text>'
        f'<circle cx="{x + 60}" cy="{y - 3}" r="4" fill="{DIASTOLIC_COLOUR}"/>'
        f'<text x="{x + 67}" y="{y}">diastolic</text>'
        f'<rect x="{x + 123}" y="{y - 6}" width="5" height="5" fill="{PULSE_COLOUR}"/>'
        f'<text x="{x + 131}" y="{y}">pulse</text>'
        f'<circle cx="{x + 172}" cy="{y - 3}" r="4" fill="#fff" stroke="#555"/>'
        f'<text x="{x + 179}" y="{y}">cuff flagged</text>'
        f'<text x="{x + 245}" y="{y}" fill="#7f7f7f">× failed</text>'
        f'<path d="M{x + 292},{y - 8} L{x + 302},{y - 8} L{x + 297},{y} Z" fill="#d62728"/>'
        f'<text x="{x + 306}" y="{y}">alert</text>'
        f'<rect x="{x + 338}" y="{y - 8}" width="10" height="8" fill="#2ca02c" '
        f'fill-opacity="0.2"/><text x="{x + 351}" y="{y}">check window</text>'
        "</g>"
    )


def timeline_svg(
    record: SessionRecord,
    *,
    now: datetime,
    tz: tzinfo,
    limits: ThresholdLimits | None = None,
) -> str:
    """The chart for one session. `now` ends the time axis of a session still open;
    `tz` is the clinic's time zone for the axis labels; `limits` draws threshold lines."""
    start, end = _time_span(record, now)
    low, high = _value_span(record)
    scale = _Scale(start, end, low, high)
    parts: list[str] = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" '
        f'viewBox="0 0 {WIDTH} {HEIGHT}" width="100%" '
        f'aria-label="Blood pressure, pulse, doses and side effects over the session">',
        '<rect x="0" y="0" width="100%" height="100%" fill="#ffffff"/>',
    ]

    for check in record.checks:
        parts.append(_check_band(check, scale))

    # Horizontal grid and value labels every 20.
    value = (low // 20) * 20
    while value <= high:
        if value >= low:
            y = scale.y(value)
            parts.append(
                f'<line x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" y2="{y}" stroke="#e0e0e0"/>'
                f'<text x="{LEFT - 6}" y="{y + 4}" text-anchor="end" font-size="11">'
                f"{value:g}</text>"
            )
        value += 20
    parts.append(
        f'<text x="12" y="{TOP - 10}" font-size="11">mmHg · /min</text>'
        f'<line x1="{LEFT}" y1="{PLOT_BOTTOM}" x2="{WIDTH - RIGHT}" y2="{PLOT_BOTTOM}" '
        'stroke="#333"/>'
    )

    if limits is not None:
        for name, limit, colour in (
            ("severe", limits.severe_systolic, PRIORITY_COLOURS["high"]),
            ("dosing hold", limits.hold_systolic, PRIORITY_COLOURS["high"]),
            ("elevated", limits.elevated_systolic, PRIORITY_COLOURS["low"]),
            ("hypotension", limits.hypotension_systolic, PRIORITY_COLOURS["medium"]),
        ):
            if low <= limit <= high:
                y = scale.y(limit)
                parts.append(
                    f'<line class="threshold" x1="{LEFT}" y1="{y}" x2="{WIDTH - RIGHT}" '
                    f'y2="{y}" stroke="{colour}" stroke-dasharray="4 4">'
                    f"{_title(f'{name}: systolic {limit:g} mmHg')}</line>"
                )

    # Time axis.
    step = _tick_step(end - start)
    local_start = start.astimezone(tz)
    first = local_start.replace(minute=0, second=0, microsecond=0)
    tick = first
    while tick <= end:
        if tick >= start:
            x = scale.x(tick)
            parts.append(
                f'<line x1="{x}" y1="{PLOT_BOTTOM}" x2="{x}" y2="{PLOT_BOTTOM + 5}" '
                f'stroke="#333"/><text x="{x}" y="{AXIS_LABELS}" text-anchor="middle" '
                f'font-size="11">{_clock(tick, tz)}</text>'
            )
        tick += step

    for dose in record.doses:
        if not scale.shows(dose.given_at):
            continue
        x = scale.x(dose.given_at)
        label = f"{dose.amount_mg:g} mg {dose.drug} {dose.route}"
        if dose.ended_at is not None and dose.ended_at > dose.given_at:
            x1 = scale.x(min(dose.ended_at, scale.end))
            parts.append(
                f'<rect x="{x}" y="{TOP}" width="{round(x1 - x, 1)}" height="6" fill="#6a3d9a"/>'
            )
        parts.append(
            f'<g class="dose" data-dose-id="{dose.id}">{_title(label)}'
            f'<line x1="{x}" y1="{TOP}" x2="{x}" y2="{PLOT_BOTTOM}" stroke="#6a3d9a" '
            f'stroke-width="2"/><text x="{x + 3}" y="{TOP - 4}" font-size="11" '
            f'fill="#6a3d9a">{escape(label)}</text></g>'
        )

    valid = [
        r
        for r in record.readings
        if r.valid
        and r.systolic is not None
        and r.diastolic is not None
        and scale.shows(r.measured_at)
    ]
    for series, colour, name in (
        ([(r.measured_at, r.systolic) for r in valid], SYSTOLIC_COLOUR, "systolic"),
        ([(r.measured_at, r.diastolic) for r in valid], DIASTOLIC_COLOUR, "diastolic"),
    ):
        if len(series) > 1:
            points = " ".join(f"{scale.x(t)},{scale.y(v)}" for t, v in series if v is not None)
            parts.append(
                f'<polyline class="{name}" points="{points}" fill="none" '
                f'stroke="{colour}" stroke-width="1.5"/>'
            )
    for reading in valid:
        assert reading.systolic is not None and reading.diastolic is not None
        x = scale.x(reading.measured_at)
        ys, yd = scale.y(reading.systolic), scale.y(reading.diastolic)
        flagged = bool(reading.flags)
        fill = "#ffffff" if flagged else None
        flags = f" - flags: {', '.join(reading.flags)}" if flagged else ""
        pulse = f", pulse {reading.pulse_rate:g}/min" if reading.pulse_rate is not None else ""
        text = (
            f"{_clock(reading.measured_at, tz)} {reading.systolic:g}/{reading.diastolic:g} "
            f"mmHg{pulse} ({reading.source}){flags}"
        )
        parts.append(
            f'<g class="reading" data-reading-id="{reading.id}">{_title(text)}'
            f'<line x1="{x}" y1="{ys}" x2="{x}" y2="{yd}" stroke="#555" stroke-width="2"/>'
            f'<circle cx="{x}" cy="{ys}" r="4" fill="{fill or SYSTOLIC_COLOUR}" '
            f'stroke="{SYSTOLIC_COLOUR}" stroke-width="1.5"/>'
            f'<circle cx="{x}" cy="{yd}" r="4" fill="{fill or DIASTOLIC_COLOUR}" '
            f'stroke="{DIASTOLIC_COLOUR}" stroke-width="1.5"/>'
        )
        if reading.pulse_rate is not None:
            parts.append(
                f'<rect class="pulse" x="{x - 2.5}" y="{scale.y(reading.pulse_rate) - 2.5}" '
                f'width="5" height="5" fill="{PULSE_COLOUR}"/>'
            )
        parts.append("</g>")
    for reading in record.readings:
        if reading.valid or not scale.shows(reading.measured_at):
            continue
        x = scale.x(reading.measured_at)
        reason = reading.failure_reason or "failed measurement"
        parts.append(
            f'<g class="failed-reading" data-reading-id="{reading.id}">'
            f"{_title(f'{_clock(reading.measured_at, tz)} {reason}')}"
            f'<text x="{x}" y="{PLOT_BOTTOM - 4}" text-anchor="middle" font-size="14" '
            f'fill="#7f7f7f">×</text></g>'
        )

    for alert in record.alerts:
        if not scale.shows(alert.raised_at):
            continue
        x = scale.x(alert.raised_at)
        colour = PRIORITY_COLOURS.get(alert.priority, "#7f7f7f")
        who = f"; acknowledged by {alert.acknowledged_by}" if alert.acknowledged_by else ""
        parts.append(
            f'<path class="alert" data-alert-id="{alert.id}" '
            f'd="M{x - 6},{TOP + 2} L{x + 6},{TOP + 2} L{x},{TOP + 12} Z" fill="{colour}">'
            f"{_title(f'{_clock(alert.raised_at, tz)} {alert.priority}: {alert.message}{who}')}"
            "</path>"
        )

    parts.append(f'<text x="4" y="{EFFECTS_ROW + 4}" font-size="11">side effects</text>')
    parts.append(_legend())
    for effect in record.side_effects:
        if not scale.shows(effect.observed_at):
            continue
        x = scale.x(effect.observed_at)
        label = f"{effect.effect.replace('_', ' ')} ({effect.severity})"
        parts.append(
            f'<g class="side-effect" data-side-effect-id="{effect.id}">'
            f"{_title(f'{_clock(effect.observed_at, tz)} {label}')}"
            f'<path d="M{x},{EFFECTS_ROW - 6} L{x + 6},{EFFECTS_ROW} L{x},{EFFECTS_ROW + 6} '
            f'L{x - 6},{EFFECTS_ROW} Z" fill="#ff7f0e"/>'
            f'<text x="{x + 8}" y="{EFFECTS_ROW + 4}" font-size="10">{escape(label)}</text></g>'
        )

    parts.append("</svg>")
    return "".join(part for part in parts if part)
