"""Bleak's scanner interface on a BumbleHost, and Bumble advertisements as Bleak's
AdvertisementData.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bumble import core
from bumble.device import Advertisement

if TYPE_CHECKING:
    pass

from devices.bumble_backend.support import (
    BumbleDeviceDetails,
    _host_from_kwargs,
    bleak_address,
    bleak_uuid,
)


class BumbleBleakScanner(BaseBleakScanner):
    """Bleak's scanner interface on a `BumbleHost` (pass `bumble=host`)."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: Literal["active", "passive"] = "active",
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self._host = _host_from_kwargs(kwargs)
        self.active = scanning_mode != "passive"

    async def start(self) -> None:
        self._host.check_loop()
        self.seen_devices = {}
        await self._host.add_scanner(self, self.active)

    async def stop(self) -> None:
        self._host.check_loop()
        await self._host.remove_scanner(self)

    def on_advertisement(self, advertisement: Advertisement) -> None:
        data = advertisement_data(advertisement)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        address = bleak_address(advertisement.address)
        previous = self.seen_devices.get(address)
        if data.local_name is None and previous is not None and previous[1].local_name:
            data = data._replace(local_name=previous[1].local_name)
        device = self.create_or_update_device(
            address, address, data.local_name, BumbleDeviceDetails(advertisement.address), data
        )
        self.call_detection_callbacks(device, data)


def advertisement_data(advertisement: Advertisement) -> AdvertisementData:
    """Bumble's advertisement as Bleak's `AdvertisementData` (Core Supplement Part A 1)."""
    ad = advertisement.data
    types = core.AdvertisingData.Type
    name = ad.get(types.COMPLETE_LOCAL_NAME) or ad.get(types.SHORTENED_LOCAL_NAME)
    service_uuids: list[str] = []
    for list_type in (
        types.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        types.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        types.COMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
        types.INCOMPLETE_LIST_OF_32_BIT_SERVICE_CLASS_UUIDS,
        types.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        types.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
    ):
        for uuids in ad.get_all(list_type):
            service_uuids.extend(bleak_uuid(u) for u in uuids)
    service_data: dict[str, bytes] = {}
    for data_type in (
        types.SERVICE_DATA_16_BIT_UUID,
        types.SERVICE_DATA_32_BIT_UUID,
        types.SERVICE_DATA_128_BIT_UUID,
    ):
        for entry in ad.get_all(data_type):
            service_uuid, service_payload = entry
            service_data[bleak_uuid(service_uuid)] = bytes(service_payload)
    manufacturer_data: dict[int, bytes] = {}
    for company_entry in ad.get_all(types.MANUFACTURER_SPECIFIC_DATA):
        company, company_payload = company_entry
        manufacturer_data[company] = bytes(company_payload)
    tx_power = ad.get(types.TX_POWER_LEVEL)
    if isinstance(tx_power, int) and tx_power > 127:
        tx_power -= 256  # a signed dBm value (Core Supplement Part A 1.5)
    return AdvertisementData(
        local_name=name,
        manufacturer_data=manufacturer_data,
        service_data=service_data,
        service_uuids=service_uuids,
        tx_power=tx_power,
        rssi=advertisement.rssi,
        platform_data=(advertisement,),
    )
