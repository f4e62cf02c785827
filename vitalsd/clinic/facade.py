"""The clinic's one door: `Clinic` builds the engines, the unit of work and the services
(the only place they are composed), and lends each public method to the service that
owns it; the API, the daemon and the tests see one object."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, overload

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from vitalsd.alerts import DEFAULT_ESCALATION_DELAY, DEFAULT_MAX_SNOOZE
from vitalsd.domain import require_utc
from vitalsd.errors import InvalidInput
from vitalsd.evaluation import DEFAULT_STALE_AFTER, alarm_policy
from vitalsd.notify.push_subscriptions import PushSubscriptions
from vitalsd.protocol import DEFAULT_PRESET, Protocol, load_protocol
from vitalsd.settings import Settings
from vitalsd.store.engine import (
    create_engine,
    is_private_memory,
    is_sqlite,
    migrate,
    session_factory,
    session_url_for,
    writer_engine_for,
)
from vitalsd.store.events import EventBus
from vitalsd.store.models import DEFAULT_SITE
from vitalsd.store.streams import Streams

from .accounts import Accounts
from .admission import Admission
from .alerting import Alerting
from .chairs import Chairs
from .equipment import Equipment
from .history import History
from .ingest import Ingest
from .memory import WriterMemory
from .reads import Reads
from .registry import Registry
from .session_state import SessionLoader
from .sessions import Sessions
from .technical_alarms import TechnicalAlarms
from .timers import Timers
from .unit_of_work import UnitOfWork

Service = TypeVar("Service")
Params = ParamSpec("Params")
Result = TypeVar("Result")
PRESETS = ("ketamine-psychotherapy", "esketamine-rems", "iv-infusion")


def utc_now() -> datetime:
    return datetime.now(UTC)


class _Lent(Generic[Service, Params, Result]):
    """A public method of `Clinic` that is its service's method (same signature, same
    docstring), looked up on the instance's service of that name."""

    def __init__(
        self, service: str, method: Callable[Concatenate[Service, Params], Result]
    ) -> None:
        self._service = service
        self._name = method.__name__
        self.__doc__ = method.__doc__

    @overload
    def __get__(self, clinic: None, owner: type) -> _Lent[Service, Params, Result]: ...

    @overload
    def __get__(self, clinic: object, owner: type) -> Callable[Params, Result]: ...

    def __get__(self, clinic: object | None, owner: type) -> Any:
        if clinic is None:
            return self
        method: Callable[Params, Result] = getattr(getattr(clinic, self._service), self._name)
        return method


def _lend(
    service: str, method: Callable[Concatenate[Service, Params], Result]
) -> _Lent[Service, Params, Result]:
    return _Lent(service, method)


