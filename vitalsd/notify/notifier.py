"""The notifier: a durable subscriber of the event log (DESIGN.md "Architecture").

It reads the stored `alert` and `alert_updated` events after its own cursor (kept in
the database, per site), turns each into a change of the alert's escalation chain and,
in the same transaction, queues the notifications it calls for in the outbox
(`notify_receipts`, one row per alert, transition, tier and recipient, keyed so that
nothing is queued twice). Queued rows are sent with back-off until they go out or fail
for good; a restart resumes from the cursor and the outbox (a delivery cut off by a
crash goes again, with the same `webhook-id`, so the receiver drops the duplicate).

The chain's decisions are `vitalsd.notify.routing`'s (pure); this module does the I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from vitalsd.notify.apprise_channel import AppriseChannel
from vitalsd.notify.channel import Channel, DeliveryResult, Notification
from vitalsd.notify.config import ChannelSettings, NotifySettings
from vitalsd.notify.receipts import CANCELLED, CONFIRMED, earlier_than
from vitalsd.notify.routing import (
    Action,
    ChainState,
    Tier,
    action_of,
    chain_of,
    due_tiers,
    next_deadline,
    notification_key,
    transition_name,
)
from vitalsd.notify.webhook import WebhookChannel
from vitalsd.notify.webpush import webpush_channel
from vitalsd.store.engine import is_sqlite
from vitalsd.store.events import Event, EventType, SubscriberOverflow, events_after
from vitalsd.store.models import (
    DEFAULT_SITE,
    Chair,
    NotifyChain,
    NotifyCursor,
    NotifyReceipt,
    Patient,
    Reading,
)
from vitalsd.store.models import Session as SessionRow

if TYPE_CHECKING:
    from vitalsd.clinic import Clinic

log = logging.getLogger(__name__)

ALERT_EVENT_TYPES: Final = (EventType.ALERT, EventType.ALERT_UPDATED)
# Back-off between attempts of one notification (seconds, the last one repeats).
RETRY_DELAYS_S: Final = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
# Attempts before a notification is given up as failed (about 20 minutes of retrying;
# the channel is reported failing long before: `channel_failing_after`).
MAX_ATTEMPTS: Final = 25
# How often the notifier looks at the clock when no event wakes it (tier deadlines,
# retries): the chains' times are the clinic's, which the demo runs faster than real.
POLL_S: Final = 0.25
# With nothing due and no event, a step anyway this often (seconds): a safety net under
# the wake-ups (an event published by no subscriber's path, a receipt from elsewhere).
IDLE_STEP_S: Final = 5.0
EVENT_BATCH: Final = 200
SEND_BATCH: Final = 50
SEND_CONCURRENCY: Final = 16
# A channel's `send` is given up (and retried) after this long.
SEND_TIMEOUT_S: Final = 30.0
# At a stop, sends in flight get this long to finish and be recorded.
STOP_PATIENCE_S: Final = 5.0


@dataclass(frozen=True)
class ChannelContext:
    """What a channel may need besides its settings: the clinic (web push looks up the
    devices of users in a tier's roles), the data directory (web push keeps its VAPID
    key there) and the daemon's token secret (web push signs its notification actions).
    `recipients()` must not write through the clinic: it runs inside the notifier's turn
    on the writer."""

    clinic: Clinic
    data_dir: Path | None = None
    token_secret: Callable[[], bytes] | None = None


ChannelFactory = Callable[[ChannelSettings, ChannelContext], Channel]


def build_channel(config: ChannelSettings, context: ChannelContext) -> Channel:
    """A channel from its `[[notify.channels]]` entry."""
    factory = CHANNEL_FACTORIES.get(config.kind)
    if factory is None:
        raise ValueError(
            f"notify channel {config.name!r}: {config.kind} channels are not available in "
            "this build"
        )
    return factory(config, context)


def _webhook(config: ChannelSettings, _context: ChannelContext) -> Channel:
    assert config.url is not None and config.secret is not None  # validated
    return WebhookChannel(config.name, config.url, config.secret.get_secret_value())


def _apprise(config: ChannelSettings, _context: ChannelContext) -> Channel:
    assert config.url is not None  # validated
    return AppriseChannel(config.name, config.url)


def _webpush(config: ChannelSettings, context: ChannelContext) -> Channel:
    """Web Push to the subscribed devices of the channel's roles."""
    if context.data_dir is None or context.token_secret is None:
        raise ValueError(
            f"notify channel {config.name!r}: web push needs the data directory and the "
            "token secret (run it in the daemon)"
        )
    clinic = context.clinic
    channel: Channel = webpush_channel(
        config,
        reads=clinic.engine,
        writes=clinic.writer_engine,
        data_dir=context.data_dir,
        token_secret=context.token_secret(),
        clock=clinic.now,
    )
    return channel


