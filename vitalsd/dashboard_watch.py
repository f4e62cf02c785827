"""The dashboard watch (issue #15, `nobody_watching`): while a session is open and no
dashboard has been connected for `nobody_watching_after`, the ward's alerts show on no
screen; the clinic raises a high alert that the notifier sends off the tablet. A
dashboard connecting resolves it.

The shell only: `vitalsd.technical` decides (`unwatched_since`, `nobody_watching_due`);
this loop feeds it the open sessions and the count of connected streams that receive
alerts (the API's `StreamHub.watching`, handed in as a function: `vitalsd` imports no
`api`). It looks when that count changes, at the moment the alert would fall due, and
otherwise every `LOOK_EVERY` or `nobody_watching_after`, whichever is shorter (a session
opened with no dashboard is noticed within it).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Final, Protocol

from vitalsd.technical import nobody_watching_due, unwatched_since

log = logging.getLogger(__name__)

# How often the watch looks at the open sessions when nothing wakes it.
LOOK_EVERY: Final = timedelta(seconds=10)
# After a failed look (the database away), try again this soon.
RETRY_AFTER: Final = timedelta(seconds=5)


class WatchedClinic(Protocol):
    """What the watch asks of the clinic (`vitalsd.clinic.Clinic`)."""

    async def open_session_count(self) -> int: ...

    async def nobody_watching(self, open_sessions: int, since: datetime) -> None: ...

    async def somebody_watching(self) -> None: ...


class DashboardWatch:
    """Raises `nobody_watching` after `after` of open sessions with no dashboard; resolves
    it when one connects (or no session is open any more)."""

    def __init__(
        self,
        clinic: WatchedClinic,
        watching: Callable[[], Awaitable[int]],
        changed: asyncio.Event,
        *,
        after: timedelta,
        now: Callable[[], datetime],
    ) -> None:
        self._clinic = clinic
        self._watching = watching
        self._changed = changed
        self._after = after
        self._every = min(LOOK_EVERY, after)
        self._now = now
        self.unwatched_since: datetime | None = None
        # None until the first look: an alert left open by a previous run is resolved
        # as soon as a dashboard is seen.
        self._raised: bool | None = None

    async def look(self) -> timedelta:
        """One look: raise or resolve as the rules say; how long until the next look."""
        now = self._now()
        open_sessions = await self._clinic.open_session_count()
        watching = await self._watching()
        since = unwatched_since(self.unwatched_since, open_sessions, watching, now)
        self.unwatched_since = since
        if since is None:
            if self._raised is not False:
                await self._clinic.somebody_watching()
                self._raised = False
            return self._every
        if nobody_watching_due(since, now, self._after):
            if not self._raised:
                log.warning(
                    "%d sessions open and no dashboard connected since %s: nobody_watching",
                    open_sessions,
                    since.isoformat(),
                )
                await self._clinic.nobody_watching(open_sessions, since)
                self._raised = True
            return self._every
        return min(self._every, since + self._after - now)

    async def run(self) -> None:
        """Look, sleep until the next look or a change in the connected dashboards, repeat."""
        while True:
            self._changed.clear()
            try:
                wait = await self.look()
            except Exception:
                log.exception("dashboard watch: a look failed; retrying in 5 s")
                wait = RETRY_AFTER
            try:
                async with asyncio.timeout(max(0.0, wait.total_seconds())):
                    await self._changed.wait()
            except TimeoutError:
                pass
