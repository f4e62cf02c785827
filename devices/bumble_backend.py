"""A Bleak backend on a Bumble host, so ordinary Bleak code runs without BlueZ.

`BleakClient(device, backend=BumbleBleakClient, bumble=host)` and
`BleakScanner(backend=BumbleBleakScanner, bumble=host)` drive a `BumbleHost`: one Bumble
`Device` (host stack) on one HCI transport, shared by every client and scanner made for
it. The transport is a Bumble virtual controller on a `LocalLink` (tests, the demo),
`tcp-client:` to a simulator in another process, or a USB dongle (`usb:0`).

It behaves like BlueZ where the daemon relies on it: MTU 247 is requested on connect;
a request refused with Insufficient Authentication/Encryption (ATT 0x05/0x0F) pairs (LE
Secure Connections, Just Works unless configured) or re-encrypts from the bond, then is
retried once; a cuff's Security Request is answered; `disconnected_callback` fires on
every disconnect; a link lost mid-request raises `BleakError`, never a bare
`CancelledError`.

Bumble objects belong to the event loop they were made on: a host refuses to be used
from another loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Literal, TypeVar, cast

from bleak.args import SizedBuffer
from bleak.assigned_numbers import CharacteristicPropertyName
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError, BleakGATTProtocolError
from bumble import core, gatt_client, hci, ll, pairing, smp
from bumble.att import ATT_Error
from bumble.controller import Connection as LinkLayerConnection
from bumble.controller import Controller
from bumble.device import Advertisement, Connection, Device, DeviceConfiguration, Peer
from bumble.keys import KeyStore, MemoryKeyStore
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import Transport

from devices import gatt

logger = logging.getLogger(__name__)

T = TypeVar("T")

# ATT_MTU the central asks for on every connection, as BlueZ does (Core Vol 3 Part F
# 3.4.2.1; 247 fills one LE Data Length Extension PDU of 251 bytes).
REQUESTED_ATT_MTU: Final = 247
# How long to wait for the controller to confirm an LE Create Connection Cancel with
# its LE Connection Complete (status Unknown Connection Identifier, Core Vol 4 Part E
# 7.8.13), or for the one a connection made just before the cancel sends, before giving
# up on it. A real controller answers in milliseconds; a virtual one over HCI/TCP on a
# loaded host took over a second in the long soak. The controller stays ours meanwhile:
# an answer that comes after we gave up would end the next attempt instead.
CONNECTION_CANCEL_CONFIRM_TIMEOUT: Final = 5.0
# A pending connection that has waited this long for its peer's next advertisement
# yields the controller to a queued one (cuffs advertise every 20 ms to about 1 s after a
# measurement; Core Vol 6 Part B 4.4.2.2.1 allows up to 10.24 s, which cuffs do not use).
CONNECT_YIELD_AFTER: Final = 1.0
# Real seconds after CONNECT_IND by which the peripheral's end must exist (standing in
# for six connection intervals, Core Vol 6 Part B 4.5.2).
CONNECTION_ESTABLISHMENT_CHECK: Final = 0.05
# How often a pending connection past its yield time looks for a queued one.
CONNECT_QUEUE_POLL: Final = 0.05
# How long `disconnect()` waits for Disconnection Complete before forgetting the link.
DISCONNECT_TIMEOUT: Final = 5.0
# ATT errors that pairing or encrypting with the bond cures (Core Vol 3 Part F 3.4.1.1).
_SECURITY_ERRORS: Final = frozenset(
    {gatt.ATT_INSUFFICIENT_AUTHENTICATION, gatt.ATT_INSUFFICIENT_ENCRYPTION}
)

_LINK_LOST_ADVICE: Final = "the cuff disconnected or went out of range; it will be retried"
_NOT_CONNECTED_ADVICE: Final = "connect first (or reconnect: the cuff dropped the link)"


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that Python 3.11's `asyncio.wait_for` swallowed.

    `wait_for` (which Bumble uses for every HCI command and ATT request) returns the
    result instead of raising when the awaited future completes in the same loop turn as
    the cancellation (CPython gh-86296, fixed in 3.12). The task still counts the
    cancellation, so we look and raise it ourselves.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def bleak_uuid(bumble_uuid: core.UUID) -> str:
    """Bumble's UUIDs are little-endian objects; Bleak keys on lowercase 128-bit strings."""
    return str(uuid.UUID(bytes=bumble_uuid.uuid_128_bytes[::-1]))


