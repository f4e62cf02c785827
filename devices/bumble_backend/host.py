"""The central's Bumble host: one Device on one HCI transport, shared by every Bleak
client and scanner made for it (connecting, pairing and bonds, scanning).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any

from bleak.exc import BleakError
from bumble import core, hci, pairing, smp
from bumble.controller import Controller
from bumble.device import Advertisement, Connection, Device, DeviceConfiguration
from bumble.keys import KeyStore, MemoryKeyStore
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import Transport

from devices.bumble_backend.client import BumbleBleakClient
from devices.bumble_backend.scanner import BumbleBleakScanner
from devices.bumble_backend.support import (
    CONNECT_QUEUE_POLL,
    CONNECT_YIELD_AFTER,
    CONNECTION_CANCEL_CONFIRM_TIMEOUT,
    DISCONNECT_TIMEOUT,
    BackendHost,
    HostScanner,
    T,
    VirtualController,
    _CentralPairingSession,
    bleak_address,
    parse_address,
    raise_if_cancelling,
)

logger = logging.getLogger(__name__)


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


class BumbleHost(BackendHost):
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
        self._scanners: set[HostScanner] = set()
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

    async def add_scanner(self, scanner: HostScanner, active: bool) -> None:
        self._scanners.add(scanner)
        if self.device.is_scanning and (self._scanning_active or not active):
            return
        if self.device.is_scanning:
            await self.device.stop_scanning()
        self._scanning_active = active or any(s.active for s in self._scanners)
        await self.device.start_scanning(active=self._scanning_active, filter_duplicates=False)

    async def remove_scanner(self, scanner: HostScanner) -> None:
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
