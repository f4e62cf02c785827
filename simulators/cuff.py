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
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, get_args

from bumble import hci, pairing
from bumble.att import ATT_Error, Attribute
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Connection, Device, DeviceConfiguration
from bumble.gatt import (
    GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
    Characteristic,
    CharacteristicValue,
    Descriptor,
    Service,
)
from bumble.keys import KeyStore, MemoryKeyStore
from bumble.link import LocalLink
from bumble.profiles.gap import GenericAccessService
from bumble.transport.common import Transport

from devices import gatt
from devices.bps import (
    MMHG_PER_KPA,
    BatteryLevel,
    BloodPressureFeature,
    BloodPressureMeasurement,
    CurrentTime,
    IntermediateCuffPressure,
    MalformedPayload,
    PressureUnit,
    RacpNumberOfRecords,
    RacpOpCode,
    RacpRequest,
    RacpResponse,
    RacpResponseCode,
    segment_record,
)
from simulators.clock import SimClock
from simulators.frames import Quirk, measurement_for, measurement_payload
from simulators.physiology import (
    MeasurementProblem,
    Patient,
    Profile,
    Reading,
    cuff_pressure_trace,
)

logger = logging.getLogger(__name__)

SecurityMode = Literal["none", "just-works", "passkey", "refuse"]
RecordStyle = Literal["bps10", "bps11"]
Connectability = Literal["always", "brief", "windows"]
HANGS_UP: Final = ("brief", "windows")  # hang up `linger` after the records were read

# Advertising payload budget: 31 bytes (Core Vol 3 Part C 11). Flags (3), the 0x1810
# service list (4) and the appearance (4) leave 20 for the name's own 2-byte header + text.
MAX_LOCAL_NAME_BYTES: Final = 18
# A cuff's own clock after a battery change, until a central sets it (DESIGN.md,
# "Real cuffs": clocks are often wrong after a battery change).
DEFAULT_RESET_CLOCK: Final = datetime(2020, 1, 1, 0, 0)
# Battery drain (typical 4xAA cuff: a few hundred measurements per set of batteries).
IDLE_DRAIN_PERCENT_PER_HOUR: Final = 0.5
MEASUREMENT_DRAIN_PERCENT: Final = 0.25
# Lets the central's CCCD write response go out before the first replayed indication.
REPLAY_DELAY: Final = timedelta(milliseconds=200)
# Out of range looks like a supervision timeout to the central (Core Vol 1 Part F 2:
# 0x08 Connection Timeout); Bumble's virtual link has none, so the cuff sends it.
OUT_OF_RANGE_REASON: Final = hci.HCI_CONNECTION_TIMEOUT_ERROR
# Real Current Time Service servers refuse a time they cannot take (CTS 1.1, 3.1.2.1).
CTS_DATA_FIELD_IGNORED: Final = 0x80
SEQUENCE_NUMBER_MODULUS: Final = 0x10000  # uint16 (BPS 1.1, 3.5.1)


def _parse_random_static(address: str) -> hci.Address:
    try:
        parsed = hci.Address(address, hci.Address.RANDOM_DEVICE_ADDRESS)
    except (ValueError, TypeError) as error:
        raise ValueError(f"address {address!r} is not a Bluetooth address: {error}") from None
    # Random static: the two most significant bits are 1 (Core Vol 6 Part B 1.3.2.1).
    if bytes(parsed)[5] >> 6 != 0b11:
        raise ValueError(
            f"address {address!r} is not a random static address: its first byte must be "
            f"C0..FF (the two top bits set), e.g. D0:00:00:00:00:01"
        )
    return parsed


@dataclass(frozen=True)
class FlakyLink:
    """The cuff drops out of range for `lasting` once every `every` (simulated time)."""

    every: timedelta
    lasting: timedelta

    def __post_init__(self) -> None:
        if not timedelta(0) < self.lasting < self.every:
            raise ValueError(
                f"a flaky link needs 0 < lasting < every, got {self.lasting} and {self.every}"
            )


