"""Which Bluetooth stack the daemon talks through: `--ble bluez` or `--ble bumble:TRANSPORT`.

- `bluez` (the default on Linux): plain Bleak over BlueZ/D-Bus. BlueZ answers a pairing
  request only through a registered *pairing agent*; without one, pairing with a cuff
  that requires it fails with `org.bluez.Error.AuthenticationFailed`. `open_ble`
  therefore registers a Just Works agent (capability NoInputNoOutput, the cuff's own
  capability) as the default agent when the daemon must pair, and unregisters it on close.
  The daemon needs D-Bus policy permission to register an agent (root, or the
  `bluetooth` group on most distributions). bluetoothd confirms indications itself,
  before D-Bus delivers them, so the measurement inbox's guarantee (`devices.inbox`)
  does not hold over BlueZ; BlueZ keeps its own bonds.
- `bumble:TRANSPORT`: Bleak on our Bumble backend (`devices.bumble_backend`), over any
  Bumble HCI transport: `bumble:tcp-client:127.0.0.1:9100` (the simulator in another
  process), `bumble:usb:0` (a USB dongle, no BlueZ needed; the dongle must not be claimed
  by the kernel's btusb driver). The daemon keeps the bonds and its own address in its
  data directory (`keys_file`, `stable_host_address`).
"""

# No `from __future__ import annotations` here: dbus-fast reads the D-Bus signatures of
# the pairing agent's methods from their evaluated annotations.
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from bumble import hci
from bumble.keys import JsonKeyStore, KeyStore
from dbus_fast import BusType, DBusError, Message, MessageType
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusObjectPath, DBusStr, DBusUInt16, DBusUInt32
from dbus_fast.service import ServiceInterface, dbus_method

from devices.bumble_backend import BumbleHost, PairingPolicy, bleak_address, parse_address

logger = logging.getLogger(__name__)

BLUEZ: Final = "bluez"
BUMBLE_PREFIX: Final = "bumble:"
DEFAULT_BLE: Final = BLUEZ


# In the daemon's data directory: the bonds Bumble made (its JsonKeyStore format) and the
# random static address it made them from. A bond is filed under our identity address
# at the cuff's end (Core Vol 3 Part H 3.6.4), so both must outlive a restart, or every
# cuff has to be paired again.
KEYS_FILE_NAME: Final = "bluetooth-keys.json"
ADDRESS_FILE_NAME: Final = "bluetooth-address"


def stable_host_address(data_dir: Path | str) -> str:
    """Our Bumble host's random static address (Core Vol 6 Part B 1.3.2.1): made once,
    then read back from the data directory on every start."""
    path = Path(data_dir) / ADDRESS_FILE_NAME
    if path.is_file():
        text = path.read_text(encoding="ascii").strip()
        try:
            return bleak_address(parse_address(text))
        except Exception as error:
            raise BleOptionError(
                f"{path} holds {text!r}, not a Bluetooth address; delete it to make a new"
                " one (every cuff will then pair again)"
            ) from error
    address = bleak_address(hci.Address.generate_static_address())
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    with partial.open("w", encoding="ascii") as file:
        file.write(address + "\n")
        file.flush()
        os.fsync(file.fileno())
    partial.replace(path)
    return address


def keys_file(data_dir: Path | str) -> str:
    """Where the daemon keeps its Bumble bonds."""
    return str(Path(data_dir) / KEYS_FILE_NAME)


class BleOptionError(ValueError):
    """A `--ble` value we cannot use."""


@dataclass(frozen=True)
class BleTransport:
    """A parsed `--ble` value."""

    kind: Literal["bluez", "bumble"]
    bumble_transport: str | None = None

    @classmethod
    def parse(cls, spec: str) -> "BleTransport":
        text = spec.strip()
        if text == BLUEZ:
            return cls("bluez")
        if text.startswith(BUMBLE_PREFIX):
            transport = text[len(BUMBLE_PREFIX) :]
            if not transport:
                raise BleOptionError(
                    "--ble bumble: needs a Bumble transport, e.g."
                    " bumble:tcp-client:127.0.0.1:9100 or bumble:usb:0"
                )
            return cls("bumble", transport)
        raise BleOptionError(
            f"--ble {spec!r}: use 'bluez' or 'bumble:TRANSPORT'"
            " (e.g. bumble:tcp-client:127.0.0.1:9100, bumble:usb:0)"
        )

    def __str__(self) -> str:
        return BLUEZ if self.kind == "bluez" else f"{BUMBLE_PREFIX}{self.bumble_transport}"


class BleStack:
    """An open Bluetooth stack: the keyword arguments that make Bleak use it."""

    def __init__(
        self,
        description: str,
        *,
        bumble: BumbleHost | None = None,
        bluez_agent: "BlueZPairingAgent | None" = None,
        owns_bumble: bool = False,
    ) -> None:
        self.description = description
        self.bumble = bumble
        self._bluez_agent = bluez_agent
        self._owns_bumble = owns_bumble

    @classmethod
    def from_host(cls, host: BumbleHost) -> "BleStack":
        """Use a Bumble host someone else opened (and will close)."""
        return cls(f"bumble host {host.address}", bumble=host)

    def client_kwargs(self) -> dict[str, Any]:
        return self.bumble.client_kwargs() if self.bumble is not None else {}

    def scanner_kwargs(self) -> dict[str, Any]:
        return self.bumble.scanner_kwargs() if self.bumble is not None else {}

    async def close(self) -> None:
        if self._bluez_agent is not None:
            await self._bluez_agent.unregister()
        if self.bumble is not None and self._owns_bumble:
            await self.bumble.close()


