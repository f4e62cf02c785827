"""One simulated blood-pressure cuff: a Bumble `Device` acting as a GATT peripheral.

The cuff serves what real cuffs serve (issue #3, "A real peripheral"): the Blood Pressure
Service (Measurement 0x2A35 indicate, Intermediate Cuff Pressure 0x2A36 notify, Feature
0x2A49 read, and for BPS 1.1 cuffs the Record Access Control Point 0x2A52 with Blood
Pressure Record 0x2B36), Device Information 0x180A, Battery 0x180F and Current Time
0x1805. Every payload is encoded by `devices.bps`.

The pure parts (patient, frames, battery) take `now`; this shell reads time only from its
injected `SimClock`, so `--speed` compresses a whole session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any

from bumble import hci
from bumble.controller import Controller
from bumble.device import Connection, Device, DeviceConfiguration
from bumble.gatt import (
    Characteristic,
)
from bumble.keys import KeyStore, MemoryKeyStore
from bumble.link import LocalLink
from bumble.transport.common import Transport

from devices.bps import (
    MMHG_PER_KPA,
    BatteryLevel,
    IntermediateCuffPressure,
    PressureUnit,
)
from simulators.clock import SimClock
from simulators.cuff_advertising import CuffAdvertising
from simulators.cuff_config import (
    CTS_DATA_FIELD_IGNORED as CTS_DATA_FIELD_IGNORED,
)
from simulators.cuff_config import (
    DEFAULT_RESET_CLOCK as DEFAULT_RESET_CLOCK,
)
from simulators.cuff_config import (
    HANGS_UP as HANGS_UP,
)
from simulators.cuff_config import (
    IDLE_DRAIN_PERCENT_PER_HOUR as IDLE_DRAIN_PERCENT_PER_HOUR,
)
from simulators.cuff_config import (
    MAX_LOCAL_NAME_BYTES as MAX_LOCAL_NAME_BYTES,
)
from simulators.cuff_config import (
    MEASUREMENT_DRAIN_PERCENT as MEASUREMENT_DRAIN_PERCENT,
)
from simulators.cuff_config import (
    OUT_OF_RANGE_REASON as OUT_OF_RANGE_REASON,
)
from simulators.cuff_config import (
    REPLAY_DELAY as REPLAY_DELAY,
)
from simulators.cuff_config import (
    SEQUENCE_NUMBER_MODULUS as SEQUENCE_NUMBER_MODULUS,
)
from simulators.cuff_config import (
    Connectability as Connectability,
)
from simulators.cuff_config import (
    CuffConfig as CuffConfig,
)
from simulators.cuff_config import (
    CuffNotRunning as CuffNotRunning,
)
from simulators.cuff_config import (
    FlakyLink as FlakyLink,
)
from simulators.cuff_config import (
    MeasurementRecord as MeasurementRecord,
)
from simulators.cuff_config import (
    RecordStyle as RecordStyle,
)
from simulators.cuff_config import (
    SecurityMode as SecurityMode,
)
from simulators.cuff_config import (
    _Link as _Link,
)
from simulators.cuff_config import (
    _parse_random_static as _parse_random_static,
)
from simulators.cuff_config import (
    _reason_name as _reason_name,
)
from simulators.cuff_config import (
    battery_level as battery_level,
)
from simulators.cuff_gatt import CuffGatt
from simulators.cuff_pairing import pairing_config
from simulators.cuff_racp import CuffRacp
from simulators.frames import measurement_for, measurement_payload
from simulators.physiology import (
    MeasurementProblem,
    Patient,
    cuff_pressure_trace,
)

logger = logging.getLogger(__name__)


class SimulatedCuff:
    """A simulated cuff on a Bumble virtual link (`link=`) or any Bumble transport
    (`transport=`, e.g. a USB dongle opened with `bumble.transport.open_transport`).

    `await start()`, `await measure()`, `await go_out_of_range()`, `await come_back()`,
    `await stop()`; `measurement_log` lists every measurement taken.
    """

    def __init__(
        self,
        config: CuffConfig,
        *,
        clock: SimClock | None = None,
        link: LocalLink | None = None,
        transport: Transport | None = None,
        keystore: KeyStore | None = None,
    ) -> None:
        if (link is None) == (transport is None):
            raise ValueError("a cuff needs exactly one of link= (virtual) or transport= (HCI)")
        self.config = config
        self.clock = clock or SimClock()
        self.link = link
        self.transport = transport
        self.keystore: KeyStore = keystore or MemoryKeyStore()
        self.patient = config.patient or Patient.draw(
            config.profile,
            random.Random(f"patient:{config.seed}"),
            high_responder=config.high_responder,
        )
        self._rng = random.Random(f"readings:{config.seed}")
        self.doses: list[datetime] = []
        self.measurement_log: list[MeasurementRecord] = []
        self.pairings: list[str] = []  # peer identity address, one entry per new bond
        self.in_range = True
        self.clock_set = False
        self.clock_offset = timedelta(0)
        self.device: Device | None = None
        self.controller: Controller | None = None
        self._pending: deque[MeasurementRecord] = deque()  # BPS 1.0 store
        self._records: dict[int, MeasurementRecord] = {}  # BPS 1.1 record database
        self._next_sequence = 0
        self._links: dict[Connection, _Link] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._measure_lock = asyncio.Lock()
        self._delivery_lock = asyncio.Lock()
        self._adverts = CuffAdvertising(self)
        self._gatt = CuffGatt(self)
        self._racp = CuffRacp(self, self._gatt)
        self._started_at: datetime | None = None
        self._battery_notified = config.battery_level
        self._scheduled_count = 0
        self._stopping = False
        self._waiters: list[asyncio.Future[None]] = []

    # --- identity and state --------------------------------------------------------

    @property
    def _measurement_characteristic(self) -> Characteristic[bytes]:
        """The 0x2A35 characteristic (a subclass's `_indicate` tells it apart by this)."""
        return self._gatt.measurement

    @property
    def address(self) -> str:
        return self.config.address

    @property
    def name(self) -> str:
        return self.config.local_name

    @property
    def running(self) -> bool:
        return self.device is not None

    @property
    def connected(self) -> bool:
        return bool(self._links)

    @property
    def advertising(self) -> bool:
        return self._adverts.active

    @property
    def advertising_on_air(self) -> bool:
        """Whether its virtual controller is sending advertisements (what a scanner
        hears), as opposed to what the cuff's host believes (`advertising`); False on a
        real transport, where this cannot be seen."""
        controller = self.controller
        if controller is None:
            return False
        return bool(controller.le_legacy_advertiser.enabled) or any(
            advertising_set.enabled for advertising_set in controller.advertising_sets.values()
        )

    @property
    def peers(self) -> list[str]:
        """The addresses of the centrals connected now."""
        return [link.peer for link in self._links.values()]

    @property
    def following_live(self) -> bool:
        """A connected central subscribed to both the cuff pressure and the measurement:
        what the cuff measures now reaches it live."""
        return self._gatt.following_live()

    @property
    def racp_in_progress(self) -> bool:
        """A BPS 1.1 RACP procedure is running (another is refused meanwhile)."""
        return self._racp.busy

    @property
    def stored(self) -> list[MeasurementRecord]:
        """Readings waiting for a central: the BPS 1.0 replay queue, or every BPS 1.1
        record still in the record database, oldest first."""
        if self.config.record_style == "bps10":
            return list(self._pending)
        return list(self._records.values())

    def cuff_clock(self, now: datetime) -> datetime:
        """What the cuff's own clock reads at simulated `now`: naive, whole seconds."""
        wall = now.astimezone(UTC).replace(tzinfo=None) + self.clock_offset
        return wall.replace(microsecond=0)

    def battery(self, now: datetime) -> int:
        started = self._started_at or now
        return battery_level(self.config.battery_level, now - started, len(self.measurement_log))

    def record_dose(self, at: datetime | None = None) -> datetime:
        """The patient is dosed at `at` (default: now); returns the dose time."""
        when = at or self.clock.now()
        if when.utcoffset() is None:
            raise ValueError("a dose time must be timezone-aware")
        self.doses.append(when)
        self._log("dose recorded at %s", when.isoformat(timespec="seconds"))
        return when

    async def wait_for(self, predicate: Callable[[SimulatedCuff], bool]) -> None:
        """Wait until `predicate(cuff)` holds; it is checked after every change of state
        (a measurement, a connection, range, advertising, a stored reading delivered or
        deleted). Bound it with a timeout."""
        while not predicate(self):
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            await waiter

    def _changed(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _log(self, message: str, *args: object, level: int = logging.INFO) -> None:
        logger.log(level, "cuff %s (%s): " + message, self.name, self.address, *args)

    def _spawn(self, coroutine: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        task = asyncio.get_running_loop().create_task(coroutine, name=f"{self.name} {what}")
        self._tasks.add(task)

        def done(finished: asyncio.Task[Any]) -> None:
            self._tasks.discard(finished)
            if not finished.cancelled() and finished.exception() is not None:
                self._log("%s failed: %r", what, finished.exception(), level=logging.WARNING)

        task.add_done_callback(done)
        return task

    # --- lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Power on, serve GATT, start the schedule and advertise."""
        if self.device is not None:
            raise RuntimeError(f"cuff {self.name} is already running")
        now = self.clock.now()
        self._started_at = now
        self.clock_offset = self.config.reset_clock - now.astimezone(UTC).replace(tzinfo=None)
        self.clock_set = False
        if self.config.dose_after is not None:
            self.doses.append(now + self.config.dose_after)
        device_config = DeviceConfiguration()
        device_config.name = self.config.local_name
        device_config.address = self.config.bumble_address
        device_config.irk = (bytes(self.config.bumble_address) * 3)[:16]
        device_config.identity_address_type = hci.Address.RANDOM_DEVICE_ADDRESS
        device_config.gap_service_enabled = False
        device_config.advertising_interval_min = self.config.advertising_interval_ms
        device_config.advertising_interval_max = self.config.advertising_interval_ms
        if self.link is not None:
            self.controller = Controller(f"{self.name}-controller", link=self.link)
            device = Device.from_config_with_hci(device_config, self.controller, self.controller)
        else:
            assert self.transport is not None
            device = Device.from_config_with_hci(
                device_config, self.transport.source, self.transport.sink
            )
        device.keystore = self.keystore
        device.pairing_config_factory = lambda _connection: pairing_config(self)
        device.on(Device.EVENT_CONNECTION, self._on_connection)
        device.on("characteristic_subscription", self._gatt.on_subscription)
        self.device = device
        self._gatt.build(device, self._racp.on_write)
        try:
            await device.power_on()
        except BaseException:
            await self._release()
            raise
        self._log(
            "powered on: %s, %s records, security %s, patient %s %.0f/%.0f",
            self.config.connectable,
            self.config.record_style,
            self.config.security,
            self.patient.profile,
            self.patient.baseline_systolic,
            self.patient.baseline_diastolic,
        )
        if self.config.measurement_interval is not None:
            self._spawn(self._run_schedule(self.config.measurement_interval), "schedule")
        if self.config.flaky_link is not None:
            self._spawn(self._run_flaky_link(self.config.flaky_link), "flaky link")
        # A freshly set-up cuff advertises (a brief one for a window, as after pairing mode).
        await self._adverts.advertise()

    async def stop(self) -> None:
        """Stop the schedule, hang up, stop advertising and leave the link."""
        if self.device is None:
            return
        self._stopping = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._adverts.stop()
        await self._disconnect_all(
            hci.HCI_REMOTE_DEVICE_TERMINATED_CONNECTION_DUE_TO_POWER_OFF_ERROR
        )
        with contextlib.suppress(Exception):
            await self.device.power_off()
        await self._release()
        self._stopping = False
        self._log("stopped")

    async def power_cut(self) -> None:
        """The batteries come out: the radio stops at once and no disconnection is sent,
        so a central learns of it only by its supervision timeout (which Bumble's virtual
        link lacks: its end of the link lives on). Stored readings and bonds survive, as
        in a real cuff's flash; `start()` powers it on again (its clock reset)."""
        if self.device is None:
            return
        self._stopping = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._release()
        self._adverts.active = False
        self._stopping = False
        self._changed()
        self._log("power cut")

    async def _release(self) -> None:
        if self.controller is not None and self.link is not None:
            with contextlib.suppress(KeyError):
                self.link.remove_controller(self.controller)
        self.controller = None
        self.device = None
        self._links.clear()

    async def __aenter__(self) -> SimulatedCuff:
        await self.start()
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()

    def _require_device(self) -> Device:
        if self.device is None:
            raise CuffNotRunning(f"cuff {self.name} is not running: call start() first")
        return self.device

    # --- range and advertising ------------------------------------------------------

    async def go_out_of_range(self) -> None:
        """The patient walks away: stop advertising and drop the link now (Bumble's
        virtual link has no supervision timeout, so the cuff hangs up itself). Readings
        taken meanwhile are stored."""
        self._require_device()
        self.in_range = False
        self._changed()
        self._log("out of range")
        await self._adverts.stop()
        await self._disconnect_all(OUT_OF_RANGE_REASON)

    async def come_back(self) -> None:
        """Back in range: advertise again (a brief cuff for one window; a "windows" cuff
        stays silent until its next measurement)."""
        self._require_device()
        self.in_range = True
        self._changed()
        self._log("back in range (%d reading(s) stored)", len(self.stored))
        if self.config.connectable != "windows":
            await self._adverts.advertise()

    async def _disconnect_all(self, reason: int) -> None:
        for link in list(self._links.values()):
            with contextlib.suppress(Exception):
                await link.connection.disconnect(reason)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await asyncio.shield(link.gone)

    # --- connections, pairing, subscriptions ---------------------------------------

    def _on_connection(self, connection: Connection) -> None:
        if connection.role != hci.Role.PERIPHERAL:
            return
        gone: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        link = _Link(connection, gone, str(connection.peer_address))
        self._links[connection] = link
        self._adverts.active = False  # a connectable advertisement ends on connection
        self._adverts.until = None
        self._changed()
        self._log("connected to %s", link.peer)

        def on_disconnection(reason: int) -> None:
            self._links.pop(connection, None)
            if not gone.done():
                gone.set_result(reason)
            self._changed()
            self._log("disconnected from %s (%s)", link.peer, _reason_name(reason))
            if self.config.connectable == "always" and not self._stopping:
                self._spawn(self._adverts.advertise(), "advertise")

        def on_pairing(keys: Any) -> None:
            ltk = getattr(keys, "ltk", None)
            authenticated = bool(ltk is not None and ltk.authenticated)
            if self.config.security == "passkey" and not authenticated:
                self._log("refused a pairing without passkey entry from %s", link.peer)
                self._spawn(self._refuse_bond(connection), "refuse bond")
                return
            link.paired = True
            self.pairings.append(str(connection.peer_address))
            self._log(
                "bonded with %s (%s)",
                connection.peer_address,
                "LE Secure Connections" if connection.sc else "legacy pairing",
            )

        def on_encryption_change() -> None:
            if connection.encryption and not link.paired:
                self._log("link encrypted with %s (stored bond)", link.peer)

        connection.on(Connection.EVENT_DISCONNECTION, on_disconnection)
        connection.on(Connection.EVENT_PAIRING, on_pairing)
        connection.on(
            Connection.EVENT_PAIRING_FAILURE,
            lambda reason: self._log("pairing with %s failed: %s", link.peer, reason),
        )
        connection.on(Connection.EVENT_CONNECTION_ENCRYPTION_CHANGE, on_encryption_change)

    async def _refuse_bond(self, connection: Connection) -> None:
        if self.device is not None and self.device.keystore is not None:
            with contextlib.suppress(Exception):
                await self.device.keystore.delete(str(connection.peer_address))
        with contextlib.suppress(Exception):
            await connection.disconnect(hci.HCI_AUTHENTICATION_FAILURE_ERROR)

    async def _indicate(
        self, connection: Connection, characteristic: Characteristic[Any], value: bytes
    ) -> bool:
        """Indicate and wait for the confirmation (see `CuffGatt.indicate`); every
        indication the cuff sends goes through here, so a subclass can watch them."""
        return await self._gatt.indicate(connection, characteristic, value)

    async def _linger_then_hang_up(self, connection: Connection) -> None:
        """A brief-window cuff hangs up once its records were read (issue #3)."""
        await self.clock.sleep(self.config.linger)
        if connection in self._links:
            self._log("records read: hanging up on %s", self._links[connection].peer)
            with contextlib.suppress(Exception):
                await connection.disconnect()

    # --- measuring ---------------------------------------------------------------------

    async def measure(self, problem: MeasurementProblem | str | None = None) -> MeasurementRecord:
        """Take one measurement now: inflate and deflate with Intermediate Cuff Pressure
        notifications, then indicate the result or store it. Returns what it measured."""
        device = self._require_device()
        async with self._measure_lock:
            started = self.clock.now()
            reading = self.patient.measure(started, self._rng, doses=self.doses, problem=problem)
            self._log("measuring%s", f" ({reading.problem})" if reading.problem else "")
            for sample in cuff_pressure_trace(reading):
                await self.clock.sleep_until(started + sample.after)
                await self._send_cuff_pressure(device, sample.pressure)
            now = self.clock.now()
            cuff_time = self.cuff_clock(now)
            measurement = measurement_for(
                reading,
                timestamp=cuff_time,
                unit=self.config.unit,
                user_id=self.config.user_id,
                quirk=self.config.quirk,
            )
            record = MeasurementRecord(
                sequence_number=self._next_sequence,
                taken_at=now,
                cuff_time=cuff_time,
                reading=reading,
                measurement=measurement,
                payload=measurement_payload(measurement, self.config.quirk),
            )
            self._next_sequence = (self._next_sequence + 1) % SEQUENCE_NUMBER_MODULUS
            self.measurement_log.append(record)
            self._changed()
            await self._deliver(record)
            await self._update_battery(now)
        if not self._links:
            await self._adverts.advertise()
        return record

    async def _send_cuff_pressure(self, device: Device, pressure_mmhg: float) -> None:
        unit = self.config.unit
        value = (
            pressure_mmhg if unit is PressureUnit.MMHG else round(pressure_mmhg / MMHG_PER_KPA, 1)
        )
        payload = bytes(IntermediateCuffPressure(unit, value))
        for connection in list(self._links):
            if self._gatt.notifying(connection, self._gatt.cuff_pressure):
                with contextlib.suppress(Exception):
                    await device.notify_subscriber(connection, self._gatt.cuff_pressure, payload)

    async def _deliver(self, record: MeasurementRecord) -> None:
        if self.config.record_style == "bps10":
            self._pending.append(record)
            while len(self._pending) > self.config.record_capacity:
                dropped = self._pending.popleft()
                self._log("store full: dropped seq %d", dropped.sequence_number)
            subscribed = [
                c for c in self._links if self._gatt.indicating(c, self._gatt.measurement)
            ]
            for connection in subscribed:
                await self._replay(connection, just_subscribed=False)
            if record in self._pending:
                self._log("stored %s (%d waiting)", record.describe(), len(self._pending))
            return
        self._records[record.sequence_number] = record
        while len(self._records) > self.config.record_capacity:
            oldest = next(iter(self._records))
            del self._records[oldest]
            self._log("record database full: dropped seq %d", oldest)
        for connection in list(self._links):
            if await self._indicate(connection, self._gatt.measurement, record.payload):
                self._log("sent %s (indication confirmed)", record.describe())
                return
        self._log("stored %s as a record (%d in store)", record.describe(), len(self._records))

    async def _replay(self, connection: Connection, *, just_subscribed: bool = True) -> None:
        """BPS 1.0: send what is stored, oldest first, each removed once confirmed; a
        brief-window cuff then hangs up."""
        if just_subscribed:
            await self.clock.sleep(REPLAY_DELAY)
        async with self._delivery_lock:
            while self._pending and connection in self._links:
                record = self._pending[0]
                if not await self._indicate(connection, self._gatt.measurement, record.payload):
                    return
                if self._pending and self._pending[0] is record:
                    self._pending.popleft()
                    self._changed()
                self._log("sent %s (indication confirmed)", record.describe())
        if self.config.connectable in HANGS_UP and connection in self._links:
            self._spawn(self._linger_then_hang_up(connection), "linger")

    async def _update_battery(self, now: datetime) -> None:
        level = self.battery(now)
        if level == self._battery_notified or self.device is None:
            return
        self._battery_notified = level
        with contextlib.suppress(Exception):
            await self.device.notify_subscribers(self._gatt.battery, bytes(BatteryLevel(level)))

    async def _run_schedule(self, interval: timedelta) -> None:
        await self.clock.sleep(self.config.first_measurement_after)
        while True:
            problems = self.config.problems
            problem = problems[self._scheduled_count % len(problems)] if problems else None
            self._scheduled_count += 1
            started = self.clock.now()
            await self.measure(problem)
            await self.clock.sleep_until(started + interval)

    async def _run_flaky_link(self, flaky: FlakyLink) -> None:
        while True:
            await self.clock.sleep(flaky.every - flaky.lasting)
            await self.go_out_of_range()
            await self.clock.sleep(flaky.lasting)
            await self.come_back()
