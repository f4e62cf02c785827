"""When a simulated cuff advertises: always, for a brief window, or in random windows;
one advertising change at a time."""

from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import datetime, timedelta

from bumble.core import AdvertisingData

from devices import gatt
from simulators.cuff_config import HANGS_UP
from simulators.cuff_core import CuffCore


class CuffAdvertising:
    """The advertising state of one cuff (`SimulatedCuff` composes one)."""

    def __init__(self, cuff: CuffCore) -> None:
        self._cuff = cuff
        self._rng = random.Random(f"windows:{cuff.config.seed}")
        self.active = False
        self._lock = asyncio.Lock()
        self.until: datetime | None = None
        self._window_task: asyncio.Task[None] | None = None

    def _data(self) -> bytes:
        return bytes(
            AdvertisingData(
                [
                    (
                        AdvertisingData.FLAGS,
                        bytes(
                            [
                                AdvertisingData.LE_GENERAL_DISCOVERABLE_MODE_FLAG
                                | AdvertisingData.BR_EDR_NOT_SUPPORTED_FLAG
                            ]
                        ),
                    ),
                    (
                        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                        gatt.BLOOD_PRESSURE_SERVICE.to_bytes(2, "little"),
                    ),
                    (
                        AdvertisingData.APPEARANCE,
                        gatt.APPEARANCE_BLOOD_PRESSURE_ARM.to_bytes(2, "little"),
                    ),
                    (AdvertisingData.COMPLETE_LOCAL_NAME, self._cuff.config.local_name.encode()),
                ]
            )
        )

    async def advertise(self) -> None:
        """Advertise if in range and free: for good ("always") or for one window ("brief").

        Changes are made one at a time: a measurement ending as a link drops or as the
        cuff comes back in range asks for advertising twice at once, and two overlapping
        `Device.start_advertising` calls both remove the same advertising set (the second
        with KeyError(0), killing whichever task made it, e.g. the schedule), while a stop
        overlapping a start would leave a cuff out of range advertising."""
        async with self._lock:
            device = self._cuff.device
            if (
                device is None
                or self._cuff._stopping
                or not self._cuff.in_range
                or self._cuff._links
            ):
                return
            if self._cuff.config.connectable in HANGS_UP:
                self.until = self._cuff.clock.now() + self._window()
                if self._window_task is None or self._window_task.done():
                    self._window_task = self._cuff._spawn(
                        self._close_window(), "advertising window"
                    )
            if not device.is_advertising:
                await device.start_advertising(
                    advertising_data=self._data(), scan_response_data=b""
                )
            # Bumble's view, not ours: a central that connected meanwhile ended the
            # advertisement (and `_on_connection` already said so).
            advertising = device.is_advertising and not self._cuff._links
            if advertising != self.active:
                self.active = advertising
                self._cuff._changed()
                if advertising:
                    self._cuff._log("advertising")

    def _window(self) -> timedelta:
        """How long this advertising window lasts, in simulated time."""
        if self._cuff.config.connectable == "windows":
            real = self._rng.uniform(*self._cuff.config.window_seconds)
            return timedelta(seconds=real * self._cuff.clock.speed)
        return self._cuff.config.advertising_window

    async def _close_window(self) -> None:
        while self.until is not None:
            remaining = self.until - self._cuff.clock.now()
            if remaining <= timedelta(0):
                break
            await self._cuff.clock.sleep(remaining)
        self.until = None
        if self.active:
            await self.stop()

    async def stop(self) -> None:
        """Stop advertising, after any advertising change under way (see `advertise`)."""
        async with self._lock:
            device = self._cuff.device
            self.until = None
            if self.active:
                self.active = False
                self._cuff._changed()
            if device is None or not device.is_advertising:
                return
            with contextlib.suppress(Exception):
                await device.stop_advertising()
            self._cuff._log("advertising stopped")
