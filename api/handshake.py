"""What a `/ws` connect costs, shared: one snapshot for every client connecting while no
new event was published, accounts looked up once per user for a few seconds, and a
bound on how many connects use the database at once.

Why (bench/RESULTS.md section 5): after each daemon restart a hundred tablets
reconnected at once, each computing its own snapshot and looking its user up; they
exhausted the connection pool and the cuffs' ingest starved. Here a connect storm costs
one snapshot per event published meanwhile, one user lookup per user per `ACCOUNT_TTL_S`,
and at most `HANDSHAKE_DB_WORK` connections of the pool; the rest wait, none is refused.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from api.stream import RECHECK_S
from vitalsd.accounts import Account
from vitalsd.auth import Permission, role_may
from vitalsd.clinic import Clinic
from vitalsd.domain import Role
from vitalsd.errors import NotFound
from vitalsd.store.events import EventType, encode_json

# Connects doing database work at once (snapshot, user lookup): under the pool's 5 steady
# connections (SQLAlchemy's QueuePool default), so ingest and REST always find one.
HANDSHAKE_DB_WORK: Final = 3
# How long a looked-up account is trusted. A disable through this process's API takes
# effect at once (`AccountCache.forget` and `StreamHub.revoke`); one made elsewhere (the
# CLI, another daemon) within this, plus the hub's recheck for open streams.
ACCOUNT_TTL_S: Final = 5.0
# A shared snapshot is reused only while no newer event was published, and for at most
# this long: the session views in it (which checks are due) depend on the time.
SNAPSHOT_MAX_AGE_S: Final = 2.0


@dataclass(frozen=True, slots=True)
class HandshakeLimits:
    """The knobs above, for `create_app` (tests shorten or lengthen them)."""

    db_work: int = HANDSHAKE_DB_WORK
    account_ttl_s: float = ACCOUNT_TTL_S
    snapshot_max_age_s: float = SNAPSHOT_MAX_AGE_S
    recheck_s: float = RECHECK_S


DEFAULT_HANDSHAKE: Final = HandshakeLimits()


@dataclass(frozen=True, slots=True)
class SharedSnapshot:
    """The `snapshot` message, encoded once; `seq` is the last event it reflects."""

    seq: int
    text: str
    taken: float  # on the cache's monotonic clock


class SnapshotCache:
    """Single-flight snapshots: concurrent connects await the same computation, and the
    result is reused until an event newer than it is published (or it is
    `SNAPSHOT_MAX_AGE_S` old). `computed` counts the computations."""

    def __init__(
        self,
        clinic: Clinic,
        gate: asyncio.Semaphore,
        *,
        max_age_s: float = SNAPSHOT_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
        site: str | None = None,
    ) -> None:
        self._clinic = clinic
        # The stream whose `seq` the snapshots carry (None: this daemon's site's).
        self.site = site
        self._sites: dict[str, SnapshotCache] = {}
        self._gate = gate
        self._max_age_s = max_age_s
        self._clock = clock
        self._current: SharedSnapshot | None = None
        self._pending: asyncio.Task[SharedSnapshot] | None = None
        self.computed = 0

    async def get(self, at_least: int = 0) -> SharedSnapshot:
        """A snapshot reflecting at least the events up to `at_least` when the log has
        them (a resuming client's `since`); else the newest there is."""
        current = self._current
        if current is not None and current.seq >= at_least and self._fresh(current):
            return current
        shared = await self._join()
        if shared.seq < at_least:
            shared = await self._join()  # that one started before we asked: one more
        return shared

    def for_site(self, site: str) -> SnapshotCache:
        """The cache of snapshots for a client following `site`'s stream (issue #16):
        this one for this daemon's site."""
        if site == self._clinic.site:
            return self
        cache = self._sites.get(site)
        if cache is None:
            cache = SnapshotCache(
                self._clinic, self._gate, max_age_s=self._max_age_s, clock=self._clock, site=site
            )
            self._sites[site] = cache
        return cache

    def _fresh(self, snapshot: SharedSnapshot) -> bool:
        bus = self._clinic.bus if self.site is None else self._clinic.streams.get(self.site)
        head = None if bus is None else bus.published_upto
        young = self._clock() - snapshot.taken < self._max_age_s
        return young and (head is None or head <= snapshot.seq)

    async def _join(self) -> SharedSnapshot:
        if self._pending is None:
            self._pending = asyncio.create_task(self._compute())
        # Shielded: a client that leaves mid-handshake does not cancel the others' snapshot.
        return await asyncio.shield(self._pending)

    async def _compute(self) -> SharedSnapshot:
        try:
            async with self._gate:
                self.computed += 1
                snapshot = await self._clinic.snapshot(self.site)
            message = {
                "seq": None,
                "type": EventType.SNAPSHOT.value,
                "at": self._clinic.now().isoformat(),
                "data": snapshot.as_dict(),
            }
            shared = SharedSnapshot(snapshot.seq, encode_json(message), self._clock())
            if self._current is None or shared.seq >= self._current.seq:
                self._current = shared
            return shared
        finally:
            self._pending = None


@dataclass(frozen=True, slots=True)
class _Account:
    user: Account | None  # None: no such user
    fetched: float


class AccountCache:
    """Users by name, each looked up at most once per `ttl_s` (concurrent lookups of one
    name share the query). `lookups` counts the database lookups."""

    def __init__(
        self,
        clinic: Clinic,
        gate: asyncio.Semaphore,
        *,
        ttl_s: float = ACCOUNT_TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clinic = clinic
        self._gate = gate
        self._ttl_s = ttl_s
        self._clock = clock
        self._accounts: dict[str, _Account] = {}
        self._pending: dict[str, asyncio.Task[_Account]] = {}
        self._generation: dict[str, int] = {}
        self.lookups = 0
        # The token versions of each user's open streams (issue #17): a version moved on
        # elsewhere (`vitalsd user passwd`, another daemon) ends them at the next recheck.
        self.stream_versions: dict[str, Counter[int]] = {}

    async def get(self, username: str) -> Account:
        """The user as the database knew them at most `ttl_s` ago; NotFound if none."""
        account = self._accounts.get(username)
        if account is None or self._clock() - account.fetched >= self._ttl_s:
            pending = self._pending.get(username)
            if pending is None:
                pending = asyncio.create_task(self._fetch(username))
                self._pending[username] = pending
            account = await asyncio.shield(pending)
        if account.user is None:
            raise NotFound(f"no user {username!r}")
        return account.user

    def forget(self, username: str) -> None:
        """The account changed: look it up again on its next use (a lookup in flight
        that started before the change is not kept)."""
        self._accounts.pop(username, None)
        self._pending.pop(username, None)
        self._generation[username] = self._generation.get(username, 0) + 1

    async def refusal(self, username: str) -> str | None:
        """Why `username` may no longer stream (None: they may): for `StreamHub`."""
        try:
            user = await self.get(username)
        except NotFound:
            return "the account no longer exists"
        if user.disabled:
            return "this account is disabled"
        if not role_may(Role(user.role), Permission.READ):
            return f"role {user.role} may not read"
        open_versions = self.stream_versions.get(username)
        if open_versions and min(open_versions) < user.token_version:
            return "signed out: the password or role changed, or the user logged out"
        return None

    def stream_opened(self, username: str, version: int) -> None:
        self.stream_versions.setdefault(username, Counter())[version] += 1

    def stream_closed(self, username: str, version: int) -> None:
        versions = self.stream_versions.get(username)
        if versions is None:
            return
        versions[version] -= 1
        if versions[version] <= 0:
            del versions[version]
        if not versions:
            del self.stream_versions[username]

    async def _fetch(self, username: str) -> _Account:
        generation = self._generation.get(username, 0)
        try:
            async with self._gate:
                self.lookups += 1
                try:
                    user: Account | None = await self._clinic.get_account(username)
                except NotFound:
                    user = None
            account = _Account(user, self._clock())
            if self._generation.get(username, 0) == generation:
                self._accounts[username] = account
            return account
        finally:
            if self._generation.get(username, 0) == generation:
                self._pending.pop(username, None)