@dataclass(frozen=True)
class CuffConfig:
    """Everything that makes one simulated cuff what it is. Durations are simulated time.

    - `security`: "just-works" (default: the BP characteristics need an encrypted link,
      LE Secure Connections Just Works bonds), "passkey" (the central must enter
      `passkey`; a pairing without MITM protection is refused), "refuse" (the BP
      characteristics need an encrypted link, and every pairing request is refused, as
      by a cuff whose pairing memory is full) or "none".
    - `record_style`: "bps10" replays stored readings as Measurement indications, oldest
      first, when a central subscribes; "bps11" serves them through the RACP as Blood
      Pressure Records with sequence numbers.
    - `connectable`: "always", "brief" (advertises for `advertising_window` after a
      measurement and hangs up `linger` after its records were read) or "windows", as
      real cuffs do: advertises only for a short window after a measurement (and on
      start), `window_seconds` drawn per window, in real seconds whatever the clock's
      speed (radio time is not simulated), silent otherwise; hangs up as "brief" does.
    - `measurement_interval`: periodic measurements, the first `first_measurement_after`
      start; `problems` is cycled through those scheduled measurements.
    - `quirk`: None or "beurer-bm85" (see `simulators.frames.Quirk`).
    - the patient: `patient` if given, else drawn from `profile` (and `high_responder`)
      with `seed`; `dose_after` puts a dose that long after start.
    """

    address: str = "D0:00:00:00:00:01"
    local_name: str = "SIM-BP"
    manufacturer: str = "vitalsd simulator"
    model: str = "SIM-BP"
    serial: str = "SIM-0001"
    firmware: str = "1.0.0"
    security: SecurityMode = "just-works"
    passkey: int = 123456
    record_style: RecordStyle = "bps10"
    connectable: Connectability = "always"
    measurement_interval: timedelta | None = None
    first_measurement_after: timedelta = timedelta(minutes=1)
    problems: tuple[MeasurementProblem | None, ...] = ()
    quirk: Quirk | None = None
    unit: PressureUnit = PressureUnit.MMHG
    user_id: int | None = None
    profile: Profile = Profile.NORMOTENSIVE
    high_responder: bool | None = None
    patient: Patient | None = None
    seed: int = 0
    dose_after: timedelta | None = None
    flaky_link: FlakyLink | None = None
    reset_clock: datetime = DEFAULT_RESET_CLOCK
    battery_level: int = 90
    advertising_window: timedelta = timedelta(minutes=2)
    linger: timedelta = timedelta(seconds=5)
    window_seconds: tuple[float, float] = (1.0, 3.0)
    record_capacity: int = 200
    advertising_interval_ms: float = 100.0
    # False: no Current Time service (many cheap cuffs): nobody can read or set its clock.
    current_time_service: bool = True

    def __post_init__(self) -> None:
        _parse_random_static(self.address)
        if len(self.local_name.encode()) > MAX_LOCAL_NAME_BYTES:
            raise ValueError(
                f"local_name {self.local_name!r} is longer than {MAX_LOCAL_NAME_BYTES} bytes "
                f"and would not fit the advertisement"
            )
        for name, value, allowed in (
            ("security", self.security, get_args(SecurityMode)),
            ("record_style", self.record_style, get_args(RecordStyle)),
            ("connectable", self.connectable, get_args(Connectability)),
        ):
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")
        if not 0 <= self.passkey <= 999_999:
            raise ValueError(f"passkey must be six digits (0..999999), got {self.passkey}")
        if self.quirk is not None:
            try:
                object.__setattr__(self, "quirk", Quirk(self.quirk))
            except ValueError:
                known = ", ".join(q.value for q in Quirk)
                raise ValueError(f"unknown quirk {self.quirk!r}; known: {known}") from None
        object.__setattr__(self, "unit", PressureUnit(self.unit))
        object.__setattr__(self, "profile", Profile(self.profile))
        object.__setattr__(
            self,
            "problems",
            tuple(None if p is None else MeasurementProblem(p) for p in self.problems),
        )
        if self.measurement_interval is not None and self.measurement_interval <= timedelta(0):
            raise ValueError(f"measurement_interval must be positive: {self.measurement_interval}")
        if self.reset_clock.tzinfo is not None:
            raise ValueError("reset_clock is the cuff's naive wall clock: pass a naive datetime")
        if not 0 <= self.battery_level <= 100:
            raise ValueError(f"battery_level must be 0..100 %, got {self.battery_level}")
        low, high = self.window_seconds
        if not 0 < low <= high:
            raise ValueError(f"window_seconds must be 0 < low <= high, got {self.window_seconds}")
        if self.record_capacity < 1:
            raise ValueError(f"record_capacity must be at least 1, got {self.record_capacity}")
        if self.user_id is not None and not 0 <= self.user_id <= 0xFF:
            raise ValueError(f"user_id must be 0..255, got {self.user_id}")

    @property
    def bumble_address(self) -> hci.Address:
        return _parse_random_static(self.address)


