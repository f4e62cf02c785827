"""Pages of readings by session, patient or clinic, in a time range.

`Clinic.list_readings` filters by session and start time with a row limit; the end of
the range, the patient and the page offset are applied here (readings come oldest
first, so fetching `offset + limit + 1` rows is enough to cut one page and know whether
another follows).
"""

from __future__ import annotations

from api.params import ReadingQuery
from api.schemas import ReadingOut, ReadingPage
from vitalsd.clinic import Clinic
from vitalsd.views import ReadingView

# More sessions than one patient has in years of a course.
MAX_SESSIONS_PER_PATIENT = 10_000


async def readings_page(
    clinic: Clinic,
    query: ReadingQuery,
    *,
    session_id: int | None = None,
    patient_id: int | None = None,
) -> ReadingPage:
    wanted = query.offset + query.limit + 1
    if patient_id is not None:
        sessions = await clinic.list_sessions(patient_id=patient_id, limit=MAX_SESSIONS_PER_PATIENT)
        rows: list[ReadingView] = []
        for session in sessions:
            rows.extend(
                await clinic.list_readings(session_id=session.id, since=query.since, limit=wanted)
            )
        rows.sort(key=lambda r: (r.measured_at, r.id))
    else:
        rows = await clinic.list_readings(session_id=session_id, since=query.since, limit=wanted)
    if query.until is not None:
        until = query.until
        rows = [r for r in rows if r.measured_at < until]
    page = rows[query.offset : query.offset + query.limit]
    more = len(rows) > query.offset + query.limit
    return ReadingPage(
        items=[ReadingOut.model_validate(r) for r in page],
        offset=query.offset,
        limit=query.limit,
        next_offset=query.offset + query.limit if more else None,
    )
