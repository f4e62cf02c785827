"""One cuff: connect, identify, bond, set its clock, collect its readings, follow it.

Plain Bleak API only, so the same code runs over BlueZ and over our Bumble backend.
`CuffLink.run()` is one connection, from `establish_connection` to the disconnect; the
supervisor calls it again each time the cuff comes back. What must survive between
connections (identity, the last BPS 1.1 sequence number, the readings already delivered)
lives in a `CuffMemory` the supervisor keeps.

The functional core (`reading_key`, `cuff_time_to_utc`, `DeliveredReadings`,
`next_records_request`, `reading_event`) is pure and clock-injected, in `devices.readings`
(shared with the measurement inbox, and re-exported here); `CuffLink` is the shell.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import datetime, tzinfo
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
    RacpResponse,
    RacpResponseCode,
    StoredRecord,
    decode_racp_indication,
)
from devices.bps_gatt import BloodPressureServiceProxy
from devices.bumble_backend import raise_if_cancelling
from devices.errors import (
    CuffLinkError,
    CuffLinkLost,
    CuffPairingRefused,
    CuffSetUpStalled,
    link_error,
)
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
)
from devices.quirks import decode_intermediate_cuff_pressure, decode_measurement
from devices.readings import (
    ClockObservation,
    CuffMemory,
    DeliveredReadings,
    ReadingContext,
    ReadingKey,
    as_measurement,
    cuff_key,
    cuff_time_to_utc,
    earlier_offset,
    is_clock_behind,
    next_records_request,
    reading_event,
    reading_key,
    utc_now,
)
from devices.transport import BleStack

if TYPE_CHECKING:
    from devices.inbox import MeasurementInbox

logger = logging.getLogger(__name__)

Publish = Callable[[CuffEvent], Awaitable[None]]
Clock = Callable[[], datetime]

# How long a RACP "report stored records" may go without sending anything (a record
# segment or its response) before we give up on it for this connection (BPS 1.1 3.5.2.1
# leaves it to the client). Measured from the last sign of progress, not from the start:
# cuffs re-read in full after a restart sent their records for longer than this in
# the long soak, one indication per round trip on a loaded machine.
RACP_IDLE_TIMEOUT: Final = 30.0
# Connect, identify, bond, set the clock and subscribe: more than this and the link is
# dropped and retried, rather than left hanging on a silent cuff.
SETUP_TIMEOUT: Final = 30.0
# establish_connection's own retries; the supervisor adds its back-off on top.
CONNECT_ATTEMPTS: Final = 2


# --- the shell -----------------------------------------------------------------------------


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
        on_established: Callable[[], Awaitable[None]] | None = None,
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
        self._on_established = on_established
        self.established = False  # set up, and not yet ended
        self._client: BleakClient | None = None
        self._aborted: str | None = None
        self._pairing_refused: BaseException | None = None

    @property
    def address(self) -> str:
        return self.device.address

    async def run(self) -> str:
        """Connect and serve the cuff until it disconnects; returns why it ended."""
        client = await self._connect()
        self._client = client
        consumer = asyncio.create_task(self._consume(), name=f"cuff {self.address} frames")
        reason = "the cuff closed the connection"
        try:
            await self._publish(CuffConnected(self.address, self._clock()))
            async with asyncio.timeout(SETUP_TIMEOUT):
                await self._set_up(client)
            self.established = True
            if self._on_established is not None:
                await self._on_established()
            # Outside the set-up's time: a cuff with hundreds of records may take longer,
            # and the procedure has its own timeout (RACP_IDLE_TIMEOUT).
            if BloodPressureServiceProxy.of(client).keeps_records:
                await self._collect_records(client)
            raise_if_cancelling()
            await self._disconnected.wait()
            raise_if_cancelling()
            if self._aborted is not None:
                reason = self._aborted
        except TimeoutError:
            reason = "the cuff stopped answering during set-up"
            raise CuffSetUpStalled(self.address, reason) from None
        except CuffLinkError as error:
            reason = str(error)
            raise
        except BleakError as error:
            reason = str(error)
            raise self._typed(error) from error
        finally:
            self.established = False
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
        except (TimeoutError, BleakError) as error:
            raise link_error(self.address, error) from error
        # No await since `establish_connection` returned: only this connection's end counts.
        self._disconnected.clear()
        if not client.is_connected:
            self._disconnected.set()
        return client

    async def answers(self, within: float) -> bool:
        """Whether the cuff answers a read within `within` seconds: a link gone at the
        cuff's end (and not at ours) never does. True when there is nothing to read."""
        client = self._client
        if client is None or not client.is_connected:
            return False
        for uuid in (gatt.MANUFACTURER_NAME_STRING, gatt.BATTERY_LEVEL, gatt.MODEL_NUMBER_STRING):
            characteristic = _characteristic(client, uuid)
            if characteristic is not None and "read" in characteristic.properties:
                break
        else:
            return True
        try:
            async with asyncio.timeout(within):
                await client.read_gatt_char(characteristic)
        except (TimeoutError, BleakError):
            return False
        return True

    def abort(self, reason: str) -> None:
        """End a link that is known to be gone at the cuff's end (it advertises again) but
        not at ours: hang up and return `reason` from `run()`."""
        if self._aborted is None:
            self._aborted = reason
            self._disconnected.set()

    def _typed(self, error: BleakError) -> CuffLinkError:
        """A failure after connecting: a refused pairing if one preceded it, else a link
        lost (or a request refused) while the cuff was set up or read."""
        refused = self._pairing_refused
        if refused is not None:
            while refused.__cause__ is not None:
                refused = refused.__cause__
            return CuffPairingRefused(self.address, f"pairing refused: {refused}")
        return CuffLinkLost(self.address, str(error))

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
            self._pairing_refused = error
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
        racp = BloodPressureServiceProxy.of(client).racp
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
