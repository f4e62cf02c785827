"""Readings taken out of range reach the central when it returns: BPS 1.0 replay on
subscribe and BPS 1.1 through the Record Access Control Point, none lost or repeated."""

from __future__ import annotations

from bumble import hci
from bumble.att import ATT_Error

from devices import gatt
from devices.bps import (
    BloodPressureMeasurement,
    BloodPressureRecordAssembler,
    RacpNumberOfRecords,
    RacpRequest,
    RacpResponse,
    RacpResponseCode,
    StoredRecord,
    decode_racp_indication,
)
from simulators.cuff import SimulatedCuff
from tests.simulators.bumble_central import BumbleCentral, CuffSession
from tests.simulators.conftest import StartCuff


async def bonded_session(central: BumbleCentral, cuff: SimulatedCuff) -> CuffSession:
    session = await central.connect(cuff.address)
    await session.pair()
    return session


async def reconnect(central: BumbleCentral, cuff: SimulatedCuff) -> CuffSession:
    session = await central.connect(cuff.address)
    await session.encrypt()
    return session


async def collect_records(session: CuffSession, request: RacpRequest) -> list[StoredRecord]:
    """Write a RACP report request; gather Blood Pressure Records until its response."""
    assembler = BloodPressureRecordAssembler()
    await session.write(gatt.RECORD_ACCESS_CONTROL_POINT, bytes(request))
    response = decode_racp_indication(await session.next(gatt.RECORD_ACCESS_CONTROL_POINT))
    assert response == RacpResponse(request.op_code, RacpResponseCode.SUCCESS)
    records = []
    for segment in session.drain(gatt.BLOOD_PRESSURE_RECORD):
        record = assembler.feed(segment)
        if record is not None:
            records.append(record)
    return records


async def test_out_of_range_drops_the_link_as_a_supervision_timeout(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff()
    session = await bonded_session(central, cuff)

    await cuff.go_out_of_range()

    assert await session.wait_disconnected() == hci.HCI_CONNECTION_TIMEOUT_ERROR
    assert not cuff.advertising


async def test_bps10_replays_out_of_range_readings_oldest_first_on_subscribe(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff(record_style="bps10")
    first = await bonded_session(central, cuff)
    await first.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)
    live = await cuff.measure()
    assert await first.next(gatt.BLOOD_PRESSURE_MEASUREMENT) == live.payload
    await cuff.go_out_of_range()
    await first.wait_disconnected()
    away = [await cuff.measure() for _ in range(3)]

    await cuff.come_back()
    second = await reconnect(central, cuff)
    await second.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)
    replayed = [await second.next(gatt.BLOOD_PRESSURE_MEASUREMENT) for _ in away]
    after = await cuff.measure()

    assert replayed == [r.payload for r in away]
    assert await second.next(gatt.BLOOD_PRESSURE_MEASUREMENT) == after.payload
    assert second.drain(gatt.BLOOD_PRESSURE_MEASUREMENT) == []
    assert cuff.stored == []


async def test_bps10_replayed_readings_carry_their_own_timestamps(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff(record_style="bps10")
    await cuff.go_out_of_range()
    away = [await cuff.measure() for _ in range(2)]
    await cuff.come_back()
    session = await bonded_session(central, cuff)
    await session.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)

    stamps = [
        BloodPressureMeasurement.from_bytes(
            await session.next(gatt.BLOOD_PRESSURE_MEASUREMENT)
        ).timestamp
        for _ in away
    ]

    assert stamps == [r.cuff_time for r in away]
    assert stamps[0] is not None and stamps[1] is not None and stamps[0] < stamps[1]


async def test_bps11_reports_records_from_a_sequence_number_none_lost_or_repeated(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff(record_style="bps11")
    first = await bonded_session(central, cuff)
    await first.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)
    live = await cuff.measure()
    assert await first.next(gatt.BLOOD_PRESSURE_MEASUREMENT) == live.payload
    await cuff.go_out_of_range()
    await first.wait_disconnected()
    away = [await cuff.measure() for _ in range(4)]

    await cuff.come_back()
    second = await reconnect(central, cuff)
    await second.subscribe(gatt.RECORD_ACCESS_CONTROL_POINT)
    await second.subscribe(gatt.BLOOD_PRESSURE_RECORD)
    records = await collect_records(second, RacpRequest.report_from(live.sequence_number + 1))

    assert [r.sequence_number for r in records] == [a.sequence_number for a in away]
    assert [r.value for r in records] == [a.payload for a in away]
    assert all(r.uuid == gatt.BLOOD_PRESSURE_MEASUREMENT for r in records)


async def test_bps11_report_all_returns_every_stored_record_once(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff(record_style="bps11")
    await cuff.go_out_of_range()
    away = [await cuff.measure() for _ in range(3)]
    await cuff.come_back()
    session = await bonded_session(central, cuff)
    await session.subscribe(gatt.RECORD_ACCESS_CONTROL_POINT)
    await session.subscribe(gatt.BLOOD_PRESSURE_RECORD)

    records = await collect_records(session, RacpRequest.report_all())

    assert [(r.sequence_number, r.value) for r in records] == [
        (a.sequence_number, a.payload) for a in away
    ]
    assert [r.measurement() for r in records] == [a.measurement for a in away]


async def test_bps11_counts_stored_records(start_cuff: StartCuff, central: BumbleCentral) -> None:
    cuff = await start_cuff(record_style="bps11")
    for _ in range(3):
        await cuff.measure()
    session = await bonded_session(central, cuff)
    await session.subscribe(gatt.RECORD_ACCESS_CONTROL_POINT)

    await session.write(gatt.RECORD_ACCESS_CONTROL_POINT, bytes(RacpRequest.count_all()))

    assert decode_racp_indication(
        await session.next(gatt.RECORD_ACCESS_CONTROL_POINT)
    ) == RacpNumberOfRecords(3)


async def test_bps11_reports_no_records_found_past_the_newest(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff(record_style="bps11")
    newest = await cuff.measure()
    session = await bonded_session(central, cuff)
    await session.subscribe(gatt.RECORD_ACCESS_CONTROL_POINT)
    await session.subscribe(gatt.BLOOD_PRESSURE_RECORD)
    request = RacpRequest.report_from(newest.sequence_number + 1)

    await session.write(gatt.RECORD_ACCESS_CONTROL_POINT, bytes(request))

    assert decode_racp_indication(
        await session.next(gatt.RECORD_ACCESS_CONTROL_POINT)
    ) == RacpResponse(request.op_code, RacpResponseCode.NO_RECORDS_FOUND)


async def test_bps11_refuses_a_racp_write_without_its_indications_enabled(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff(record_style="bps11")
    session = await bonded_session(central, cuff)
    try:
        await session.write(gatt.RECORD_ACCESS_CONTROL_POINT, bytes(RacpRequest.report_all()))
    except ATT_Error as error:
        assert error.error_code == gatt.ATT_CCCD_IMPROPERLY_CONFIGURED
    else:
        raise AssertionError("the RACP accepted a request it could not answer")


async def test_bps10_cuff_has_no_record_access_control_point(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff(record_style="bps10")
    session = await central.connect(cuff.address)
    assert not session.has(gatt.RECORD_ACCESS_CONTROL_POINT)
    assert not session.has(gatt.BLOOD_PRESSURE_RECORD)
