"""Issue #18's second cause: after a restart (bonds loaded at power-on), Bumble's
`Device.connect_le` scanned for each bonded cuff's identity address before connecting,
and switched scanning off afterwards if it had not been on when it began; a connection
started while the supervisor's own scan was still starting switched the supervisor's
scanning off for good (the soak's dump: the daemon's controller "scanning: False", every
unlinked cuff advertising, unread). Over Bumble virtual controllers."""

from __future__ import annotations

from typing import Any

from bumble.keys import MemoryKeyStore
from bumble.link import LocalLink

from devices.bumble_backend import BumbleHost, parse_address
from tests.devices.conftest import CENTRAL_ADDRESS, StartCuff

CONNECT_WITHIN = 5.0  # real seconds; a guard, not a timing assertion


async def test_connecting_to_a_bonded_cuff_after_a_restart_never_scans(
    link: LocalLink, start_cuff: StartCuff
) -> None:
    keys = MemoryKeyStore()
    cuff = await start_cuff()
    before = await BumbleHost.on_link(link, address=CENTRAL_ADDRESS, keystore=keys)
    try:
        connection = await before.create_connection(parse_address(cuff.address), CONNECT_WITHIN)
        await before.secure(connection)  # bonded: the cuff's IRK is in the keystore
    finally:
        await before.close()
    assert await keys.get_resolving_keys()  # what a restart loads at power-on
    after = await BumbleHost.on_link(link, address=CENTRAL_ADDRESS, keystore=keys)
    scans: list[str] = []
    device: Any = after.device
    start, stop = device.start_scanning, device.stop_scanning

    async def start_scanning(*args: Any, **kwargs: Any) -> None:
        scans.append("start")
        await start(*args, **kwargs)

    async def stop_scanning(*args: Any, **kwargs: Any) -> None:
        scans.append("stop")
        await stop(*args, **kwargs)

    device.start_scanning, device.stop_scanning = start_scanning, stop_scanning
    try:
        await after.create_connection(parse_address(cuff.address), CONNECT_WITHIN)
    finally:
        await after.close()
    assert scans == []
