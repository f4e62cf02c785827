"""`vitalsd serve`: the API (uvicorn), the cuff supervisor and the clinic's timers in one
asyncio process.

Data flows one way: the supervisor's events become clinic calls (`CuffEventSink`), the
clinic stores and publishes, the API streams. On SIGTERM or SIGINT the daemon stops the
supervisor first (every Bluetooth link closed, no new reading half-taken), then the
timers, then the web server (requests in flight finish; streams get 1012), and closes
the database last: every reading is either committed, or still held by its cuff, which
delivers it again, or held in the measurement inbox (`devices.inbox`, in the data
directory), which the next start replays before it connects to any cuff.

On Bumble the daemon keeps its bonds (`bluetooth-keys.json`) and its own random static
address (`bluetooth-address`) in the data directory, so a restart re-encrypts with
every cuff instead of pairing again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import socket
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Final

import uvicorn

from api.app import create_app
from devices.bumble_backend import BumbleHost
from devices.events import (
    BatteryChanged,
    CuffBonded,
    CuffConnected,
    CuffDisconnected,
    CuffEvent,
    CuffIdentity,
    CuffPressureChanged,
    CuffReachable,
    CuffSeen,
    CuffUnreachable,
    MeasurementFailed,
    MeasurementReceived,
)
from devices.inbox import MeasurementInbox, replay
from devices.supervisor import CuffSupervisor
from devices.transport import (
    BLUEZ,
    BUMBLE_PREFIX,
    BleStack,
    BleTransport,
    keys_file,
    stable_host_address,
)
from vitalsd.auth import PasswordHasher, token_issuer_for
from vitalsd.clinic import Clinic, utc_now
from vitalsd.cuff_readings import cuff_reading
from vitalsd.dashboard_watch import DashboardWatch
from vitalsd.errors import DomainError
from vitalsd.logformat import LogFormat, TextLogFormatter, wants_json
from vitalsd.notify.notifier import Notifier
from vitalsd.settings import Settings
from vitalsd.store.engine import is_sqlite, session_url_for
from vitalsd.store.leader import NOTIFY_LOCK_KEY, TimerLeadership, timer_lock_key
from vitalsd.store.presence import GroupPresence

log = logging.getLogger(__name__)

# After the supervisor fails (no adapter, BlueZ down), try again this often (seconds):
# the API keeps serving and `/healthz` says what is wrong meanwhile.
BLE_RETRY_S: Final = 30.0
# Server-side WebSocket pings (issue #6: "Server pings"): a tablet that vanished is
# noticed within interval + timeout seconds.
WS_PING_INTERVAL_S: Final = 20.0
WS_PING_TIMEOUT_S: Final = 20.0
# How uvicorn serves `/ws`. No permessage-deflate: a reading event is a few hundred bytes
# on a clinic LAN, and compressing it per client cost ~42 us a frame against ~5 us
# without (issue #9 fan-out profile), the largest per-client cost at 1,000 clients.
WS_SERVER_OPTIONS: Final[Mapping[str, Any]] = {
    "ws_ping_interval": WS_PING_INTERVAL_S,
    "ws_ping_timeout": WS_PING_TIMEOUT_S,
    "ws_per_message_deflate": False,
}
# Shutdown: how long to wait for a task after cancelling it.
STOP_PATIENCE_S: Final = 10.0
SHARED_SECRET_HINT: Final = (
    "a clinic group's daemons share one PostgreSQL database and must accept each other's "
    "tokens: set the same token secret on every node (VITALSD_TOKEN_SECRET, or "
    "token_secret in the settings file; generate one with: "
    "python -c 'import secrets; print(secrets.token_hex(32))')"
)
FIRST_ADMIN_HINT: Final = (
    "no users yet: create the first admin with `vitalsd user add NAME --role admin` "
    "(it asks for the password); there is no default password"
)

Ble = BleTransport | str | BumbleHost | BleStack


def require_shared_secret(settings: Settings, database_url: str) -> None:
    """On PostgreSQL (a clinic group, any node serving any tablet) the token secret must
    be set explicitly: one generated per data directory would make every other node
    refuse this node's tokens (issue #16). SQLite (one daemon) keeps its stored one."""
    if settings.token_secret is None and database_url.startswith("postgresql"):
        raise ValueError(f"no token secret: {SHARED_SECRET_HINT}")


