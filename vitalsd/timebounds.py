"""Plausible times, dates and amounts at the domain's edge (issue #17, finding 1).

Pure: every check takes `now` (and the session's span) and raises `InvalidInput` or
`Conflict` with a message that says what would be accepted. The clinic calls these
before it writes, so a backdated or future time never reaches a chart or a report.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Final

from vitalsd.domain import require_utc
from vitalsd.errors import Conflict, InvalidInput

# A session may be entered after it began (DESIGN.md: "`started_at` in the past charts a
# session begun before it was entered"), but a treatment session lasts hours: a start
# entered more than a day late is a typing error (year 1, 1900), not a late entry.
MAX_START_BACKDATE: Final = timedelta(hours=24)
# The oldest living people are under 120 (Guinness: 122); a date of birth before this
# many years ago is a typing error. The oldest accepted is 130 years back.
MAX_AGE_YEARS: Final = 130
# The longest span a timeline draws: the end of a session and this much before it. A
# session open longer (forgotten on a chair) is drawn over its last two days.
MAX_CHART_SPAN: Final = timedelta(hours=48)


@dataclass(frozen=True, slots=True)
class SessionSpan:
    """When a session began and (if it has) closed."""

    started_at: datetime
    closed_at: datetime | None = None

    def end(self, now: datetime) -> datetime:
        return self.closed_at if self.closed_at is not None else now


def session_start(started_at: datetime | None, now: datetime) -> datetime:
    """The start of a new session: `now`, or a stated time not in the future and at most
    `MAX_START_BACKDATE` before now."""
    if started_at is None:
        return now
    start = require_utc(started_at, "started_at")
    if start > now:
        raise InvalidInput("started_at is in the future")
    if start < now - MAX_START_BACKDATE:
        hours = MAX_START_BACKDATE.total_seconds() / 3600
        raise InvalidInput(
            f"started_at is more than {hours:g} hours ago ({start.isoformat()}): "
            "a session can be entered late, not a day late"
        )
    return start


def within_session(at: datetime | None, name: str, span: SessionSpan, now: datetime) -> datetime:
    """A time of something that happened in a session (`given_at`, `observed_at`,
    `measured_at`): `now` when not given; never before the session started, never in
    the future, and never after the session closed (`Conflict`: say when it happened)."""
    moment = now if at is None else require_utc(at, name)
    if moment > now:
        raise InvalidInput(f"{name} is in the future")
    if moment < span.started_at:
        raise InvalidInput(
            f"{name} ({moment.isoformat()}) is before the session started "
            f"({span.started_at.isoformat()})"
        )
    if span.closed_at is not None and moment > span.closed_at:
        raise Conflict(
            f"the session closed at {span.closed_at.isoformat()}: "
            f"give {name} at or before then to record what happened during it"
        )
    return moment


def plausible_date_of_birth(value: date, today: date) -> date:
    """A date of birth that is not in the future and not more than `MAX_AGE_YEARS` ago."""
    if value > today:
        raise InvalidInput("date_of_birth is in the future")
    oldest = _years_before(today, MAX_AGE_YEARS)
    if value < oldest:
        raise InvalidInput(
            f"date_of_birth {value.isoformat()} is more than {MAX_AGE_YEARS} years ago "
            f"(the earliest accepted is {oldest.isoformat()})"
        )
    return value


def chart_span(
    span: SessionSpan, moments: list[datetime], now: datetime, *, minimum: timedelta
) -> tuple[datetime, datetime]:
    """The time axis of a session's chart: from its start to its close (or `now`),
    stretched to a moment recorded later (a late reading's alert), at least `minimum`
    and at most `MAX_CHART_SPAN` long (the last part kept), whatever the data holds."""
    start = span.started_at
    end = span.end(now)
    later = [m for m in moments if end < m <= end + MAX_CHART_SPAN]
    if later:
        end = max(later)
    if end < start:
        end = start
    if end - start > MAX_CHART_SPAN:
        start = end - MAX_CHART_SPAN
    if end - start < minimum:
        end = start + minimum
    return start, end


def _years_before(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year - years)
    except ValueError:  # 29 February
        return day.replace(year=day.year - years, day=28)
