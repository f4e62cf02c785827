"""The Bleak backend on Bumble, against a tiny Bumble GATT server on a virtual link.

The server below is deliberately not the cuff simulator: it has one characteristic of
each kind the backend must handle (read, notify, indicate, encrypted read), so these
tests pin down the backend alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from bleak import BleakClient, BleakScanner
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import hci, pairing
from bumble.att import ATT_Error
from bumble.controller import Controller
from bumble.core import AdvertisingData
from bumble.device import Connection, Device
from bumble.gatt import Characteristic, CharacteristicValue, Descriptor, Service
from bumble.keys import MemoryKeyStore
from bumble.link import LocalLink

from devices import gatt
from devices.bumble_backend import (
    REQUESTED_ATT_MTU,
    BumbleBleakClient,
    BumbleHost,
    VirtualController,
)

SERVICE_UUID = "9a0b0001-5a1e-4c0e-8f0d-7e57ab1e0001"
READ_UUID = "9a0b0002-5a1e-4c0e-8f0d-7e57ab1e0001"
NOTIFY_UUID = "9a0b0003-5a1e-4c0e-8f0d-7e57ab1e0001"
INDICATE_UUID = "9a0b0004-5a1e-4c0e-8f0d-7e57ab1e0001"
SECRET_UUID = "9a0b0005-5a1e-4c0e-8f0d-7e57ab1e0001"
REFUSING_UUID = "9a0b0006-5a1e-4c0e-8f0d-7e57ab1e0001"
NOTE_UUID = "9a0b0007-5a1e-4c0e-8f0d-7e57ab1e0001"  # a writable descriptor
ATT_VALUE_NOT_ALLOWED = 0x13  # Core Vol 3 Part F 3.4.1.1
PERIPHERAL_ADDRESS = "F0:00:00:00:00:01"
# Real seconds: a guard against hangs, never a timing assertion.
PATIENCE_S = 10.0


@dataclass
class TinyPeripheral:
    """A Bumble GATT server with one read, notify, indicate and encrypted characteristic."""

    device: Device
    notify: Characteristic[bytes]
    indicate: Characteristic[bytes]
    address: str = PERIPHERAL_ADDRESS
    pairings: list[bool] = field(default_factory=list)  # one entry per pairing: SC or not
    paired: asyncio.Event = field(default_factory=asyncio.Event)
    connections: list[Connection] = field(default_factory=list)
    cccd_writes: list[tuple[str, int]] = field(default_factory=list)

    async def disconnect_all(self) -> None:
        for connection in list(self.device.connections.values()):
            await connection.disconnect()


async def start_peripheral(
    link: LocalLink,
    *,
    secure_connections: bool = True,
    security_request: bool = False,
    name: str = "Tiny",
    address: str = PERIPHERAL_ADDRESS,
) -> TinyPeripheral:
    def refuse(_connection: Connection, _value: bytes) -> None:
        raise ATT_Error(ATT_VALUE_NOT_ALLOWED)

    controller = Controller("peripheral", link=link)
    device = Device.with_hci(name, hci.Address(address), controller, controller)
    device.keystore = MemoryKeyStore()
    device.pairing_config_factory = lambda _connection: pairing.PairingConfig(
        sc=secure_connections,
        mitm=False,
        bonding=True,
        delegate=pairing.PairingDelegate(io_capability=pairing.PairingDelegate.NO_OUTPUT_NO_INPUT),
        identity_address_type=pairing.PairingConfig.AddressType.RANDOM,
    )
    notify = Characteristic(
        NOTIFY_UUID, Characteristic.Properties.NOTIFY, Characteristic.READABLE, b""
    )
    indicate = Characteristic(
        INDICATE_UUID, Characteristic.Properties.INDICATE, Characteristic.READABLE, b""
    )
    device.add_service(
        Service(
            SERVICE_UUID,
            [
                Characteristic(
                    READ_UUID,
                    Characteristic.Properties.READ | Characteristic.Properties.WRITE,
                    Characteristic.READABLE | Characteristic.WRITEABLE,
                    b"plain",
                    descriptors=[
                        Descriptor(NOTE_UUID, Descriptor.READABLE | Descriptor.WRITEABLE, b"n")
                    ],
                ),
                notify,
                indicate,
                Characteristic(
                    SECRET_UUID,
                    Characteristic.Properties.READ,
                    Characteristic.READ_REQUIRES_ENCRYPTION,
                    b"secret",
                ),
                Characteristic(
                    REFUSING_UUID,
                    Characteristic.Properties.WRITE,
                    Characteristic.WRITEABLE,
                    CharacteristicValue(write=refuse),
                ),
            ],
        )
    )
    peripheral = TinyPeripheral(device, notify, indicate, address)

    def on_connection(connection: Connection) -> None:
        peripheral.connections.append(connection)

        def on_pairing(_keys: object) -> None:
            peripheral.pairings.append(bool(connection.sc))
            peripheral.paired.set()

        connection.on(Connection.EVENT_PAIRING, on_pairing)
        if security_request:
            connection.request_pairing()

    device.on(Device.EVENT_CONNECTION, on_connection)
    device.on(
        "characteristic_subscription",
        lambda _connection, characteristic, notify_enabled, indicate_enabled: (
            peripheral.cccd_writes.append(
                (str(characteristic.uuid), int(notify_enabled) | int(indicate_enabled) << 1)
            )
        ),
    )
    await device.power_on()
    await advertise(device, name)
    return peripheral


async def advertise(device: Device, name: str = "Tiny") -> None:
    await device.start_advertising(
        auto_restart=True,
        advertising_data=bytes(
            AdvertisingData(
                [
                    (AdvertisingData.COMPLETE_LOCAL_NAME, name.encode()),
                    (
                        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                        gatt.BLOOD_PRESSURE_SERVICE.to_bytes(2, "little"),
                    ),
                ]
            )
        ),
        advertising_interval_min=20,
        advertising_interval_max=20,
    )


@pytest.fixture
async def peripheral(link: LocalLink) -> AsyncIterator[TinyPeripheral]:
    yield await start_peripheral(link)


def client_for(
    central: BumbleHost, address: str = PERIPHERAL_ADDRESS, **kwargs: Any
) -> BleakClient:
    return BleakClient(address, timeout=5.0, **central.client_kwargs(), **kwargs)


async def test_connect_discovers_services_with_128_bit_lowercase_uuids(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    async with client_for(central) as client:
        service = client.services.get_service(SERVICE_UUID)
        assert service is not None
        assert {c.uuid for c in service.characteristics} == {
            READ_UUID,
            NOTIFY_UUID,
            INDICATE_UUID,
            SECRET_UUID,
            REFUSING_UUID,
        }
        assert client.services.get_service(gatt.uuid128(0x1800)) is not None  # GAP


async def test_connect_requests_mtu_247(central: BumbleHost, peripheral: TinyPeripheral) -> None:
    async with client_for(central) as client:
        assert client.mtu_size == REQUESTED_ATT_MTU


async def test_read_and_write_a_characteristic(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    async with client_for(central) as client:
        await client.write_gatt_char(READ_UUID, b"written", response=True)
        assert await client.read_gatt_char(READ_UUID) == bytearray(b"written")


async def test_notifications_arrive_after_cccd_0x0001(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    received: asyncio.Queue[bytes] = asyncio.Queue()
    async with client_for(central) as client:

        def on_value(_sender: BleakGATTCharacteristic, value: bytearray) -> None:
            received.put_nowait(bytes(value))

        await client.start_notify(NOTIFY_UUID, on_value)
        await peripheral.device.notify_subscribers(peripheral.notify, b"n1")
        assert await asyncio.wait_for(received.get(), 5) == b"n1"
    assert (NOTIFY_UUID.upper(), 0x0001) in peripheral.cccd_writes


async def test_indications_arrive_after_cccd_0x0002(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    received: asyncio.Queue[bytes] = asyncio.Queue()
    async with client_for(central) as client:
        await client.start_notify(INDICATE_UUID, lambda _s, v: received.put_nowait(bytes(v)))
        await peripheral.device.indicate_subscribers(peripheral.indicate, b"i1")
        assert await asyncio.wait_for(received.get(), 5) == b"i1"
    assert (INDICATE_UUID.upper(), 0x0002) in peripheral.cccd_writes


async def test_read_and_write_a_descriptor(central: BumbleHost, peripheral: TinyPeripheral) -> None:
    async with client_for(central) as client:
        characteristic = client.services.get_characteristic(READ_UUID)
        assert characteristic is not None
        [note] = [d for d in characteristic.descriptors if d.uuid == NOTE_UUID]
        await client.write_gatt_descriptor(note, b"noted")
        assert await client.read_gatt_descriptor(note) == bytearray(b"noted")


async def test_cccd_reads_back_0x0002_after_subscribing_to_indications(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    async with client_for(central) as client:
        await client.start_notify(INDICATE_UUID, lambda _s, _v: None)
        characteristic = client.services.get_characteristic(INDICATE_UUID)
        assert characteristic is not None
        cccd = characteristic.get_descriptor(gatt.uuid128(gatt.CLIENT_CHARACTERISTIC_CONFIGURATION))
        assert cccd is not None
        assert await client.read_gatt_descriptor(cccd) == bytearray(b"\x02\x00")


async def test_stop_notify_writes_cccd_zero(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    async with client_for(central) as client:
        await client.start_notify(NOTIFY_UUID, lambda _s, _v: None)
        await client.stop_notify(NOTIFY_UUID)
        assert peripheral.cccd_writes[-1] == (NOTIFY_UUID.upper(), 0)


async def test_encrypted_read_pairs_with_secure_connections_and_retries(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    async with client_for(central) as client:
        assert await client.read_gatt_char(SECRET_UUID) == bytearray(b"secret")
    assert peripheral.pairings == [True]


async def test_reconnect_reuses_the_bond_without_pairing_again(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    async with client_for(central) as client:
        await client.read_gatt_char(SECRET_UUID)
    async with client_for(central) as client:
        assert await client.read_gatt_char(SECRET_UUID) == bytearray(b"secret")
    assert peripheral.pairings == [True]
    assert peripheral.connections[-1].is_encrypted


async def test_legacy_pairing_bond_re_encrypts_on_reconnect(
    central: BumbleHost, link: LocalLink
) -> None:
    """Bumble 0.0.236 answers a legacy bond's LTK request with the wrong key (see backend)."""
    legacy = await start_peripheral(link, secure_connections=False)
    async with client_for(central) as client:
        await client.pair()
    async with client_for(central) as client:
        await client.pair()
        assert await client.read_gatt_char(SECRET_UUID) == bytearray(b"secret")
        assert client.is_connected
    assert legacy.pairings == [False]
    assert legacy.connections[-1].is_encrypted