@contextlib.asynccontextmanager
async def open_ble(
    ble: BleTransport | str | BumbleHost | BleStack,
    *,
    address: str | None = None,
    keys_file: str | None = None,
    pair: bool = True,
) -> AsyncIterator[BleStack]:
    """Open the stack `ble` names; close it (and every link on it) on exit.

    `address` is our own random static address on Bumble, and `keys_file` a JSON file
    that keeps bonds across restarts (Bumble's `JsonKeyStore`); both must stay the same
    from one run to the next or every cuff has to be paired again.
    """
    if isinstance(ble, BleStack):
        yield ble
        return
    if isinstance(ble, BumbleHost):
        yield BleStack.from_host(ble)
        return
    transport = BleTransport.parse(ble) if isinstance(ble, str) else ble
    if transport.kind == "bumble":
        assert transport.bumble_transport is not None
        keystore: KeyStore | None = JsonKeyStore(None, keys_file) if keys_file else None
        host = await BumbleHost.open(
            transport.bumble_transport,
            address=address,
            keystore=keystore,
            pairing_policy=PairingPolicy(),
        )
        stack = BleStack(str(transport), bumble=host, owns_bumble=True)
    else:
        agent = await BlueZPairingAgent.register() if pair else None
        stack = BleStack(str(transport), bluez_agent=agent)
    try:
        yield stack
    finally:
        await stack.close()


# --- BlueZ pairing agent ------------------------------------------------------------------

_AGENT_PATH: Final = "/org/vitalsd/agent"
_BLUEZ_SERVICE: Final = "org.bluez"
_AGENT_MANAGER_PATH: Final = "/org/bluez"
_AGENT_MANAGER_INTERFACE: Final = "org.bluez.AgentManager1"


class BlueZPairingAgent:
    """A Just Works `org.bluez.Agent1` on the system bus, so BlueZ can pair with cuffs.

    Cuffs have no display and no keypad: BlueZ asks the agent only to confirm or
    authorise, which it does; passkey and PIN requests are rejected (a cuff never makes
    them). Registration failures are logged, not raised: scanning and unpaired cuffs work
    without an agent.
    """

    def __init__(self, bus: Any) -> None:
        self._bus = bus

    @classmethod
    async def register(cls) -> "BlueZPairingAgent | None":
        try:
            bus = await MessageBus(bus_type=BusType.SYSTEM).connect()
            bus.export(_AGENT_PATH, JustWorksAgent())
            for member, signature, body in (
                ("RegisterAgent", "os", [_AGENT_PATH, "NoInputNoOutput"]),
                ("RequestDefaultAgent", "o", [_AGENT_PATH]),
            ):
                reply = await bus.call(
                    Message(
                        destination=_BLUEZ_SERVICE,
                        path=_AGENT_MANAGER_PATH,
                        interface=_AGENT_MANAGER_INTERFACE,
                        member=member,
                        signature=signature,
                        body=body,
                    )
                )
                if reply is None or reply.message_type == MessageType.ERROR:
                    raise RuntimeError(f"{member}: {reply.error_name if reply else 'no reply'}")
        except Exception as error:
            logger.warning(
                "could not register a BlueZ pairing agent (%s); cuffs that require"
                " pairing will fail with AuthenticationFailed. Run the daemon with"
                " permission to register agents (root or the bluetooth group).",
                error,
            )
            return None
        return cls(bus)

    async def unregister(self) -> None:
        with contextlib.suppress(Exception):
            await self._bus.call(
                Message(
                    destination=_BLUEZ_SERVICE,
                    path=_AGENT_MANAGER_PATH,
                    interface=_AGENT_MANAGER_INTERFACE,
                    member="UnregisterAgent",
                    signature="o",
                    body=[_AGENT_PATH],
                )
            )
        self._bus.disconnect()


_REJECTED: Final = "org.bluez.Error.Rejected"


class JustWorksAgent(ServiceInterface):
    """`org.bluez.Agent1` with capability NoInputNoOutput (BlueZ doc/agent-api.rst)."""

    def __init__(self) -> None:
        super().__init__("org.bluez.Agent1")

    @dbus_method()
    def Release(self) -> None:
        pass

    @dbus_method()
    def RequestAuthorization(self, device: DBusObjectPath) -> None:
        logger.info("BlueZ pairing agent: authorising %s", device)

    @dbus_method()
    def RequestConfirmation(self, device: DBusObjectPath, passkey: DBusUInt32) -> None:
        logger.info("BlueZ pairing agent: confirming %s", device)

    @dbus_method()
    def AuthorizeService(self, device: DBusObjectPath, uuid: DBusStr) -> None:
        pass

    @dbus_method()
    def RequestPinCode(self, device: DBusObjectPath) -> DBusStr:
        raise DBusError(_REJECTED, "cuffs pair with Just Works; no PIN to give")

    @dbus_method()
    def RequestPasskey(self, device: DBusObjectPath) -> DBusUInt32:
        raise DBusError(_REJECTED, "cuffs pair with Just Works; no passkey to give")

    @dbus_method()
    def DisplayPasskey(
        self, device: DBusObjectPath, passkey: DBusUInt32, entered: DBusUInt16
    ) -> None:
        pass

    @dbus_method()
    def DisplayPinCode(self, device: DBusObjectPath, pincode: DBusStr) -> None:
        pass

    @dbus_method()
    def Cancel(self) -> None:
        pass
