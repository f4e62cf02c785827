"""A session as the rules see it, loaded from its rows in a fixed number of queries
(however many sessions), and shown as the API's `SessionView`; the readers and the
writer load it alike."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, tzinfo

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from vitalsd import views
from vitalsd.domain import ObservedSideEffect, SessionFacts, SideEffect
from vitalsd.protocol import Protocol, parse_protocol
from vitalsd.schedule import CheckSchedule, next_check
from vitalsd.store import models

from .lookups import open_alerts_of, rows_by_session
from .rows import check_view, dose_facts, reading_facts


@dataclass
class SessionState:
    """A session as the rules see it, loaded in one go. The writer keeps it between
    transactions (`WriterMemory`); `alert_rows` (open alerts by condition) is loaded for
    the writer only."""

    row: models.Session
    protocol: Protocol
    schedule: CheckSchedule
    facts: SessionFacts
    check_rows: dict[str, models.Check]
    alert_rows: dict[str, models.Alert] = field(default_factory=dict)

    def add_reading(self, reading: models.Reading) -> None:
        """The writer stored `reading` in this session: the facts include it, in the
        order a reload would give (measured_at, id)."""
        readings = sorted(
            (*self.facts.readings, reading_facts(reading)),
            key=lambda r: (r.measured_at, r.id or 0),
        )
        self.facts = replace(self.facts, readings=tuple(readings))

    def view(self, now: datetime) -> views.SessionView:
        """The session as the API and `session_updated` show it at `now`."""
        row = self.row
        baseline = self.schedule.baseline(self.facts)
        upcoming = next_check(
            c for c in self.schedule.checks(self.facts, now) if c.key in self.check_rows
        )
        valid_times = [r.measured_at for r in self.facts.readings if r.valid]
        return views.SessionView(
            id=row.id,
            patient_id=row.patient_id,
            chair_id=row.chair_id,
            protocol=row.protocol,
            phase=row.phase,
            course_session=row.course_session,
            started_at=row.started_at,
            started_by=row.started_by,
            closed_at=row.closed_at,
            closed_by=row.closed_by,
            close_reason=row.close_reason,
            baseline=None
            if baseline is None
            else views.BaselineView(
                baseline.systolic, baseline.diastolic, baseline.confirmed, baseline.reading_ids
            ),
            next_check=None
            if upcoming is None
            else check_view(self.check_rows[upcoming.key], row.chair_id),
            last_reading_at=max(valid_times, default=None),
        )


class SessionLoader:
    """Loads session states; parses each distinct protocol text once (a session keeps
    the protocol it was started with, as TOML)."""

    def __init__(self, zone: tzinfo = UTC) -> None:
        self._parsed: dict[str, Protocol] = {}
        self.zone = zone

    def protocol_of(self, row: models.Session) -> Protocol:
        cached = self._parsed.get(row.protocol_toml)
        if cached is None:
            cached = parse_protocol(row.protocol_toml, f"session {row.id} protocol")
            self._parsed[row.protocol_toml] = cached
        return cached

    async def load(
        self, session: AsyncSession, row: models.Session, *, with_alerts: bool = False
    ) -> SessionState:
        return (await self.load_many(session, [row], with_alerts=with_alerts))[0]

    async def load_many(
        self, session: AsyncSession, rows: Sequence[models.Session], *, with_alerts: bool = False
    ) -> list[SessionState]:
        """The states of `rows` in a fixed number of queries, however many sessions."""
        if not rows:
            return []
        ids = [r.id for r in rows]
        births = {
            patient_id: born
            for patient_id, born in await session.execute(
                select(models.Patient.id, models.Patient.date_of_birth).where(
                    models.Patient.id.in_({r.patient_id for r in rows})
                )
            )
        }
        doses = await rows_by_session(session, models.Dose, ids, models.Dose.id)
        readings = await rows_by_session(
            session, models.Reading, ids, models.Reading.measured_at, models.Reading.id
        )
        effects = await rows_by_session(
            session, models.SideEffect, ids, models.SideEffect.observed_at, models.SideEffect.id
        )
        checks: dict[int, dict[str, models.Check]] = {i: {} for i in ids}
        for check in await session.scalars(
            select(models.Check).where(models.Check.session_id.in_(ids))
        ):
            checks[check.session_id][check.key] = check
        alerts: dict[int, dict[str, models.Alert]] = {i: {} for i in ids}
        if with_alerts:
            for alert in await session.scalars(open_alerts_of(ids)):
                assert alert.session_id is not None
                alerts[alert.session_id][alert.condition] = alert
        states = []
        for row in rows:
            protocol = self.protocol_of(row)
            check_rows = checks[row.id]
            facts = SessionFacts(
                started_at=row.started_at,
                course_session=row.course_session,
                doses=tuple(dose_facts(d) for d in doses[row.id]),
                readings=tuple(reading_facts(r) for r in readings[row.id]),
                waivers=tuple(
                    (c.key, c.waiver_reason)
                    for c in check_rows.values()
                    if c.waived_by is not None and c.waiver_reason is not None
                ),
                closed_at=row.closed_at,
                date_of_birth=births.get(row.patient_id),
                zone=self.zone,
                side_effects=tuple(
                    ObservedSideEffect(
                        e.id, SideEffect(e.effect), e.severity, e.observed_at, e.recorded_at
                    )
                    for e in effects[row.id]
                ),
            )
            states.append(
                SessionState(
                    row, protocol, CheckSchedule(protocol), facts, check_rows, alerts[row.id]
                )
            )
        return states
