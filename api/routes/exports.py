"""Clinical record exports (issue #8): FHIR R4 Bundle, CSV, printable report, REMS form.

Thin routes: authorise, read one consistent snapshot of the session, call the pure
builders in `vitalsd.exports`, return. Every route needs a token of a nurse or a
clinician (issue #8 and the brief: they may export; an admin manages equipment and
users and takes no clinical action).
"""

from __future__ import annotations

from datetime import datetime, timedelta, tzinfo
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from fastapi import APIRouter, HTTPException, Query
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.deps import ClinicDep, ClinicExporter, Context, Exporter
from api.errors import AUTH_ERRORS, CONFLICT, NOT_FOUND
from api.params import MAX_ID, IdPath
from api.schemas import TimeIn, TimeOut
from vitalsd.errors import InvalidInput
from vitalsd.exports.csv_export import readings_csv
from vitalsd.exports.fhir import DEFAULT_SITE, readings_bundle, session_bundle
from vitalsd.exports.pdf import session_report_pdf
from vitalsd.exports.query import (
    load_patients_and_devices,
    load_readings_between,
    load_session_record,
)
from vitalsd.exports.record import SessionRecord
from vitalsd.exports.rems import FormBloodPressure, NotARemsSession, Timing, rems_form
from vitalsd.exports.rems_page import rems_form_html
from vitalsd.exports.report import session_report_html

FHIR_JSON: Final = "application/fhir+json"
PDF: Final = "application/pdf"
CSV: Final = "text/csv; charset=utf-8"
# A date-range CSV reads every row into memory: a year of a busy clinic is ~10^5 rows.
MAX_CSV_RANGE: Final = timedelta(days=366)

router = APIRouter(prefix="/api", tags=["exports"], responses=AUTH_ERRORS)


def _zone(name: str) -> tzinfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput(
            f"unknown time zone {name!r}: give an IANA name such as Europe/Berlin"
        ) from None


TimeZoneQuery = Annotated[
    str | None,
    Query(
        max_length=64,
        # IANA names: letters, digits, _ + - in /-separated parts (no dots: no paths).
        pattern=r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$",
        description="IANA time zone the report shows times in (e.g. America/New_York); "
        "default: the clinic's (setting `timezone`)",
    ),
]


def _report_zone(clinic: ClinicDep, name: str | None) -> tzinfo:
    """DESIGN.md "Time": every time a person reads is in the clinic's time zone unless
    the reader asks for another."""
    return clinic.zone if name is None else _zone(name)


async def _record(clinic: ClinicDep, session_id: int) -> SessionRecord:
    async with clinic.read_snapshot() as db:
        return await load_session_record(db, session_id)


def _range_stamp(since: datetime, until: datetime) -> str:
    """A clinic export's range, bounded (one at most `MAX_CSV_RANGE` long), as its file
    names say it."""
    if until - since > MAX_CSV_RANGE:
        raise InvalidInput(f"the range may span at most {MAX_CSV_RANGE.days} days")
    return f"{since:%Y%m%dT%H%M}-{until:%Y%m%dT%H%M}"


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


@router.get(
    "/sessions/{session_id}/fhir",
    response_class=JSONResponse,
    responses={
        **NOT_FOUND,
        200: {
            "description": "A FHIR R4 Bundle (type collection): Patient, a Device per "
            "cuff, an Observation per reading (blood-pressure profile), pulse, "
            "measurement status and side effects",
            "content": {FHIR_JSON: {"schema": {"type": "object"}}},
        },
    },
)
async def session_fhir(
    session_id: IdPath, clinic: ClinicDep, context: Context, user: Exporter
) -> JSONResponse:
    record = await _record(clinic, session_id)
    bundle = session_bundle(record, now=context.clock(), site=DEFAULT_SITE, tz=clinic.zone)
    return JSONResponse(
        bundle, media_type=FHIR_JSON, headers=_attachment(f"session-{session_id}-fhir.json")
    )


