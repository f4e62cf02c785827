"""A `vitalsd demo`-like clinic for the browser tests, served from its own thread.

The same parts as `vitalsd demo` (vitalsd.demo): six simulated cuffs on a Bumble virtual
radio, reached through the Bumble Bleak backend by the daemon's cuff supervisor, a
patient in a session on every chair, the demo clinician dosing them, and the daemon's
uvicorn on a loopback port of its own choosing. The tests drive Chromium from the main
thread and reach into the clinic (a cuff's patient, a manual reading) with `call()`.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, Final, TypeVar

from devices.bumble_backend import BumbleHost
from simulators.clock import SimClock
from simulators.cuff import SimulatedCuff
from simulators.radio import VirtualRadio
from simulators.scenarios import CuffFleet
from tests.browser.proxy import LoopbackProxy
from vitalsd.auth import PasswordHasher
from vitalsd.clinic import Actor, Clinic
from vitalsd.daemon import Daemon
from vitalsd.demo import (
    CENTRAL_ADDRESS,
    DEMO_SCENARIO,
    demo_cuffs,
    ensure_users,
    give_doses,
    seat_patients,
)
from vitalsd.domain import Role
from vitalsd.notify.config import NotifySettings
from vitalsd.settings import Settings

T = TypeVar("T")

# Every demo user (nurse, clinician, admin) gets this password.
PASSWORD: Final = "browser-tests-password"
STARTUP_TIMEOUT_S: Final = 60.0
CALL_TIMEOUT_S: Final = 30.0


@dataclass
class Running:
    """What the server thread built, handed to the tests once it serves."""

    loop: asyncio.AbstractEventLoop
    url: str
    clinic: Clinic
    clock: SimClock
    cuffs: list[SimulatedCuff]
    sessions: list[int]
    daemon: Daemon


async def furnish(clinic: Clinic, cuffs: list[SimulatedCuff]) -> list[int]:
    """The demo's chairs, each with its cuff, and no patient: returns no session."""
    admin = Actor("demo-admin", Role.ADMIN)
    for number, cuff in enumerate(cuffs, start=1):
        chair = await clinic.create_chair(f"Chair {number}", by=admin)
        await clinic.assign_cuff(chair.id, cuff.address, by=admin)
    return []


class ClinicServer:
    """Start with `start()`, stop with `stop()`; `url` ends with "/". `speed` is the
    simulated seconds per real second for cuffs, patients and the check schedule."""

    def __init__(
        self,
        data_dir: Path,
        *,
        speed: float,
        timezone: str = "UTC",
        notify: NotifySettings | None = None,
        seated: bool = True,
    ) -> None:
        self.data_dir = data_dir
        self.speed = speed
        self.timezone = timezone  # the clinic's (setting `timezone`): what exports show
        self.notify = notify or NotifySettings()  # alert channels (issue #15)
        # False: the morning before the first patient (chairs with their cuffs, no session,
        # nobody dosed), for a test that walks the day from an empty ward.
        self.seated = seated
        self._ready: Future[Running] = Future()
        self._thread = threading.Thread(target=self._run, name="clinic server", daemon=True)
        self._running: Running | None = None

    # -- what the tests use ----------------------------------------------------------------

    @property
    def running(self) -> Running:
        if self._running is None:
            raise RuntimeError("the clinic server is not running: call start() first")
        return self._running

    @property
    def url(self) -> str:
        return self.running.url

    @property
    def clinic(self) -> Clinic:
        return self.running.clinic

    @property
    def cuffs(self) -> list[SimulatedCuff]:
        return self.running.cuffs

    @property
    def sessions(self) -> list[int]:
        """Session ids, one per chair, in chair order (chair 1 first)."""
        return self.running.sessions

    def call(self, coroutine: Coroutine[Any, Any, T], timeout: float = CALL_TIMEOUT_S) -> T:
        """Run `coroutine` on the server's event loop and wait for its result."""
        return self.spawn(coroutine).result(timeout)

    def spawn(self, coroutine: Coroutine[Any, Any, T]) -> Future[T]:
        """Run `coroutine` on the server's event loop; its result comes later."""
        return asyncio.run_coroutine_threadsafe(coroutine, self.running.loop)

    def proxy(self) -> LoopbackProxy:
        """A relay in front of the server that a test can cut and restore."""
        port = int(self.url.rstrip("/").rsplit(":", 1)[1])
        proxy = LoopbackProxy("127.0.0.1", port)
        self.call(proxy.start())
        return proxy

    def start(self) -> None:
        self._thread.start()
        self._running = self._ready.result(STARTUP_TIMEOUT_S)

    def stop(self) -> None:
        if self._running is not None:
            self._running.loop.call_soon_threadsafe(self._running.daemon.stop)
        self._thread.join(STARTUP_TIMEOUT_S)

    # -- the server thread -------------------------------------------------------------------

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as error:
            if not self._ready.done():
                self._ready.set_exception(error)
            raise

    async def _serve(self) -> None:
        """`vitalsd.demo.run_demo` without the banner, with its parts kept for the tests."""
        settings = Settings(
            data_dir=self.data_dir,
            host="127.0.0.1",
            port=0,
            database_url=None,
            # Tablets come and go between tests: no nobody_watching alarm for that (a
            # day of simulated time; tests/api/test_technical_alarms.py raises one).
            nobody_watching_after_seconds=86_400,
            timezone=self.timezone,
            notify=self.notify,
        )
        clock = SimClock(self.speed)
        clinic = await Clinic.open(settings, clock=clock.now)
        passwords = PasswordHasher()
        radio = VirtualRadio()
        cuffs = [SimulatedCuff(config, clock=clock, link=radio.link) for config in demo_cuffs()]
        fleet = CuffFleet(DEMO_SCENARIO, [], clock, radio, owns_radio=True)
        central: BumbleHost | None = None
        dosing: asyncio.Task[None] | None = None
        try:
            await ensure_users(clinic, passwords, PASSWORD)
            for cuff in cuffs:
                await cuff.start()
                fleet.cuffs.append(cuff)
            sessions = (
                await seat_patients(clinic, cuffs) if self.seated else await furnish(clinic, cuffs)
            )
            central = await BumbleHost.on_link(radio.link, address=CENTRAL_ADDRESS)
            daemon = Daemon(
                settings, clinic, ble=central, clock=clock.now, zone=UTC, passwords=passwords
            )
            if self.seated:
                dosing = asyncio.create_task(give_doses(clinic, clock, cuffs, sessions))
            loop = asyncio.get_running_loop()

            def ready(url: str) -> None:
                self._ready.set_result(Running(loop, url, clinic, clock, cuffs, sessions, daemon))

            await daemon.run(on_ready=ready)
        finally:
            if dosing is not None:
                dosing.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await dosing
            if central is not None:
                with contextlib.suppress(Exception):
                    await central.close()
            await fleet.stop()
            await clinic.close()
