"""Technical alarms: what the equipment, not the patient, tells the ward (DESIGN.md
"Interfaces": `cuff_offline`, `cuff_clock_off`, ...). Pure: the findings and the words."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from vitalsd.domain import AlertKind, Priority
from vitalsd.thresholds import Finding

CUFF_OFFLINE_CONDITION = AlertKind.CUFF_OFFLINE.value


def _clock(at: datetime, zone: tzinfo) -> str:
    """A time of day as the ward reads it: the clinic's zone, named ("14:05:09 CET")."""
    local = at.astimezone(zone)
    return f"{local:%H:%M:%S} {local.tzname() or ''}".rstrip()


def cuff_offline(
    cuff: str,
    chair: str,
    since: datetime,
    reason: str,
    advice: str,
    attempts: int,
    zone: tzinfo = UTC,
) -> Finding:
    """A known cuff of a chair in session advertises but cannot be connected: it may be
    holding a reading (a severe one, for all we know), so medium priority, with the
    advice that gets it connected (issue #18)."""
    return Finding(
        AlertKind.CUFF_OFFLINE,
        Priority.MEDIUM,
        f"Cuff {cuff} on {chair}: advertising but cannot be connected since "
        f"{_clock(since, zone)} ({attempts} attempts; {reason}). {advice}",
    )


# -- cuff_offline, second cause: a cuff of a chair in session silent (issue #15) ----------

# A silent cuff's condition: beside the unreachable one (`cuff_offline`), so each cause
# clears only its own alert; the shell raises it only when no cuff_offline alert of the
# session is open already (one alert per cuff, never a duplicate).
CUFF_SILENT_SUBJECT = "silent"
CUFF_SILENT_CONDITION = f"{CUFF_OFFLINE_CONDITION}:{CUFF_SILENT_SUBJECT}"
CUFF_OFFLINE_CONDITIONS = frozenset({CUFF_OFFLINE_CONDITION, CUFF_SILENT_CONDITION})


def silence_began(last_heard: datetime | None, session_started: datetime) -> datetime:
    """Since when the cuff of a chair in session counts as silent: its last sign of life
    (advertisement, connection, status or reading), but never before the session began
    (a cuff switched off overnight is not silent before anyone needs it)."""
    return session_started if last_heard is None else max(last_heard, session_started)


def silence_deadline(
    last_heard: datetime | None, session_started: datetime, after: timedelta
) -> datetime:
    """When the cuff counts as offline if nothing is heard from it before."""
    return silence_began(last_heard, session_started) + after


def is_silent(
    last_heard: datetime | None, session_started: datetime, now: datetime, after: timedelta
) -> bool:
    return now >= silence_deadline(last_heard, session_started, after)


def cuff_silent(
    cuff: str, chair: str, since: datetime, after: timedelta, zone: tzinfo = UTC
) -> Finding:
    """Nothing heard from the cuff of a chair in session for `after`: out of range, flat
    or switched off, so the next check will find no reading. Medium, like the unreachable
    cuff: the nurse can take a manual reading meanwhile."""
    minutes = int(after.total_seconds() // 60)
    return Finding(
        AlertKind.CUFF_OFFLINE,
        Priority.MEDIUM,
        f"Cuff {cuff} on {chair}: nothing heard from it since {_clock(since, zone)} "
        f"(over {minutes} min). Check it is switched on, charged and near the tablet; "
        "take a manual reading meanwhile.",
        subject=CUFF_SILENT_SUBJECT,
    )


# -- channel_failing (the notifier's channels, issue #15) ---------------------------------


# The condition column holds 96 characters; a channel's name is cut to fit.
CHANNEL_SUBJECT_LENGTH = 80


def channel_failing_condition(channel: str) -> str:
    """One alert per channel: `channel_failing:<name>`."""
    return f"{AlertKind.CHANNEL_FAILING.value}:{channel[:CHANNEL_SUBJECT_LENGTH]}"


def channel_failing(channel: str, reason: str) -> Finding:
    """A notification channel keeps failing (or a push subscription is gone): alerts
    that should leave the tablet may not. Medium: the dashboard still shows everything."""
    return Finding(
        AlertKind.CHANNEL_FAILING,
        Priority.MEDIUM,
        f"Notification channel {channel} is failing: {reason}. Alerts sent through it "
        "may not arrive; check its settings and the receiver.",
        subject=channel[:CHANNEL_SUBJECT_LENGTH],
    )


# -- nobody_watching (issue #15) ----------------------------------------------------------

NOBODY_WATCHING_CONDITION = AlertKind.NOBODY_WATCHING.value


def unwatched_since(
    previous: datetime | None, open_sessions: int, watching: int, now: datetime
) -> datetime | None:
    """The start of the current spell with sessions open and no dashboard connected
    (`previous` the one known so far); None while someone watches or no session is open."""
    if watching > 0 or open_sessions == 0:
        return None
    return now if previous is None else previous


def nobody_watching_due(since: datetime | None, now: datetime, after: timedelta) -> bool:
    """The unwatched spell has lasted `after`: time to tell someone off the tablet."""
    return since is not None and now - since >= after


def nobody_watching(open_sessions: int, since: datetime) -> Finding:
    """Sessions are open and no dashboard is connected: every alert of those sessions
    shows on no screen. High: it goes to the on-call channel off the tablet."""
    noun = "session is" if open_sessions == 1 else "sessions are"
    return Finding(
        AlertKind.NOBODY_WATCHING,
        Priority.HIGH,
        f"{open_sessions} {noun} open and no dashboard has been connected since "
        f"{since:%H:%M:%S} UTC: alerts show on no screen. Open the dashboard on a "
        "tablet in the treatment room.",
    )