@dataclass(frozen=True)
class MeasurementRecord:
    """One measurement the cuff took: the ground truth for delivery tests.

    `taken_at` is simulated UTC when the result was ready; `cuff_time` the cuff's own
    (possibly wrong) naive clock it was stamped with; `payload` the exact 0x2A35 bytes.
    """

    sequence_number: int
    taken_at: datetime
    cuff_time: datetime
    reading: Reading
    measurement: BloodPressureMeasurement
    payload: bytes

    @property
    def problem(self) -> MeasurementProblem | None:
        return self.reading.problem


def battery_level(initial: int, elapsed: timedelta, measurements: int) -> int:
    """Percent left after `elapsed` powered time and `measurements` inflations (>= 1)."""
    hours = max(0.0, elapsed.total_seconds() / 3600)
    used = hours * IDLE_DRAIN_PERCENT_PER_HOUR + measurements * MEASUREMENT_DRAIN_PERCENT
    return max(1, min(initial, round(initial - used)))


def _reason_name(reason: int) -> str:
    try:
        return hci.HCI_ErrorCode(reason).name
    except ValueError:
        return f"reason {reason:#04x}"


class CuffNotRunning(RuntimeError):
    """The cuff was asked to act before `start()` or after `stop()`."""


@dataclass
class _Link:
    """What the cuff knows about one central connected to it."""

    connection: Connection
    gone: asyncio.Future[int]
    peer: str
    paired: bool = False


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
        self._window_rng = random.Random(f"windows:{config.seed}")
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
        self._advertising = False
        # One advertising change at a time (see `_advertise`).
        self._advertising_lock = asyncio.Lock()
        self._advertising_until: datetime | None = None
        self._window_task: asyncio.Task[None] | None = None
        self._racp_busy = False
        self._racp_abort = False
        self._racp_idle = asyncio.Event()
        self._racp_idle.set()
        self._started_at: datetime | None = None
        self._battery_notified = config.battery_level
        self._scheduled_count = 0
        self._stopping = False
        self._waiters: list[asyncio.Future[None]] = []

    # --- identity and state --------------------------------------------------------

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
        return self._advertising

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
        return any(
            self._notifying(c, self._cuff_pressure_characteristic)
            and self._indicating(c, self._measurement_characteristic)
            for c in self._links
        )

    @property
    def racp_in_progress(self) -> bool:
        """A BPS 1.1 RACP procedure is running (another is refused meanwhile)."""
        return self._racp_busy

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
        device.pairing_config_factory = self._pairing_config
        device.on(Device.EVENT_CONNECTION, self._on_connection)
        device.on("characteristic_subscription", self._on_subscription)
        self.device = device
        self._build_gatt(device)
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
        await self._advertise()

    async def stop(self) -> None:
        """Stop the schedule, hang up, stop advertising and leave the link."""
        if self.device is None:
            return
        self._stopping = True
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._stop_advertising()
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
        self._advertising = False
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
        await self._stop_advertising()
        await self._disconnect_all(OUT_OF_RANGE_REASON)

    async def come_back(self) -> None:
        """Back in range: advertise again (a brief cuff for one window; a "windows" cuff
        stays silent until its next measurement)."""
        self._require_device()
        self.in_range = True
        self._changed()
        self._log("back in range (%d reading(s) stored)", len(self.stored))
        if self.config.connectable != "windows":
            await self._advertise()

    def _advertising_data(self) -> bytes:
        return bytes(
            AdvertisingData(
                [
                    (
                        AdvertisingData.FLAGS,
                        bytes(
                            [
                                AdvertisingData.LE_GENERAL_DISCOVERABLE_MODE_FLAG
                                | AdvertisingData.BR_EDR_NOT_SUPPORTED_FLAG
                            ]
                        ),
                    ),
                    (
                        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                        gatt.BLOOD_PRESSURE_SERVICE.to_bytes(2, "little"),
                    ),
                    (
                        AdvertisingData.APPEARANCE,
                        gatt.APPEARANCE_BLOOD_PRESSURE_ARM.to_bytes(2, "little"),
                    ),
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self.config.local_name.encode()),
                ]
            )
        )

    async def _advertise(self) -> None:
        """Advertise if in range and free: for good ("always") or for one window ("brief").

        Changes are made one at a time: a measurement ending as a link drops or as the
        cuff comes back in range asks for advertising twice at once, and two overlapping
        `Device.start_advertising` calls both remove the same advertising set (the second
        with KeyError(0), killing whichever task made it, e.g. the schedule), while a stop
        overlapping a start would leave a cuff out of range advertising."""
        async with self._advertising_lock:
            device = self.device
            if device is None or self._stopping or not self.in_range or self._links:
                return
            if self.config.connectable in HANGS_UP:
                self._advertising_until = self.clock.now() + self._window()
                if self._window_task is None or self._window_task.done():
                    self._window_task = self._spawn(self._close_window(), "advertising window")
            if not device.is_advertising:
                await device.start_advertising(
                    advertising_data=self._advertising_data(), scan_response_data=b""
                )
            # Bumble's view, not ours: a central that connected meanwhile ended the
            # advertisement (and `_on_connection` already said so).
            advertising = device.is_advertising and not self._links
            if advertising != self._advertising:
                self._advertising = advertising
                self._changed()
                if advertising:
                    self._log("advertising")

    def _window(self) -> timedelta:
        """How long this advertising window lasts, in simulated time."""
        if self.config.connectable == "windows":
            real = self._window_rng.uniform(*self.config.window_seconds)
            return timedelta(seconds=real * self.clock.speed)
        return self.config.advertising_window

    async def _close_window(self) -> None:
        while self._advertising_until is not None:
            remaining = self._advertising_until - self.clock.now()
            if remaining <= timedelta(0):
                break
            await self.clock.sleep(remaining)
        self._advertising_until = None
        if self._advertising:
            await self._stop_advertising()

    async def _stop_advertising(self) -> None:
        """Stop advertising, after any advertising change under way (see `_advertise`)."""
        async with self._advertising_lock:
            device = self.device
            self._advertising_until = None
            if self._advertising:
                self._advertising = False
                self._changed()
            if device is None or not device.is_advertising:
                return
            with contextlib.suppress(Exception):
                await device.stop_advertising()
            self._log("advertising stopped")

    async def _disconnect_all(self, reason: int) -> None:
        for link in list(self._links.values()):
            with contextlib.suppress(Exception):
                await link.connection.disconnect(reason)
            with contextlib.suppress(Exception):
                async with asyncio.timeout(5):
                    await asyncio.shield(link.gone)

    # --- connections, pairing, subscriptions ---------------------------------------

    def _pairing_config(self, _connection: Connection) -> pairing.PairingConfig:
        if self.config.security == "passkey":
            passkey = self.config.passkey
            cuff = self

            class DisplayPasskey(pairing.PairingDelegate):
                async def generate_passkey(self) -> int:
                    return passkey

                async def display_number(self, number: int, digits: int) -> None:
                    cuff._log("display shows passkey %0*d", digits, number)

            delegate: pairing.PairingDelegate = DisplayPasskey(
                io_capability=pairing.PairingDelegate.DISPLAY_OUTPUT_ONLY
            )
        elif self.config.security == "refuse":

            class Refuse(pairing.PairingDelegate):
                async def accept(self) -> bool:
                    cuff._log("refused a pairing request")
                    return False

            cuff = self
            delegate = Refuse(io_capability=pairing.PairingDelegate.NO_OUTPUT_NO_INPUT)
        else:
            delegate = pairing.PairingDelegate(
                io_capability=pairing.PairingDelegate.NO_OUTPUT_NO_INPUT
            )
        return pairing.PairingConfig(
            sc=True,
            mitm=self.config.security == "passkey",
            bonding=True,
            delegate=delegate,
            identity_address_type=pairing.PairingConfig.AddressType.RANDOM,
        )

    def _on_connection(self, connection: Connection) -> None:
        if connection.role != hci.Role.PERIPHERAL:
            return
        gone: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        link = _Link(connection, gone, str(connection.peer_address))
        self._links[connection] = link
        self._advertising = False  # a connectable advertisement ends on connection
        self._advertising_until = None
        self._changed()
        self._log("connected to %s", link.peer)

        def on_disconnection(reason: int) -> None:
            self._links.pop(connection, None)
            if not gone.done():
                gone.set_result(reason)
            self._changed()
            self._log("disconnected from %s (%s)", link.peer, _reason_name(reason))
            if self.config.connectable == "always" and not self._stopping:
                self._spawn(self._advertise(), "advertise")

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

    def _connection_of(self, bearer: Any) -> Connection | None:
        if isinstance(bearer, Connection):
            return bearer
        connection = getattr(bearer, "connection", None)
        return connection if isinstance(connection, Connection) else None

    def _on_subscription(
        self, bearer: Any, characteristic: Characteristic[Any], notify: bool, indicate: bool
    ) -> None:
        connection = self._connection_of(bearer)
        if connection is None or connection not in self._links:
            return
        uuid = characteristic.uuid
        self._log(
            "%s %s %s",
            self._links[connection].peer,
            "subscribed to" if notify or indicate else "unsubscribed from",
            uuid,
            level=logging.DEBUG,
        )
        self._changed()
        if (
            indicate
            and characteristic is self._measurement_characteristic
            and self.config.record_style == "bps10"
        ):
            self._spawn(self._replay(connection), "replay")

    def _cccd(self, connection: Connection, characteristic: Characteristic[Any]) -> int:
        device = self.device
        if device is None:
            return 0
        value = device.gatt_server.subscribers.get(connection, {}).get(characteristic.handle)
        return int.from_bytes(value, "little") if value and len(value) == 2 else 0

    def _indicating(self, connection: Connection, characteristic: Characteristic[Any]) -> bool:
        return bool(self._cccd(connection, characteristic) & gatt.CCCD_INDICATE)

    def _notifying(self, connection: Connection, characteristic: Characteristic[Any]) -> bool:
        return bool(self._cccd(connection, characteristic) & gatt.CCCD_NOTIFY)

    async def _indicate(
        self, connection: Connection, characteristic: Characteristic[Any], value: bytes
    ) -> bool:
        """Indicate `value` and wait for the central's Handle Value Confirmation (Core
        Vol 3 Part F 3.4.7.3). True only if that confirmation came while the link was
        up; False if the link ended first, the central was not subscribed or the
        indication failed: what the caller holds stays stored, to be sent again.

        Bumble's `indicate_subscriber` returns at once, sending nothing, for a central it
        has no subscription from, as after a disconnection it processed since our check;
        so the check is repeated in the same step as that call, which then sends for
        sure, and returns only on the confirmation (Bumble drops a confirmation that
        arrives for a link it has let go). A link that ends before the confirmation was
        seen counts as unconfirmed, even if the central got the value: delivery is at
        least once, and the daemon drops a replayed duplicate.
        """
        device = self.device
        link = self._links.get(connection)
        if device is None or link is None or link.gone.done():
            return False

        async def send() -> bool:
            if self._links.get(connection) is not link or not self._indicating(
                connection, characteristic
            ):
                return False
            await device.indicate_subscriber(connection, characteristic, value)
            return True

        sending = asyncio.ensure_future(send())
        racing: set[asyncio.Future[Any]] = {sending, link.gone}
        done, _ = await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        if sending not in done:
            sending.cancel()
            return False
        try:
            return sending.result()
        except Exception as error:
            self._log("indication to %s failed: %r", link.peer, error, level=logging.WARNING)
            return False

    async def _linger_then_hang_up(self, connection: Connection) -> None:
        """A brief-window cuff hangs up once its records were read (issue #3)."""
        await self.clock.sleep(self.config.linger)
        if connection in self._links:
            self._log("records read: hanging up on %s", self._links[connection].peer)
            with contextlib.suppress(Exception):
                await connection.disconnect()

    # --- GATT database ----------------------------------------------------------------

    def _permissions(self, *, read: bool = False, write: bool = False) -> Attribute.Permissions:
        permissions = Attribute.Permissions(0)
        protected = self.config.security != "none"
        if read:
            permissions |= Attribute.Permissions.READABLE
            if protected:
                permissions |= Attribute.Permissions.READ_REQUIRES_ENCRYPTION
        if write:
            permissions |= Attribute.Permissions.WRITEABLE
            if protected:
                permissions |= Attribute.Permissions.WRITE_REQUIRES_ENCRYPTION
        return permissions

    def _protected_cccd(self, device: Device, characteristic: Characteristic[Any]) -> None:
        """Bumble's automatic CCCD is open to anyone; real cuffs require an encrypted link
        to subscribe, which is what makes a central pair (Core Vol 3 Part G 3.3.3.3)."""
        characteristic.descriptors = [
            Descriptor(
                GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
                self._permissions(read=True, write=True),
                device.gatt_server.make_descriptor_value(characteristic),
            )
        ]

    def _build_gatt(self, device: Device) -> None:
        def uuid(short: int) -> UUID:
            return UUID.from_16_bits(short)

        properties = Characteristic.Properties
        self._measurement_characteristic: Characteristic[bytes] = Characteristic(
            uuid(gatt.BLOOD_PRESSURE_MEASUREMENT), properties.INDICATE, Attribute.Permissions(0)
        )
        self._cuff_pressure_characteristic: Characteristic[bytes] = Characteristic(
            uuid(gatt.INTERMEDIATE_CUFF_PRESSURE), properties.NOTIFY, Attribute.Permissions(0)
        )
        feature = (
            BloodPressureFeature.BODY_MOVEMENT_DETECTION
            | BloodPressureFeature.CUFF_FIT_DETECTION
            | BloodPressureFeature.IRREGULAR_PULSE_DETECTION
            | BloodPressureFeature.MEASUREMENT_POSITION_DETECTION
        )
        blood_pressure = [
            self._measurement_characteristic,
            self._cuff_pressure_characteristic,
            Characteristic(
                uuid(gatt.BLOOD_PRESSURE_FEATURE),
                properties.READ,
                self._permissions(read=True),
                bytes(feature),
            ),
        ]
        self._racp_characteristic: Characteristic[bytes] | None = None
        self._record_characteristic: Characteristic[bytes] | None = None
        if self.config.record_style == "bps11":
            self._record_characteristic = Characteristic(
                uuid(gatt.BLOOD_PRESSURE_RECORD), properties.INDICATE, Attribute.Permissions(0)
            )
            self._racp_characteristic = Characteristic(
                uuid(gatt.RECORD_ACCESS_CONTROL_POINT),
                properties.WRITE | properties.INDICATE,
                self._permissions(write=True),
                CharacteristicValue(write=self._on_racp_write),
            )
            blood_pressure += [self._record_characteristic, self._racp_characteristic]
        for characteristic in blood_pressure:
            if characteristic.properties & (properties.NOTIFY | properties.INDICATE):
                self._protected_cccd(device, characteristic)

        def text(short: int, value: str) -> Characteristic[bytes]:
            return Characteristic(
                uuid(short), properties.READ, Attribute.Permissions.READABLE, value.encode()
            )

        self._battery_characteristic: Characteristic[bytes] = Characteristic(
            uuid(gatt.BATTERY_LEVEL),
            properties.READ | properties.NOTIFY,
            Attribute.Permissions.READABLE,
            CharacteristicValue(
                read=lambda _c: bytes(BatteryLevel(self.battery(self.clock.now())))
            ),
        )
        self._time_characteristic: Characteristic[bytes] = Characteristic(
            uuid(gatt.CURRENT_TIME),
            properties.READ | properties.WRITE | properties.NOTIFY,
            Attribute.Permissions.READABLE | self._permissions(write=True),
            CharacteristicValue(read=self._read_time, write=self._write_time),
        )
        device.add_services(
            [
                GenericAccessService(self.config.local_name, gatt.APPEARANCE_BLOOD_PRESSURE_ARM),
                Service(uuid(gatt.BLOOD_PRESSURE_SERVICE), blood_pressure),
                Service(
                    uuid(gatt.DEVICE_INFORMATION_SERVICE),
                    [
                        text(gatt.MANUFACTURER_NAME_STRING, self.config.manufacturer),
                        text(gatt.MODEL_NUMBER_STRING, self.config.model),
                        text(gatt.SERIAL_NUMBER_STRING, self.config.serial),
                        text(gatt.FIRMWARE_REVISION_STRING, self.config.firmware),
                    ],
                ),
                Service(uuid(gatt.BATTERY_SERVICE), [self._battery_characteristic]),
            ]
        )
        if self.config.current_time_service:
            device.add_services(
                [Service(uuid(gatt.CURRENT_TIME_SERVICE), [self._time_characteristic])]
            )

    def _read_time(self, _connection: Connection | None) -> bytes:
        return bytes(CurrentTime.from_datetime(self.cuff_clock(self.clock.now())))

    def _write_time(self, connection: Connection | None, value: bytes) -> None:
        try:
            written = CurrentTime.from_bytes(value).datetime
        except MalformedPayload as error:
            self._log("refused a Current Time write: %s", error, level=logging.WARNING)
            raise ATT_Error(gatt.ATT_OUT_OF_RANGE) from None
        if written is None:
            raise ATT_Error(CTS_DATA_FIELD_IGNORED)
        now = self.clock.now()
        self.clock_offset = written - now.astimezone(UTC).replace(tzinfo=None)
        self.clock_set = True
        self._log("clock set to %s", written.isoformat(timespec="seconds"))

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
            await self._advertise()
        return record

    async def _send_cuff_pressure(self, device: Device, pressure_mmhg: float) -> None:
        unit = self.config.unit
        value = (
            pressure_mmhg if unit is PressureUnit.MMHG else round(pressure_mmhg / MMHG_PER_KPA, 1)
        )
        payload = bytes(IntermediateCuffPressure(unit, value))
        for connection in list(self._links):
            if self._notifying(connection, self._cuff_pressure_characteristic):
                with contextlib.suppress(Exception):
                    await device.notify_subscriber(
                        connection, self._cuff_pressure_characteristic, payload
                    )

    def _describe(self, record: MeasurementRecord) -> str:
        reading = record.reading
        if reading.is_error:
            return f"seq {record.sequence_number}: error frame (measurement failed)"
        flags = f" [{reading.problem}]" if reading.problem else ""
        return (
            f"seq {record.sequence_number}: {reading.systolic:.0f}/{reading.diastolic:.0f} "
            f"mmHg, MAP {reading.mean_arterial_pressure:.0f}, pulse {reading.pulse_rate:.0f}"
            f"{flags}, stamped {record.cuff_time.isoformat()}"
        )

    async def _deliver(self, record: MeasurementRecord) -> None:
        if self.config.record_style == "bps10":
            self._pending.append(record)
            while len(self._pending) > self.config.record_capacity:
                dropped = self._pending.popleft()
                self._log("store full: dropped seq %d", dropped.sequence_number)
            subscribed = [
                c for c in self._links if self._indicating(c, self._measurement_characteristic)
            ]
            for connection in subscribed:
                await self._replay(connection, just_subscribed=False)
            if record in self._pending:
                self._log("stored %s (%d waiting)", self._describe(record), len(self._pending))
            return
        self._records[record.sequence_number] = record
        while len(self._records) > self.config.record_capacity:
            oldest = next(iter(self._records))
            del self._records[oldest]
            self._log("record database full: dropped seq %d", oldest)
        for connection in list(self._links):
            if await self._indicate(connection, self._measurement_characteristic, record.payload):
                self._log("sent %s (indication confirmed)", self._describe(record))
                return
        self._log("stored %s as a record (%d in store)", self._describe(record), len(self._records))

    async def _replay(self, connection: Connection, *, just_subscribed: bool = True) -> None:
        """BPS 1.0: send what is stored, oldest first, each removed once confirmed; a
        brief-window cuff then hangs up."""
        if just_subscribed:
            await self.clock.sleep(REPLAY_DELAY)
        async with self._delivery_lock:
            while self._pending and connection in self._links:
                record = self._pending[0]
                if not await self._indicate(
                    connection, self._measurement_characteristic, record.payload
                ):
                    return
                if self._pending and self._pending[0] is record:
                    self._pending.popleft()
                    self._changed()
                self._log("sent %s (indication confirmed)", self._describe(record))
        if self.config.connectable in HANGS_UP and connection in self._links:
            self._spawn(self._linger_then_hang_up(connection), "linger")

    async def _update_battery(self, now: datetime) -> None:
        level = self.battery(now)
        if level == self._battery_notified or self.device is None:
            return
        self._battery_notified = level
        with contextlib.suppress(Exception):
            await self.device.notify_subscribers(
                self._battery_characteristic, bytes(BatteryLevel(level))
            )

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

    # --- Record Access Control Point (BPS 1.1, 3.5) -------------------------------------

    def _on_racp_write(self, connection: Connection | None, value: bytes) -> None:
        racp, records = self._racp_characteristic, self._record_characteristic
        assert racp is not None and records is not None
        if connection is None or connection not in self._links:
            return
        if not self._indicating(connection, racp):
            raise ATT_Error(gatt.ATT_CCCD_IMPROPERLY_CONFIGURED)
        request = RacpRequest.parse(value)
        if isinstance(request, RacpResponse):
            self._log("RACP request refused: %s", request.response_code.name)
            self._spawn(self._indicate(connection, racp, bytes(request)), "RACP response")
            return
        if request.op_code is RacpOpCode.ABORT_OPERATION:
            self._racp_abort = self._racp_busy
            self._spawn(self._answer_abort(connection), "RACP abort")
            return
        if self._racp_busy:
            raise ATT_Error(gatt.ATT_PROCEDURE_ALREADY_IN_PROGRESS)
        reporting = request.op_code in (
            RacpOpCode.REPORT_STORED_RECORDS,
            RacpOpCode.COMBINED_REPORT,
        )
        if reporting and not self._indicating(connection, records):
            raise ATT_Error(gatt.ATT_CCCD_IMPROPERLY_CONFIGURED)
        self._racp_busy = True
        self._racp_idle.clear()
        self._spawn(self._run_racp(connection, request), "RACP procedure")

    async def _answer_abort(self, connection: Connection) -> None:
        racp = self._racp_characteristic
        assert racp is not None
        await self._racp_idle.wait()
        self._racp_abort = False
        response = RacpResponse(RacpOpCode.ABORT_OPERATION, RacpResponseCode.SUCCESS)
        await self._indicate(connection, racp, bytes(response))

    async def _run_racp(self, connection: Connection, request: RacpRequest) -> None:
        racp, records = self._racp_characteristic, self._record_characteristic
        assert racp is not None and records is not None
        try:
            selected = request.select(self._records)
            self._log(
                "RACP %s %s: %d record(s)",
                request.op_code.name,
                request.operator.name,
                len(selected),
            )
            if request.op_code is RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS:
                await self._indicate(connection, racp, bytes(RacpNumberOfRecords(len(selected))))
                return
            if request.op_code is RacpOpCode.DELETE_STORED_RECORDS:
                for sequence_number in selected:
                    del self._records[sequence_number]
                self._changed()
                code = RacpResponseCode.SUCCESS if selected else RacpResponseCode.NO_RECORDS_FOUND
                await self._indicate(connection, racp, bytes(RacpResponse(request.op_code, code)))
                return
            if not selected and request.op_code is RacpOpCode.REPORT_STORED_RECORDS:
                response = RacpResponse(request.op_code, RacpResponseCode.NO_RECORDS_FOUND)
                if (
                    await self._indicate(connection, racp, bytes(response))
                    and self.config.connectable == "windows"
                ):
                    # Nothing new to read: a "windows" cuff hangs up all the same.
                    self._spawn(self._linger_then_hang_up(connection), "linger")
                return
            max_segment = connection.att_mtu - 3  # ATT_Handle_Value_Indication overhead
            for sequence_number in selected:
                if self._racp_abort:
                    self._log("RACP report aborted")
                    return
                record = self._records.get(sequence_number)
                if record is None:
                    continue
                for segment in segment_record(
                    sequence_number,
                    gatt.BLOOD_PRESSURE_MEASUREMENT,
                    record.payload,
                    max_segment_size=max_segment,
                ):
                    if not await self._indicate(connection, records, bytes(segment)):
                        return
                self._log("sent record %s", self._describe(record), level=logging.DEBUG)
            if request.op_code is RacpOpCode.COMBINED_REPORT:
                done = bytes(RacpNumberOfRecords(len(selected), combined_report=True))
            else:
                done = bytes(RacpResponse(request.op_code, RacpResponseCode.SUCCESS))
            if await self._indicate(connection, racp, done):
                self._log("sent %d stored record(s) through the RACP", len(selected))
                if self.config.connectable in HANGS_UP:
                    self._spawn(self._linger_then_hang_up(connection), "linger")
        finally:
            self._racp_busy = False
            self._racp_idle.set()
