"""`vitalsd scan`: which blood pressure cuffs are near, with name, address, RSSI and model.

A cuff advertises its name and the Blood Pressure Service, not its model: the model is
in its Device Information Service (Model Number String, 0x2A24), so `scan_cuffs` makes a
short connection to each cuff it found to read it (without pairing). A cuff that stops
advertising before we get to it is listed without a model.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Final

from bleak import BleakClient, BleakScanner
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakError

from devices import gatt
from devices.bumble_backend import BumbleHost
from devices.supervisor import is_blood_pressure_cuff
from devices.transport import BleStack, BleTransport, open_ble

logger = logging.getLogger(__name__)

# Per cuff: connect and read two strings, or give up and list it without a model.
IDENTIFY_TIMEOUT: Final = 5.0


@dataclass(frozen=True)
class ScannedCuff:
    """One line of `vitalsd scan`."""

    address: str
    name: str | None
    rssi: int
    manufacturer: str | None = None
    model: str | None = None


async def scan_cuffs(
    backend_spec: str | BleTransport | BumbleHost | BleStack,
    duration: float,
    *,
    identify: bool = True,
) -> list[ScannedCuff]:
    """Scan for `duration` seconds; the blood pressure cuffs seen, strongest first."""
    if duration <= 0:
        raise ValueError(f"scan duration must be above 0 seconds, got {duration}")
    found: dict[str, tuple[BLEDevice, AdvertisementData]] = {}

    def on_advertisement(device: BLEDevice, advertisement: AdvertisementData) -> None:
        if is_blood_pressure_cuff(advertisement):
            found[device.address.upper()] = (device, advertisement)

    async with open_ble(backend_spec, pair=False) as stack:
        async with BleakScanner(on_advertisement, **stack.scanner_kwargs()):
            await asyncio.sleep(duration)
        cuffs = []
        for address, (device, advertisement) in sorted(
            found.items(), key=lambda item: -item[1][1].rssi
        ):
            manufacturer = model = None
            if identify:
                manufacturer, model = await _read_model(device, stack)
            cuffs.append(
                ScannedCuff(
                    address,
                    device.name or advertisement.local_name,
                    advertisement.rssi,
                    manufacturer,
                    model,
                )
            )
    return cuffs


async def _read_model(device: BLEDevice, stack: BleStack) -> tuple[str | None, str | None]:
    client = BleakClient(device, timeout=IDENTIFY_TIMEOUT, **stack.client_kwargs())
    values: list[str | None] = []
    try:
        async with asyncio.timeout(IDENTIFY_TIMEOUT):
            await client.connect()
            for uuid in (gatt.MANUFACTURER_NAME_STRING, gatt.MODEL_NUMBER_STRING):
                characteristic = client.services.get_characteristic(gatt.uuid128(uuid))
                if characteristic is None or "read" not in characteristic.properties:
                    values.append(None)
                    continue
                raw = await client.read_gatt_char(characteristic)
                values.append(bytes(raw).decode("utf-8", "replace").rstrip("\x00").strip())
    except (BleakError, TimeoutError) as error:
        logger.info("%s: could not read its model: %s", device.address, error)
    finally:
        with contextlib.suppress(Exception):
            await client.disconnect()
    values += [None] * (2 - len(values))
    return values[0], values[1]
