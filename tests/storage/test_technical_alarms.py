"""Technical alarms the Bluetooth side raises through the clinic (issue #18 item 4): a
known cuff of a chair in session that advertises but cannot be connected."""

from __future__ import annotations

from datetime import timedelta

from devices.events import CuffReachable, CuffUnreachable
from tests.storage.conftest import CUFF, FakeClock, Ward
from tests.storage.test_clinic import start
from vitalsd.daemon import BleStatus, CuffEventSink

REFUSED = "the cuff refused pairing"
ADVICE = "Clear the cuff's pairing list (see its manual), then bring it close to the tablet."


def unreachable(clock: FakeClock) -> CuffUnreachable:
    return CuffUnreachable(
        address=CUFF.lower(),
        at=clock.now,
        since=clock.now - timedelta(seconds=75),
        attempts=4,
        reason=REFUSED,
        advice=ADVICE,
    )


async def test_an_unreachable_cuff_of_a_chair_in_session_raises_a_medium_cuff_offline_alert(
    ward: Ward, clock: FakeClock
) -> None:
    session = await start(ward)
    sink = CuffEventSink(ward.clinic, BleStatus("test"))
    await sink(unreachable(clock))
    await sink(unreachable(clock))  # the same spell again: one alert, never two
    (alert,) = await ward.clinic.list_alerts(session_id=session.id, kind="cuff_offline")
    assert (alert.priority, alert.state) == ("medium", "active")
    assert CUFF in alert.message and REFUSED in alert.message and ADVICE in alert.message


async def test_the_cuff_connecting_again_clears_its_alert(ward: Ward, clock: FakeClock) -> None:
    session = await start(ward)
    sink = CuffEventSink(ward.clinic, BleStatus("test"))
    await sink(unreachable(clock))
    clock.advance(1)
    await sink(CuffReachable(address=CUFF, at=clock.now))
    (alert,) = await ward.clinic.list_alerts(session_id=session.id, kind="cuff_offline")
    assert alert.state == "resolved"


async def test_an_unreachable_cuff_without_a_session_raises_nothing(
    ward: Ward, clock: FakeClock
) -> None:
    raised = await ward.clinic.cuff_unreachable(
        CUFF, at=clock.now, since=clock.now, attempts=2, reason=REFUSED, advice=ADVICE
    )
    assert raised is False
    assert await ward.clinic.list_alerts(kind="cuff_offline") == []
