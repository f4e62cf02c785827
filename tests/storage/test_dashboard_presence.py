"""Dashboards watching a clinic group of several daemons (issue #15, `nobody_watching`):
each node's shared advisory lock says it has a dashboard (vitalsd.store.presence)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from tests.clock import FakeClock
from tests.storage.conftest import NURSE, T0
from vitalsd.clinic import Actor, Clinic
from vitalsd.dashboard_watch import DashboardWatch
from vitalsd.domain import Role
from vitalsd.store.engine import create_engine, migrate
from vitalsd.store.presence import GroupPresence

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def nodes(fresh_postgres_url: str) -> AsyncIterator[tuple[GroupPresence, GroupPresence]]:
    a, b = GroupPresence(fresh_postgres_url), GroupPresence(fresh_postgres_url)
    try:
        yield a, b
    finally:
        await a.close()
        await b.close()


async def test_a_node_without_dashboards_counts_the_nodes_that_have_one(
    nodes: tuple[GroupPresence, GroupPresence],
) -> None:
    a, b = nodes
    assert await b.watching(0) == 0
    assert await a.watching(3) == 3  # its own, and it now tells the group
    assert await b.watching(0) == 1
    assert await a.watching(0) == 0  # its last dashboard left: the lock goes
    assert await b.watching(0) == 0


async def test_a_node_that_dies_stops_counting_as_watched(
    nodes: tuple[GroupPresence, GroupPresence],
) -> None:
    a, b = nodes
    await a.watching(1)
    await a.close()  # the connection ends: the server frees its lock
    assert await b.watching(0) == 0


async def test_no_alert_while_another_node_has_a_dashboard_one_when_it_leaves(
    fresh_postgres_url: str, nodes: tuple[GroupPresence, GroupPresence]
) -> None:
    other_node, this_node = nodes
    clock = FakeClock(T0)
    engine = create_engine(fresh_postgres_url)
    await migrate(engine)
    clinic = Clinic(engine, clock=clock)
    try:
        patient = await clinic.create_patient("MRN-1", "J. D.", T0.date(), by=NURSE)
        chair = await clinic.create_chair("Chair 1", by=NURSE)
        await clinic.start_session(patient.id, chair.id, by=Actor("dr", Role.CLINICIAN))
        await other_node.watching(1)
        watch = DashboardWatch(
            clinic,
            lambda: this_node.watching(0),
            asyncio.Event(),
            after=timedelta(seconds=60),
            now=clock,
        )
        await watch.look()
        clock.advance(5)
        await watch.look()
        assert await clinic.list_alerts(kind="nobody_watching") == []
        await other_node.watching(0)
        await watch.look()
        clock.advance(seconds=60)
        await watch.look()
        (alert,) = await clinic.list_alerts(kind="nobody_watching")
        assert (alert.priority, alert.state) == ("high", "active")
    finally:
        await clinic.close()