def ble_spec(setting: str) -> str:
    """The supervisor's `--ble` form of the `ble` setting: "bluez", or a Bumble transport
    with or without its "bumble:" prefix ("usb:0" and "bumble:usb:0" are the same)."""
    text = setting.strip()
    if text == BLUEZ or text.startswith(BUMBLE_PREFIX):
        return text
    return f"{BUMBLE_PREFIX}{text}"


# -- Bluetooth events into the clinic ---------------------------------------------------------


@dataclass
class BleStatus:
    """What `/healthz` says about the radio."""

    transport: str
    state: str = "starting"
    error: str | None = None
    followed: Callable[[], int] = lambda: 0
    connected: set[str] = field(default_factory=set)
    last_event_at: datetime | None = None

    def report(self) -> Mapping[str, object]:
        return {
            "transport": self.transport,
            "state": self.state,
            "error": self.error,
            "cuffs_followed": self.followed(),
            "cuffs_connected": len(self.connected),
            "last_event_at": None if self.last_event_at is None else self.last_event_at.isoformat(),
        }


class CuffEventSink:
    """The supervisor's `on_event`: each Bluetooth event becomes one clinic call.

    A measurement the clinic refuses for good (a domain error) is logged with its bytes
    and counted as taken; any other failure (the database is down) propagates, so the
    supervisor leaves the reading with the cuff (or in the inbox), to be delivered again.
    A cuff's identity (name, model, serial, firmware) is written only when it changed.
    """

    def __init__(self, clinic: Clinic, status: BleStatus) -> None:
        self.clinic = clinic
        self.status = status
        self._identities: dict[str, CuffIdentity] = {}

    async def __call__(self, event: CuffEvent) -> None:
        self.status.last_event_at = self.clinic.now()
        try:
            await self._apply(event)
        except DomainError as error:
            raw = getattr(event, "raw", b"")
            log.error(
                "the clinic refused %s: %s (raw %s)", type(event).__name__, error.reason, raw.hex()
            )

    async def _apply(self, event: CuffEvent) -> None:
        clinic = self.clinic
        match event:
            case MeasurementReceived():
                await self._note_identity(event.cuff, event.received_at)
                await clinic.ingest_cuff_measurement(
                    event.cuff.address,
                    cuff_reading(
                        event.measurement,
                        live=event.live,
                        received_at=event.received_at,
                        clock_checked=event.clock_checked,
                    ),
                    event.measured_at,
                    event.raw,
                    cuff_key=event.cuff_key,
                )
            case MeasurementFailed():
                await clinic.record_measurement_failed(
                    event.cuff.address,
                    event.received_at,
                    event.reason,
                    raw=event.raw,
                    cuff_key=event.cuff_key,
                )
            case CuffPressureChanged():
                clinic.publish_cuff_pressure(event.address, event.pressure_mmhg, event.at)
            case CuffSeen():
                await clinic.device_seen(
                    event.address, at=event.at, name=event.name, rssi=event.rssi
                )
            case CuffConnected():
                self.status.connected.add(event.address.upper())
                await clinic.update_device(event.address, at=event.at, connection_state="connected")
            case CuffDisconnected():
                self.status.connected.discard(event.address.upper())
                await clinic.update_device(
                    event.address, at=event.at, connection_state="disconnected"
                )
            case BatteryChanged():
                await clinic.update_device(event.address, at=event.at, battery_percent=event.level)
            case CuffBonded():
                log.info("cuff %s: link encrypted with a bond", event.address)
            case CuffUnreachable():
                raised = await clinic.cuff_unreachable(
                    event.address,
                    at=event.at,
                    since=event.since,
                    attempts=event.attempts,
                    reason=event.reason,
                    advice=event.advice,
                )
                log.warning(
                    "cuff %s advertises but cannot be connected (%s): %s%s",
                    event.address,
                    event.reason,
                    event.advice,
                    "" if raised else " (no chair in session has it: no alert)",
                )
            case CuffReachable():
                await clinic.cuff_reachable(event.address, at=event.at)

    async def _note_identity(self, identity: CuffIdentity, at: datetime) -> None:
        """Write the cuff's identity if it is not what we last wrote (a reading arrives
        with it every time; the device row need not be touched for each)."""
        key = identity.address.upper()
        if self._identities.get(key) == identity:
            return
        await self.clinic.update_device(
            identity.address,
            at=at,
            name=identity.name,
            manufacturer=identity.manufacturer,
            model=identity.model,
            serial=identity.serial,
            firmware=identity.firmware,
        )
        self._identities[key] = identity


