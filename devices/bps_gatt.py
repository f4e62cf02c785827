"""The Blood Pressure Service as GATT, defined once for both ends, as Bumble's profiles
pair a Service with its ServiceProxy: `BloodPressureService` is the server's attribute
table (the simulated cuff serves it), `BloodPressureServiceProxy` the client's view of a
cuff's (the link reads it through Bleak). Values are encoded by `devices.bps`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bumble.att import Attribute
from bumble.core import UUID
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, TemplateService

from devices import gatt
from devices.bps import BloodPressureFeature

_PROPERTIES = Characteristic.Properties
_SUBSCRIBABLE = _PROPERTIES.NOTIFY | _PROPERTIES.INDICATE


def _uuid(short: int) -> UUID:
    return UUID.from_16_bits(short)


class BloodPressureService(TemplateService):
    """Server side (BPS 1.1, section 3): Measurement (indicate), Intermediate Cuff
    Pressure (notify), Feature (read) and, for a cuff that keeps records (`on_racp_write`
    given), Blood Pressure Record (indicate) and the Record Access Control Point."""

    UUID = _uuid(gatt.BLOOD_PRESSURE_SERVICE)

    def __init__(
        self,
        feature: BloodPressureFeature,
        *,
        read_permissions: Attribute.Permissions,
        write_permissions: Attribute.Permissions,
        on_racp_write: Callable[[Connection | None, bytes], None] | None = None,
    ) -> None:
        self.measurement: Characteristic[bytes] = Characteristic(
            _uuid(gatt.BLOOD_PRESSURE_MEASUREMENT), _PROPERTIES.INDICATE, Attribute.Permissions(0)
        )
        self.intermediate_cuff_pressure: Characteristic[bytes] = Characteristic(
            _uuid(gatt.INTERMEDIATE_CUFF_PRESSURE), _PROPERTIES.NOTIFY, Attribute.Permissions(0)
        )
        self.feature: Characteristic[bytes] = Characteristic(
            _uuid(gatt.BLOOD_PRESSURE_FEATURE), _PROPERTIES.READ, read_permissions, bytes(feature)
        )
        characteristics = [self.measurement, self.intermediate_cuff_pressure, self.feature]
        self.record: Characteristic[bytes] | None = None
        self.racp: Characteristic[bytes] | None = None
        if on_racp_write is not None:
            self.record = Characteristic(
                _uuid(gatt.BLOOD_PRESSURE_RECORD), _PROPERTIES.INDICATE, Attribute.Permissions(0)
            )
            self.racp = Characteristic(
                _uuid(gatt.RECORD_ACCESS_CONTROL_POINT),
                _PROPERTIES.WRITE | _PROPERTIES.INDICATE,
                write_permissions,
                CharacteristicValue(write=on_racp_write),
            )
            characteristics += [self.record, self.racp]
        super().__init__(characteristics)

    @property
    def subscribable(self) -> list[Characteristic[Any]]:
        """The characteristics a central subscribes to (each has a CCCD)."""
        return [c for c in self.characteristics if c.properties & _SUBSCRIBABLE]


@dataclass(frozen=True)
class BloodPressureServiceProxy:
    """Client side: a connected cuff's Blood Pressure Service characteristics (None where
    the cuff lacks one), looked up once from the Bleak client's discovered services."""

    measurement: BleakGATTCharacteristic | None
    intermediate_cuff_pressure: BleakGATTCharacteristic | None
    feature: BleakGATTCharacteristic | None
    record: BleakGATTCharacteristic | None
    racp: BleakGATTCharacteristic | None

    @classmethod
    def of(cls, client: BleakClient) -> BloodPressureServiceProxy:
        def find(short: int) -> BleakGATTCharacteristic | None:
            return client.services.get_characteristic(gatt.uuid128(short))

        return cls(
            measurement=find(gatt.BLOOD_PRESSURE_MEASUREMENT),
            intermediate_cuff_pressure=find(gatt.INTERMEDIATE_CUFF_PRESSURE),
            feature=find(gatt.BLOOD_PRESSURE_FEATURE),
            record=find(gatt.BLOOD_PRESSURE_RECORD),
            racp=find(gatt.RECORD_ACCESS_CONTROL_POINT),
        )

    @property
    def keeps_records(self) -> bool:
        """BPS 1.1 stored records: both the RACP and the Blood Pressure Record."""
        return self.racp is not None and self.record is not None
