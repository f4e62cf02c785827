"""Bleak's client interface on a BumbleHost: connect, discover, read, write, notify."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, cast

from bleak.args import SizedBuffer
from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import core, gatt_client, hci
from bumble.att import ATT_Error
from bumble.device import Connection, Peer

if TYPE_CHECKING:
    pass

from devices.bumble_backend.support import (
    _LINK_LOST_ADVICE,
    _NOT_CONNECTED_ADVICE,
    _SECURITY_ERRORS,
    DISCONNECT_TIMEOUT,
    REQUESTED_ATT_MTU,
    BumbleDeviceDetails,
    T,
    _host_from_kwargs,
    bleak_address,
    bleak_uuid,
    raise_if_cancelling,
)

logger = logging.getLogger(__name__)


class BumbleBleakClient(BaseBleakClient):
    """Bleak's client interface on a `BumbleHost` (pass `bumble=host`)."""

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        services: set[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self._host = _host_from_kwargs(kwargs)
        if isinstance(address_or_ble_device, BLEDevice):
            details = address_or_ble_device.details
            self._peer = (
                details.address
                if isinstance(details, BumbleDeviceDetails)
                else self._host.typed_address(address_or_ble_device.address)
            )
            self._name = address_or_ble_device.name
        else:
            self._peer = self._host.typed_address(address_or_ble_device)
            self._name = None
        self.address = bleak_address(self._peer)
        self._service_filter = services
        self._connection: Connection | None = None
        self._lost: asyncio.Future[None] | None = None
        self._gatt: Peer | None = None
        self._subscriptions: dict[int, Callable[[bytes], None]] = {}

    # --- connectivity -------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._name or self.address.replace(":", "-")

    @property
    def mtu_size(self) -> int:
        connection = self._connection
        return connection.att_mtu if connection is not None else 23

    @property
    def is_connected(self) -> bool:
        return self._connection is not None

    async def connect(self, pair: bool, **kwargs: Any) -> None:
        self._host.check_loop()
        if self._connection is not None:
            return
        # establish_connection passes its own (BlueZ-sized) timeout: keep the tighter one.
        timeout = min(float(kwargs.get("timeout", self._timeout)), self._timeout)
        connection = await self._host.create_connection(self._peer, timeout)
        self._connection = connection
        self._lost = asyncio.get_running_loop().create_future()
        peer = self._gatt = Peer(connection)
        connection.on(
            Connection.EVENT_DISCONNECTION,
            lambda reason: self._on_disconnection(reason, connection),
        )
        if self._host.device.connections.get(connection.handle) is not connection:
            # Lost before we listened: Bumble emitted the disconnection (and forgot the
            # handle) while `create_connection` was returning, a few loop turns after
            # the connection was made. Taken for live, it would swallow every request
            # until the 30 s ATT timeout, its cuff advertising unread (issue #18).
            logger.info("%s: the link was lost as it was made", self.address)
            self._on_disconnection(hci.HCI_CONNECTION_FAILED_TO_BE_ESTABLISHED_ERROR)
        try:
            await self._guard(
                connection, "MTU exchange", lambda: peer.request_mtu(REQUESTED_ATT_MTU)
            )
            if pair:
                await self._secure(connection)
            self.services = await self._guard(
                connection, "service discovery", lambda: self._discover(peer)
            )
        except BaseException:
            await self._abandon(connection)
            raise

    async def _abandon(self, connection: Connection) -> None:
        if self._connection is connection:
            with contextlib.suppress(Exception):
                await self.disconnect()

    async def disconnect(self) -> None:
        connection = self._connection
        if connection is None:
            return
        self._host.check_loop()
        disconnected: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_disconnection(_reason: int) -> None:
            if not disconnected.done():
                disconnected.set_result(None)

        connection.once(Connection.EVENT_DISCONNECTION, on_disconnection)
        with contextlib.suppress(hci.HCI_Error, core.BaseBumbleError):
            await connection.device.send_async_command(
                hci.HCI_Disconnect_Command(
                    connection_handle=connection.handle,
                    reason=hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR,
                )
            )
        try:
            async with asyncio.timeout(DISCONNECT_TIMEOUT):
                await disconnected
        except TimeoutError:
            logger.warning("%s: no Disconnection Complete; forgetting the link", self.address)
            self._on_disconnection(hci.HCI_CONNECTION_TIMEOUT_ERROR)

    def _on_disconnection(self, reason: int, connection: Connection | None = None) -> None:
        """The link ended (`connection`: the one whose event this is; a late event of an
        earlier connection must not end the current one)."""
        if self._connection is None or (
            connection is not None and connection is not self._connection
        ):
            return
        logger.debug("%s disconnected (HCI reason %#04x)", self.address, reason)
        self._connection = None
        self._gatt = None
        self._subscriptions.clear()
        if self._lost is not None and not self._lost.done():
            self._lost.set_result(None)
        if self._disconnected_callback is not None:
            self._disconnected_callback()

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        connection = self._require_connection()
        await self._secure(connection)

    async def unpair(self) -> None:
        """Forget the bond (and drop the link, as BlueZ's RemoveDevice does)."""
        self._host.check_loop()
        await self._host.forget_bond(self._peer)
        await self.disconnect()

    async def _secure(self, connection: Connection) -> None:
        try:
            await self._guard(
                connection, "pairing", lambda: asyncio.shield(self._host.secure(connection))
            )
        except (core.ProtocolError, hci.HCI_Error, core.BaseBumbleError) as error:
            raise BleakError(
                f"{self.address}: pairing failed: {error}; if the cuff was paired before,"
                " clear its pairings and retry"
            ) from error

    # --- GATT -------------------------------------------------------------------------

    async def _discover(self, peer: Peer) -> BleakGATTServiceCollection:
        filter_uuids = [core.UUID(u) for u in self._service_filter or ()]
        await peer.discover_services(filter_uuids)
        collection = BleakGATTServiceCollection()
        mtu = self.mtu_size
        for service_proxy in peer.services:
            service = BleakGATTService(
                service_proxy, service_proxy.handle, bleak_uuid(service_proxy.uuid)
            )
            collection.add_service(service)
            for char_proxy in await peer.discover_characteristics(service=service_proxy):
                characteristic = BleakGATTCharacteristic(
                    char_proxy,
                    char_proxy.handle,
                    bleak_uuid(char_proxy.uuid),
                    _property_names(int(char_proxy.properties)),
                    lambda: max(self.mtu_size, mtu) - 3,
                    service,
                )
                collection.add_characteristic(characteristic)
                for descriptor_proxy in await peer.discover_descriptors(char_proxy):
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor_proxy,
                            descriptor_proxy.handle,
                            bleak_uuid(descriptor_proxy.type),
                            characteristic,
                        )
                    )
        return collection

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_gatt()
        value = await self._request(
            f"read {characteristic.uuid}", lambda: peer.read_value(characteristic.handle)
        )
        return bytearray(value)

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_gatt()
        value = await self._request(
            f"read descriptor {descriptor.uuid}", lambda: peer.read_value(descriptor.handle)
        )
        return bytearray(value)

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: SizedBuffer, response: bool
    ) -> None:
        peer = self._require_gatt()
        value = bytes(data)
        await self._request(
            f"write {characteristic.uuid}",
            lambda: peer.write_value(characteristic.handle, value, with_response=response),
        )

    async def write_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, data: SizedBuffer
    ) -> None:
        peer = self._require_gatt()
        value = bytes(data)
        await self._request(
            f"write descriptor {descriptor.uuid}",
            lambda: peer.write_value(descriptor.handle, value, with_response=True),
        )

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Subscribe; Bumble writes the CCCD with 0x0001 (notify) or 0x0002 (indicate-only)."""
        peer = self._require_gatt()
        proxy = cast(gatt_client.CharacteristicProxy[bytes], characteristic.obj)

        def deliver(value: bytes) -> None:
            callback(bytearray(value))

        previous = self._subscriptions.pop(characteristic.handle, None)
        if previous is not None:
            await self._request("unsubscribe", lambda: peer.unsubscribe(proxy, previous))
        self._subscriptions[characteristic.handle] = deliver
        await self._request(
            f"subscribe {characteristic.uuid}", lambda: peer.subscribe(proxy, deliver)
        )

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        peer = self._require_gatt()
        proxy = cast(gatt_client.CharacteristicProxy[bytes], characteristic.obj)
        subscriber = self._subscriptions.pop(characteristic.handle, None)
        await self._request(
            f"unsubscribe {characteristic.uuid}", lambda: peer.unsubscribe(proxy, subscriber)
        )

    # --- plumbing ---------------------------------------------------------------------

    def _require_connection(self) -> Connection:
        self._host.check_loop()
        if self._connection is None:
            raise BleakError(f"{self.address}: not connected; {_NOT_CONNECTED_ADVICE}")
        return self._connection

    def _require_gatt(self) -> Peer:
        self._require_connection()
        assert self._gatt is not None
        return self._gatt

    async def _request(self, what: str, operation: Callable[[], Awaitable[T]]) -> T:
        """One ATT procedure, retried once after securing the link, errors made Bleak's."""
        connection = self._require_connection()
        try:
            return await self._guard(connection, what, operation)
        except ATT_Error as error:
            if error.error_code not in _SECURITY_ERRORS or connection.is_encrypted:
                raise BleakGATTProtocolError(error.error_code) from error
            logger.debug(
                "%s: %s needs security (%#04x); securing the link",
                self.address,
                what,
                error.error_code,
            )
        await self._secure(connection)
        try:
            return await self._guard(connection, what, operation)
        except ATT_Error as error:
            raise BleakGATTProtocolError(error.error_code) from error

    async def _guard(
        self, connection: Connection, what: str, operation: Callable[[], Awaitable[T]]
    ) -> T:
        """Run one step on a live link; a link lost before or during it is a `BleakError`.

        A step may be several ATT requests (discovery, subscribing). Bumble cancels only
        the request pending when the link drops, which surfaces as a `CancelledError` no
        one asked for; one sent after the drop would wait out the 30 s ATT timeout. So the
        step races the link's loss, and neither may cancel the caller's task.
        """
        lost = self._lost
        if self._connection is not connection or lost is None or lost.done():
            raise BleakError(f"{self.address}: {what}: {_LINK_LOST_ADVICE}")
        step: asyncio.Future[T] = asyncio.ensure_future(operation())
        racing: list[asyncio.Future[Any]] = [step, lost]
        try:
            await asyncio.wait(racing, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            step.cancel()
            await asyncio.wait([step])
            raise
        if not step.done():
            step.cancel()
            await asyncio.wait([step])
        raise_if_cancelling()
        if step.cancelled():
            raise BleakError(f"{self.address}: {what} interrupted: {_LINK_LOST_ADVICE}")
        try:
            return step.result()
        except core.TimeoutError as error:
            raise BleakError(
                f"{self.address}: {what} timed out (no ATT response in 30 s)"
            ) from error


def _property_names(properties: int) -> list[CharacteristicPropertyName]:
    names: dict[int, CharacteristicPropertyName] = {
        0x01: "broadcast",
        0x02: "read",
        0x04: "write-without-response",
        0x08: "write",
        0x10: "notify",
        0x20: "indicate",
        0x40: "authenticated-signed-writes",
        0x80: "extended-properties",
    }
    return [name for bit, name in names.items() if properties & bit]