# -- logging ------------------------------------------------------------------------------------


class JsonLogFormatter(logging.Formatter):
    """One JSON object per line (for journald, Docker, a log shipper)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "at": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class _DenialNotAnError(logging.Filter):
    """uvicorn 0.54's `websockets-sansio` protocol logs an ERROR after every WebSocket
    refused with an HTTP denial response (our 401/403/422 on `/ws`), because it only
    counts `accept` as completing the handshake. A refused stream is routine: log it as
    INFO instead."""

    MESSAGE: Final = "ASGI callable returned without completing handshake."

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno == logging.ERROR and record.getMessage() == self.MESSAGE:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = "WebSocket refused with an HTTP response"
            record.args = ()
        return True


def configure_logging(
    level: int = logging.INFO, *, stream: Any = None, log_format: LogFormat = "auto"
) -> None:
    """Structured logs: JSON when stderr is not a terminal, short lines when it is
    (`log_format` forces either: `vitalsd.logformat`)."""
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    if wants_json(log_format, stream):
        handler.setFormatter(JsonLogFormatter())
    else:
        handler.setFormatter(TextLogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's loggers go through ours (an earlier uvicorn.Config may have given them
    # their own handlers and levels).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(logging.NOTSET)
    logging.getLogger("uvicorn.error").addFilter(_DenialNotAnError())
    # Bumble logs every HCI packet at DEBUG and much at INFO.
    logging.getLogger("bumble").setLevel(logging.WARNING)


# -- the daemon ---------------------------------------------------------------------------------


async def stop_task(task: asyncio.Task[Any], what: str) -> None:
    """Cancel `task` and wait for it; if it has not stopped after `STOP_PATIENCE_S`, say
    so and leave it rather than hold up the shutdown. (The cuff links end on the first
    cancellation, pairing included: tests/devices/test_link.py.)"""
    task.cancel()
    await asyncio.wait({task}, timeout=STOP_PATIENCE_S)
    if not task.done():
        log.warning("%s did not stop within %g s; leaving it", what, STOP_PATIENCE_S)
        return
    if not task.cancelled() and task.exception() is not None:
        log.error("%s failed", what, exc_info=task.exception())


def _counter(supervisor: CuffSupervisor) -> Callable[[], int]:
    return lambda: len(supervisor.cuffs)


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon decides the shutdown order
    (uvicorn's would re-raise SIGTERM and kill the process before the links are closed)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that port 0 works and the URL is known."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((host, port))
    listener.set_inheritable(True)
    return listener


@dataclass
class Daemon:
    """One clinic's daemon. `ble` defaults to the settings' transport; the demo passes an
    in-process Bumble host on its virtual radio."""

    settings: Settings
    clinic: Clinic
    ble: Ble | None = None
    clock: Callable[[], datetime] = utc_now
    zone: tzinfo | None = None
    passwords: PasswordHasher = field(default_factory=PasswordHasher)

    def __post_init__(self) -> None:
        ble = self.ble if self.ble is not None else ble_spec(self.settings.ble)
        self.status = BleStatus(transport=str(ble) if isinstance(ble, str) else type(ble).__name__)
        self._ble: Ble = ble
        self._stop = asyncio.Event()
        self.url: str | None = None
        self.timer_leadership: TimerLeadership | None = None
        # Issue #15: alerts beyond the dashboard (one sending daemon per group).
        self.notifier = Notifier(
            self.clinic,
            self.settings.notify,
            escalation_delay=self.settings.escalation_delay,
            site=self.settings.site,
            data_dir=self.settings.data_dir,
            token_secret=lambda: token_issuer_for(self.settings).secret,
        )
        self.notify_leadership: TimerLeadership | None = None

    @property
    def _on_bumble_transport(self) -> bool:
        """The supervisor opens a Bumble host itself (and so needs our address and keys)."""
        ble = self._ble
        if isinstance(ble, str):
            ble = BleTransport.parse(ble)
        return isinstance(ble, BleTransport) and ble.kind == "bumble"

    def stop(self) -> None:
        """Begin the graceful shutdown (what SIGTERM does)."""
        self._stop.set()

    async def _run_timers(self) -> None:
        """The clinic's timers: here on SQLite (one daemon); on PostgreSQL only while
        this node is the group's timer leader, woken by the other daemons' events too
        (a session started elsewhere may have the next deadline)."""
        clinic = self.clinic
        if is_sqlite(clinic.engine):
            await clinic.run_timers()
            return
        clinic.bus.follow(lambda _events: clinic.wake())
        url = clinic.engine.url.render_as_string(hide_password=False)
        self.timer_leadership = TimerLeadership(
            session_url_for(url, self.settings.database_session_url),
            clinic.run_timers,
            key=timer_lock_key(clinic.site),
        )
        await self.timer_leadership.run()

    async def _watch_dashboards(self, app: Any) -> None:
        """`nobody_watching` (issue #15): sessions open and no dashboard connected to this
        node's `/ws`, nor, on PostgreSQL, to any node of the group (`GroupPresence`)."""
        hub = app.state.context.hub
        presence: GroupPresence | None = None
        if not is_sqlite(self.clinic.engine):
            url = self.clinic.engine.url.render_as_string(hide_password=False)
            presence = GroupPresence(session_url_for(url, self.settings.database_session_url))

        async def watching() -> int:
            local = int(hub.watching)
            return local if presence is None else await presence.watching(local)

        try:
            await DashboardWatch(
                self.clinic,
                watching,
                hub.watching_changed,
                after=self.settings.nobody_watching_after,
                now=self.clinic.now,
            ).run()
        finally:
            if presence is not None:
                await presence.close()

    async def _run_notifier(self) -> None:
        """The notifier: here on SQLite; on PostgreSQL only on the daemon holding the
        group's notify lock (the others stand by, and take over when it dies)."""
        clinic = self.clinic
        if is_sqlite(clinic.engine):
            await self.notifier.run()
            return
        url = clinic.engine.url.render_as_string(hide_password=False)
        self.notify_leadership = TimerLeadership(
            session_url_for(url, self.settings.database_session_url),
            self.notifier.run,
            key=NOTIFY_LOCK_KEY,
            what="notifier",
        )
        await self.notify_leadership.run()

    async def _known_cuffs(self) -> list[str]:
        chairs = await self.clinic.list_chairs()
        devices = await self.clinic.list_devices()
        return sorted(
            {c.cuff_address for c in chairs if c.cuff_address} | {d.address for d in devices}
        )

    async def _supervise(self, inbox: MeasurementInbox) -> None:
        """Replay what the inbox holds, then run the supervisor; if the radio fails, say
        so and try again, never taking the API down with it."""
        sink = CuffEventSink(self.clinic, self.status)
        data_dir = self.settings.data_dir
        while True:
            await replay(inbox, sink)
            supervisor = CuffSupervisor(
                self._ble,
                on_event=sink,
                known_addresses=await self._known_cuffs(),
                clock=self.clock,
                zone=self.zone,
                keys_file=keys_file(data_dir) if self._on_bumble_transport else None,
                address=stable_host_address(data_dir) if self._on_bumble_transport else None,
                inbox=inbox,
            )
            self.status.followed = _counter(supervisor)
            self.status.state, self.status.error = "running", None
            try:
                await supervisor.run()
                self.status.state = "stopped"
                return
            except asyncio.CancelledError:
                self.status.state = "stopped"
                raise
            except Exception as error:
                self.status.state, self.status.error = "failed", f"{type(error).__name__}: {error}"
                self.status.connected.clear()
                log.error("Bluetooth failed (%s); retrying in %g s", self.status.error, BLE_RETRY_S)
            await asyncio.sleep(BLE_RETRY_S)

    def _server(self, app: Any) -> _Server:
        settings = self.settings
        tls: dict[str, Any] = {}
        if (settings.tls_cert is None) != (settings.tls_key is None):
            raise ValueError("TLS needs both tls_cert and tls_key (or neither)")
        if settings.tls_cert is not None and settings.tls_key is not None:
            tls = {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}
        config = uvicorn.Config(
            app,
            log_config=None,  # ours (configure_logging) applies
            lifespan="off",
            # Issue #17: X-Forwarded-Proto/-For believed only from the configured proxies,
            # so the cookie's Secure flag and the login throttle see the real client.
            proxy_headers=settings.forwarded_allow_ips is not None,
            forwarded_allow_ips=settings.forwarded_allow_ips,
            **WS_SERVER_OPTIONS,
            server_header=False,
            **tls,
        )
        return _Server(config)

    async def run(self, on_ready: Callable[[str], None] | None = None) -> None:
        """Serve until `stop()` (or SIGTERM / SIGINT), then shut down in order."""
        settings = self.settings
        require_shared_secret(settings, self.clinic.engine.url.drivername)
        if not await self.clinic.list_users():
            log.warning(FIRST_ADMIN_HINT)
            print(f"vitalsd: {FIRST_ADMIN_HINT}", file=sys.stderr, flush=True)
        app = create_app(
            self.clinic,
            settings,
            tokens=token_issuer_for(settings),
            passwords=self.passwords,
            ble_status=self.status.report,
        )
        server = self._server(app)
        listener = bind(settings.host, settings.port)
        scheme = "https" if settings.tls_cert is not None else "http"
        host, port = listener.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        self.url = f"{scheme}://{shown}:{port}/"
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self.stop)
        inbox = MeasurementInbox.in_directory(settings.data_dir)
        web = asyncio.create_task(server.serve(sockets=[listener]), name="web")
        radio = asyncio.create_task(self._supervise(inbox), name="cuff supervisor")
        timers = asyncio.create_task(self._run_timers(), name="clinic timers")
        watch = asyncio.create_task(self._watch_dashboards(app), name="dashboard watch")
        notify = asyncio.create_task(self._run_notifier(), name="notifier")
        try:
            while not server.started and not web.done():  # noqa: ASYNC110 (no event to wait on)
                await asyncio.sleep(0.02)
            if web.done():
                web.result()  # the server could not start: say why
            log.info("serving at %s (Bluetooth: %s)", self.url, self.status.transport)
            if on_ready is not None:
                on_ready(self.url)
            stopper = asyncio.create_task(self._stop.wait())
            await asyncio.wait({stopper, web}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
        finally:
            log.info("shutting down: Bluetooth links first, then timers, then the web server")
            await stop_task(radio, "the cuff supervisor")
            if self.timer_leadership is not None:
                self.timer_leadership.abort()
            await stop_task(timers, "the clinic timers")
            await stop_task(watch, "the dashboard watch")
            if self.notify_leadership is not None:
                self.notify_leadership.abort()
            await stop_task(notify, "the notifier")
            await self.notifier.close()
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await web
            listener.close()
            inbox.close()
            for signum in (signal.SIGTERM, signal.SIGINT):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signum)
            log.info("stopped")


async def serve(settings: Settings) -> None:
    """`vitalsd serve`: open the database (migrating it), run until SIGTERM."""
    require_shared_secret(settings, settings.effective_database_url)
    session_url_for(settings.effective_database_url, settings.database_session_url)
    clinic = await Clinic.open(settings)
    try:
        await Daemon(settings, clinic).run()
    finally:
        await clinic.close()
