"""A clinic group on PostgreSQL: two daemons' notifiers, exactly one sends (the holder
of the notify advisory lock); when it goes, the other takes over and sends what is due,
once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from datetime import date, timedelta

import pytest
from sqlalchemy import select

from tests.notify.conftest import CLINICIAN, NURSE
from tests.notify.receiver import SECRET, WebhookReceiver
from tests.postgres_cluster import PostgresCluster
from vitalsd.clinic import Clinic
from vitalsd.notify.config import ChannelSettings, NotifySettings, RuleSettings
from vitalsd.notify.notifier import Notifier
from vitalsd.store.engine import create_engine, migrate
from vitalsd.store.leader import NOTIFY_LOCK_KEY, TimerLeadership
from vitalsd.store.models import NotifyCursor

PATIENCE_S = 30.0


class Node:
    """One daemon's clinic and notifier, leading or standing by."""

    def __init__(self, url: str, settings: NotifySettings) -> None:
        self.clinic = Clinic(create_engine(url))
        self.notifier = Notifier(self.clinic, settings, escalation_delay=timedelta(minutes=2))
        self.leadership = TimerLeadership(
            url, self.notifier.run, key=NOTIFY_LOCK_KEY, what="notifier", retry_s=0.1
        )
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.clinic.start()
        self.task = asyncio.create_task(self.leadership.run())

    async def stop(self) -> None:
        self.leadership.abort()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
        await self.notifier.close()
        await self.clinic.close()


async def until(predicate: Callable[[], bool]) -> None:
    """Poll a condition another task or thread makes true (a guard, not a timing)."""
    async with asyncio.timeout(PATIENCE_S):
        while not predicate():  # noqa: ASYNC110 (state of other daemons and a thread)
            await asyncio.sleep(0.05)


@pytest.fixture
async def group(
    postgres_cluster: PostgresCluster,
) -> AsyncIterator[tuple[list[Node], WebhookReceiver]]:
    url = postgres_cluster.database()
    await migrate(url)
    receiver = WebhookReceiver().start()
    settings = NotifySettings(
        channels=[ChannelSettings(name="ward", kind="webhook", url=receiver.url, secret=SECRET)],
        rules=[RuleSettings(kinds=["severe_hypertension"], channels=["ward"])],
    )
    nodes = [Node(url, settings), Node(url, settings)]
    for node in nodes:
        await node.start()
    try:
        yield nodes, receiver
    finally:
        for node in nodes:
            await node.stop()
        receiver.stop()


async def severe_alert(clinic: Clinic, identifier: str) -> None:
    patient = await clinic.create_patient(identifier, "Casey Diaz", date(1971, 1, 23), by=NURSE)
    chair = await clinic.create_chair(f"Chair {identifier}", by=NURSE)
    session = await clinic.start_session(patient.id, chair.id, by=CLINICIAN)
    await clinic.record_manual_reading(session.id, systolic=188, diastolic=114, by=NURSE)


async def test_exactly_one_daemon_sends_and_the_other_takes_over(
    group: tuple[list[Node], WebhookReceiver],
) -> None:
    nodes, receiver = group
    await until(lambda: {n.leadership.role for n in nodes} == {"leader", "standby"})
    leader = next(n for n in nodes if n.leadership.role == "leader")
    standby = next(n for n in nodes if n is not leader)
    await severe_alert(standby.clinic, "MRN-1")  # written on the node that does not send
    await until(lambda: len(receiver.deliveries) >= 1)
    await leader.stop()
    nodes.remove(leader)
    await until(lambda: standby.leadership.role == "leader")
    await severe_alert(standby.clinic, "MRN-2")
    await until(lambda: len(receiver.deliveries) >= 2)
    await asyncio.sleep(0.5)  # a duplicate, if any, would come now
    assert sorted(receiver.counts().values()) == [1, 1]
    assert len(receiver.deliveries) == 2
    assert receiver.refused == []


async def test_one_notifier_sends_every_sites_alerts_each_once(
    postgres_cluster: PostgresCluster,
) -> None:
    """Issue #16: each site numbers its own event stream, so seq 1 exists once per site;
    the group's one notifier reads every site after its own cursor per site and sends
    each site's alert once."""
    url = postgres_cluster.database()
    await migrate(url)
    receiver = WebhookReceiver().start()
    settings = NotifySettings(
        channels=[ChannelSettings(name="ward", kind="webhook", url=receiver.url, secret=SECRET)],
        rules=[RuleSettings(kinds=["severe_hypertension"], channels=["ward"])],
    )
    north = Clinic(create_engine(url), site="north")
    south = Clinic(create_engine(url), site="south")
    await north.start()
    await south.start()
    notifier = Notifier(north, settings, escalation_delay=timedelta(minutes=2), site="north")
    running = asyncio.create_task(notifier.run())
    try:
        await severe_alert(north, "MRN-N")
        await severe_alert(south, "MRN-S")
        await until(lambda: len(receiver.deliveries) >= 2)
        await asyncio.sleep(0.5)  # a duplicate, if any, would come now
        assert sorted(receiver.counts().values()) == [1, 1]
        sites = sorted(str(d.envelope.get("site")) for d in receiver.deliveries)
        assert sites == ["north", "south"]  # as `/ws` names a site other than the default
        async with north.engine.connect() as connection:
            cursors = dict(
                (await connection.execute(select(NotifyCursor.site, NotifyCursor.last_seq))).all()
            )
        assert set(cursors) == {"north", "south"} and all(seq > 0 for seq in cursors.values())
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
        await notifier.close()
        await north.close()
        await south.close()
        receiver.stop()