class Clinic:
    """The clinic: patients, chairs, cuffs, sessions, readings, checks and alerts.

    Every mutating call is one transaction holding its change, its audit records and its
    events (numbered gaplessly); it returns only after the commit, and publishes after
    it. Writes go through their own connection (`writer_engine`), reads through the
    readers' pool (`engine`). Domain errors are the classes of `vitalsd.errors`."""

    def __init__(
        self,
        engine: AsyncEngine,
        *,
        protocols: Mapping[str, Protocol] | None = None,
        default_protocol: str = DEFAULT_PRESET,
        clock: Callable[[], datetime] = utc_now,
        escalation_delay: timedelta = DEFAULT_ESCALATION_DELAY,
        max_snooze: timedelta = DEFAULT_MAX_SNOOZE,
        stale_after: timedelta = DEFAULT_STALE_AFTER,
        bus: EventBus | None = None,
        writer_engine: AsyncEngine | None = None,
        zone: tzinfo = UTC,
        cuff_silent_after: timedelta | None = None,
        site: str = DEFAULT_SITE,
    ) -> None:
        """`engine` serves the reads (API, snapshots, replays); the writes go through
        `writer_engine` (default: a one-connection engine on the same database), so no
        number of readers holding connections makes a write wait for one.
        `cuff_silent_after`: a chair-in-session's cuff not heard from this long raises
        `cuff_offline` (None here: off; `Clinic.open` takes it from the settings)."""
        self.engine = engine
        self.writer_engine = writer_engine or writer_engine_for(engine)
        known = dict(protocols or {})
        for preset in PRESETS:
            known.setdefault(preset, load_protocol(preset))
        if default_protocol not in known:
            raise InvalidInput(f"default protocol {default_protocol!r} is not loaded")
        self.protocols = known
        self.default_protocol = default_protocol
        self.clock = clock
        self.escalation_delay, self.max_snooze = escalation_delay, max_snooze
        self.stale_after = stale_after
        reads = session_factory(engine)
        self.zone = zone  # the clinic's time zone: ages and day boundaries are local
        loader = SessionLoader(zone)
        self._uow = UnitOfWork(
            self.writer_engine,
            bus or EventBus(reads, site=site),
            WriterMemory(loader, site),
            self.now,
        )
        self._registry = Registry(self._uow)
        self._accounts = Accounts(self._uow)
        self._sessions = Sessions(self._uow, loader, known, default_protocol, stale_after)
        self._ingest = Ingest(
            self._uow, stale_after, known[default_protocol].safety.cuff_clock_tolerance
        )
        self._equipment = Equipment(self._uow, self.now, zone)
        self._chairs = Chairs(self._uow)
        default_policy = alarm_policy(known[default_protocol].safety)
        self._alerting = Alerting(self._uow, reads, loader, max_snooze, default_policy)
        self._timers = Timers(
            self._uow,
            reads,
            loader,
            self.now,
            stale_after=stale_after,
            escalation_delay=escalation_delay,
            default_policy=default_policy,
            cuff_silent_after=cuff_silent_after,
        )
        self._technical = TechnicalAlarms(self._uow, reads)
        self._reads = Reads(engine, reads, loader, self.now, site)
        self._history = History(reads)
        self._admission = Admission(reads, self._registry, self._sessions, known)
        # Issue #15: the devices users subscribed to Web Push (a store of its own).
        self.push_devices = PushSubscriptions(engine, self.writer_engine)

    @classmethod
    async def open(
        cls, settings: Settings, *, clock: Callable[[], datetime] = utc_now, **kwargs: Any
    ) -> Clinic:
        """Engine from `settings` (a `vitalsd.settings.Settings`), schema migrated, the
        clinic's protocol loaded."""
        url = settings.effective_database_url
        pool: dict[str, Any] = (
            {}
            if is_private_memory(make_url(url))
            else {
                "pool_size": settings.database_reader_pool_size,
                "max_overflow": settings.database_reader_max_overflow,
            }
        )
        engine = create_engine(url, **pool)
        await migrate(engine)
        protocol = load_protocol(settings.protocol)
        clinic = cls(
            engine,
            protocols={protocol.name: protocol},
            default_protocol=protocol.name,
            clock=clock,
            escalation_delay=settings.escalation_delay,
            max_snooze=settings.max_snooze,
            stale_after=settings.stale_after,
            zone=settings.zone,
            cuff_silent_after=settings.cuff_silent_after,
            site=settings.site,
            **kwargs,
        )
        await clinic.start(settings.database_session_url)
        return clinic

    async def start(self, session_url: str | None = None) -> None:
        """Follow other daemons' events (PostgreSQL shared by several daemons), on
        `session_url` when the database URL is a transaction pooler's."""
        if not is_sqlite(self.engine):
            url = self.engine.url.render_as_string(hide_password=False)
            await self.streams.listen(session_url_for(url, session_url))

    async def close(self) -> None:
        await self.streams.close()
        if self.writer_engine is not self.engine:
            await self.writer_engine.dispose()
        await self.engine.dispose()

    def now(self) -> datetime:
        """The clinic's time (`clock`, which a test or the demo may set), checked UTC."""
        return require_utc(self.clock(), "clock")

    @property
    def bus(self) -> EventBus:
        """Where the committed events are published (and replayed from)."""
        return self._uow.bus

    @bus.setter
    def bus(self, bus: EventBus) -> None:
        self._uow.bus = bus

    @property
    def site(self) -> str:
        """The site this daemon writes for (issue #16)."""
        return self._uow.site

    @property
    def streams(self) -> Streams:
        """Every site's event stream this node follows (its own: `bus`)."""
        return self._uow.streams

    @property
    def database_dialect(self) -> str:
        """The database's SQLAlchemy dialect name (`sqlite`, `postgresql`)."""
        return self.engine.dialect.name

    def side_transaction(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A write transaction in turn with the clinic's own, for tables the clinic does
        not keep (the notifier's outbox, issue #15)."""
        return self._uow.side_transaction()

    def read_snapshot(self) -> AbstractAsyncContextManager[AsyncSession]:
        """One consistent read transaction on the readers' pool (what exports read)."""
        return self._reads.read_snapshot()

    # -- registry: patients, chairs and cuffs, users -------------------------------------
    create_patient = _lend("_registry", Registry.create_patient)
    create_chair = _lend("_registry", Registry.create_chair)
    assign_cuff = _lend("_registry", Registry.assign_cuff)
    create_user = _lend("_registry", Registry.create_user)
    set_user_disabled = _lend("_registry", Registry.set_user_disabled)
    rename_chair = _lend("_chairs", Chairs.rename_chair)
    retire_chair = _lend("_chairs", Chairs.retire_chair)
    # -- accounts: sign-in, tokens, passwords, roles, lockout (issue #17) ---------------
    record_login = _lend("_accounts", Accounts.record_login)
    record_logout = _lend("_accounts", Accounts.record_logout)
    set_password = _lend("_accounts", Accounts.set_password)
    set_user_role = _lend("_accounts", Accounts.set_user_role)
    unlock_user = _lend("_accounts", Accounts.unlock_user)
    # -- sessions ----------------------------------------------------------------------
    start_session = _lend("_sessions", Sessions.start_session)
    record_dose = _lend("_sessions", Sessions.record_dose)
    stop_infusion = _lend("_sessions", Sessions.stop_infusion)
    record_side_effect = _lend("_sessions", Sessions.record_side_effect)
    waive_check = _lend("_sessions", Sessions.waive_check)
    close_session = _lend("_sessions", Sessions.close_session)
    # -- ingest ------------------------------------------------------------------------
    record_manual_reading = _lend("_ingest", Ingest.record_manual_reading)
    ingest_cuff_measurement = _lend("_ingest", Ingest.ingest_cuff_measurement)
    record_measurement_failed = _lend("_ingest", Ingest.record_measurement_failed)
    publish_cuff_pressure = _lend("_ingest", Ingest.publish_cuff_pressure)
    # -- equipment ---------------------------------------------------------------------
    update_device = _lend("_equipment", Equipment.update_device)
    cuff_unreachable = _lend("_equipment", Equipment.cuff_unreachable)
    cuff_reachable = _lend("_equipment", Equipment.cuff_reachable)
    device_seen = _lend("_equipment", Equipment.device_seen)
    # -- alerting ----------------------------------------------------------------------
    acknowledge_alert = _lend("_alerting", Alerting.acknowledge_alert)
    snooze_alert = _lend("_alerting", Alerting.snooze_alert)
    resolve_alert = _lend("_alerting", Alerting.resolve_alert)
    # -- technical alarms: the alarm system watching itself (issue #15) -----------------
    channel_failing = _lend("_technical", TechnicalAlarms.channel_failing)
    channel_recovered = _lend("_technical", TechnicalAlarms.channel_recovered)
    nobody_watching = _lend("_technical", TechnicalAlarms.nobody_watching)
    somebody_watching = _lend("_technical", TechnicalAlarms.somebody_watching)
    open_session_count = _lend("_technical", TechnicalAlarms.open_session_count)
    # -- timers ------------------------------------------------------------------------
    apply_time = _lend("_timers", Timers.apply_time)
    next_deadline = _lend("_timers", Timers.next_deadline)
    wake = _lend("_timers", Timers.wake)
    run_timers = _lend("_timers", Timers.run_timers)
    # -- reads -------------------------------------------------------------------------
    get_patient = _lend("_reads", Reads.get_patient)
    list_patients = _lend("_reads", Reads.list_patients)
    list_chairs = _lend("_reads", Reads.list_chairs)
    get_user = _lend("_reads", Reads.get_user)
    get_account = _lend("_reads", Reads.get_account)
    list_users = _lend("_reads", Reads.list_users)
    get_session = _lend("_reads", Reads.get_session)
    list_sessions = _lend("_reads", Reads.list_sessions)
    list_doses = _lend("_reads", Reads.list_doses)
    list_side_effects = _lend("_reads", Reads.list_side_effects)
    list_readings = _lend("_reads", Reads.list_readings)
    get_reading = _lend("_reads", Reads.get_reading)
    list_devices = _lend("_reads", Reads.list_devices)
    get_alert = _lend("_reads", Reads.get_alert)
    list_alerts = _lend("_reads", Reads.list_alerts)
    list_audit = _lend("_reads", Reads.list_audit)
    alert_history = _lend("_reads", Reads.alert_history)
    list_checks = _lend("_reads", Reads.list_checks)
    snapshot = _lend("_reads", Reads.snapshot)
    # -- history: a patient's past sessions (issue #14) ---------------------------------
    patient_history = _lend("_history", History.patient_history)
    admit = _lend("_admission", Admission.admit)
