"""Issue #18: a cuff that keeps advertising but cannot be connected is reported, with the
reason and what to do about it, and reported reachable again once it is; over Bumble
virtual controllers, against the simulator's cuffs."""

from __future__ import annotations

from devices.errors import CuffPairingRefused
from devices.events import CuffConnected, CuffReachable, CuffUnreachable
from tests.devices.conftest import EventLog, StartCuff, Supervise

# Real seconds of failing before the report: short, so that the test is quick (the
# daemon's default is a minute).
UNREACHABLE_AFTER = 0.5


async def test_a_cuff_that_refuses_pairing_is_reported_with_the_advice(
    start_cuff: StartCuff, events: EventLog, supervise: Supervise
) -> None:
    cuff = await start_cuff(security="refuse")
    await cuff.measure()  # held: its characteristics need the pairing it refuses
    async with supervise(unreachable_after=UNREACHABLE_AFTER):
        await events.wait_for(
            lambda: bool(events.of(CuffUnreachable, cuff.address)), "the cuff reported"
        )
        # Failing on, it is not reported again.
        attempts = len(events.of(CuffConnected, cuff.address))
        await events.wait_for(
            lambda: len(events.of(CuffConnected, cuff.address)) >= attempts + 3,
            "three more attempts",
        )
    [report] = events.of(CuffUnreachable, cuff.address)
    assert report.address == cuff.address.upper()
    assert report.attempts >= 2
    assert report.since < report.at
    assert "pairing refused" in report.reason
    assert report.advice == CuffPairingRefused.ADVICE
    assert events.readings(cuff.address) == []
    assert events.of(CuffReachable, cuff.address) == []


async def test_a_cuff_connected_again_is_reported_reachable(
    start_cuff: StartCuff, events: EventLog, supervise: Supervise
) -> None:
    refusing = await start_cuff(security="refuse")
    async with supervise(unreachable_after=UNREACHABLE_AFTER):
        await events.wait_for(
            lambda: bool(events.of(CuffUnreachable, refusing.address)), "the cuff reported"
        )
        # Its pairings cleared (as the advice says): the same cuff pairs again.
        await refusing.stop()
        cleared = await start_cuff(address=refusing.address, security="just-works")
        reading = await cleared.measure()
        await events.wait_for(lambda: events.delivered(cleared, reading) == 1, "its reading")
    [back] = events.of(CuffReachable, cleared.address)
    [report] = events.of(CuffUnreachable, cleared.address)
    assert back.at >= report.at


async def test_a_cuff_that_connects_is_never_reported(
    start_cuff: StartCuff, events: EventLog, supervise: Supervise
) -> None:
    cuff = await start_cuff()
    async with supervise(unreachable_after=0.0):
        reading = await cuff.measure()
        await events.wait_for(lambda: events.delivered(cuff, reading) == 1, "its reading")
    assert events.of(CuffUnreachable) == []
