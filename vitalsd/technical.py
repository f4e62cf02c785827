"""Technical alarms: what the equipment, not the patient, tells the ward (DESIGN.md
"Interfaces": `cuff_offline`, `cuff_clock_off`, ...). Pure: the findings and the words."""

from __future__ import annotations

from datetime import datetime

from vitalsd.domain import AlertKind, Priority
from vitalsd.thresholds import Finding

CUFF_OFFLINE_CONDITION = AlertKind.CUFF_OFFLINE.value


def cuff_offline(
    cuff: str, chair: str, since: datetime, reason: str, advice: str, attempts: int
) -> Finding:
    """A known cuff of a chair in session advertises but cannot be connected: it may be
    holding a reading (a severe one, for all we know), so medium priority, with the
    advice that gets it connected (issue #18)."""
    return Finding(
        AlertKind.CUFF_OFFLINE,
        Priority.MEDIUM,
        f"Cuff {cuff} on {chair}: advertising but cannot be connected since "
        f"{since:%H:%M:%S} UTC ({attempts} attempts; {reason}). {advice}",
    )
