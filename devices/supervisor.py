"""Many cuffs: scan continuously, one task per cuff, reconnect with back-off, typed events.

`CuffSupervisor(ble, on_event=...)` follows every known cuff and (unless told not to)
every newly seen Blood Pressure Service cuff. A cuff is connected as soon as it
advertises (cuffs that advertise only briefly after a measurement give us about a
second), each in its own task, so one cuff's trouble never delays another's: a cuff
that vanished is not advertising and so is not tried; one that fails is retried with
back-off while the others carry on. Cancelling `run()` closes every link.

Events go to the daemon's `on_event`, awaited; a reading counts as delivered once that
call returned. The daemon should also store readings idempotently on the cuff's
address and `MeasurementReceived.cuff_key`: our memory of delivered readings does not
survive a restart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Final

from bleak import BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from devices import gatt
from devices.bumble_backend import BumbleHost, raise_if_cancelling
from devices.errors import CuffConnectFailed, link_error
from devices.events import (
    BatteryChanged,
    CuffBonded,
    CuffConnected,
    CuffDisconnected,
    CuffEvent,
    CuffReachable,
    CuffSeen,
    CuffUnreachable,
    MeasurementFailed,
    MeasurementReceived,
)
from devices.inbox import MeasurementInbox
from devices.link import Clock, CuffLink
from devices.readings import CuffMemory, utc_now
from devices.transport import BleStack, BleTransport, open_ble

logger = logging.getLogger(__name__)

BLOOD_PRESSURE_SERVICE_UUID: Final = gatt.uuid128(gatt.BLOOD_PRESSURE_SERVICE)
# A CuffSeen per cuff at most this often (seconds): advertisements come several a second.
SEEN_REPUBLISH_INTERVAL: Final = 10.0
# A short connect timeout: we only connect to a cuff that has just advertised, and the
# controller makes one connection at a time, so a long wait would hold up the others.
CONNECT_TIMEOUT: Final = 3.0
# A cuff that kept advertising while every connection failed for this long (seconds) is
# reported `CuffUnreachable` (issue #18: a minute, then a technical alert).
UNREACHABLE_AFTER: Final = 60.0
# Failures further apart than this (seconds) are not one spell: the cuff was silent (out
# of range, asleep) in between, which is not a failure to connect.
FAILURE_SPELL_GAP: Final = 30.0
# An advertisement after this much silence (seconds) opens a new advertising window: a
# cuff that advertises for 1-3 s after a measurement is tried at once, back-off or not.
NEW_WINDOW_AFTER: Final = 1.0
# A cuff that advertises for this long (seconds) while we hold a link to it may have no
# link at its end (a connected cuff does not advertise): it is asked for a read, and if
# it does not answer within GHOST_PROBE_TIMEOUT the link is hung up. A real radio ends
# such a link by its supervision timeout (Core Vol 6 Part B 4.5.2); Bumble's virtual link
# has none, so the link would wait for a disconnection that never comes, the cuff unread.
GHOST_LINK_AFTER: Final = 2.0
GHOST_PROBE_TIMEOUT: Final = 2.0
# What a cuff's state is (each a database write at the daemon): published in order by a
# background task, so that a link's set-up and its readings never wait for them.
STATUS_EVENTS: Final = (
    CuffConnected,
    CuffBonded,
    CuffDisconnected,
    BatteryChanged,
    CuffUnreachable,
    CuffReachable,
)


@dataclass(frozen=True)
class ReconnectBackoff:
    """Seconds to wait after the n-th consecutive failed connection to a cuff."""

    initial: float = 0.25
    factor: float = 2.0
    maximum: float = 8.0

    def __post_init__(self) -> None:
        if self.initial < 0 or self.factor < 1 or self.maximum < self.initial:
            raise ValueError(
                "back-off needs initial >= 0, factor >= 1 and maximum >= initial,"
                f" got {self.initial}, {self.factor}, {self.maximum}"
            )

    def delay(self, failures: int) -> float:
        if failures <= 0:
            return 0.0
        return float(min(self.maximum, self.initial * self.factor ** (failures - 1)))


def is_blood_pressure_cuff(advertisement: AdvertisementData) -> bool:
    """Cuffs are found by the Blood Pressure service UUID (0x1810) they advertise."""
    return BLOOD_PRESSURE_SERVICE_UUID in advertisement.service_uuids


class _Cuff:
    """The supervisor's view of one cuff: its memory, last sighting, task and the spell
    of failed connections it is in, if any."""

    def __init__(self, address: str, memory: CuffMemory) -> None:
        self.address = address
        self.memory = memory
        self.device: BLEDevice | None = None
        self.advertised = asyncio.Event()
        self.new_window = asyncio.Event()
        self.last_seen: float | None = None  # monotonic
        self.task: asyncio.Task[None] | None = None
        self.seen_published_at: float | None = None
        self.pending_seen: CuffSeen | None = None
        self.failures = 0  # in a row, for the back-off
        self.spell_started: tuple[float, datetime] | None = None  # (monotonic, UTC)
        self.spell_attempts = 0
        self.last_failure: float | None = None  # monotonic
        self.unreachable = False  # a CuffUnreachable was published for this spell
        self.link: CuffLink | None = None
        self.advertising_while_linked: float | None = None  # monotonic, first seen
        self.probe: asyncio.Task[None] | None = None


class CuffSupervisor:
    """Follows cuffs over one Bluetooth stack and publishes what they do.

    ``ble`` is a `--ble` value (``"bluez"``, ``"bumble:tcp-client:127.0.0.1:9100"``), a
    parsed `BleTransport`, or an already open `BumbleHost` / `BleStack`.
    ``known_addresses`` are followed from the start; with ``discover`` every cuff
    advertising the Blood Pressure Service is followed too. ``last_sequence_numbers``
    restores, per address, the last BPS 1.1 record the daemon stored. With an ``inbox``
    every measurement frame is on disk before its indication is confirmed
    (`devices.inbox`); replay what it still holds before running. A cuff that keeps
    advertising while every connection fails for ``unreachable_after`` seconds is
    published as `CuffUnreachable` (reason and advice), then `CuffReachable` once set up.
    """

    def __init__(
        self,
        ble: BleTransport | str | BumbleHost | BleStack,
        *,
        on_event: Callable[[CuffEvent], Awaitable[None]],
        known_addresses: Iterable[str] = (),
        discover: bool = True,
        last_sequence_numbers: Mapping[str, int] | None = None,
        clock: Clock = utc_now,
        zone: tzinfo | None = None,
        bond: bool = True,
        connect_timeout: float = CONNECT_TIMEOUT,
        backoff: ReconnectBackoff = ReconnectBackoff(),
        keys_file: str | None = None,
        address: str | None = None,
        inbox: MeasurementInbox | None = None,
        unreachable_after: float = UNREACHABLE_AFTER,
    ) -> None:
        self._ble = ble
        self._unreachable_after = unreachable_after
        self._on_event = on_event
        self._discover = discover
        self._clock = clock
        self._zone = zone
        self._bond = bond
        self._connect_timeout = connect_timeout
        self._backoff = backoff
        self._keys_file = keys_file
        self._address = address
        self._inbox = inbox
        self._sequence_numbers = {a.upper(): n for a, n in (last_sequence_numbers or {}).items()}
        self._cuffs: dict[str, _Cuff] = {}
        self._ignored: set[str] = set()
        self._stack: BleStack | None = None
        self._seen_wakeup = asyncio.Event()
        self._status: asyncio.Queue[CuffEvent] = asyncio.Queue()
        self._running = False
        for known in known_addresses:
            self.add_cuff(known)

    # --- the daemon's controls --------------------------------------------------------------

    @property
    def cuffs(self) -> list[str]:
        """Addresses of the cuffs being followed."""
        return sorted(self._cuffs)

    def add_cuff(self, address: str) -> None:
        """Follow a cuff (from now on, and on every later advertisement)."""
        key = address.upper()
        self._ignored.discard(key)
        if key in self._cuffs:
            return
        memory = CuffMemory(
            key,
            last_sequence_number=self._sequence_numbers.get(key),
            clock_settings=[] if self._inbox is None else self._inbox.clock_settings(key),
        )
        self._cuffs[key] = _Cuff(key, memory)
        if self._running:
            self._start(self._cuffs[key])

    def forget_cuff(self, address: str) -> None:
        """Stop following a cuff and close its link; discovery will not bring it back."""
        key = address.upper()
        self._ignored.add(key)
        cuff = self._cuffs.pop(key, None)
        if cuff is not None and cuff.task is not None:
            cuff.task.cancel()

    # --- running ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Scan and serve cuffs until cancelled; cancellation closes every link."""
        async with open_ble(
            self._ble, address=self._address, keys_file=self._keys_file, pair=self._bond
        ) as stack:
            self._stack = stack
            self._running = True
            seen_publisher = asyncio.create_task(self._publish_sightings(), name="cuff sightings")
            status_publisher = asyncio.create_task(self._publish_status(), name="cuff status")
            scanner = BleakScanner(self._on_advertisement, **stack.scanner_kwargs())
            try:
                for cuff in self._cuffs.values():
                    self._start(cuff)
                await scanner.start()
                try:
                    await asyncio.Event().wait()
                finally:
                    with contextlib.suppress(Exception):
                        await scanner.stop()
            finally:
                self._running = False
                tasks = [
                    task
                    for c in self._cuffs.values()
                    for task in (c.task, c.probe)
                    if task is not None
                ]
                for task in [*tasks, seen_publisher, status_publisher]:
                    task.cancel()
                await asyncio.gather(
                    *tasks, seen_publisher, status_publisher, return_exceptions=True
                )
                self._stack = None

    def _start(self, cuff: _Cuff) -> None:
        if cuff.task is None or cuff.task.done():
            cuff.task = asyncio.create_task(self._serve(cuff), name=f"cuff {cuff.address}")
            cuff.task.add_done_callback(lambda task: self._task_ended(cuff, task))

    def _task_ended(self, cuff: _Cuff, task: asyncio.Task[None]) -> None:
        """A cuff's task ends only when the supervisor stops or forgets the cuff; if it
        ended otherwise, the cuff would never be connected again: say so, start anew."""
        if not self._running or self._cuffs.get(cuff.address) is not cuff:
            return
        error = None if task.cancelled() else task.exception()
        logger.error(
            "%s: its task ended (%s); starting it again",
            cuff.address,
            "cancelled" if error is None else repr(error),
            exc_info=error,
        )
        self._start(cuff)

    def _on_advertisement(self, device: BLEDevice, advertisement: AdvertisementData) -> None:
        key = device.address.upper()
        cuff = self._cuffs.get(key)
        if cuff is None:
            if not self._discover or key in self._ignored:
                return
            if not is_blood_pressure_cuff(advertisement):
                return
            logger.info("new blood pressure cuff %s (%s)", key, device.name)
            self.add_cuff(key)
            cuff = self._cuffs[key]
        cuff.device = device
        cuff.advertised.set()
        now = time.monotonic()
        self._check_ghost(cuff, now)
        if cuff.last_seen is None or now - cuff.last_seen >= NEW_WINDOW_AFTER:
            cuff.new_window.set()
        cuff.last_seen = now
        if cuff.seen_published_at is None or now - cuff.seen_published_at >= (
            SEEN_REPUBLISH_INTERVAL
        ):
            cuff.seen_published_at = now
            cuff.pending_seen = CuffSeen(
                key, device.name or advertisement.local_name, advertisement.rssi, self._clock()
            )
            self._seen_wakeup.set()

    def _check_ghost(self, cuff: _Cuff, now: float) -> None:
        """A cuff advertising while our link to it is set up: after `GHOST_LINK_AFTER`
        the link is dead at its end; hang up, so it is connected again."""
        link = cuff.link
        if link is None or not link.established:
            cuff.advertising_while_linked = None
            return
        if cuff.advertising_while_linked is None:
            cuff.advertising_while_linked = now
        elif now - cuff.advertising_while_linked >= GHOST_LINK_AFTER and (
            cuff.probe is None or cuff.probe.done()
        ):
            cuff.probe = asyncio.create_task(
                self._probe(cuff, link, now - cuff.advertising_while_linked),
                name=f"cuff {cuff.address} probe",
            )

    async def _probe(self, cuff: _Cuff, link: CuffLink, advertising_for: float) -> None:
        if await link.answers(GHOST_PROBE_TIMEOUT):
            logger.info("%s: advertises while linked, and answers: left linked", cuff.address)
        else:
            logger.warning(
                "%s: advertising for %.1f s while our link to it is up, and no answer on it:"
                " the link is gone at its end; hanging up to connect it again",
                cuff.address,
                advertising_for,
            )
            link.abort("the cuff advertised while linked and did not answer: gone at its end")
        cuff.advertising_while_linked = None

    async def _publish_sightings(self) -> None:
        """CuffSeen events, off the scanner's path so a slow daemon never slows scanning."""
        while True:
            await self._seen_wakeup.wait()
            self._seen_wakeup.clear()
            for cuff in list(self._cuffs.values()):
                seen, cuff.pending_seen = cuff.pending_seen, None
                if seen is not None:
                    await self._publish_now(seen)

    async def _publish_status(self) -> None:
        """Status events, in the order they happened, behind the links' own work."""
        while True:
            await self._publish_now(await self._status.get())

    async def _serve(self, cuff: _Cuff) -> None:
        """One cuff, forever: wait for it to advertise, connect, follow, back off on failure."""
        while True:
            raise_if_cancelling()
            await cuff.advertised.wait()
            cuff.advertised.clear()
            device = cuff.device
            stack = self._stack
            if device is None or stack is None:
                continue

            async def established(cuff: _Cuff = cuff) -> None:
                await self._established(cuff)

            link = CuffLink(
                device,
                stack,
                publish=self._publish,
                memory=cuff.memory,
                clock=self._clock,
                zone=self._zone,
                bond=self._bond,
                connect_timeout=self._connect_timeout,
                inbox=self._inbox,
                on_established=established,
            )
            cuff.link, cuff.advertising_while_linked = link, None
            try:
                reason = await link.run()
                logger.info("%s: link ended: %s", cuff.address, reason)
            except asyncio.CancelledError as error:
                if _being_cancelled():
                    raise
                # A cancellation that is not ours (a library cancelled a future it gave
                # us): a failed link, never the end of this cuff's task.
                await self._failed(cuff, CuffConnectFailed(cuff.address, f"cancelled: {error!r}"))
            except (BleakError, TimeoutError, OSError) as error:
                await self._failed(cuff, error)
            except Exception as error:
                logger.exception("%s: link failed", cuff.address)
                await self._failed(cuff, CuffConnectFailed(cuff.address, repr(error)))
            finally:
                cuff.link = None
            if cuff.failures:
                await self._back_off(cuff)
            # Only a fresh advertisement, seen after this attempt, brings the next one.
            cuff.advertised.clear()

    async def _back_off(self, cuff: _Cuff) -> None:
        """Wait the back-off, or less: a new advertising window is tried at once (a cuff
        that advertises for a second or two after a measurement must not be missed)."""
        cuff.new_window.clear()
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self._backoff.delay(cuff.failures)):
                await cuff.new_window.wait()

    async def _failed(self, cuff: _Cuff, error: BaseException) -> None:
        """Count a failed link; a spell of them past `unreachable_after` is published."""
        typed = link_error(cuff.address, error)
        cuff.failures += 1
        logger.info("%s: link failed (%d in a row): %s", cuff.address, cuff.failures, typed)
        now = time.monotonic()
        if (
            cuff.spell_started is None
            or cuff.last_failure is None
            or now - cuff.last_failure > FAILURE_SPELL_GAP
        ):
            cuff.spell_started = (now, self._clock())
            cuff.spell_attempts = 0
        cuff.spell_attempts += 1
        cuff.last_failure = now
        if (
            not cuff.unreachable
            and cuff.spell_attempts >= 2
            and now - cuff.spell_started[0] >= self._unreachable_after
        ):
            cuff.unreachable = True
            logger.warning(
                "%s: advertising but not connectable for %.0f s (%d attempts): %s; %s",
                cuff.address,
                now - cuff.spell_started[0],
                cuff.spell_attempts,
                typed,
                typed.advice,
            )
            await self._publish(
                CuffUnreachable(
                    cuff.address,
                    self._clock(),
                    cuff.spell_started[1],
                    cuff.spell_attempts,
                    str(typed),
                    typed.advice,
                )
            )

    async def _established(self, cuff: _Cuff) -> None:
        """The link is set up: the spell of failures (if any) is over."""
        cuff.failures = 0
        cuff.spell_started = cuff.last_failure = None
        cuff.spell_attempts = 0
        if cuff.unreachable:
            cuff.unreachable = False
            await self._publish(CuffReachable(cuff.address, self._clock()))

    async def _publish(self, event: CuffEvent) -> None:
        """Give the daemon an event: a reading (or live cuff pressure) now, a status
        event through the status queue (`STATUS_EVENTS`)."""
        if isinstance(event, STATUS_EVENTS) and self._running:
            self._status.put_nowait(event)
            return
        await self._publish_now(event)

    async def _publish_now(self, event: CuffEvent) -> None:
        """A reading the daemon failed to take stays undelivered (the error reaches the
        link); any other event is logged and dropped."""
        try:
            await self._on_event(event)
        except Exception:
            if isinstance(event, MeasurementReceived | MeasurementFailed):
                raise
            logger.exception("the daemon failed to take %s", type(event).__name__)


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0
