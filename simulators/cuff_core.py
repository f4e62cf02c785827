"""What the parts of a simulated cuff (GATT server, RACP, advertising, pairing) see of the
cuff they belong to, so they depend on this and not on `simulators.cuff` (which imports
them)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import datetime, timedelta
from typing import Any, Protocol

from bumble.device import Connection, Device
from bumble.gatt import Characteristic

from simulators.clock import SimClock
from simulators.cuff_config import CuffConfig, MeasurementRecord, _Link


class CuffCore(Protocol):
    """The state and the hooks of `SimulatedCuff` its parts use."""

    config: CuffConfig
    clock: SimClock
    device: Device | None
    in_range: bool
    clock_set: bool
    clock_offset: timedelta
    _links: dict[Connection, _Link]
    _records: dict[int, MeasurementRecord]
    _stopping: bool

    def cuff_clock(self, now: datetime) -> datetime: ...

    def battery(self, now: datetime) -> int: ...

    def _changed(self) -> None: ...

    def _log(self, message: str, *args: object, level: int = logging.INFO) -> None: ...

    def _spawn(self, coroutine: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]: ...

    async def _indicate(
        self, connection: Connection, characteristic: Characteristic[Any], value: bytes
    ) -> bool: ...

    async def _linger_then_hang_up(self, connection: Connection) -> None: ...

    async def _replay(self, connection: Connection, *, just_subscribed: bool = True) -> None: ...