@router.get(
    "/sessions/{session_id}/readings.csv",
    response_class=Response,
    responses={
        **NOT_FOUND,
        200: {"description": "One row per reading, with a header", "content": {CSV: {}}},
    },
)
async def session_readings_csv(session_id: IdPath, clinic: ClinicDep, user: Exporter) -> Response:
    record = await _record(clinic, session_id)
    return Response(
        readings_csv(record.readings, clinic.zone),
        media_type=CSV,
        headers=_attachment(f"session-{session_id}-readings.csv"),
    )


@router.get(
    "/exports/readings.csv",
    response_class=Response,
    responses={
        200: {"description": "One row per reading, with a header", "content": {CSV: {}}},
        422: {"description": "A bad range: until before since, or more than 366 days"},
    },
)
async def readings_csv_between(
    since: Annotated[TimeIn, Query(description="Measured at or after (ISO 8601 with offset)")],
    until: Annotated[TimeIn, Query(description="Measured before (ISO 8601 with offset)")],
    clinic: ClinicDep,
    user: ClinicExporter,
    patient_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    chair_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    """Readings of every session (and unattached cuff readings) in a date range."""
    stamp = _range_stamp(since, until)
    async with clinic.read_snapshot() as db:
        readings = await load_readings_between(
            db, since, until, patient_id=patient_id, chair_id=chair_id
        )
    return Response(
        readings_csv(readings, clinic.zone),
        media_type=CSV,
        headers=_attachment(f"readings-{stamp}.csv"),
    )


@router.get(
    "/exports/fhir",
    response_class=JSONResponse,
    responses={
        200: {
            "description": "A FHIR R4 Bundle (type collection) of the clinic's readings in "
            "the range: each patient and cuff once, an Observation per reading",
            "content": {FHIR_JSON: {"schema": {"type": "object"}}},
        },
        422: {"description": "A bad range: until before since, or more than 366 days"},
    },
)
async def readings_fhir_between(
    since: Annotated[TimeIn, Query(description="Measured at or after (ISO 8601 with offset)")],
    until: Annotated[TimeIn, Query(description="Measured before (ISO 8601 with offset)")],
    clinic: ClinicDep,
    context: Context,
    user: ClinicExporter,
    patient_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    chair_id: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> JSONResponse:
    """The clinic's readings of a date range as one FHIR Bundle (times in the clinic's
    time zone with its offset); readings attached to no patient are in the CSV only."""
    stamp = _range_stamp(since, until)
    async with clinic.read_snapshot() as db:
        readings = await load_readings_between(
            db, since, until, patient_id=patient_id, chair_id=chair_id
        )
        patients, devices = await load_patients_and_devices(db, readings)
    key = f"{since.isoformat()}/{until.isoformat()}/{patient_id}/{chair_id}"
    bundle = readings_bundle(
        readings, patients, devices, now=context.clock(), key=key, tz=clinic.zone
    )
    return JSONResponse(
        bundle, media_type=FHIR_JSON, headers=_attachment(f"readings-{stamp}-fhir.json")
    )


@router.get(
    "/sessions/{session_id}/report",
    response_class=HTMLResponse,
    responses={**NOT_FOUND, 200: {"description": "A printable HTML page"}},
)
async def session_report(
    session_id: IdPath,
    clinic: ClinicDep,
    context: Context,
    user: Exporter,
    tz: TimeZoneQuery = None,
) -> HTMLResponse:
    zone = _report_zone(clinic, tz)
    record = await _record(clinic, session_id)
    return HTMLResponse(session_report_html(record, now=context.clock(), tz=zone))


@router.get(
    "/sessions/{session_id}/report.pdf",
    response_class=Response,
    responses={**NOT_FOUND, 200: {"description": "The report as PDF", "content": {PDF: {}}}},
)
async def session_report_as_pdf(
    session_id: IdPath,
    clinic: ClinicDep,
    context: Context,
    user: Exporter,
    tz: TimeZoneQuery = None,
) -> Response:
    zone = _report_zone(clinic, tz)
    record = await _record(clinic, session_id)
    # Laying out a PDF takes CPU for a while: keep it off the event loop.
    pdf = await run_in_threadpool(session_report_pdf, record, now=context.clock(), tz=zone)
    return Response(pdf, media_type=PDF, headers=_attachment(f"session-{session_id}-report.pdf"))


class FormBloodPressureOut(BaseModel):
    timing: Timing = Field(description="on_time, late, early, missing or pending")
    reading_id: int | None
    systolic: float | None = Field(description="mmHg")
    diastolic: float | None = Field(description="mmHg")
    measured_at: TimeOut | None
    minutes_after_first_dose: float | None

    @classmethod
    def of(cls, bp: FormBloodPressure) -> FormBloodPressureOut:
        return cls(
            timing=bp.timing,
            reading_id=bp.reading_id,
            systolic=bp.systolic,
            diastolic=bp.diastolic,
            measured_at=bp.measured_at,
            minutes_after_first_dose=bp.minutes_after_first_dose,
        )


class RemsFormOut(BaseModel):
    """The esketamine REMS patient monitoring form's values for one session."""

    session_id: int
    first_administration_at: TimeOut | None
    completed_at: TimeOut | None
    esketamine_mg: float
    bp_before_dosing: FormBloodPressureOut
    bp_post_dose: FormBloodPressureOut = Field(description="About 40 minutes after dosing")
    bp_before_completion: FormBloodPressureOut
    vital_signs_acceptable_before_dosing: bool | None
    vital_signs_acceptable_at_completion: bool | None
    total_monitoring_minutes: int | None = Field(
        description="Whole minutes from the first administration to completion"
    )
    minimum_monitoring_met: bool | None = Field(description="At least 2 hours")
    problems: list[str] = Field(description="What to review before submitting the form")


@router.get(
    "/sessions/{session_id}/rems",
    response_model=RemsFormOut,
    responses={**NOT_FOUND, **CONFLICT},
)
async def session_rems_form(
    session_id: IdPath, clinic: ClinicDep, context: Context, user: Exporter
) -> Any:
    """409 for a session that is neither on a REMS protocol nor has an esketamine dose."""
    record = await _record(clinic, session_id)
    try:
        form = rems_form(record, now=context.clock())
    except NotARemsSession as error:
        raise HTTPException(409, str(error)) from None
    return RemsFormOut(
        session_id=form.session_id,
        first_administration_at=form.first_administration_at,
        completed_at=form.completed_at,
        esketamine_mg=form.esketamine_mg,
        bp_before_dosing=FormBloodPressureOut.of(form.bp_before_dosing),
        bp_post_dose=FormBloodPressureOut.of(form.bp_post_dose),
        bp_before_completion=FormBloodPressureOut.of(form.bp_before_completion),
        vital_signs_acceptable_before_dosing=form.vital_signs_acceptable_before_dosing,
        vital_signs_acceptable_at_completion=form.vital_signs_acceptable_at_completion,
        total_monitoring_minutes=form.total_monitoring_minutes,
        minimum_monitoring_met=form.minimum_monitoring_met,
        problems=list(form.problems),
    )


@router.get(
    "/sessions/{session_id}/rems.html",
    response_class=HTMLResponse,
    responses={
        **NOT_FOUND,
        **CONFLICT,
        200: {"description": "The REMS patient monitoring form as a printable HTML page"},
    },
)
async def session_rems_form_page(
    session_id: IdPath,
    clinic: ClinicDep,
    context: Context,
    user: Exporter,
    tz: TimeZoneQuery = None,
) -> HTMLResponse:
    """The form as a page to print (the same values as `GET .../rems`). 409 for a
    session that is neither on a REMS protocol nor has an esketamine dose."""
    zone = _report_zone(clinic, tz)
    record = await _record(clinic, session_id)
    try:
        page = rems_form_html(record, now=context.clock(), tz=zone)
    except NotARemsSession as error:
        raise HTTPException(409, str(error)) from None
    return HTMLResponse(page)
