"""Properties of the schedule that the timer loop relies on, over generated sessions."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.core.clinic_time import at, dose, facts, reading
from vitalsd.domain import CheckState, SessionFacts
from vitalsd.protocol import PRESETS, load_protocol
from vitalsd.schedule import CheckSchedule

SCHEDULES = {name: CheckSchedule(load_protocol(name)) for name in PRESETS}


@st.composite
def sessions(draw: st.DrawFn) -> tuple[str, SessionFacts, float]:
    preset = draw(st.sampled_from(PRESETS))
    dose_times = sorted(draw(st.lists(st.integers(1, 120), max_size=3, unique=True)))
    doses = []
    for start in dose_times:
        stop = draw(st.one_of(st.none(), st.integers(start, start + 90)))
        doses.append(dose(start, stopped=stop, increase=draw(st.booleans())))
    readings = [
        reading(minute, systolic, systolic - draw(st.integers(30, 60)))
        for minute, systolic in draw(
            st.lists(st.tuples(st.integers(0, 300), st.integers(100, 200)), max_size=12)
        )
    ]
    now = draw(st.integers(0, 360)) + draw(st.sampled_from([0, 0.25, 0.5]))
    course = draw(st.integers(1, 4))
    return preset, facts(*readings, *doses, course_session=course), now


@settings(max_examples=200, deadline=None)
@given(sessions())
def test_states_hold_until_the_next_change(case: tuple[str, SessionFacts, float]) -> None:
    """Between `now` and `next_change(now)` nothing changes: sleeping until then misses
    nothing (DESIGN.md: the loop wakes at the next window edge, it does not poll)."""
    preset, session, now = case
    schedule = SCHEDULES[preset]
    edge = schedule.next_change(session, at(now))
    # The last instant before the edge (times resolve to the microsecond, as stored).
    later = at(now) + timedelta(minutes=600) if edge is None else edge - timedelta(microseconds=1)
    assert schedule.checks(session, at(now)) == schedule.checks(session, later)
    assert schedule.phase(session, at(now)) == schedule.phase(session, later)


@settings(max_examples=200, deadline=None)
@given(sessions())
def test_satisfied_checks_name_a_valid_reading_inside_their_window(
    case: tuple[str, SessionFacts, float],
) -> None:
    preset, session, now = case
    by_id = {r.id: r for r in session.readings}
    for check in SCHEDULES[preset].checks(session, at(now)):
        if check.window_start is not None and check.window_end is not None:
            assert check.window_start <= check.window_end
        if check.state is CheckState.SATISFIED:
            taken = by_id[check.satisfied_by].measured_at
            assert check.window_start is not None and check.window_start <= taken
            assert check.window_end is None or taken <= check.window_end


@settings(max_examples=200, deadline=None)
@given(sessions())
def test_check_keys_are_unique(case: tuple[str, SessionFacts, float]) -> None:
    preset, session, now = case
    keys = [c.key for c in SCHEDULES[preset].checks(session, at(now))]
    assert len(keys) == len(set(keys))
