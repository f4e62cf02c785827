"""Brief-window and always-connectable cuffs; no security, Just Works and passkey."""

from __future__ import annotations

from datetime import timedelta

from bumble import hci

from devices import gatt
from simulators.cuff import SimulatedCuff
from simulators.radio import VirtualRadio
from tests.simulators.bumble_central import BumbleCentral
from tests.simulators.conftest import StartCuff


async def test_a_brief_cuff_stops_advertising_when_its_window_closes(
    start_cuff: StartCuff,
) -> None:
    cuff = await start_cuff(connectable="brief")
    assert cuff.advertising
    await cuff.clock.sleep(cuff.config.advertising_window * 2)
    assert not cuff.advertising


async def test_a_brief_cuff_advertises_again_after_a_measurement(start_cuff: StartCuff) -> None:
    cuff = await start_cuff(connectable="brief")
    await cuff.clock.sleep(cuff.config.advertising_window * 2)

    await cuff.measure()

    assert cuff.advertising


async def test_a_brief_cuff_hangs_up_once_its_records_were_read(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    # A long window: the central must find the cuff before it closes, at test speed.
    cuff = await start_cuff(
        connectable="brief", record_style="bps10", advertising_window=timedelta(hours=2)
    )
    taken = await cuff.measure()
    session = await central.connect(cuff.address)
    await session.pair()
    await session.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)

    assert await session.next(gatt.BLOOD_PRESSURE_MEASUREMENT) == taken.payload
    assert await session.wait_disconnected() == hci.HCI_REMOTE_USER_TERMINATED_CONNECTION_ERROR
    assert not cuff.advertising


async def test_an_always_connectable_cuff_advertises_again_after_a_disconnection(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff(connectable="always")
    session = await central.connect(cuff.address)
    await session.disconnect()

    [sighting] = await central.discover()

    assert sighting.address == cuff.address


async def test_a_cuff_out_of_range_is_not_seen_until_it_comes_back(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff()
    other = await start_cuff(address="D0:00:00:00:00:02", local_name="SIM-BP 2")
    await cuff.go_out_of_range()

    assert [s.address for s in await central.discover(count=1)] == [other.address]
    await cuff.come_back()
    assert [s.address for s in await central.discover(count=2)] == [
        cuff.address,
        other.address,
    ]


async def test_a_cuff_without_security_serves_an_unpaired_central(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff(security="none")
    session = await central.connect(cuff.address)
    await session.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)

    taken = await cuff.measure()

    assert await session.next(gatt.BLOOD_PRESSURE_MEASUREMENT) == taken.payload
    assert cuff.pairings == []


async def test_a_passkey_cuff_bonds_with_a_central_that_enters_its_passkey(
    start_cuff: StartCuff, radio: VirtualRadio
) -> None:
    cuff = await start_cuff(security="passkey", passkey=246810)
    central = BumbleCentral(radio.add_central_controller("keyboard"), passkey=246810)
    await central.start()
    try:
        session = await central.connect(cuff.address)
        await session.pair()
        await session.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)
        taken = await cuff.measure()
        assert await session.next(gatt.BLOOD_PRESSURE_MEASUREMENT) == taken.payload
        assert len(cuff.pairings) == 1
    finally:
        await central.close()


async def test_a_passkey_cuff_refuses_just_works_pairing(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff: SimulatedCuff = await start_cuff(security="passkey")
    session = await central.connect(cuff.address)
    try:
        await session.pair()
    except Exception:
        pass  # either pairing fails, or the cuff hangs up right after it

    assert await session.wait_disconnected() == hci.HCI_AUTHENTICATION_FAILURE_ERROR
    assert cuff.pairings == []
