"""The event streams a node follows: one per site of the clinic group (issue #16).

Each site numbers its events gaplessly on its own counter row, so writers at different
sites never queue on each other. A node writes in its own site's stream (`home`) and
follows every site's (`EventBus` each, kept current by one `GroupFeed`): its tablets
follow their site's stream by default (`/ws?site=` picks another), and a group-wide
reader reads them all (`vitalsd.store.events.events_after`). A single-site clinic has
one stream, "default", and sees no change.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import select

from vitalsd.store.events import Event, EventBus
from vitalsd.store.feed import GroupFeed
from vitalsd.store.models import EventCounter


class Streams:
    """Every site's `EventBus` on this node, and the feed from the other daemons."""

    def __init__(self, home: EventBus) -> None:
        self._sessions = home.sessions
        self.home = home.site
        self._buses: dict[str, EventBus] = {home.site: home}
        self._followers: list[Callable[[Sequence[Event]], None]] = []
        self._feed: GroupFeed | None = None
        # The server process of this node's writer (PostgreSQL): the NOTIFYs of its own
        # commits are not waited for, its unit of work publishes them (`GroupFeed`).
        self.writer_pid: int | None = None

    @property
    def home_bus(self) -> EventBus:
        return self._buses[self.home]

    @home_bus.setter
    def home_bus(self, bus: EventBus) -> None:
        self._buses[self.home] = bus
        bus.attach_feed(self._feed)
        for follower in self._followers:
            bus.follow(follower)

    def buses(self) -> dict[str, EventBus]:
        return dict(self._buses)

    def get(self, site: str) -> EventBus | None:
        """The site's stream if this node knows the site (None: no such site yet)."""
        return self._buses.get(site)

    def discovered(self, site: str) -> EventBus:
        """The site's stream, created when the feed first hears of the site: a site that
        started while this node follows the group is published from its first event."""
        bus = self._buses.get(site)
        if bus is None:
            bus = EventBus(self._sessions, site=site)
            bus.start_from(0)
            self._add(bus)
        return bus

    def _add(self, bus: EventBus) -> None:
        self._buses[bus.site] = bus
        bus.attach_feed(self._feed)
        for follower in self._followers:
            bus.follow(follower)

    def follow(self, follower: Callable[[Sequence[Event]], None]) -> None:
        """`follower` gets every batch other daemons committed, in every site's stream."""
        self._followers.append(follower)
        for bus in self._buses.values():
            bus.follow(follower)

    async def sites(self) -> list[str]:
        """The sites of the group (every one that ever numbered an event, and ours)."""
        async with self._sessions() as session:
            known = set(await session.scalars(select(EventCounter.site)))
        return sorted(known | {self.home})

    async def load_sites(self) -> None:
        """A stream for every site in the database, published from its current end."""
        for site in await self.sites():
            if site not in self._buses:
                bus = EventBus(self._sessions, site=site)
                self._add(bus)
            await self._buses[site].start_following()

    async def listen(self, database_url: str, **options: Any) -> None:
        """PostgreSQL only: follow every site's events (`vitalsd.store.feed`). Returns
        once the feed is live, or has failed once (it keeps trying)."""
        await self.load_sites()
        self._feed = GroupFeed(self, database_url, **options)
        for bus in self._buses.values():
            bus.attach_feed(self._feed)
        await self._feed.start()

    @property
    def feed(self) -> GroupFeed | None:
        return self._feed

    async def close(self) -> None:
        if self._feed is not None:
            await self._feed.stop()
            self._feed = None
        for bus in self._buses.values():
            bus.attach_feed(None)