CHANNEL_FACTORIES: dict[str, ChannelFactory] = {
    "webhook": _webhook,
    "apprise": _apprise,
    "webpush": _webpush,
}


def initials(name: str | None) -> str | None:
    """ "Casey Diaz" -> "C.D." (a phone's lock screen shows no full name)."""
    if not name:
        return None
    parts = [p for p in name.replace("-", " ").split() if p]
    return "".join(f"{p[0].upper()}." for p in parts) or None


def _fired(chain: NotifyChain) -> dict[int, datetime]:
    return {int(tier): datetime.fromisoformat(at) for tier, at in (chain.fired or {}).items()}


class Notifier:
    """Follows the alert events, runs the escalation chains, sends the outbox."""

    def __init__(
        self,
        clinic: Clinic,
        settings: NotifySettings,
        *,
        escalation_delay: timedelta,
        channels: Mapping[str, Channel] | None = None,
        site: str = DEFAULT_SITE,
        retry_delays_s: Sequence[float] = RETRY_DELAYS_S,
        poll_s: float = POLL_S,
        data_dir: Path | None = None,
        token_secret: Callable[[], bytes] | None = None,
    ) -> None:
        self._clinic = clinic
        self._engine: AsyncEngine = clinic.engine
        self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)
        # SQLite: write in turn with the clinic's writer (`Clinic.side_transaction`); a
        # second writing connection would be starved by SQLite's busy wait, or fail a
        # read-then-write transaction with "database is locked". PostgreSQL: the pool.
        self._in_turn = is_sqlite(clinic.engine)
        self._now = clinic.now
        self.settings = settings
        self.escalation_delay = escalation_delay
        # The daemon's own site, named in its heartbeat; the notifier itself reads and
        # sends for every site of the group (one sender per group, issue #16).
        self.site = site
        self.channels: dict[str, Channel] = (
            dict(channels)
            if channels is not None
            else {
                c.name: build_channel(c, ChannelContext(clinic, data_dir, token_secret))
                for c in settings.channels
            }
        )
        self._configs = {c.name: c for c in settings.channels}
        self._retry_delays = tuple(retry_delays_s)
        self._poll_s = poll_s
        self._wake = asyncio.Event()
        clinic.streams.follow(self._followed)
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._sending = asyncio.Semaphore(SEND_CONCURRENCY)
        self._failures: dict[str, int] = {}
        self.failing: dict[str, str] = {}  # channel -> why, while reported failing
        self.running = False
        self.last_error: str | None = None
        self._next_due: datetime | None = None

    # -- what others ask ---------------------------------------------------------------

    def report(self) -> dict[str, Any]:
        return {
            "running": self.running,
            "channels": sorted(self.channels),
            "failing": dict(self.failing),
            "in_flight": len(self._inflight),
            "error": self.last_error,
        }

    def wake(self) -> None:
        self._wake.set()

    @contextlib.asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        if self._in_turn:
            async with self._clinic.side_transaction() as session:
                yield session
            return
        async with self._sessions() as session, session.begin():
            yield session

    # -- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled: read events, fire due tiers, send what is due; woken by the
        clinic's alert events, else every `poll_s`."""
        if not self.channels:
            # Nothing to send to: no turn on the writer four times a second for nothing.
            # The cursor stays; channels configured later start from it.
            await asyncio.Event().wait()
        self.running = True
        started = False
        helpers = [asyncio.create_task(self._listen(), name="notify: listen")]
        if self.settings.heartbeat_channel is not None:
            helpers.append(asyncio.create_task(self._heartbeat(), name="notify: heartbeat"))
        woken, last_step = True, time.monotonic()
        try:
            while True:
                if woken or self._due() or time.monotonic() - last_step >= IDLE_STEP_S:
                    self._wake.clear()
                    try:
                        if not started:
                            await self._due_now()
                            started = True
                        await self.step()
                        self.last_error = None
                    except Exception as error:  # keep notifying: say so, try again
                        self.last_error = f"{type(error).__name__}: {error}"
                        self._next_due = self._now()
                        log.exception("notify: a step failed; trying again")
                        await asyncio.sleep(1.0)
                    last_step = time.monotonic()
                woken = False
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll_s):
                        await self._wake.wait()
                        woken = True
        finally:
            self.running = False
            for task in helpers:
                task.cancel()
            # Sends in flight finish and are recorded (a graceful stop sends nothing twice);
            # what does not finish in time goes again after the restart, same webhook-id.
            if self._inflight:
                await asyncio.wait(list(self._inflight.values()), timeout=STOP_PATIENCE_S)
            for task in self._inflight.values():
                task.cancel()
            await asyncio.gather(*helpers, *self._inflight.values(), return_exceptions=True)
            self._inflight.clear()

    async def _due_now(self) -> None:
        """At start, whatever waits for a retry is due now: the back-off was for the
        receiver, and a restart (maybe after a crash mid-send) is a fresh attempt."""
        async with self._transaction() as session:
            now = self._now()
            await session.execute(
                update(NotifyReceipt)
                .where(
                    NotifyReceipt.state == "queued",
                    NotifyReceipt.next_attempt_at > now,
                )
                .values(next_attempt_at=now)
            )

    def _due(self) -> bool:
        """Whether a tier or a retry has fallen due since the last step (no database:
        between events the notifier takes no turn on the writer)."""
        return self._next_due is not None and self._now() >= self._next_due

    async def step(self) -> None:
        """One pass, one transaction (one turn of the writer): the new events, the tiers
        time made due, the notifications due claimed; then their sends start."""
        async with self._transaction() as session:
            now = self._now()
            more = await self._read_events(session, now)
            next_tier = await self._fire_due_tiers(session, now)
            claimed = await self._claim_due(session, now)
            next_retry = await session.scalar(
                select(func.min(NotifyReceipt.next_attempt_at)).where(
                    NotifyReceipt.state == "queued"
                )
            )
        self._next_due = min((t for t in (next_tier, next_retry) if t is not None), default=None)
        for key, channel, notification, attempts in claimed:
            self._inflight[key] = asyncio.create_task(
                self._deliver(key, channel, notification, attempts), name=f"notify {key}"
            )
        if more:
            self._wake.set()

    async def flush(self) -> None:
        """One step, then wait for the sends it started (tests and the bench)."""
        await self.step()
        while self._inflight:
            await asyncio.gather(*list(self._inflight.values()), return_exceptions=True)

    def _followed(self, events: Sequence[Event]) -> None:
        """Another daemon's commit, in any site's stream (issue #16): wake on an alert."""
        if any(event.type in ALERT_EVENT_TYPES for event in events):
            self._wake.set()

    async def _listen(self) -> None:
        """Wake the loop on every alert event this process publishes; other daemons'
        commits, in every site's stream, wake it through `_followed`."""
        while True:
            subscription = self._clinic.bus.subscribe(
                types={EventType.ALERT, EventType.ALERT_UPDATED}
            )
            try:
                async for _event in subscription:
                    self._wake.set()
            except SubscriberOverflow:
                self._wake.set()
            finally:
                subscription.close()

    # -- events into chains ------------------------------------------------------------

    async def _read_events(self, session: AsyncSession, now: datetime) -> bool:
        """The next batch of stored alert events of every site after that site's cursor
        (a group-wide reader, issue #16: each site numbers its own stream), the cursors
        moved in the same transaction: the chain changes and the notifications they
        queue are kept exactly once. True: there may be more."""
        cursors = {c.site: c for c in await session.scalars(select(NotifyCursor))}
        events = await events_after(
            session,
            {site: cursor.last_seq for site, cursor in cursors.items()},
            EVENT_BATCH,
            types=ALERT_EVENT_TYPES,
        )
        more = False
        for site in sorted({event.site for event in events}):
            of_site = [event for event in events if event.site == site]
            for event in of_site:
                await self._apply_event(session, event, now)
            cursor = cursors.get(site)
            if cursor is None:
                cursor = NotifyCursor(site=site, last_seq=0, updated_at=now)
                session.add(cursor)
            assert of_site[-1].seq is not None  # stored events are numbered
            cursor.last_seq = of_site[-1].seq
            cursor.updated_at = now
            more = more or len(of_site) == EVENT_BATCH
        return more

    async def _apply_event(self, session: AsyncSession, event: Event, now: datetime) -> None:
        data = event.data
        kind = event.type.value
        envelope = {"seq": event.seq, "type": kind, "at": event.at.isoformat(), "data": data}
        if event.site != DEFAULT_SITE:
            envelope["site"] = event.site  # as `/ws` sends it (issue #16)
        alert_id = int(data["id"])
        reason = data.get("reason")
        action = action_of(kind, reason)
        chain = await session.get(NotifyChain, alert_id)
        if chain is None:
            raised = data.get("raised_at")
            chain = NotifyChain(
                alert_id=alert_id,
                site=event.site,
                generation=0,
                started_at=datetime.fromisoformat(raised) if raised else event.at,
                fired={},
                hurried=False,
            )
            session.add(chain)
        chain.priority = str(data["priority"])
        chain.kind = str(data["kind"])
        chain.addressed_to = str(data.get("addressed_to") or "nurse")
        chain.state = str(data["state"])
        chain.envelope = envelope
        chain.updated_at = now
        match action:
            case Action.RESTART:
                chain.generation += 1
                chain.started_at = event.at
                chain.fired = {}
                chain.hurried = False
            case Action.HURRY:
                chain.hurried = True
            case Action.REPEAT | Action.RESUME if chain.state == "active":
                tiers = {t.index: t for t in self._tiers(chain)}
                for index in sorted(_fired(chain)):
                    if index in tiers:
                        await self._queue_tier(
                            session, chain, tiers[index], str(reason), f"{reason}.{event.seq}", now
                        )
            case Action.STOP:
                await self._stop(session, alert_id, str(reason), now)
            case _:
                pass
        await session.flush()

    async def _stop(self, session: AsyncSession, alert_id: int, reason: str, now: datetime) -> None:
        """Acknowledged, snoozed or resolved: whatever waits for this alert is not sent
        (on any channel); an acknowledgement is the last step of every receipt."""
        await session.execute(
            update(NotifyReceipt)
            .where(NotifyReceipt.alert_id == alert_id, NotifyReceipt.state == "queued")
            .values(state=CANCELLED, detail=f"not sent: the alert was {reason}", updated_at=now)
        )
        if reason == "acknowledged":
            await session.execute(
                update(NotifyReceipt)
                .where(
                    NotifyReceipt.alert_id == alert_id,
                    NotifyReceipt.state.in_(earlier_than("acknowledged")),
                )
                .values(state="acknowledged", acknowledged_at=now, updated_at=now)
            )

    def _tiers(self, chain: NotifyChain) -> tuple[Tier, ...]:
        return chain_of(
            chain.priority,
            chain.kind,
            chain.addressed_to,
            self.settings.rules,
            self.settings.channels,
            self.escalation_delay,
        )

    # -- time: tiers falling due -------------------------------------------------------

    async def _fire_due_tiers(self, session: AsyncSession, now: datetime) -> datetime | None:
        """Queue the tiers time has made due; return when the next one falls due."""
        deadlines: list[datetime] = []
        chains = list(
            await session.scalars(select(NotifyChain).where(NotifyChain.state == "active"))
        )
        for chain in chains:
            tiers = self._tiers(chain)
            if not tiers:
                continue
            fired = _fired(chain)
            if len(fired) >= len(tiers):
                continue
            answered = await session.scalars(
                select(NotifyReceipt.tier).where(
                    NotifyReceipt.alert_id == chain.alert_id,
                    NotifyReceipt.generation == chain.generation,
                    NotifyReceipt.state.in_(CONFIRMED),
                )
            )
            state = ChainState(
                active=True,
                started_at=chain.started_at,
                fired=fired,
                receipted=frozenset(answered),
                hurried=chain.hurried,
            )
            due = due_tiers(state, tiers, now, self.settings.receipt_timeout)
            for index in due:
                tier = tiers[index]
                name = transition_name(chain.generation, index)
                token = name if chain.generation == 0 else f"{name}.{chain.generation}"
                await self._queue_tier(session, chain, tier, name, token, now)
                fired[index] = now
            if due:
                chain.fired = {str(i): at.isoformat() for i, at in fired.items()}
                chain.hurried = False
                chain.updated_at = now
            after = replace(state, fired=fired, hurried=False if due else state.hurried)
            deadline = next_deadline(after, tiers, self.settings.receipt_timeout)
            if deadline is not None:
                deadlines.append(deadline)
        return min(deadlines, default=None)

    async def _queue_tier(
        self,
        session: AsyncSession,
        chain: NotifyChain,
        tier: Tier,
        transition: str,
        token: str,
        now: datetime,
    ) -> None:
        """Queue one notification per recipient of the tier (a key queued already is
        not queued again)."""
        message: Notification | None = None
        for name in tier.channels:
            channel = self.channels.get(name)
            if channel is None:
                log.error("notify: channel %r is in a rule but not available", name)
                continue
            config = self._configs.get(name)
            roles = tier.roles or tuple(config.roles if config else ()) or ("nurse",)
            for recipient in await channel.recipients(roles):
                key = notification_key(chain.alert_id, token, tier.index, recipient)
                if await session.scalar(select(NotifyReceipt.id).where(NotifyReceipt.key == key)):
                    continue
                if message is None:
                    message = await self._message(session, chain, transition, tier.index)
                notification = {**asdict(message), "key": key, "recipient": recipient}
                session.add(
                    NotifyReceipt(
                        key=key,
                        site=chain.site,
                        alert_id=chain.alert_id,
                        channel=name,
                        recipient=recipient,
                        tier=tier.index,
                        generation=chain.generation,
                        transition=transition,
                        state="queued",
                        attempts=0,
                        next_attempt_at=now,
                        notification=notification,
                        created_at=now,
                        updated_at=now,
                    )
                )
        await session.flush()

    async def _message(
        self, session: AsyncSession, chain: NotifyChain, transition: str, tier: int
    ) -> Notification:
        """The words a phone shows: priority, chair and the patient's initials (no
        name), what was measured; the envelope as `/ws` sent it."""
        data: Mapping[str, Any] = chain.envelope.get("data", {})
        chair_name = None
        if data.get("chair_id") is not None:
            chair_name = await session.scalar(
                select(Chair.name).where(Chair.id == data["chair_id"])
            )
        who = None
        if data.get("session_id") is not None:
            who = await session.scalar(
                select(Patient.display_name)
                .join(SessionRow, SessionRow.patient_id == Patient.id)
                .where(SessionRow.id == data["session_id"])
            )
        value = None
        reading_id = data.get("latest_reading_id") or data.get("reading_id")
        if reading_id is not None:
            pair = (
                await session.execute(
                    select(Reading.systolic, Reading.diastolic).where(Reading.id == reading_id)
                )
            ).first()
            if pair is not None and pair[0] is not None and pair[1] is not None:
                value = f"{pair[0]:.0f}/{pair[1]:.0f} mmHg"
        shown_initials = initials(who)
        title = " - ".join(
            part for part in (chain.priority.upper(), chair_name, shown_initials) if part
        )
        if transition != "raised":
            title += f" ({transition})"
        return Notification(
            key="",
            alert_id=chain.alert_id,
            transition=transition,
            priority=chain.priority,
            kind=chain.kind,
            title=title,
            body=str(data.get("latest_message") or data.get("message") or chain.kind),
            chair=chair_name,
            patient_initials=shown_initials,
            value=value,
            limit=data.get("limit"),
            envelope=dict(chain.envelope),
            recipient="",
        )

    # -- the outbox --------------------------------------------------------------------

    def _backoff(self, attempts: int) -> timedelta:
        delays = self._retry_delays
        return timedelta(seconds=delays[min(attempts, len(delays)) - 1])

    async def _claim_due(
        self, session: AsyncSession, now: datetime
    ) -> list[tuple[str, str, dict[str, Any], int]]:
        """Claim the due notifications: the attempt counted and the next one scheduled
        before anything is sent (a crash mid-send retries)."""
        claimed: list[tuple[str, str, dict[str, Any], int]] = []
        query = (
            select(NotifyReceipt)
            .where(
                NotifyReceipt.state == "queued",
                NotifyReceipt.next_attempt_at <= now,
            )
            .order_by(NotifyReceipt.id)
            .limit(SEND_BATCH)
        )
        if self._inflight:
            query = query.where(NotifyReceipt.key.not_in(list(self._inflight)))
        for row in await session.scalars(query):
            row.attempts += 1
            row.next_attempt_at = now + self._backoff(row.attempts)
            row.updated_at = now
            claimed.append((row.key, row.channel, dict(row.notification), row.attempts))
        return claimed

    async def _deliver(
        self, key: str, channel_name: str, notification: dict[str, Any], attempts: int
    ) -> None:
        try:
            async with self._sending:
                result = await self._send(channel_name, notification)
            await self._record(key, channel_name, result, attempts)
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("notify: recording the delivery of %s failed", key)
        finally:
            self._inflight.pop(key, None)
            self._wake.set()

    async def _send(self, channel_name: str, notification: dict[str, Any]) -> DeliveryResult:
        channel = self.channels.get(channel_name)
        if channel is None:
            return DeliveryResult("failed", f"channel {channel_name!r} is not configured")
        try:
            async with asyncio.timeout(SEND_TIMEOUT_S):
                return await channel.send(Notification(**notification))
        except TimeoutError:
            return DeliveryResult("failed", f"no answer in {SEND_TIMEOUT_S:g} s", retry=True)
        except Exception as error:  # a channel's own bug must not stop the others
            log.exception("notify: channel %s failed to send", channel_name)
            return DeliveryResult("failed", f"{type(error).__name__}: {error}", retry=True)

    async def _record(
        self, key: str, channel_name: str, result: DeliveryResult, attempts: int
    ) -> None:
        async with self._transaction() as session:
            now = self._now()
            row = await session.scalar(select(NotifyReceipt).where(NotifyReceipt.key == key))
            if row is None:
                return
            row.updated_at = now
            if result.outcome in ("sent", "delivered"):
                if row.state in ("queued", CANCELLED, "failed"):
                    row.state = result.outcome
                    row.detail = result.detail or None
                    row.sent_at = now
                    if result.outcome == "delivered":
                        row.delivered_at = now
            elif row.state == "queued":
                gone = result.outcome == "gone"
                if gone or not result.retry or attempts >= MAX_ATTEMPTS:
                    row.state = "failed"
                    row.detail = f"{'gone: ' if gone else ''}{result.detail} (attempt {attempts})"
                    log.error("notify: %s failed for good: %s", key, row.detail)
                else:
                    row.detail = f"attempt {attempts} failed: {result.detail}; retrying"
        await self._channel_health(channel_name, result)

    async def _channel_health(self, channel_name: str, result: DeliveryResult) -> None:
        """`channel_failing_after` failures in a row raise `channel_failing`; the next
        success resolves it (`channel_recovered`). A recipient that is gone (a push
        subscription the push service deleted) raises it at once: someone's device no
        longer hears alerts until it subscribes again."""
        clinic = self._clinic
        if result.outcome == "gone":
            why = f"a recipient is gone ({result.detail}): its device must subscribe again"
            self.failing[channel_name] = why
            log.error("notify: channel %s: %s", channel_name, why)
            await clinic.channel_failing(channel_name, why)
            return
        if result.outcome == "failed":
            count = self._failures.get(channel_name, 0) + 1
            self._failures[channel_name] = count
            if count >= self.settings.channel_failing_after and channel_name not in self.failing:
                why = f"{count} deliveries in a row failed; last: {result.detail}"
                self.failing[channel_name] = why
                log.error("notify: channel %s is failing: %s", channel_name, why)
                await clinic.channel_failing(channel_name, why)
            return
        self._failures[channel_name] = 0
        if self.failing.pop(channel_name, None) is not None:
            log.info("notify: channel %s recovered", channel_name)
            await clinic.channel_recovered(channel_name)

    # -- the dead-man's switch ---------------------------------------------------------

    async def _heartbeat(self) -> None:
        """Post a signed `heartbeat` envelope on a period: silence means vitalsd (or
        its notifier) is down, which only something outside can notice."""
        name = self.settings.heartbeat_channel
        assert name is not None
        channel = self.channels.get(name)
        if not isinstance(channel, WebhookChannel):
            log.error("notify: heartbeat channel %r is not a webhook channel", name)
            return
        while True:
            envelope = {
                "seq": None,
                "type": "heartbeat",
                "at": self._now().isoformat(),
                "data": {
                    "site": self.site,
                    "in_flight": len(self._inflight),
                    "failing": sorted(self.failing),
                },
            }
            result = await channel.post(f"heartbeat:{uuid.uuid4().hex}", envelope)
            if result.outcome == "failed":
                log.warning("notify: heartbeat to %s failed: %s", name, result.detail)
            await self._channel_health(name, result)
            await asyncio.sleep(self.settings.heartbeat_every_seconds)

    async def close(self) -> None:
        for channel in self.channels.values():
            closer = getattr(channel, "close", None)
            if closer is not None:
                with contextlib.suppress(Exception):
                    await closer()
