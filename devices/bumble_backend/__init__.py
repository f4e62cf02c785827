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

from devices.bumble_backend.client import (
    BumbleBleakClient as BumbleBleakClient,
)
from devices.bumble_backend.client import (
    _property_names as _property_names,
)
from devices.bumble_backend.host import (
    BumbleHost as BumbleHost,
)
from devices.bumble_backend.host import (
    PairingPolicy as PairingPolicy,
)
from devices.bumble_backend.host import (
    _central_device as _central_device,
)
from devices.bumble_backend.host import (
    _CentralDevice as _CentralDevice,
)
from devices.bumble_backend.host import (
    _ConnectAsSeen as _ConnectAsSeen,
)
from devices.bumble_backend.scanner import (
    BumbleBleakScanner as BumbleBleakScanner,
)
from devices.bumble_backend.scanner import (
    advertisement_data as advertisement_data,
)
from devices.bumble_backend.support import (
    _LINK_LOST_ADVICE as _LINK_LOST_ADVICE,
)
from devices.bumble_backend.support import (
    _NOT_CONNECTED_ADVICE as _NOT_CONNECTED_ADVICE,
)
from devices.bumble_backend.support import (
    _SECURITY_ERRORS as _SECURITY_ERRORS,
)
from devices.bumble_backend.support import (
    CONNECT_QUEUE_POLL as CONNECT_QUEUE_POLL,
)
from devices.bumble_backend.support import (
    CONNECT_YIELD_AFTER as CONNECT_YIELD_AFTER,
)
from devices.bumble_backend.support import (
    CONNECTION_CANCEL_CONFIRM_TIMEOUT as CONNECTION_CANCEL_CONFIRM_TIMEOUT,
)
from devices.bumble_backend.support import (
    CONNECTION_ESTABLISHMENT_CHECK as CONNECTION_ESTABLISHMENT_CHECK,
)
from devices.bumble_backend.support import (
    DISCONNECT_TIMEOUT as DISCONNECT_TIMEOUT,
)
from devices.bumble_backend.support import (
    REQUESTED_ATT_MTU as REQUESTED_ATT_MTU,
)
from devices.bumble_backend.support import (
    BackendHost as BackendHost,
)
from devices.bumble_backend.support import (
    BumbleDeviceDetails as BumbleDeviceDetails,
)
from devices.bumble_backend.support import (
    HostScanner as HostScanner,
)
from devices.bumble_backend.support import (
    T as T,
)
from devices.bumble_backend.support import (
    VirtualController as VirtualController,
)
from devices.bumble_backend.support import (
    _CentralPairingSession as _CentralPairingSession,
)
from devices.bumble_backend.support import (
    _host_from_kwargs as _host_from_kwargs,
)
from devices.bumble_backend.support import (
    bleak_address as bleak_address,
)
from devices.bumble_backend.support import (
    bleak_uuid as bleak_uuid,
)
from devices.bumble_backend.support import (
    parse_address as parse_address,
)
from devices.bumble_backend.support import (
    raise_if_cancelling as raise_if_cancelling,
)