def parse_address(
    address: str, default_type: hci.AddressType = hci.AddressType.RANDOM_DEVICE
) -> hci.Address:
    """`AA:BB:CC:DD:EE:FF` (random unless told) or `AA:BB:CC:DD:EE:FF/P` (public)."""
    try:
        if address.upper().endswith("/P"):
            return hci.Address(address[:-2], hci.AddressType.PUBLIC_DEVICE)
        return hci.Address(address, default_type)
    except (ValueError, core.InvalidArgumentError) as error:
        raise BleakError(f"{address!r} is not a Bluetooth address (AA:BB:CC:DD:EE:FF)") from error


def bleak_address(address: hci.Address) -> str:
    """The form Bleak shows: uppercase, colon separated, no type suffix."""
    return address.to_string(with_type_qualifier=False)


@dataclass(frozen=True)
class BumbleDeviceDetails:
    """`BLEDevice.details` for a device seen by a Bumble scanner: its typed address."""

    address: hci.Address


@dataclass(frozen=True)
class PairingPolicy:
    """How this host pairs (Core Vol 3 Part H 2.3).

    The default is LE Secure Connections with Just Works (no input, no output), which
    every cuff without a keypad accepts. Give a `delegate` to answer passkey or
    numeric-comparison requests.
    """

    secure_connections: bool = True
    mitm: bool = False
    delegate: pairing.PairingDelegate | None = None


