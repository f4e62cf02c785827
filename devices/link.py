"""One cuff: connect, identify, bond, set its clock, collect its readings, follow it.

Plain Bleak API only, so the same code runs over BlueZ and over our Bumble backend.
`CuffLink.run()` is one connection, from `establish_connection` to the disconnect; the
supervisor calls it again each time the cuff comes back. What must survive between
connections (identity, the last BPS 1.1 sequence number, the readings already delivered)
lives in a `CuffMemory` the supervisor keeps.

The functional core at the top (`reading_key`, `cuff_time_to_utc`, `DeliveredReadings`,
`next_records_request`) is pure and clock-injected; `CuffLink` is the shell around it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from typing import TYPE_CHECKING, Any, Final

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak.exc import BleakError
from bleak_retry_connector import establish_connection

from devices import gatt
from devices.bps import (
    AdjustReason,
    BatteryLevel,
    BloodPressureFeature,
    BloodPressureMeasurement,
    BloodPressureRecordAssembler,
    CurrentTime,
    DateTime,
    EnhancedBloodPressureMeasurement,
    MalformedPayload,
    RacpNumberOfRecords,
    RacpRequest,
    RacpResponse,
    RacpResponseCode,
    StoredRecord,
    decode_racp_indication,
)
from devices.bumble_backend import raise_if_cancelling
from devices.events import (
    ERROR_FRAME,
    BatteryChanged,
    CuffBonded,
    CuffConnected,
    CuffDisconnected,
    CuffEvent,
    CuffIdentity,
    CuffPressureChanged,
    MeasurementFailed,
    MeasurementReceived,
)
from devices.quirks import decode_intermediate_cuff_pressure, decode_measurement
from devices.transport import BleStack

if TYPE_CHECKING:
    from devices.inbox import MeasurementInbox

logger = logging.getLogger(__name__)

Publish = Callable[[CuffEvent], Awaitable[None]]
Clock = Callable[[], datetime]

# A live reading's cuff timestamp lies between the moment we set the clock and its
# receipt; this much slack covers the clock's 1 s resolution and a measurement stamped
# when it started rather than when it ended (IEC 80601-2-30 cuffs take 30-60 s).
LIVE_STAMP_TOLERANCE: Final = timedelta(seconds=60)
# How long a RACP "report stored records" may go without sending anything (a record
# segment or its response) before we give up on it for this connection (BPS 1.1 3.5.2.1
# leaves it to the client). Measured from the last sign of progress, not from the start:
# cuffs re-read in full after a restart sent their records for longer than this in
# the long soak, one indication per round trip on a loaded machine.
RACP_IDLE_TIMEOUT: Final = 30.0
# Connect, identify, bond, set the clock and subscribe: more than this and the link is
# dropped and retried, rather than left hanging on a silent cuff.
SETUP_TIMEOUT: Final = 30.0
# How many delivered reading keys a cuff remembers (a cuff stores at most a few hundred).
DELIVERED_MEMORY: Final = 4096
# establish_connection's own retries; the supervisor adds its back-off on top.
CONNECT_ATTEMPTS: Final = 2
UNKNOWN_USER_KEY: Final = 0xFF


def utc_now() -> datetime:
    return datetime.now(UTC)


# --- functional core -------------------------------------------------------------------


@dataclass(frozen=True)
class ReadingKey:
    """What makes a reading the same reading when a cuff sends it again.

    Cuff + user + the cuff's own timestamp (as stamped, before any clock correction, so a
    replay matches whatever we learnt about the clock since). A BPS 1.1 cuff indicates a
    reading live on 0x2A35 (no sequence number) and later serves it as a record (with
    one), so the sequence number joins the key only when there is no timestamp.
    """

    address: str
    user_id: int
    timestamp: datetime | None
    sequence_number: int | None


def reading_key(
    address: str, measurement: BloodPressureMeasurement, sequence_number: int | None
) -> ReadingKey | None:
    """The dedupe key, or None when nothing identifies the reading (no timestamp, no
    sequence number): such a reading is delivered every time it arrives."""
    user = measurement.user_id if measurement.user_id is not None else UNKNOWN_USER_KEY
    if measurement.timestamp is not None:
        return ReadingKey(address.upper(), user, measurement.timestamp, None)
    if sequence_number is not None:
        return ReadingKey(address.upper(), user, None, sequence_number)
    return None


def cuff_key(
    measurement: BloodPressureMeasurement, sequence_number: int | None, received_at: datetime
) -> str:
    """The reading's identity from what the cuff itself sent, for the clinic's unique
    (cuff address, cuff key): the raw cuff timestamp (never corrected: the correction
    depends on when a daemon set the clock, which a restarted daemon does not know), the
    user, the values, and the BPS 1.1 sequence number only when there is no timestamp (a
    reading indicated live on 0x2A35 is later served as a record with one; both must give
    the same key, as in `reading_key`). Without either, nothing the cuff sent tells two
    readings apart: the key is the moment we received it, which is still stable when the
    same frame is replayed from the inbox after a crash.

    E.g. ``"2026-11-27T01:08:47 u1 120/80/93 mmHg p72"``.
    """
    user = measurement.user_id if measurement.user_id is not None else UNKNOWN_USER_KEY
    if measurement.timestamp is not None:
        when = measurement.timestamp.replace(tzinfo=None).isoformat(timespec="seconds")
    elif sequence_number is not None:
        when = f"seq{sequence_number}"
    else:
        when = "rx" + received_at.astimezone(UTC).isoformat(timespec="microseconds")
    pressures = "/".join(
        f"{value:g}"
        for value in (
            measurement.systolic,
            measurement.diastolic,
            measurement.mean_arterial_pressure,
        )
    )
    pulse = "-" if measurement.pulse_rate is None else f"{measurement.pulse_rate:g}"
    return f"{when} u{user} {pressures} {measurement.unit.value} p{pulse}"


class DeliveredReadings:
    """The keys of readings the daemon has stored, oldest forgotten first."""

    def __init__(self, capacity: int = DELIVERED_MEMORY) -> None:
        self._keys: OrderedDict[ReadingKey, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: ReadingKey) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self._capacity:
            self._keys.popitem(last=False)


@dataclass(frozen=True)
class ClockObservation:
    """The cuff's clock as we read it on connecting, before setting it.

    ``cuff_clock`` is the naive wall-clock time the cuff showed; ``observed_at`` (UTC)
    when we read it; ``zone`` the zone cuffs are set to (the clinic's).
    """

    cuff_clock: datetime
    observed_at: datetime
    zone: tzinfo

    @property
    def local_now(self) -> datetime:
        return self.observed_at.astimezone(self.zone).replace(tzinfo=None)

    @property
    def offset(self) -> timedelta:
        """How far the cuff's clock was ahead (positive) or behind (negative), to the
        second: the resolution of the clock (Date Time, GSS 3.70)."""
        return timedelta(seconds=round((self.cuff_clock - self.local_now).total_seconds()))


def cuff_time_to_utc(
    timestamp: datetime | None,
    *,
    received_at: datetime,
    zone: tzinfo,
    clock: ClockObservation | None = None,
    clock_set_at: datetime | None = None,
    earlier: Sequence[ClockObservation] = (),
) -> datetime:
    """When a reading was really taken, in UTC.

    A cuff stamps readings with its own naive clock. If we observed that clock on this
    connection, a reading stamped before we set it is corrected by the offset we saw; a
    reading stamped after we set it needs no correction. Which is which: a reading
    received before the clock was set was stamped before; one received after is live if
    its stamp falls between the setting and its receipt (give or take
    `LIVE_STAMP_TOLERANCE`), and stored otherwise. (A cuff running ahead by D can put a
    stored reading taken exactly D before now inside that window; then it is read as
    live.) Without a timestamp the reading was taken when it arrived (`received_at`).

    A reading stamped before an `earlier` setting of the clock (on an earlier connection
    or by a daemon since restarted: a reading taken before the first setting and not
    collected then) is corrected by the offset observed then, when the correction from
    this connection's own observation would leave it where it is (`earlier_offset`).
    """
    if timestamp is None:
        return received_at
    local = timestamp
    if clock is not None:
        corrected = timestamp - clock.offset
        if clock_set_at is None or received_at < clock_set_at:
            local = corrected
        else:
            set_local = clock_set_at.astimezone(zone).replace(tzinfo=None)
            received_local = received_at.astimezone(zone).replace(tzinfo=None)
            live = (
                set_local - LIVE_STAMP_TOLERANCE
                <= timestamp
                <= received_local + LIVE_STAMP_TOLERANCE
            )
            stored = timestamp <= clock.cuff_clock + LIVE_STAMP_TOLERANCE
            local = corrected if stored and not live else timestamp
    if abs(local - timestamp) <= LIVE_STAMP_TOLERANCE:
        offset = earlier_offset(timestamp, earlier)
        if offset is not None:
            local = timestamp - offset
    return local.replace(tzinfo=zone).astimezone(UTC)


def is_clock_behind(observation: ClockObservation) -> bool:
    """Behind by more than the stamp tolerance (a clock reset to its 2020 default, say):
    only such a setting is worth remembering, because only its stamps can be told from
    later ones (everything stamped before it is earlier than everything after it)."""
    return observation.offset < -LIVE_STAMP_TOLERANCE


def earlier_offset(timestamp: datetime, earlier: Sequence[ClockObservation]) -> timedelta | None:
    """The offset of the most recent earlier setting of a clock that was behind, if the
    stamp was made before it (at or before what the cuff showed then); None otherwise.
    A clock that ran ahead is not remembered: its old stamps overlap the true times that
    followed, and nothing tells them apart."""
    for observation in reversed(earlier):
        if is_clock_behind(observation) and timestamp <= (
            observation.cuff_clock + LIVE_STAMP_TOLERANCE
        ):
            return observation.offset
    return None


def next_records_request(last_sequence_number: int | None) -> RacpRequest:
    """BPS 1.1 3.5.2: everything on first contact, then what came after the last record."""
    if last_sequence_number is None:
        return RacpRequest.report_all()
    return RacpRequest.report_from(min(last_sequence_number + 1, 0xFFFF))


def as_measurement(
    recorded: BloodPressureMeasurement | EnhancedBloodPressureMeasurement,
) -> BloodPressureMeasurement:
    """An Enhanced Blood Pressure Measurement (BPS 1.1, 0x2B34) in the 0x2A35 shape the
    daemon consumes; its display time stands in for the local timestamp."""
    if isinstance(recorded, BloodPressureMeasurement):
        return recorded
    return BloodPressureMeasurement(
        recorded.unit,
        recorded.systolic,
        recorded.diastolic,
        recorded.mean_arterial_pressure,
        timestamp=recorded.user_facing_time,
        pulse_rate=recorded.pulse_rate,
        user_id=recorded.user_id,
        status=recorded.status,
    )


@dataclass(frozen=True)
class ReadingContext:
    """What the link knew about a cuff when one of its frames arrived: enough to turn the
    frame into the same event now or, replayed from the inbox, after a restart."""

    identity: CuffIdentity
    zone: tzinfo
    clock: ClockObservation | None = None
    clock_set_at: datetime | None = None
    earlier: tuple[ClockObservation, ...] = ()
    # The frame came right after the cuff inflated on this connection: taken live.
    live: bool = False

    def measured_at(
        self,
        recorded: BloodPressureMeasurement | EnhancedBloodPressureMeasurement,
        received_at: datetime,
    ) -> datetime:
        if isinstance(recorded, EnhancedBloodPressureMeasurement) and recorded.timestamp:
            return recorded.timestamp  # already UTC (BPS 1.1)
        return cuff_time_to_utc(
            recorded.timestamp if isinstance(recorded, BloodPressureMeasurement) else None,
            received_at=received_at,
            zone=self.zone,
            clock=self.clock,
            clock_set_at=self.clock_set_at,
            earlier=self.earlier,
        )


def reading_event(
    context: ReadingContext,
    raw: bytes,
    received_at: datetime,
    sequence_number: int | None = None,
    decoded: BloodPressureMeasurement | EnhancedBloodPressureMeasurement | None = None,
) -> tuple[MeasurementReceived | MeasurementFailed, ReadingKey | None]:
    """A measurement frame as the event the daemon gets, and its dedupe key (None for a
    frame that cannot be decoded: it is reported every time)."""
    identity = context.identity
    try:
        recorded = decoded or decode_measurement(
            raw, manufacturer=identity.manufacturer, model=identity.model
        )
    except MalformedPayload as error:
        return MeasurementFailed(identity, raw, received_at, str(error)), None
    measurement = as_measurement(recorded)
    key = reading_key(identity.address, measurement, sequence_number)
    if measurement.is_error_frame:
        failed = MeasurementFailed(
            identity, raw, received_at, cuff_key=cuff_key(measurement, sequence_number, received_at)
        )
        return failed, key
    event = MeasurementReceived(
        identity,
        measurement,
        context.measured_at(recorded, received_at),
        received_at,
        raw,
        sequence_number,
        cuff_key(measurement, sequence_number, received_at),
        live=context.live and sequence_number is None,
        clock_checked=(
            context.clock is not None
            or measurement.timestamp is None
            or (isinstance(recorded, EnhancedBloodPressureMeasurement) and bool(recorded.timestamp))
        ),
    )
    return event, key


@dataclass
class CuffMemory:
    """What the supervisor keeps about a cuff between connections."""

    address: str
    identity: CuffIdentity | None = None
    last_sequence_number: int | None = None
    delivered: DeliveredReadings = field(default_factory=DeliveredReadings)
    bonded: bool = False
    # Earlier settings of its clock when it was behind (`is_clock_behind`), oldest first.
    clock_settings: list[ClockObservation] = field(default_factory=list)


# --- the shell -----------------------------------------------------------------------------


class CuffLinkError(BleakError):
    """The link to a cuff failed in a way the supervisor should log and retry."""


@dataclass(frozen=True)
class _Frame:
    """A value the cuff sent, as it arrived, waiting for the consumer task."""

    kind: str
    raw: bytes
    received_at: datetime
    # A measurement frame: what the link knew when it arrived, and its inbox entry.
    context: ReadingContext | None = None
    held: int | None = None


class CuffLink:
    """One connection to one cuff, from connect to disconnect.

    `run()` connects with bleak-retry-connector's `establish_connection`, sets the cuff
    up, collects what it stored, follows it live and returns when the cuff disconnects
    (or raises when the link fails). Every event goes through `publish`, awaited: a
    reading is delivered once `publish` returned, and only then remembered as delivered.
    With an `inbox`, each Blood Pressure Measurement frame is written to it before its
    indication is confirmed, and released once delivered (`devices.inbox`).
    Cancelling `run()` closes the link.
    """

    def __init__(
        self,
        device: BLEDevice,
        stack: BleStack,
        *,
        publish: Publish,
        memory: CuffMemory | None = None,
        clock: Clock = utc_now,
        zone: tzinfo | None = None,
        bond: bool = True,
        connect_timeout: float = 5.0,
        inbox: MeasurementInbox | None = None,
    ) -> None:
        self.device = device
        self.stack = stack
        self.memory = memory if memory is not None else CuffMemory(device.address)
        self._publish = publish
        self._clock = clock
        self._zone: tzinfo = zone if zone is not None else _local_zone()
        self._bond = bond
        self._connect_timeout = connect_timeout
        self._inbox = inbox
        self._frames: asyncio.Queue[_Frame | None] = asyncio.Queue()
        self._disconnected = asyncio.Event()
        self._identity = self.memory.identity or CuffIdentity(device.address, device.name)
        self._clock_observation: ClockObservation | None = None
        self._clock_set_at: datetime | None = None
        self._earlier_clock_settings = tuple(self.memory.clock_settings)
        self._assembler = BloodPressureRecordAssembler()
        self._racp_answer: asyncio.Future[RacpResponse] | None = None
        self._record_segments = 0  # received on this link: progress of a RACP report
        self._sequence_advance_blocked = False
        self._inflated = False  # Intermediate Cuff Pressure seen since the last reading

    @property
    def address(self) -> str:
        return self.device.address

    async def run(self) -> str:
        """Connect and serve the cuff until it disconnects; returns why it ended."""
        client = await self._connect()
        consumer = asyncio.create_task(self._consume(), name=f"cuff {self.address} frames")
        reason = "the cuff closed the connection"
        try:
            await self._publish(CuffConnected(self.address, self._clock()))
            async with asyncio.timeout(SETUP_TIMEOUT):
                await self._set_up(client)
            # Outside the set-up's time: a cuff with hundreds of records may take longer,
            # and the procedure has its own timeout (RACP_IDLE_TIMEOUT).
            if _characteristic(client, gatt.RECORD_ACCESS_CONTROL_POINT) and _characteristic(
                client, gatt.BLOOD_PRESSURE_RECORD
            ):
                await self._collect_records(client)
            raise_if_cancelling()
            await self._disconnected.wait()
            raise_if_cancelling()
        except TimeoutError:
            reason = "the cuff stopped answering during set-up"
            raise CuffLinkError(f"{self.address}: {reason}") from None
        except BleakError as error:
            reason = str(error)
            raise
        finally:
            try:
                with contextlib.suppress(Exception):
                    await client.disconnect()
            finally:
                await self._finish(consumer, reason)
        return reason

    async def _connect(self) -> BleakClient:
        """Connect; `_disconnected` then says whether this connection has ended.

        `establish_connection` retries on the same client, so a link lost during an
        earlier attempt (the cuff going out of range as we set it up) has already fired
        the disconnected callback: without starting afresh here, the link made by a later
        attempt would be taken as ended at once and hung up on right after its set-up,
        before a BPS 1.0 cuff replays what it holds or a RACP report is read.
        """
        try:
            client = await establish_connection(
                BleakClient,
                self.device,
                self.device.name or self.address,
                disconnected_callback=lambda _client: self._disconnected.set(),
                max_attempts=CONNECT_ATTEMPTS,
                timeout=self._connect_timeout,
                **self.stack.client_kwargs(),
            )
        except TimeoutError as error:
            raise CuffLinkError(f"{self.address}: connection timed out") from error
        # No await since `establish_connection` returned: only this connection's end counts.
        self._disconnected.clear()
        if not client.is_connected:
            self._disconnected.set()
        return client

    async def _finish(self, consumer: asyncio.Task[None], reason: str) -> None:
        """Deliver what already arrived, then say the link ended (unless we are being
        cancelled: then the daemon is shutting down and nobody is listening)."""
        current = asyncio.current_task()
        try:
            if current is not None and current.cancelling():
                return
            self._frames.put_nowait(None)
            await consumer
            await self._publish(CuffDisconnected(self.address, self._clock(), reason))
        finally:
            if not consumer.done():
                consumer.cancel()
                # Not `await consumer`: its CancelledError must not be taken for ours.
                await asyncio.wait([consumer])

    # --- set-up --------------------------------------------------------------------------

    async def _set_up(self, client: BleakClient) -> None:
        await self._read_identity(client)
        if self._bond:
            await self._pair(client)
        feature = await self._read_feature(client)
        self._assembler = BloodPressureRecordAssembler(
            with_e2e_crc=bool(feature is not None and feature & BloodPressureFeature.E2E_CRC)
        )
        await self._follow_battery(client)
        await self._set_clock(client)
        await self._subscribe(client, gatt.INTERMEDIATE_CUFF_PRESSURE, "cuff pressure")
        # A BPS 1.0 cuff replays the readings it stored as soon as we subscribe here.
        await self._subscribe(client, gatt.BLOOD_PRESSURE_MEASUREMENT, "measurement")

    async def _read_identity(self, client: BleakClient) -> None:
        values: dict[int, str | None] = {}
        for uuid in (
            gatt.MANUFACTURER_NAME_STRING,
            gatt.MODEL_NUMBER_STRING,
            gatt.SERIAL_NUMBER_STRING,
            gatt.FIRMWARE_REVISION_STRING,
        ):
            raw = await _read_optional(client, uuid)
            values[uuid] = raw.decode("utf-8", "replace").rstrip("\x00").strip() if raw else None
        self._identity = CuffIdentity(
            self.address,
            self.device.name or (self.memory.identity.name if self.memory.identity else None),
            values[gatt.MANUFACTURER_NAME_STRING],
            values[gatt.MODEL_NUMBER_STRING],
            values[gatt.SERIAL_NUMBER_STRING],
            values[gatt.FIRMWARE_REVISION_STRING],
        )
        self.memory.identity = self._identity

    async def _pair(self, client: BleakClient) -> None:
        """Bond on first contact; on later ones the backend re-encrypts from the bond."""
        try:
            await client.pair()
        except BleakError as error:
            if not client.is_connected:
                raise
            logger.warning("%s: pairing refused (%s); carrying on unencrypted", self.address, error)
            return
        self.memory.bonded = True
        await self._publish(CuffBonded(self.address, self._clock()))

    async def _read_feature(self, client: BleakClient) -> BloodPressureFeature | None:
        raw = await _read_optional(client, gatt.BLOOD_PRESSURE_FEATURE)
        if raw is None:
            return None
        try:
            return BloodPressureFeature.from_bytes(raw)
        except MalformedPayload as error:
            logger.warning("%s: %s", self.address, error)
            return None

    async def _follow_battery(self, client: BleakClient) -> None:
        characteristic = _characteristic(client, gatt.BATTERY_LEVEL)
        if characteristic is None:
            return
        if "read" in characteristic.properties:
            raw = await client.read_gatt_char(characteristic)
            await self._on_battery(bytes(raw), self._clock())
        if "notify" in characteristic.properties:
            await self._subscribe(client, gatt.BATTERY_LEVEL, "battery")

    async def _set_clock(self, client: BleakClient) -> None:
        """Read the cuff's clock (to correct what it stamped), then set it (CTS 1.1 3.1)."""
        current_time = _characteristic(client, gatt.CURRENT_TIME)
        date_time = _characteristic(client, gatt.DATE_TIME)
        target = current_time or date_time
        if target is None:
            return
        if "read" in target.properties:
            raw = await client.read_gatt_char(target)
            observed_at = self._clock()
            try:
                shown = (
                    CurrentTime.from_bytes(raw).datetime
                    if target is current_time
                    else DateTime.from_bytes(raw).datetime
                )
            except MalformedPayload as error:
                logger.warning("%s: unreadable clock: %s", self.address, error)
                shown = None
            if shown is not None:
                self._clock_observation = ClockObservation(
                    shown.replace(microsecond=0), observed_at, self._zone
                )
        if not {"write", "write-without-response"} & set(target.properties):
            return
        local_now = self._clock().astimezone(self._zone)
        value = (
            bytes(CurrentTime.from_datetime(local_now, AdjustReason.EXTERNAL_REFERENCE_TIME_UPDATE))
            if target is current_time
            else bytes(DateTime.from_datetime(local_now))
        )
        await client.write_gatt_char(target, value, response="write" in target.properties)
        self._clock_set_at = self._clock()
        observation = self._clock_observation
        if observation is not None and is_clock_behind(observation):
            self.memory.clock_settings.append(observation)
            if self._inbox is not None:
                self._inbox.note_clock_setting(self.address, observation)

    async def _subscribe(self, client: BleakClient, uuid: int, kind: str) -> bool:
        characteristic = _characteristic(client, uuid)
        if characteristic is None or not {"notify", "indicate"} & set(characteristic.properties):
            return False

        def on_value(_sender: BleakGATTCharacteristic, value: bytearray) -> None:
            self._frames.put_nowait(self._frame(kind, bytes(value)))

        await client.start_notify(characteristic, on_value)
        return True

    async def _collect_records(self, client: BleakClient) -> None:
        """BPS 1.1 3.5: ask the RACP for the records stored since the last one we got."""
        racp = _characteristic(client, gatt.RECORD_ACCESS_CONTROL_POINT)
        assert racp is not None
        await self._subscribe(client, gatt.BLOOD_PRESSURE_RECORD, "record")

        def on_racp(_sender: BleakGATTCharacteristic, value: bytearray) -> None:
            self._frames.put_nowait(self._frame("racp", bytes(value)))

        await client.start_notify(racp, on_racp)
        request = next_records_request(self.memory.last_sequence_number)
        answer: asyncio.Future[RacpResponse] = asyncio.get_running_loop().create_future()
        self._racp_answer = answer
        await client.write_gatt_char(racp, bytes(request), response=True)
        gone: asyncio.Future[Any] = asyncio.ensure_future(self._disconnected.wait())
        waiting: set[asyncio.Future[Any]] = {answer, gone}
        try:
            while True:
                segments_before = self._record_segments
                done, _ = await asyncio.wait(
                    waiting, timeout=RACP_IDLE_TIMEOUT, return_when=asyncio.FIRST_COMPLETED
                )
                if done or self._record_segments == segments_before:
                    break
        finally:
            gone.cancel()
        if answer not in done:
            if not self._disconnected.is_set():
                logger.warning("%s: no RACP response; asking again next time", self.address)
            return
        response = answer.result()
        if response.response_code not in (
            RacpResponseCode.SUCCESS,
            RacpResponseCode.NO_RECORDS_FOUND,
        ):
            logger.warning("%s: RACP refused %s: %s", self.address, request, response)

    # --- frames, one at a time, in arrival order -------------------------------------------

    def _frame(self, kind: str, raw: bytes) -> _Frame:
        """A value as it arrives, in the notify callback: a measurement is put in the inbox
        here, before the callback returns and the backend confirms the indication (an
        `InboxError` propagates, so the indication is not confirmed and the cuff keeps it)."""
        received_at = self._clock()
        if kind == "record":
            self._record_segments += 1
        if kind == "cuff pressure":
            self._inflated = True
        if kind != "measurement":
            return _Frame(kind, raw, received_at)
        # Live: the cuff inflated on this connection since its last measurement frame (a
        # BPS 1.0 cuff's replay of what it stored comes without inflating first).
        context = replace(self._reading_context(), live=self._inflated)
        self._inflated = False
        held = None if self._inbox is None else self._inbox.hold(raw, received_at, context)
        return _Frame(kind, raw, received_at, context, held)

    async def _consume(self) -> None:
        while (frame := await self._frames.get()) is not None:
            try:
                await self._handle(frame)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s: handling a %s frame failed", self.address, frame.kind)

    async def _handle(self, frame: _Frame) -> None:
        match frame.kind:
            case "measurement":
                await self._on_measurement(
                    frame.raw, frame.received_at, None, context=frame.context, held=frame.held
                )
            case "record":
                await self._on_record_segment(frame)
            case "racp":
                self._on_racp(frame.raw)
            case "cuff pressure":
                await self._on_cuff_pressure(frame.raw, frame.received_at)
            case "battery":
                await self._on_battery(frame.raw, frame.received_at)

    def _reading_context(self) -> ReadingContext:
        return ReadingContext(
            self._identity,
            self._zone,
            self._clock_observation,
            self._clock_set_at,
            self._earlier_clock_settings,
        )

    async def _on_measurement(
        self,
        raw: bytes,
        received_at: datetime,
        sequence_number: int | None,
        decoded: BloodPressureMeasurement | EnhancedBloodPressureMeasurement | None = None,
        *,
        context: ReadingContext | None = None,
        held: int | None = None,
    ) -> None:
        """Deliver one reading (unless delivered before), then advance the sequence and
        release the frame from the inbox: it is the daemon's now."""
        event, key = reading_event(
            context or self._reading_context(), raw, received_at, sequence_number, decoded
        )
        if key is not None and key in self.memory.delivered:
            self._advance_sequence(sequence_number)
            self._release(held)
            return
        if isinstance(event, MeasurementFailed) and event.reason != ERROR_FRAME:
            logger.warning("%s: %s", self.address, event.reason)
        try:
            await self._publish(event)
        except Exception:
            self._sequence_advance_blocked = True
            raise
        if key is not None:
            self.memory.delivered.add(key)
        self._advance_sequence(sequence_number)
        self._release(held)

    def _release(self, held: int | None) -> None:
        if held is not None and self._inbox is not None:
            self._inbox.release(held)

    def _advance_sequence(self, sequence_number: int | None) -> None:
        if sequence_number is not None and not self._sequence_advance_blocked:
            self.memory.last_sequence_number = sequence_number

    async def _on_record_segment(self, frame: _Frame) -> None:
        try:
            record = self._assembler.feed(frame.raw)
        except MalformedPayload as error:
            logger.warning("%s: %s", self.address, error)
            return
        if record is None:
            return
        await self._on_record(record, frame.received_at)

    async def _on_record(self, record: StoredRecord, received_at: datetime) -> None:
        identity = self._identity
        decoded: BloodPressureMeasurement | EnhancedBloodPressureMeasurement | None = None
        try:
            if record.uuid == gatt.BLOOD_PRESSURE_MEASUREMENT:
                decoded = decode_measurement(
                    record.value, manufacturer=identity.manufacturer, model=identity.model
                )
            else:
                decoded = record.measurement()
        except MalformedPayload as error:
            logger.warning("%s: record %d: %s", self.address, record.sequence_number, error)
            await self._publish(MeasurementFailed(identity, record.value, received_at, str(error)))
            self._advance_sequence(record.sequence_number)
            return
        await self._on_measurement(record.value, received_at, record.sequence_number, decoded)

    def _on_racp(self, raw: bytes) -> None:
        try:
            indication = decode_racp_indication(raw)
        except MalformedPayload as error:
            logger.warning("%s: %s", self.address, error)
            return
        if isinstance(indication, RacpNumberOfRecords):
            return
        if self._racp_answer is not None and not self._racp_answer.done():
            self._racp_answer.set_result(indication)

    async def _on_cuff_pressure(self, raw: bytes, received_at: datetime) -> None:
        identity = self._identity
        try:
            pressure = decode_intermediate_cuff_pressure(
                raw, manufacturer=identity.manufacturer, model=identity.model
            )
        except MalformedPayload as error:
            logger.debug("%s: %s", self.address, error)
            return
        if math.isfinite(pressure.cuff_pressure_mmhg):
            await self._publish(
                CuffPressureChanged(self.address, pressure.cuff_pressure_mmhg, received_at)
            )

    async def _on_battery(self, raw: bytes, received_at: datetime) -> None:
        try:
            level = BatteryLevel.from_bytes(raw).level
        except MalformedPayload as error:
            logger.warning("%s: %s", self.address, error)
            return
        await self._publish(BatteryChanged(self.address, level, received_at))


def _characteristic(client: BleakClient, uuid: int) -> BleakGATTCharacteristic | None:
    return client.services.get_characteristic(gatt.uuid128(uuid))


async def _read_optional(client: BleakClient, uuid: int) -> bytes | None:
    characteristic = _characteristic(client, uuid)
    if characteristic is None or "read" not in characteristic.properties:
        return None
    return bytes(await client.read_gatt_char(characteristic))


def _local_zone() -> tzinfo:
    zone = datetime.now().astimezone().tzinfo
    assert zone is not None
    return zone


__all__ = [
    "ClockObservation",
    "CuffLink",
    "CuffLinkError",
    "CuffMemory",
    "DeliveredReadings",
    "ReadingContext",
    "ReadingKey",
    "as_measurement",
    "cuff_key",
    "cuff_time_to_utc",
    "earlier_offset",
    "is_clock_behind",
    "next_records_request",
    "reading_event",
    "reading_key",
]
