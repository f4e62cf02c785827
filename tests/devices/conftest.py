"""Fixtures for the Bluetooth tests: a virtual radio link and a central host on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from bumble.link import LocalLink

from devices.bumble_backend import BumbleHost

CENTRAL_ADDRESS = "C0:00:00:00:00:01"


@pytest.fixture
def link() -> LocalLink:
    """An in-process radio: every Bumble controller on it hears every other."""
    return LocalLink()


@pytest.fixture
async def central(link: LocalLink) -> AsyncIterator[BumbleHost]:
    """The daemon's side: a Bumble host on its own virtual controller."""
    host = await BumbleHost.on_link(link, address=CENTRAL_ADDRESS)
    try:
        yield host
    finally:
        await host.close()
