"""The esketamine REMS patient monitoring form as a printable page (issue #14: the form
a clinic fills in, not the JSON of `GET /api/sessions/{id}/rems`).

Pure: `rems_form_html(record, now=..., tz=...)` lays out the same fields, in the form's
order and words, as the session report's REMS section (`vitalsd.exports.report`), with
the patient and session the form is about and what to review before submitting it.
Every text is HTML-escaped; no script, no external file.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from html import escape

from vitalsd.exports.record import SessionRecord
from vitalsd.exports.rems import rems_form
from vitalsd.exports.report import STYLE, _html_table, _rems_table, _text, _when


def rems_form_html(record: SessionRecord, *, now: datetime, tz: tzinfo) -> str:
    """The form page; raises `NotARemsSession` for a session the form is not about."""
    form = rems_form(record, now=now)
    patient = record.patient
    title = f"REMS patient monitoring form - session {record.id}"
    facts = (
        ("Patient", _text(patient.display_name)),
        ("Identifier", _text(patient.identifier)),
        ("Date of birth", _text(patient.date_of_birth)),
        ("Treatment session", f"{_text(record.course_session)} of the course"),
        ("First administration", _when(form.first_administration_at, tz)),
        ("Monitoring completed", _when(form.completed_at, tz)),
    )
    review = (
        '<section id="review"><h2>To review before submitting</h2><ul>'
        + "".join(f"<li>{escape(p)}</li>" for p in form.problems)
        + "</ul></section>"
        if form.problems
        else '<p class="ready">Every field is filled in.</p>'
    )
    dl = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in facts)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{escape(title)}</h1>"
        f'<section id="session"><dl class="facts">{dl}</dl></section>'
        f"{_html_table(_rems_table(form, tz))}{review}"
        f'<p class="footer">Generated {escape(_when(now, tz))} by vitalsd. '
        "Pressures in mmHg.</p></body></html>\n"
    )