class VirtualController(Controller):
    """A Bumble virtual controller for a central, with three link-layer rules restored.

    Bumble 0.0.236's `Controller` acknowledges LE Create Connection Cancel but keeps the
    connection pending and never sends the LE Connection Complete the host waits for
    (Core Vol 4 Part E 7.8.13), so one cuff that vanished before we connected would
    block every later connection (each refused with Command Disallowed) until that cuff
    advertised again, and then complete a connection nobody asked for any more. It
    reports a connection as made even when the peripheral never took our CONNECT_IND.
    And its HCI Reset keeps every link (Core Vol 4 Part E 7.3.2: a reset ends them), so
    the cuffs of a daemon that was killed and restarted stay bound to a host that no
    longer exists. This one does what the specification says.
    """

    def on_hci_reset_command(self, command: hci.HCI_Reset_Command) -> Any:
        """Drop every link; the peer sees a supervision timeout, as on a real radio."""
        self.pending_le_connection = None
        for connection in list(self.le_connections.values()):
            with contextlib.suppress(Exception):
                connection.send_ll_control_pdu(ll.TerminateInd(hci.HCI_CONNECTION_TIMEOUT_ERROR))
            self.le_connections.pop(connection.peer_address, None)
        return super().on_hci_reset_command(command)

    def on_hci_le_create_connection_cancel_command(
        self, command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        failure = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address.address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # After the Command Complete for the cancel itself, which the caller sends.
        asyncio.get_running_loop().call_soon(self.send_hci_packet, failure)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def create_le_connection(self, peer_address: hci.Address) -> None:
        super().create_le_connection(peer_address)
        connection = self.le_connections.get(peer_address)
        if connection is not None:
            asyncio.get_running_loop().call_later(
                CONNECTION_ESTABLISHMENT_CHECK, self._check_established, connection
            )

    def _check_established(self, connection: LinkLayerConnection) -> None:
        """The peripheral may have stopped advertising before our CONNECT_IND reached it
        (it ignores one it is no longer advertising for). A real link layer then gives up
        after six connection intervals without a packet from it (Core Vol 6 Part B
        4.5.2); the virtual link has no such timer, so the connection would live on at our
        end only, a ghost that every request waits 30 s on."""
        current: LinkLayerConnection | None = self.le_connections.get(connection.peer_address)
        if current is not connection:
            return
        peer = self.link.find_le_controller(connection.peer_address)
        if peer is None or connection.self_address not in peer.le_connections:
            self.on_le_disconnected(connection, hci.HCI_CONNECTION_FAILED_TO_BE_ESTABLISHED_ERROR)


class _CentralPairingSession(smp.Session):
    """Works around Bumble 0.0.236 failing to re-encrypt a legacy-pairing bond.

    After legacy pairing a Bumble peripheral files the LTK it distributed under
    `ltk_central` and the one the central distributed under `ltk_peripheral`, then
    answers the controller's LTK request with `ltk_peripheral`: the central's key, not
    its own, so re-encryption fails with a MIC failure. As initiator we distribute the
    peripheral's own LTK, EDIV and Rand back to it, so whichever entry it picks holds the
    key we encrypt with. A correct peripheral is unaffected: it answers with its own key.
    """

    def distribute_keys(self) -> None:
        if self.is_initiator and not self.sc and self.peer_ltk is not None:
            self.ltk = self.peer_ltk
            self.ltk_ediv = self.peer_ediv
            self.ltk_rand = self.peer_rand
        super().distribute_keys()


class BumbleHost:
    """One Bumble host stack on one HCI transport, shared by Bleak clients and scanners.

    Make one with `await BumbleHost.open("tcp-client:127.0.0.1:9100")` or
    `await BumbleHost.on_link(local_link)`, pass `**host.client_kwargs()` to `BleakClient`
    (or `establish_connection`) and `**host.scanner_kwargs()` to `BleakScanner`, and
    `await host.close()` at the end.
    """

    def __init__(
        self,
        device: Device,
        *,
        transport: Transport | None = None,
        controller: Controller | None = None,
        pairing_policy: PairingPolicy = PairingPolicy(),
        connect_yield_after: float = CONNECT_YIELD_AFTER,
        cancel_confirm_timeout: float = CONNECTION_CANCEL_CONFIRM_TIMEOUT,
    ) -> None:
        self.device = device
        self.loop = asyncio.get_running_loop()
        self.pairing_policy = pairing_policy
        self._transport = transport
        self._controller = controller
        # A controller creates one LE connection at a time (Core Vol 4 Part E 7.8.12).
        self._connect_lock = asyncio.Lock()
        self._connect_waiters = 0
        self._connecting_to: hci.Address | None = None
        self.connect_yield_after = connect_yield_after
        self.cancel_confirm_timeout = cancel_confirm_timeout
        self._scanners: set[BumbleBleakScanner] = set()
        self._scanning_active = False
        self._address_types: dict[bytes, hci.AddressType] = {}
        self._securing: dict[int, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._closed = False
        device.smp_session_proxy = _CentralPairingSession
        device.pairing_config_factory = self._pairing_config
        device.on(Device.EVENT_ADVERTISEMENT, self._on_advertisement)
        device.on(Device.EVENT_CONNECTION, self._on_connection)

    # --- construction -------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        transport_spec: str,
        *,
        address: str | None = None,
        keystore: KeyStore | None = None,
        pairing_policy: PairingPolicy = PairingPolicy(),
        name: str = "vitalsd",
        connect_yield_after: float = CONNECT_YIELD_AFTER,
    ) -> BumbleHost:
        """Open a Bumble transport (`tcp-client:HOST:PORT`, `usb:0`, ...) and power on."""
        try:
            transport = await open_transport(transport_spec)
        except Exception as error:
            raise BleakError(
                f"cannot open Bumble transport {transport_spec!r}: {error}; check the"
                " dongle is plugged in (usb:N) or the simulator is listening (tcp-client:)"
            ) from error
        device = _central_device(name, address, transport.source, transport.sink)
        host = cls(
            device,
            transport=transport,
            pairing_policy=pairing_policy,
            connect_yield_after=connect_yield_after,
        )
        try:
            await host._power_on(keystore)
        except BaseException:
            await transport.close()
            raise
        return host

    @classmethod
    async def on_link(
        cls,
        link: LocalLink,
        *,
        address: str | None = None,
        keystore: KeyStore | None = None,
        pairing_policy: PairingPolicy = PairingPolicy(),
        name: str = "vitalsd",
        connect_yield_after: float = CONNECT_YIELD_AFTER,
        controller_class: type[Controller] = VirtualController,
        cancel_confirm_timeout: float = CONNECTION_CANCEL_CONFIRM_TIMEOUT,
    ) -> BumbleHost:
        """Add a `VirtualController` (or `controller_class`) to an in-process `LocalLink`
        and power on a host on it."""
        controller = controller_class(f"{name}-controller", link=link)
        device = _central_device(name, address, controller, controller)
        host = cls(
            device,
            controller=controller,
            pairing_policy=pairing_policy,
            connect_yield_after=connect_yield_after,
            cancel_confirm_timeout=cancel_confirm_timeout,
        )
        try:
            await host._power_on(keystore)
        except BaseException:
            link.remove_controller(controller)
            raise
        return host

    async def _power_on(self, keystore: KeyStore | None) -> None:
        self.device.keystore = keystore if keystore is not None else MemoryKeyStore()
        await self.device.power_on()

    async def close(self) -> None:
        """Disconnect every link, stop scanning and release the transport."""
        if self._closed:
            return
        self._closed = True
        for connection in list(self.device.connections.values()):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(DISCONNECT_TIMEOUT):
                    await connection.disconnect()
        if self.device.is_scanning:
            with contextlib.suppress(Exception):
                await self.device.stop_scanning()
        for task in list(self._background):
            task.cancel()
        with contextlib.suppress(Exception):
            await self.device.host.flush()
        if self._transport is not None:
            await self._transport.close()
        if self._controller is not None:
            with contextlib.suppress(KeyError):
                self._controller.link.remove_controller(self._controller)

    async def __aenter__(self) -> BumbleHost:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()

    # --- what callers pass to Bleak ------------------------------------------------

    @property
    def address(self) -> str:
        """This host's own (random static) address, as its peers see it."""
        return bleak_address(self.device.random_address)

    def client_kwargs(self) -> dict[str, Any]:
        return {"backend": BumbleBleakClient, "bumble": self}

    def scanner_kwargs(self) -> dict[str, Any]:
        return {"backend": BumbleBleakScanner, "bumble": self}

    def check_loop(self) -> None:
        """Bumble objects are bound to the loop they were created on."""
        if self._closed:
            raise BleakError("this Bumble host is closed; open a new one")
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is not self.loop:
            raise BleakError(
                "this Bumble host belongs to another event loop; open one host per loop"
            )

    # --- connections ----------------------------------------------------------------

    def typed_address(self, address: str) -> hci.Address:
        """The address with the type it was last advertised with (random by default)."""
        parsed = parse_address(address)
        seen_type = self._address_types.get(bytes(parsed))
        if seen_type is not None and not address.upper().endswith("/P"):
            return hci.Address(bytes(parsed), seen_type)
        return parsed

    async def create_connection(self, peer: hci.Address, within: float) -> Connection:
        """Connect as central, cancelling cleanly on timeout or cancellation.

        The controller creates one connection at a time, so attempts queue here. An
        attempt that has waited `connect_yield_after` for its peer's next advertisement
        while another attempt is queued gives the controller up: its peer has most likely
        gone, and a cuff that has just advertised must not wait behind it.
        """
        self._connect_waiters += 1
        try:
            await self._connect_lock.acquire()
        finally:
            self._connect_waiters -= 1
        try:
            self._connecting_to = peer
            return await self._create_connection(peer, within)
        finally:
            self._connecting_to = None
            self._keep_scanning()
            # Bumble's `Device.connect` clears this when it ends, and its
            # `on_le_connection` asserts it is set for any central connection: a late
            # one, from an attempt whose cancel the controller never confirmed, would
            # raise there and live on as a link nobody knows. We always connect from our
            # random static address, so it stays set; `_on_connection` drops the late one.
            self.device.connect_own_address_type = hci.OwnAddressType.RANDOM
            self._connect_lock.release()

    async def _create_connection(self, peer: hci.Address, within: float) -> Connection:
        loop = asyncio.get_running_loop()
        attempt = asyncio.ensure_future(
            self.device.connect(
                peer,
                transport=core.PhysicalTransport.LE,
                own_address_type=hci.OwnAddressType.RANDOM,
                timeout=None,
            )
        )
        yield_at = loop.time() + self.connect_yield_after
        try:
            async with asyncio.timeout(within):
                while not attempt.done():
                    if self._connect_waiters and loop.time() >= yield_at:
                        await self._abandon(attempt)
                        raise BleakError(
                            f"{bleak_address(peer)}: not advertising any more; gave the"
                            " controller to another cuff (will retry when it advertises)"
                        )
                    # Until the controller may be yielded, then each time someone queues.
                    wake_in = yield_at - loop.time()
                    await asyncio.wait(
                        [attempt], timeout=wake_in if wake_in > 0 else CONNECT_QUEUE_POLL
                    )
                raise_if_cancelling()
                connection = attempt.result()
        except TimeoutError:
            await self._abandon(attempt)
            raise BleakError(
                f"{bleak_address(peer)}: no connectable advertisement within {within:.1f} s;"
                " the cuff is out of range or asleep (take a measurement to wake it)"
            ) from None
        except asyncio.CancelledError:
            await self._abandon(attempt)
            raise
        except hci.HCI_Error as error:
            if error.error_code == hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR:
                # The controller still works on an attempt we gave up on (its cancel
                # unconfirmed): cancel it again so the next attempt finds it free.
                with contextlib.suppress(hci.HCI_Error, core.BaseBumbleError):
                    await self.device.send_sync_command(
                        hci.HCI_LE_Create_Connection_Cancel_Command()
                    )
                raise BleakError(
                    f"{bleak_address(peer)}: the controller is still busy with an earlier"
                    " connection attempt; cancelled it, will retry"
                ) from error
            raise BleakError(f"{bleak_address(peer)}: connection failed: {error}") from error
        except core.ConnectionError as error:
            if error.peer_address != peer:
                await self._settle_stray_answer(peer)
                raise BleakError(
                    f"{bleak_address(peer)}: the controller's late answer to an earlier"
                    " attempt ended this one; will retry"
                ) from error
            raise BleakError(f"{bleak_address(peer)}: connection failed: {error}") from error
        except core.InvalidStateError as error:
            raise BleakError(f"{bleak_address(peer)}: connection failed: {error}") from error
        if connection.peer_address != peer:
            # `_on_connection` drops the stray one.
            await self._settle_stray_answer(peer)
            raise BleakError(
                f"{bleak_address(peer)}: a late connection to {connection.peer_address}, from an"
                " earlier attempt, came first; will retry"
            )
        return connection

    async def _settle_stray_answer(self, peer: hci.Address) -> None:
        """Bumble's `Device.connect` ends on the first LE Connection Complete, whoever it is
        for: a late one from an attempt we abandoned ended ours while the controller still
        works on it. Cancel ours and wait for the controller's answer to it, so that answer
        cannot end the next attempt too; drop the connection if it was made."""
        answered: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def on_connection(connection: Connection) -> None:
            if connection.peer_address == peer and not answered.done():
                answered.set_result(None)
                self._drop(connection)

        def on_failure(error: core.ConnectionError) -> None:
            if getattr(error, "peer_address", None) == peer and not answered.done():
                answered.set_result(None)

        self.device.on(Device.EVENT_CONNECTION, on_connection)
        self.device.on(Device.EVENT_CONNECTION_FAILURE, on_failure)
        try:
            with contextlib.suppress(hci.HCI_Error, core.BaseBumbleError):
                await self.device.send_sync_command(hci.HCI_LE_Create_Connection_Cancel_Command())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.cancel_confirm_timeout):
                    await answered
        finally:
            self.device.remove_listener(Device.EVENT_CONNECTION, on_connection)
            self.device.remove_listener(Device.EVENT_CONNECTION_FAILURE, on_failure)

    async def _abandon(self, attempt: asyncio.Future[Connection]) -> None:
        """Cancel a pending LE connection; drop it if it completed meanwhile."""
        if not attempt.done():
            with contextlib.suppress(hci.HCI_Error, core.BaseBumbleError):
                await self.device.send_sync_command(hci.HCI_LE_Create_Connection_Cancel_Command())
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.cancel_confirm_timeout):
                    await asyncio.shield(attempt)
        if not attempt.done():
            logger.warning(
                "the controller did not confirm a cancelled LE connection; a late"
                " connection from it will be dropped"
            )
            attempt.cancel()
            await asyncio.wait([attempt])
            return
        if not attempt.cancelled() and attempt.exception() is None:
            self._drop(attempt.result())

    def _on_connection(self, connection: Connection) -> None:
        if connection.role != hci.Role.CENTRAL:
            return
        connection.on(
            Connection.EVENT_SECURITY_REQUEST,
            lambda _auth_req: self._on_security_request(connection),
        )
        if self._connecting_to is None or connection.peer_address != self._connecting_to:
            # A connection the controller completed after we gave up on it.
            logger.info("dropping an unrequested connection to %s", connection.peer_address)
            self._drop(connection)

    def _drop(self, connection: Connection) -> None:
        async def disconnect() -> None:
            with contextlib.suppress(Exception):
                await connection.disconnect()

        self._spawn(disconnect())

    def _spawn(self, coroutine: Awaitable[T]) -> asyncio.Task[T]:
        task: asyncio.Task[T] = asyncio.ensure_future(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task

    # --- security -------------------------------------------------------------------

    def _pairing_config(self, _connection: Connection) -> pairing.PairingConfig:
        policy = self.pairing_policy
        return pairing.PairingConfig(
            sc=policy.secure_connections,
            mitm=policy.mitm,
            bonding=True,
            delegate=policy.delegate
            or pairing.PairingDelegate(io_capability=pairing.PairingDelegate.NO_OUTPUT_NO_INPUT),
            # Bonds are keyed by identity address: ours must be the random static
            # address we connect from, or the cuff never finds our keys again.
            identity_address_type=pairing.PairingConfig.AddressType.RANDOM,
        )

    def _on_security_request(self, connection: Connection) -> None:
        """A cuff asks for security (Core Vol 3 Part H 2.4.6): encrypt or pair."""
        task = self.secure(connection)

        def log_failure(done: asyncio.Future[None]) -> None:
            if not done.cancelled() and (error := done.exception()) is not None:
                logger.warning(
                    "answering %s's security request failed: %s", connection.peer_address, error
                )

        task.add_done_callback(log_failure)

    def secure(self, connection: Connection) -> asyncio.Task[None]:
        """Encrypt with the stored bond, or pair and bond; one attempt per link at a time."""
        running = self._securing.get(connection.handle)
        if running is not None and not running.done():
            return running
        task = self._spawn(self._secure(connection))
        self._securing[connection.handle] = task
        connection.once(
            Connection.EVENT_DISCONNECTION,
            lambda _reason: self._securing.pop(connection.handle, None),
        )
        return task

    async def _secure(self, connection: Connection) -> None:
        if connection.is_encrypted:
            return
        if await self.bond_keys(connection.peer_address) is not None:
            try:
                await connection.encrypt()
                return
            except hci.HCI_Error as error:
                # The cuff forgot us (reset, battery change): pair afresh.
                logger.info(
                    "%s rejected our bond (%s); pairing again", connection.peer_address, error
                )
                await self.forget_bond(connection.peer_address)
        await connection.pair()
        if not connection.is_encrypted:
            await connection.encrypt()

    async def bond_keys(self, peer: hci.Address) -> Any | None:
        keystore = self.device.keystore
        if keystore is None:
            return None
        keys = await keystore.get(str(peer))
        if keys is None or (keys.ltk is None and keys.ltk_central is None):
            return None
        return keys

    async def forget_bond(self, peer: hci.Address) -> None:
        keystore = self.device.keystore
        if keystore is not None:
            with contextlib.suppress(KeyError):
                await keystore.delete(str(peer))

    # --- scanning -------------------------------------------------------------------

    async def add_scanner(self, scanner: BumbleBleakScanner, active: bool) -> None:
        self._scanners.add(scanner)
        if self.device.is_scanning and (self._scanning_active or not active):
            return
        if self.device.is_scanning:
            await self.device.stop_scanning()
        self._scanning_active = active or any(s.active for s in self._scanners)
        await self.device.start_scanning(active=self._scanning_active, filter_duplicates=False)

    async def remove_scanner(self, scanner: BumbleBleakScanner) -> None:
        self._scanners.discard(scanner)
        if not self._scanners and self.device.is_scanning and not self._closed:
            await self.device.stop_scanning()

    def _keep_scanning(self) -> None:
        """Scanning stays on while a scanner wants it: if anything switched it off (a
        Bumble procedure that scans for itself), switch it on again, loudly."""
        if self._scanners and not self.device.is_scanning and not self._closed:
            logger.warning("scanning was switched off under our scanners; switching it on")
            self._spawn(self._restart_scanning())

    async def _restart_scanning(self) -> None:
        with contextlib.suppress(hci.HCI_Error, core.BaseBumbleError):
            if self._scanners and not self.device.is_scanning:
                await self.device.start_scanning(
                    active=self._scanning_active, filter_duplicates=False
                )

    def _on_advertisement(self, advertisement: Advertisement) -> None:
        self._address_types[bytes(advertisement.address)] = hci.AddressType(
            advertisement.address.address_type
        )
        for scanner in list(self._scanners):
            scanner.on_advertisement(advertisement)


class _ConnectAsSeen(smp.AddressResolver):
    """Bumble's address resolver, except that a connection is never preceded by a scan.

    With a bond's IRK in the keystore (loaded at power-on, so after every restart),
    Bumble's `Device.connect_le` first scans for the peer's identity address
    (`find_peer_by_identity_address`) and stops scanning afterwards if it was not
    scanning when it began. A connection started while the supervisor's scan was itself
    still starting (the controller reports advertisements from before our HCI Reset)
    thus switched scanning off for good: no cuff that was not already linked was ever
    connected again (issue #18; the soak's dump: the daemon's controller "scanning:
    False"). We connect to the address a cuff has just advertised from, so there is
    nothing to look for: `can_resolve_to` (used only there) says no; `resolve` works.
    """

    def can_resolve_to(self, address: hci.Address) -> bool:
        return False


class _CentralDevice(Device):
    async def refresh_resolving_list(self) -> None:
        await super().refresh_resolving_list()
        resolver = self.address_resolver
        if resolver is not None and not isinstance(resolver, _ConnectAsSeen):
            self.address_resolver = _ConnectAsSeen(resolver.resolving_keys)


def _central_device(name: str, address: str | None, source: Any, sink: Any) -> Device:
    config = DeviceConfiguration()
    config.name = name
    config.address = (
        parse_address(address) if address is not None else hci.Address.generate_static_address()
    )
    config.identity_address_type = hci.Address.RANDOM_DEVICE_ADDRESS
    return _CentralDevice.from_config_with_hci(config, source, sink)


def _host_from_kwargs(kwargs: dict[str, Any]) -> BumbleHost:
    host = kwargs.get("bumble")
    if not isinstance(host, BumbleHost):
        raise BleakError(
            "the Bumble backend needs its host: pass bumble=BumbleHost (see"
            " BumbleHost.client_kwargs() / scanner_kwargs())"
        )
    host.check_loop()
    return host


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