async def test_cuff_security_request_is_answered_by_pairing(
    central: BumbleHost, link: LocalLink
) -> None:
    demanding = await start_peripheral(link, security_request=True)
    async with client_for(central):
        await asyncio.wait_for(demanding.paired.wait(), 5)
    assert demanding.pairings == [True]


async def test_pair_on_connect_pairs_before_returning(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    async with client_for(central, pair=True):
        assert peripheral.connections[-1].is_encrypted


async def test_unpair_forgets_the_bond_so_the_next_pairing_is_fresh(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    client = client_for(central)
    await client.connect()
    await client.pair()
    await client.unpair()
    assert not client.is_connected
    async with client_for(central) as again:
        await again.pair()
    assert peripheral.pairings == [True, True]


async def test_disconnected_callback_fires_when_the_peripheral_drops_the_link(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    dropped = asyncio.Event()
    client = client_for(central, disconnected_callback=lambda _c: dropped.set())
    await client.connect()
    await peripheral.disconnect_all()
    await asyncio.wait_for(dropped.wait(), 5)
    assert not client.is_connected


async def test_disconnected_callback_fires_on_our_own_disconnect(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    dropped: list[BleakClient] = []
    client = client_for(central, disconnected_callback=dropped.append)
    await client.connect()
    await client.disconnect()
    assert dropped == [client]


async def test_link_lost_mid_request_raises_bleak_error_not_cancelled(
    central: BumbleHost, link: LocalLink
) -> None:
    peripheral = await start_peripheral(link)
    stalled = Characteristic(
        "9a0b00ff-5a1e-4c0e-8f0d-7e57ab1e0001",
        Characteristic.Properties.READ,
        Characteristic.READABLE,
        b"",
    )

    async def never_answer(_connection: Connection) -> bytes:
        await peripheral.disconnect_all()
        await asyncio.Event().wait()
        return b""

    stalled.value = CharacteristicValue(read=never_answer)
    peripheral.device.add_service(Service("9a0b00fe-5a1e-4c0e-8f0d-7e57ab1e0001", [stalled]))
    async with client_for(central) as client:
        with pytest.raises(BleakError, match="interrupted"):
            await client.read_gatt_char(stalled.uuid.to_hex_str("-").lower())


async def test_att_error_becomes_bleak_gatt_protocol_error(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    async with client_for(central) as client:
        with pytest.raises(BleakGATTProtocolError) as raised:
            await client.write_gatt_char(REFUSING_UUID, b"x", response=True)
        assert raised.value.code == ATT_VALUE_NOT_ALLOWED


async def test_connecting_to_an_absent_device_times_out_with_advice(central: BumbleHost) -> None:
    client = BleakClient("F0:00:00:00:00:99", timeout=0.2, **central.client_kwargs())
    with pytest.raises(BleakError, match="no connectable advertisement"):
        await client.connect()


async def test_a_timed_out_connection_does_not_block_the_next_one(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    absent = BleakClient("F0:00:00:00:00:99", timeout=0.2, **central.client_kwargs())
    with pytest.raises(BleakError):
        await absent.connect()
    async with client_for(central) as client:
        assert client.is_connected


async def test_virtual_controller_confirms_a_cancelled_connection(link: LocalLink) -> None:
    """Core Vol 4 Part E 7.8.13: LE Connection Complete, Unknown Connection Identifier."""
    controller = VirtualController("central", link=link)
    device = Device.with_hci("c", hci.Address("C0:00:00:00:00:09"), controller, controller)
    await device.power_on()
    failures: list[int] = []
    device.on(Device.EVENT_CONNECTION_FAILURE, lambda error: failures.append(error.error_code))
    attempt = asyncio.ensure_future(device.connect("F0:00:00:00:00:98", timeout=0.05))
    with pytest.raises(Exception):  # noqa: B017 - Bumble's own timeout error type
        await attempt
    assert failures == [hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR]


async def test_a_late_connection_after_an_unconfirmed_cancel_is_dropped_cleanly(
    link: LocalLink, peripheral: TinyPeripheral
) -> None:
    """Bumble's own `Controller` never confirms a cancelled connection and completes it
    when the peer advertises again, long after we gave up: that link must be closed,
    not left at the peer's end with no host that knows it, and the next connection work."""
    central = await BumbleHost.on_link(
        link, address="C0:00:00:00:00:08", controller_class=Controller, cancel_confirm_timeout=0.2
    )
    try:
        await peripheral.device.stop_advertising()
        with pytest.raises(BleakError, match="no connectable advertisement"):
            await BleakClient(PERIPHERAL_ADDRESS, timeout=0.2, **central.client_kwargs()).connect()
        await advertise(peripheral.device)
        async with asyncio.timeout(PATIENCE_S):
            while not peripheral.connections or peripheral.device.connections:  # noqa: ASYNC110
                await asyncio.sleep(0.01)
        async with client_for(central) as client:
            assert client.is_connected
    finally:
        await central.close()
    assert len(peripheral.connections) == 2


class LaggingController(VirtualController):
    """Delivers its next LE Connection Complete to the host late, as a virtual controller
    over HCI/TCP did on a loaded machine in the long soak."""

    lag: float | None = None

    def send_hci_packet(self, packet: hci.HCI_Packet) -> None:
        if self.lag is not None and isinstance(packet, hci.HCI_LE_Connection_Complete_Event):
            lag, self.lag = self.lag, None
            asyncio.get_running_loop().call_later(lag, super().send_hci_packet, packet)
            return
        super().send_hci_packet(packet)


async def test_a_late_connection_to_another_cuff_does_not_pass_for_the_one_asked_for(
    link: LocalLink, peripheral: TinyPeripheral
) -> None:
    """Bumble's `Device.connect` takes the first LE Connection Complete, whoever it is
    for: the late one for a cuff we gave up on must not be taken for the next cuff's."""
    other = await start_peripheral(link, name="Other", address="F0:00:00:00:00:02")
    central = await BumbleHost.on_link(
        link,
        address="C0:00:00:00:00:07",
        controller_class=LaggingController,
        cancel_confirm_timeout=0.1,
    )
    try:
        controller = central._controller
        assert isinstance(controller, LaggingController)
        controller.lag = 0.5
        with pytest.raises(BleakError):
            await BleakClient(other.address, timeout=0.2, **central.client_kwargs()).connect()
        # Ours is still pending (its cuff silent) when the late one arrives.
        await peripheral.device.stop_advertising()
        with pytest.raises(BleakError, match="late connection"):
            await client_for(central).connect()
        await advertise(peripheral.device)
        async with client_for(central) as client:
            assert client.is_connected
    finally:
        await central.close()
    assert [str(c.peer_address) for c in peripheral.connections] == ["C0:00:00:00:00:07"]


async def test_virtual_controller_reset_ends_its_links(
    link: LocalLink, peripheral: TinyPeripheral
) -> None:
    """Core Vol 4 Part E 7.3.2: a host restarted on the same controller (a daemon killed
    and started again) leaves its cuffs free to advertise to the new one."""
    controller = VirtualController("central", link=link)
    device = Device.with_hci("c", hci.Address("C0:00:00:00:00:09"), controller, controller)
    await device.power_on()
    await device.connect(PERIPHERAL_ADDRESS, own_address_type=hci.OwnAddressType.RANDOM)
    assert peripheral.device.connections
    await device.power_on()  # starts with HCI Reset
    async with asyncio.timeout(PATIENCE_S):
        while peripheral.device.connections:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    assert not controller.le_connections


async def test_scanner_reports_name_service_uuids_and_rssi(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    found = await BleakScanner.find_device_by_filter(
        lambda device, _ad: device.address == PERIPHERAL_ADDRESS,
        timeout=5,
        **central.scanner_kwargs(),
    )
    assert found is not None
    scanner = BleakScanner(
        service_uuids=[gatt.uuid128(gatt.BLOOD_PRESSURE_SERVICE)], **central.scanner_kwargs()
    )
    async with scanner, asyncio.timeout(5):
        device, advertisement = await anext(scanner.advertisement_data())
    assert device.name == "Tiny"
    assert gatt.uuid128(gatt.BLOOD_PRESSURE_SERVICE) in advertisement.service_uuids
    assert advertisement.rssi < 0


async def test_scanner_filters_out_other_services(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    scanner = BleakScanner(service_uuids=[gatt.uuid128(0x180D)], **central.scanner_kwargs())
    async with scanner:
        await asyncio.sleep(0.2)
    assert scanner.discovered_devices == []


async def test_client_connects_from_a_scanned_ble_device(
    central: BumbleHost, peripheral: TinyPeripheral
) -> None:
    device = await BleakScanner.find_device_by_address(
        PERIPHERAL_ADDRESS, timeout=5, **central.scanner_kwargs()
    )
    assert device is not None
    async with BleakClient(device, **central.client_kwargs()) as client:
        assert client.name == "Tiny"


def test_backend_without_a_host_is_a_clear_error() -> None:
    with pytest.raises(BleakError, match="bumble=BumbleHost"):
        BumbleBleakClient("F0:00:00:00:00:01", disconnected_callback=None, timeout=1)


async def test_host_refuses_another_event_loop(central: BumbleHost) -> None:
    def construct_elsewhere() -> None:
        async def construct() -> None:
            BleakClient(PERIPHERAL_ADDRESS, **central.client_kwargs())

        asyncio.run(construct())

    with pytest.raises(BleakError, match="another event loop"):
        await asyncio.to_thread(construct_elsewhere)
