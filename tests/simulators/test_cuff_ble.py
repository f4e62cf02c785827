"""A simulated cuff seen by an independent Bumble central over the virtual link."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from bumble.att import ATT_Error

from devices import gatt
from devices.bps import (
    BatteryLevel,
    BloodPressureFeature,
    BloodPressureMeasurement,
    CurrentTime,
    IntermediateCuffPressure,
    MeasurementStatus,
)
from tests.simulators.bumble_central import CENTRAL_ADDRESS, BumbleCentral
from tests.simulators.conftest import StartCuff


async def test_cuff_advertises_the_blood_pressure_service_name_and_appearance(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff()
    [sighting] = await central.discover(gatt.BLOOD_PRESSURE_SERVICE)
    assert sighting.address == cuff.address
    assert sighting.name == "SIM-BP 1"
    assert sighting.appearance == gatt.APPEARANCE_BLOOD_PRESSURE_ARM


async def test_subscribing_before_pairing_is_refused_for_want_of_encryption(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff()
    session = await central.connect(cuff.address)
    try:
        await session.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)
    except ATT_Error as error:
        assert error.error_code == gatt.ATT_INSUFFICIENT_ENCRYPTION
    else:
        raise AssertionError("the cuff let an unencrypted central subscribe")


async def test_paired_central_receives_cuff_pressures_then_a_measurement(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff()
    [sighting] = await central.discover()
    session = await central.connect(sighting.address)
    await session.pair()
    await session.subscribe(gatt.INTERMEDIATE_CUFF_PRESSURE)
    await session.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)

    record = await cuff.measure()

    measurement = BloodPressureMeasurement.from_bytes(
        await session.next(gatt.BLOOD_PRESSURE_MEASUREMENT)
    )
    pressures = [
        IntermediateCuffPressure.from_bytes(v).cuff_pressure
        for v in session.drain(gatt.INTERMEDIATE_CUFF_PRESSURE)
    ]
    assert measurement == record.measurement
    assert (measurement.systolic, measurement.diastolic) == (
        record.reading.systolic,
        record.reading.diastolic,
    )
    assert max(pressures) > measurement.systolic
    assert cuff.pairings == [CENTRAL_ADDRESS]


async def test_a_bonded_central_reconnects_with_encryption_and_no_new_pairing(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff()
    first = await central.connect(cuff.address)
    await first.pair()
    await first.disconnect()

    again = await central.connect(cuff.address)
    await again.encrypt()
    await again.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)
    record = await cuff.measure()

    assert await again.next(gatt.BLOOD_PRESSURE_MEASUREMENT) == record.payload
    assert cuff.pairings == [CENTRAL_ADDRESS]


async def test_an_error_frame_arrives_with_nan_values_and_no_status_bits(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff()
    session = await central.connect(cuff.address)
    await session.pair()
    await session.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)

    await cuff.measure(problem="error-frame")

    measurement = BloodPressureMeasurement.from_bytes(
        await session.next(gatt.BLOOD_PRESSURE_MEASUREMENT)
    )
    assert measurement.is_error_frame
    assert measurement.status == MeasurementStatus(0)
    assert measurement.pulse_rate is not None and math.isnan(measurement.pulse_rate)
    assert measurement.timestamp is not None


async def test_a_body_movement_problem_arrives_as_its_status_bit(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff()
    session = await central.connect(cuff.address)
    await session.pair()
    await session.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)

    await cuff.measure(problem="body-movement")

    measurement = BloodPressureMeasurement.from_bytes(
        await session.next(gatt.BLOOD_PRESSURE_MEASUREMENT)
    )
    assert measurement.status == MeasurementStatus.BODY_MOVEMENT_DETECTED


async def test_device_information_feature_and_battery_are_readable(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff(serial="SN-42", manufacturer="Acme", model="BP-7", firmware="2.1")
    session = await central.connect(cuff.address)
    await session.pair()

    assert await session.read(gatt.SERIAL_NUMBER_STRING) == b"SN-42"
    assert await session.read(gatt.MANUFACTURER_NAME_STRING) == b"Acme"
    assert await session.read(gatt.MODEL_NUMBER_STRING) == b"BP-7"
    assert await session.read(gatt.FIRMWARE_REVISION_STRING) == b"2.1"
    feature = BloodPressureFeature.from_bytes(await session.read(gatt.BLOOD_PRESSURE_FEATURE))
    assert feature & BloodPressureFeature.BODY_MOVEMENT_DETECTION
    assert BatteryLevel.from_bytes(await session.read(gatt.BATTERY_LEVEL)).level == 90


async def test_the_cuff_clock_is_wrong_until_a_central_sets_it(
    start_cuff: StartCuff, central: BumbleCentral
) -> None:
    cuff = await start_cuff()
    session = await central.connect(cuff.address)
    await session.pair()
    await session.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)
    before = CurrentTime.from_bytes(await session.read(gatt.CURRENT_TIME)).datetime
    assert before is not None and before.year == 2020
    assert not cuff.clock_set

    clinic_time = datetime(2025, 3, 4, 9, 30, 0)
    await session.write(gatt.CURRENT_TIME, bytes(CurrentTime.from_datetime(clinic_time)))
    await cuff.measure()

    stamped = BloodPressureMeasurement.from_bytes(
        await session.next(gatt.BLOOD_PRESSURE_MEASUREMENT)
    ).timestamp
    assert cuff.clock_set
    assert stamped is not None
    assert clinic_time <= stamped <= clinic_time + timedelta(minutes=5)
