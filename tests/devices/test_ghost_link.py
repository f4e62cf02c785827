"""Issue #18: a link that is gone at the cuff's end but not at ours (the cuff lost power;
a real radio would end it by its supervision timeout, Bumble's virtual link never does)
must not leave the cuff unread: a cuff advertising while we hold a link to it has none."""

from __future__ import annotations

from devices.events import CuffConnected
from tests.devices.conftest import EventLog, StartCuff, Supervise


async def test_a_cuff_that_lost_power_while_linked_is_connected_again(
    start_cuff: StartCuff, events: EventLog, supervise: Supervise
) -> None:
    cuff = await start_cuff()
    async with supervise():
        live = await cuff.measure()
        await events.wait_for(lambda: events.delivered(cuff, live) == 1, "the live reading")
        connections = len(events.of(CuffConnected, cuff.address))
        await cuff.power_cut()  # our end of the link lives on
        await cuff.start()  # batteries back: it advertises again
        held = await cuff.measure()
        await events.wait_for(
            lambda: events.delivered(cuff, held) == 1, "the reading taken after the power cut"
        )
    assert len(events.of(CuffConnected, cuff.address)) == connections + 1
    assert events.delivered(cuff, live) == 1
