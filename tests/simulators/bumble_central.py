"""An independent Bumble central for the simulator's tests: plain Bumble, no Bleak and
none of the daemon's code, so the simulator is checked against the stack itself."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from dataclasses import dataclass, field

from bumble import hci, pairing
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Connection, Device, DeviceConfiguration, Peer
from bumble.gatt_client import CharacteristicProxy
from bumble.keys import KeyStore, MemoryKeyStore
from bumble.transport.common import Transport

from devices import gatt

CENTRAL_ADDRESS = "E0:00:00:00:00:0A"
TIMEOUT = 10.0  # real seconds: a guard against hangs, never a timing assertion


def _services(advertisement: Advertisement) -> set[int]:
    found = set()
    for ad_type, value in advertisement.data.ad_structures:
        if ad_type in (
            AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        ):
            found |= {int.from_bytes(value[i : i + 2], "little") for i in range(0, len(value), 2)}
    return found


def _field(advertisement: Advertisement, wanted: int) -> bytes | None:
    for ad_type, value in advertisement.data.ad_structures:
        if ad_type == wanted:
            return bytes(value)
    return None


@dataclass(frozen=True)
class Sighting:
    """One advertiser seen while scanning."""

    address: str
    name: str | None
    appearance: int | None
    services: frozenset[int]


class PasskeyEntry(pairing.PairingDelegate):
    """A central with a keyboard: types the passkey the cuff displays."""

    def __init__(self, passkey: int) -> None:
        super().__init__(io_capability=pairing.PairingDelegate.KEYBOARD_INPUT_ONLY)
        self.passkey = passkey

    async def get_number(self) -> int | None:
        return self.passkey


class BumbleCentral:
    """A Bumble host on its own controller; pairs with LE Secure Connections."""

    def __init__(
        self,
        controller: Controller | None = None,
        *,
        transport: Transport | None = None,
        address: str = CENTRAL_ADDRESS,
        keystore: KeyStore | None = None,
        passkey: int | None = None,
    ) -> None:
        config = DeviceConfiguration()
        config.name = "test-central"
        config.address = hci.Address(address)
        config.identity_address_type = hci.Address.RANDOM_DEVICE_ADDRESS
        if controller is not None:
            self.device = Device.from_config_with_hci(config, controller, controller)
        else:
            assert transport is not None
            self.device = Device.from_config_with_hci(config, transport.source, transport.sink)
        self.device.keystore = keystore or MemoryKeyStore()
        delegate = (
            PasskeyEntry(passkey)
            if passkey is not None
            else pairing.PairingDelegate(io_capability=pairing.PairingDelegate.NO_OUTPUT_NO_INPUT)
        )
        self.device.pairing_config_factory = lambda _connection: pairing.PairingConfig(
            sc=True,
            mitm=passkey is not None,
            bonding=True,
            delegate=delegate,
            identity_address_type=pairing.PairingConfig.AddressType.RANDOM,
        )

    async def start(self) -> None:
        await self.device.power_on()

    async def close(self) -> None:
        for connection in list(self.device.connections.values()):
            with contextlib.suppress(Exception):
                await connection.disconnect()
        with contextlib.suppress(Exception):
            await self.device.power_off()

    async def discover(
        self, service: int = gatt.BLOOD_PRESSURE_SERVICE, count: int = 1
    ) -> list[Sighting]:
        """Scan until `count` distinct advertisers of `service` are seen."""
        seen: dict[str, Sighting] = {}
        enough = asyncio.Event()

        def on_advertisement(advertisement: Advertisement) -> None:
            services = _services(advertisement)
            if service not in services:
                return
            name = _field(advertisement, AdvertisingData.COMPLETE_LOCAL_NAME)
            appearance = _field(advertisement, AdvertisingData.APPEARANCE)
            address = str(advertisement.address).removesuffix("/P")
            seen[address] = Sighting(
                address,
                name.decode() if name is not None else None,
                int.from_bytes(appearance, "little") if appearance is not None else None,
                frozenset(services),
            )
            if len(seen) >= count:
                enough.set()

        self.device.on(Device.EVENT_ADVERTISEMENT, on_advertisement)
        await self.device.start_scanning(filter_duplicates=False)
        try:
            async with asyncio.timeout(TIMEOUT):
                await enough.wait()
        finally:
            self.device.remove_listener(Device.EVENT_ADVERTISEMENT, on_advertisement)
            await self.device.stop_scanning()
        return sorted(seen.values(), key=lambda s: s.address)

    async def connect(self, address: str) -> CuffSession:
        async with asyncio.timeout(TIMEOUT):
            connection = await self.device.connect(
                hci.Address(address), own_address_type=hci.OwnAddressType.RANDOM
            )
        session = CuffSession(connection, Peer(connection))
        connection.on(Connection.EVENT_DISCONNECTION, session._on_disconnection)
        async with asyncio.timeout(TIMEOUT):
            await session.peer.discover_services()
            await session.peer.discover_characteristics()
        return session


@dataclass
class CuffSession:
    """One connection to a cuff: GATT by 16-bit UUID, received values queued per UUID."""

    connection: Connection
    peer: Peer
    received: defaultdict[int, asyncio.Queue[bytes]] = field(
        default_factory=lambda: defaultdict(asyncio.Queue)
    )
    disconnected: asyncio.Event = field(default_factory=asyncio.Event)
    disconnect_reason: int | None = None

    def _on_disconnection(self, reason: int) -> None:
        self.disconnect_reason = reason
        self.disconnected.set()

    def characteristic(self, short: int) -> CharacteristicProxy[bytes]:
        found = self.peer.get_characteristics_by_uuid(UUID.from_16_bits(short))
        if not found:
            raise LookupError(f"the cuff has no characteristic {short:#06x}")
        return found[0]

    def has(self, short: int) -> bool:
        return bool(self.peer.get_characteristics_by_uuid(UUID.from_16_bits(short)))

    async def pair(self) -> None:
        async with asyncio.timeout(TIMEOUT):
            await self.connection.pair()

    async def encrypt(self) -> None:
        async with asyncio.timeout(TIMEOUT):
            await self.connection.encrypt()

    async def subscribe(self, short: int) -> None:
        """Indications where the characteristic indicates, else notifications."""
        queue = self.received[short]
        async with asyncio.timeout(TIMEOUT):
            await self.characteristic(short).subscribe(
                lambda value: queue.put_nowait(bytes(value)), prefer_notify=False
            )

    async def read(self, short: int) -> bytes:
        async with asyncio.timeout(TIMEOUT):
            return bytes(await self.peer.read_value(self.characteristic(short)))

    async def write(self, short: int, value: bytes) -> None:
        async with asyncio.timeout(TIMEOUT):
            await self.peer.write_value(self.characteristic(short), value, with_response=True)

    async def next(self, short: int) -> bytes:
        async with asyncio.timeout(TIMEOUT):
            return await self.received[short].get()

    def drain(self, short: int) -> list[bytes]:
        """Everything received on `short` so far, without waiting."""
        values = []
        queue = self.received[short]
        while not queue.empty():
            values.append(queue.get_nowait())
        return values

    async def disconnect(self) -> None:
        if not self.disconnected.is_set():
            with contextlib.suppress(Exception):
                await self.connection.disconnect()
        async with asyncio.timeout(TIMEOUT):
            await self.disconnected.wait()

    async def wait_disconnected(self) -> int | None:
        async with asyncio.timeout(TIMEOUT):
            await self.disconnected.wait()
        return self.disconnect_reason
