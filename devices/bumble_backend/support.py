"""Bumble plumbing shared by the host, the client and the scanner: the timeouts, address
and UUID conversion, the virtual controller and the central's pairing workaround.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import uuid
from dataclasses import dataclass
from typing import Any, Final, Protocol, TypeVar

from bleak.exc import BleakError
from bumble import core, hci, ll, smp
from bumble.controller import Connection as LinkLayerConnection
from bumble.controller import Controller
from bumble.device import Advertisement, Connection, Device

from devices import gatt

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


class HostScanner(Protocol):
    """What the host asks of a scanner it feeds advertisements to."""

    active: bool

    def on_advertisement(self, advertisement: Advertisement) -> None: ...


class BackendHost(abc.ABC):
    """What `bumble=` must be, and what the client and the scanner use of it: the base of
    `BumbleHost`, here so that they need not import the host module (which imports them)."""

    device: Device

    @abc.abstractmethod
    def check_loop(self) -> None:
        """Refuse use from another event loop, or after close."""

    @abc.abstractmethod
    def typed_address(self, address: str) -> hci.Address:
        """`address` with the type this host knows it by."""

    @abc.abstractmethod
    async def create_connection(self, peer: hci.Address, within: float) -> Connection:
        """Connect to `peer` within `within` seconds."""

    @abc.abstractmethod
    def secure(self, connection: Connection) -> asyncio.Task[None]:
        """Pair or re-encrypt `connection`, once at a time."""

    @abc.abstractmethod
    async def forget_bond(self, peer: hci.Address) -> None:
        """Delete the bond with `peer`."""

    @abc.abstractmethod
    async def add_scanner(self, scanner: HostScanner, active: bool) -> None:
        """Feed `scanner` advertisements, scanning actively if any scanner asks."""

    @abc.abstractmethod
    async def remove_scanner(self, scanner: HostScanner) -> None:
        """Stop feeding `scanner`; stop scanning when none is left."""


def _host_from_kwargs(kwargs: dict[str, Any]) -> BackendHost:
    host = kwargs.get("bumble")
    if not isinstance(host, BackendHost):
        raise BleakError(
            "the Bumble backend needs its host: pass bumble=BumbleHost (see"
            " BumbleHost.client_kwargs() / scanner_kwargs())"
        )
    host.check_loop()
    return host
