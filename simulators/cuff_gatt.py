"""A simulated cuff's GATT server: its attribute table (Blood Pressure, Device Information,
Battery, Current Time), who subscribed to what, and Current Time reads and writes."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC
from typing import Any

from bumble.att import ATT_Error, Attribute
from bumble.core import UUID
from bumble.device import Connection, Device
from bumble.gatt import (
    GATT_CLIENT_CHARACTERISTIC_CONFIGURATION_DESCRIPTOR,
    Characteristic,
    CharacteristicValue,
    Descriptor,
    Service,
)
from bumble.profiles.gap import GenericAccessService

from devices import gatt
from devices.bps import BatteryLevel, BloodPressureFeature, CurrentTime, MalformedPayload
from devices.bps_gatt import BloodPressureService
from simulators.cuff_config import CTS_DATA_FIELD_IGNORED
from simulators.cuff_core import CuffCore


class CuffGatt:
    """The cuff's attribute table; `build(device)` once per power-on."""

    def __init__(self, cuff: CuffCore) -> None:
        self._cuff = cuff

    def _connection_of(self, bearer: Any) -> Connection | None:
        if isinstance(bearer, Connection):
            return bearer
        connection = getattr(bearer, "connection", None)
        return connection if isinstance(connection, Connection) else None

    def on_subscription(
        self, bearer: Any, characteristic: Characteristic[Any], notify: bool, indicate: bool
    ) -> None:
        connection = self._connection_of(bearer)
        if connection is None or connection not in self._cuff._links:
            return
        uuid = characteristic.uuid
        self._cuff._log(
            "%s %s %s",
            self._cuff._links[connection].peer,
            "subscribed to" if notify or indicate else "unsubscribed from",
            uuid,
            level=logging.DEBUG,
        )
        self._cuff._changed()
        if (
            indicate
            and characteristic is self.measurement
            and self._cuff.config.record_style == "bps10"
        ):
            self._cuff._spawn(self._cuff._replay(connection), "replay")

    def following_live(self) -> bool:
        """A connected central subscribed to both the cuff pressure and the measurement:
        what the cuff measures now reaches it live."""
        return any(
            self.notifying(c, self.cuff_pressure) and self.indicating(c, self.measurement)
            for c in self._cuff._links
        )

    def cccd(self, connection: Connection, characteristic: Characteristic[Any]) -> int:
        device = self._cuff.device
        if device is None:
            return 0
        value = device.gatt_server.subscribers.get(connection, {}).get(characteristic.handle)
        return int.from_bytes(value, "little") if value and len(value) == 2 else 0

    def indicating(self, connection: Connection, characteristic: Characteristic[Any]) -> bool:
        return bool(self.cccd(connection, characteristic) & gatt.CCCD_INDICATE)

    def notifying(self, connection: Connection, characteristic: Characteristic[Any]) -> bool:
        return bool(self.cccd(connection, characteristic) & gatt.CCCD_NOTIFY)

    def _permissions(self, *, read: bool = False, write: bool = False) -> Attribute.Permissions:
        permissions = Attribute.Permissions(0)
        protected = self._cuff.config.security != "none"
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

    def build(
        self, device: Device, on_racp_write: Callable[[Connection | None, bytes], None]
    ) -> None:
        def uuid(short: int) -> UUID:
            return UUID.from_16_bits(short)

        properties = Characteristic.Properties
        feature = (
            BloodPressureFeature.BODY_MOVEMENT_DETECTION
            | BloodPressureFeature.CUFF_FIT_DETECTION
            | BloodPressureFeature.IRREGULAR_PULSE_DETECTION
            | BloodPressureFeature.MEASUREMENT_POSITION_DETECTION
        )
        blood_pressure = BloodPressureService(
            feature,
            read_permissions=self._permissions(read=True),
            write_permissions=self._permissions(write=True),
            on_racp_write=on_racp_write if self._cuff.config.record_style == "bps11" else None,
        )
        self.measurement: Characteristic[bytes] = blood_pressure.measurement
        self.cuff_pressure: Characteristic[bytes] = blood_pressure.intermediate_cuff_pressure
        self.racp: Characteristic[bytes] | None = blood_pressure.racp
        self.record: Characteristic[bytes] | None = blood_pressure.record
        for characteristic in blood_pressure.subscribable:
            self._protected_cccd(device, characteristic)

        def text(short: int, value: str) -> Characteristic[bytes]:
            return Characteristic(
                uuid(short), properties.READ, Attribute.Permissions.READABLE, value.encode()
            )

        self.battery: Characteristic[bytes] = Characteristic(
            uuid(gatt.BATTERY_LEVEL),
            properties.READ | properties.NOTIFY,
            Attribute.Permissions.READABLE,
            CharacteristicValue(
                read=lambda _c: bytes(BatteryLevel(self._cuff.battery(self._cuff.clock.now())))
            ),
        )
        self.time: Characteristic[bytes] = Characteristic(
            uuid(gatt.CURRENT_TIME),
            properties.READ | properties.WRITE | properties.NOTIFY,
            Attribute.Permissions.READABLE | self._permissions(write=True),
            CharacteristicValue(read=self._read_time, write=self._write_time),
        )
        device.add_services(
            [
                GenericAccessService(
                    self._cuff.config.local_name, gatt.APPEARANCE_BLOOD_PRESSURE_ARM
                ),
                blood_pressure,
                Service(
                    uuid(gatt.DEVICE_INFORMATION_SERVICE),
                    [
                        text(gatt.MANUFACTURER_NAME_STRING, self._cuff.config.manufacturer),
                        text(gatt.MODEL_NUMBER_STRING, self._cuff.config.model),
                        text(gatt.SERIAL_NUMBER_STRING, self._cuff.config.serial),
                        text(gatt.FIRMWARE_REVISION_STRING, self._cuff.config.firmware),
                    ],
                ),
                Service(uuid(gatt.BATTERY_SERVICE), [self.battery]),
            ]
        )
        if self._cuff.config.current_time_service:
            device.add_services([Service(uuid(gatt.CURRENT_TIME_SERVICE), [self.time])])

    def _read_time(self, _connection: Connection | None) -> bytes:
        return bytes(CurrentTime.from_datetime(self._cuff.cuff_clock(self._cuff.clock.now())))

    def _write_time(self, connection: Connection | None, value: bytes) -> None:
        try:
            written = CurrentTime.from_bytes(value).datetime
        except MalformedPayload as error:
            self._cuff._log("refused a Current Time write: %s", error, level=logging.WARNING)
            raise ATT_Error(gatt.ATT_OUT_OF_RANGE) from None
        if written is None:
            raise ATT_Error(CTS_DATA_FIELD_IGNORED)
        now = self._cuff.clock.now()
        self._cuff.clock_offset = written - now.astimezone(UTC).replace(tzinfo=None)
        self._cuff.clock_set = True
        self._cuff._log("clock set to %s", written.isoformat(timespec="seconds"))

    async def indicate(
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
        device = self._cuff.device
        link = self._cuff._links.get(connection)
        if device is None or link is None or link.gone.done():
            return False

        async def send() -> bool:
            if self._cuff._links.get(connection) is not link or not self.indicating(
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
            self._cuff._log("indication to %s failed: %r", link.peer, error, level=logging.WARNING)
            return False
