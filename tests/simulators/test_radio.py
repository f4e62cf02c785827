"""The virtual radio's HCI bridge: a central in another process (here, over TCP in this
one) gets the daemon's `VirtualController`, so it sees the link layer it sees in-process."""

from __future__ import annotations

import asyncio

from bumble.controller import Controller
from bumble.transport import open_transport

from devices.bumble_backend import VirtualController
from simulators.radio import VirtualRadio
from tests.simulators.bumble_central import TIMEOUT, BumbleCentral
from tests.simulators.conftest import StartCuff
from tests.simulators.test_cli import free_port
from tests.simulators.test_cuff_behaviours import until


async def client_gone(bridge: Controller) -> None:
    """Wait until the bridge's TCP server has seen its client go. Bumble's tcp-server
    keeps one client at a time and forgets it when that connection is lost, even if
    another connected meanwhile, whose replies would then be dropped."""
    async with asyncio.timeout(TIMEOUT):
        # Bumble's sink has no event to wait on: look after each turn of the loop.
        while getattr(bridge.host, "transport", None) is not None:  # noqa: ASYNC110
            await asyncio.sleep(0)


async def test_the_hci_bridge_is_the_daemons_virtual_controller(radio: VirtualRadio) -> None:
    controller = await radio.expose_hci(f"tcp-server:127.0.0.1:{free_port()}")

    assert isinstance(controller, VirtualController)


async def test_a_host_reattaching_over_hci_frees_the_cuffs_its_predecessor_held(
    radio: VirtualRadio, start_cuff: StartCuff
) -> None:
    """A daemon killed while connected never hangs up; the next one resets the
    controller (Core Vol 4 Part E 7.3.2), which ends the old links, and the cuff is free."""
    cuff = await start_cuff()
    spec = f"127.0.0.1:{free_port()}"
    bridge = await radio.expose_hci(f"tcp-server:{spec}")
    killed_transport = await open_transport(f"tcp-client:{spec}")
    killed = BumbleCentral(transport=killed_transport)
    await killed.start()
    await killed.connect(cuff.address)
    await killed_transport.close()  # the process dies: its socket closes, nothing more
    await client_gone(bridge)

    restarted_transport = await open_transport(f"tcp-client:{spec}")
    restarted = BumbleCentral(transport=restarted_transport)
    try:
        await restarted.start()
        await until(cuff, lambda c: not c.connected and c.advertising)
        [sighting] = await restarted.discover()
        assert sighting.address == cuff.address
    finally:
        await restarted.close()
        await restarted_transport.close()
