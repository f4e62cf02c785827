"""A virtual radio: one Bumble `LocalLink` that cuffs and centrals share.

Cuffs put their own controllers on it (`SimulatedCuff(link=radio.link)`); a test or
`vitalsd demo` attaches a central with `add_central_controller()`; a central in another
process attaches through `expose_hci("tcp-server:127.0.0.1:PORT")` and connects with
`tcp-client:127.0.0.1:PORT`. (`bumble.apps.controllers` hosts exactly two transports on
a link, so the simulator builds the link itself.)

That controller is the daemon's own `devices.bumble_backend.VirtualController`, so a
central over HCI/TCP sees the same link layer as one in-process (`BumbleHost.on_link`):
LE Create Connection Cancel answered with its LE Connection Complete, a CONNECT_IND the
cuff never took ending in Connection Failed To Be Established, and HCI Reset ending the
links, so the cuffs of a daemon that was killed and restarted advertise again.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import Transport

from devices.bumble_backend import VirtualController
from simulators.fleet import CuffFleet, start_scenario_with

logger = logging.getLogger(__name__)


class VirtualRadio:
    """Owns a `LocalLink` and the HCI transports it exposes. Make it on the event loop
    that will use it: Bumble objects belong to the loop they were made on."""

    def __init__(self, link: LocalLink | None = None) -> None:
        self.link = link or LocalLink()  # type: ignore[no-untyped-call]
        self._transports: list[Transport] = []
        self._controllers: list[Controller] = []

    def add_central_controller(
        self, name: str = "central", *, controller_class: type[Controller] = Controller
    ) -> Controller:
        """A virtual controller on the link for an in-process central host: pass it as
        both HCI source and sink (`Device.with_hci(name, address, c, c)`). A daemon may
        pass its own `Controller` subclass."""
        controller = controller_class(name, link=self.link)
        self._controllers.append(controller)
        return controller

    async def expose_hci(
        self,
        spec: str,
        *,
        name: str = "hci-bridge",
        controller_class: type[Controller] = VirtualController,
    ) -> Controller:
        """One more controller on the link whose host side is the Bumble transport `spec`
        (e.g. `tcp-server:127.0.0.1:9100`): a host in another process drives it as HCI.
        By default the daemon's `VirtualController` (see the module docstring)."""
        transport = await open_transport(spec)
        self._transports.append(transport)
        controller = controller_class(
            name, host_source=transport.source, host_sink=transport.sink, link=self.link
        )
        self._controllers.append(controller)
        logger.info("virtual radio: HCI exposed on %s", spec)
        return controller

    def remove_controller(self, controller: Controller) -> None:
        with contextlib.suppress(KeyError):
            self.link.remove_controller(controller)
        with contextlib.suppress(ValueError):
            self._controllers.remove(controller)

    async def start_scenario(self, name: str, **kwargs: Any) -> CuffFleet:
        """Cuffs of scenario `name` on this radio; see `simulators.scenarios.start_scenario`."""
        return await start_scenario_with(name, make_radio=VirtualRadio, link=self, **kwargs)

    async def close(self) -> None:
        """Detach every controller this radio made and close its transports."""
        for controller in list(self._controllers):
            self.remove_controller(controller)
        for transport in self._transports:
            with contextlib.suppress(Exception):
                await transport.close()
        self._transports.clear()

    async def __aenter__(self) -> VirtualRadio:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.close()
