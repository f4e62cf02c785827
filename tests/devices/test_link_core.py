"""The link's functional core: dedupe keys, clock correction, what to ask the RACP for."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from devices.bps import (
    BloodPressureMeasurement,
    EnhancedBloodPressureMeasurement,
    PressureUnit,
    RacpOperator,
)
from devices.events import CuffIdentity, MeasurementReceived
from devices.link import (
    ClockObservation,
    DeliveredReadings,
    ReadingContext,
    ReadingKey,
    as_measurement,
    cuff_key,
    cuff_time_to_utc,
    earlier_offset,
    next_records_request,
    reading_event,
    reading_key,
)

CLINIC = ZoneInfo("Europe/Berlin")  # UTC+1 in March
ADDRESS = "F0:00:00:00:00:01"
CONNECTED_AT = datetime(2025, 3, 14, 9, 0, 0, tzinfo=UTC)  # 10:00 in the clinic


def reading(
    timestamp: datetime | None,
    user_id: int | None = 1,
    systolic: float = 120.0,
    diastolic: float = 80.0,
) -> BloodPressureMeasurement:
    return BloodPressureMeasurement(
        PressureUnit.MMHG, systolic, diastolic, 93.0, timestamp=timestamp, user_id=user_id
    )


def observed(offset: timedelta) -> ClockObservation:
    """The cuff's clock read at CONNECTED_AT, `offset` ahead of the clinic's."""
    return ClockObservation(datetime(2025, 3, 14, 10, 0, 0) + offset, CONNECTED_AT, CLINIC)


# --- dedupe --------------------------------------------------------------------------------


def test_same_cuff_user_and_timestamp_is_the_same_reading() -> None:
    stamp = datetime(2025, 3, 14, 9, 30)
    assert reading_key(ADDRESS, reading(stamp), None) == reading_key(
        ADDRESS.lower(), reading(stamp), None
    )


def test_live_indication_and_its_later_record_share_a_key() -> None:
    stamp = datetime(2025, 3, 14, 9, 30)
    assert reading_key(ADDRESS, reading(stamp), None) == reading_key(ADDRESS, reading(stamp), 17)


def test_different_users_are_different_readings() -> None:
    stamp = datetime(2025, 3, 14, 9, 30)
    assert reading_key(ADDRESS, reading(stamp, 1), None) != reading_key(
        ADDRESS, reading(stamp, 2), None
    )


def test_missing_user_id_counts_as_the_unknown_user() -> None:
    stamp = datetime(2025, 3, 14, 9, 30)
    assert reading_key(ADDRESS, reading(stamp, None), None) == reading_key(
        ADDRESS, reading(stamp, 0xFF), None
    )


def test_record_without_timestamp_is_keyed_by_sequence_number() -> None:
    key = reading_key(ADDRESS, reading(None), 5)
    assert key is not None and (key.timestamp, key.sequence_number) == (None, 5)
    assert key == reading_key(ADDRESS, reading(None), 5)
    assert key != reading_key(ADDRESS, reading(None), 6)


def test_a_new_reading_stamped_like_an_earlier_one_is_not_a_replay() -> None:
    """#18: a cuff whose clock was reset stamps a new reading with an earlier one's time;
    taking it for a replay dropped it."""
    stamp = datetime(2020, 1, 1, 0, 0, 39)
    assert reading_key(ADDRESS, reading(stamp, systolic=117, diastolic=70), None) != (
        reading_key(ADDRESS, reading(stamp, systolic=113, diastolic=68), None)
    )


def test_reading_without_timestamp_or_sequence_number_cannot_be_deduplicated() -> None:
    assert reading_key(ADDRESS, reading(None), None) is None


def test_delivered_readings_forget_the_oldest_beyond_capacity() -> None:
    delivered = DeliveredReadings(capacity=2)
    keys = [ReadingKey(ADDRESS, 1, None, n) for n in range(3)]
    for key in keys:
        delivered.add(key)
    assert keys[0] not in delivered
    assert keys[1] in delivered and keys[2] in delivered


# --- the cuff key the clinic stores a reading under -----------------------------------------


def test_cuff_key_names_the_raw_timestamp_user_and_values() -> None:
    key = cuff_key(reading(datetime(2025, 3, 14, 9, 30, 5)), None, CONNECTED_AT)
    assert key == "2025-03-14T09:30:05 u1 120/80/93 mmHg p-"


def test_live_indication_and_its_later_record_share_a_cuff_key() -> None:
    stamp = datetime(2025, 3, 14, 9, 30)
    later = CONNECTED_AT + timedelta(hours=1)
    assert cuff_key(reading(stamp), None, CONNECTED_AT) == cuff_key(reading(stamp), 17, later)


def test_different_values_at_the_same_cuff_time_are_different_readings() -> None:
    """A cuff whose clock reset to 2000 stamps a new reading with an old one's time."""
    stamp = datetime(2000, 1, 1, 0, 1, 1)
    other = BloodPressureMeasurement(PressureUnit.MMHG, 150.0, 95.0, 113.0, stamp, user_id=1)
    assert cuff_key(reading(stamp), None, CONNECTED_AT) != cuff_key(other, None, CONNECTED_AT)


def test_record_without_timestamp_has_a_cuff_key_by_sequence_number() -> None:
    assert cuff_key(reading(None), 5, CONNECTED_AT).startswith("seq5 u1 ")


def test_reading_without_timestamp_or_sequence_is_keyed_by_its_receipt() -> None:
    key = cuff_key(reading(None), None, CONNECTED_AT)
    assert key.startswith("rx2025-03-14T09:00:00.000000+00:00 u1 ")


def test_cuff_key_does_not_depend_on_the_clock_correction() -> None:
    """A restarted daemon does not know when the clock was set; the key must not care."""
    stamp = datetime(2025, 3, 14, 7, 30)
    received = CONNECTED_AT + timedelta(seconds=2)
    first = ReadingContext(
        CuffIdentity(ADDRESS),
        CLINIC,
        observed(-timedelta(hours=2)),
        CONNECTED_AT + timedelta(seconds=1),
    )
    after_restart = ReadingContext(CuffIdentity(ADDRESS), CLINIC)
    raw = bytes(reading(stamp))
    events = [reading_event(context, raw, received, 3)[0] for context in (first, after_restart)]
    assert all(isinstance(e, MeasurementReceived) for e in events)
    keyed = [e for e in events if isinstance(e, MeasurementReceived)]
    assert keyed[0].measured_at != keyed[1].measured_at
    assert keyed[0].cuff_key == keyed[1].cuff_key


# --- clock correction ----------------------------------------------------------------------


def test_reading_without_timestamp_was_taken_when_received() -> None:
    received = CONNECTED_AT + timedelta(seconds=3)
    assert cuff_time_to_utc(None, received_at=received, zone=CLINIC) == received


def test_unobserved_clock_is_trusted_in_the_clinic_zone() -> None:
    measured = cuff_time_to_utc(datetime(2025, 3, 14, 9, 30), received_at=CONNECTED_AT, zone=CLINIC)
    assert measured == datetime(2025, 3, 14, 8, 30, tzinfo=UTC)


def test_stored_reading_from_a_clock_two_hours_behind_is_moved_forward() -> None:
    clock = observed(-timedelta(hours=2))  # cuff showed 08:00 at 10:00
    measured = cuff_time_to_utc(
        datetime(2025, 3, 14, 7, 30),  # 09:30 really
        received_at=CONNECTED_AT + timedelta(seconds=2),
        zone=CLINIC,
        clock=clock,
        clock_set_at=CONNECTED_AT + timedelta(seconds=1),
    )
    assert measured == datetime(2025, 3, 14, 8, 30, tzinfo=UTC)


def test_stored_reading_from_a_clock_reset_to_2000_is_moved_forward() -> None:
    offset = datetime(2000, 1, 1, 0, 5) - datetime(2025, 3, 14, 10, 0)
    measured = cuff_time_to_utc(
        datetime(2000, 1, 1, 0, 0),  # five minutes before we connected
        received_at=CONNECTED_AT + timedelta(seconds=2),
        zone=CLINIC,
        clock=observed(offset),
        clock_set_at=CONNECTED_AT + timedelta(seconds=1),
    )
    assert measured == CONNECTED_AT - timedelta(minutes=5)


def test_stored_reading_from_a_clock_ahead_is_moved_back() -> None:
    measured = cuff_time_to_utc(
        datetime(2025, 3, 14, 12, 0),  # cuff 3 h ahead: 09:00 really, an hour before now
        received_at=CONNECTED_AT + timedelta(seconds=2),
        zone=CLINIC,
        clock=observed(timedelta(hours=3)),
        clock_set_at=CONNECTED_AT + timedelta(seconds=1),
    )
    assert measured == datetime(2025, 3, 14, 8, 0, tzinfo=UTC)


def test_live_reading_after_the_clock_was_set_needs_no_correction() -> None:
    taken = datetime(2025, 3, 14, 10, 5)  # clinic time, clock already right
    measured = cuff_time_to_utc(
        taken,
        received_at=CONNECTED_AT + timedelta(minutes=5, seconds=1),
        zone=CLINIC,
        clock=observed(-timedelta(hours=2)),
        clock_set_at=CONNECTED_AT + timedelta(seconds=1),
    )
    assert measured == datetime(2025, 3, 14, 9, 5, tzinfo=UTC)


def test_live_reading_from_a_cuff_that_ran_ahead_is_not_moved_back() -> None:
    measured = cuff_time_to_utc(
        datetime(2025, 3, 14, 10, 5),
        received_at=CONNECTED_AT + timedelta(minutes=5, seconds=1),
        zone=CLINIC,
        clock=observed(timedelta(hours=3)),
        clock_set_at=CONNECTED_AT + timedelta(seconds=1),
    )
    assert measured == datetime(2025, 3, 14, 9, 5, tzinfo=UTC)


def test_reading_received_before_the_clock_was_set_is_corrected() -> None:
    measured = cuff_time_to_utc(
        datetime(2025, 3, 14, 10, 0),
        received_at=CONNECTED_AT,
        zone=CLINIC,
        clock=observed(timedelta(minutes=10)),
        clock_set_at=CONNECTED_AT + timedelta(seconds=1),
    )
    assert measured == CONNECTED_AT - timedelta(minutes=10)


def test_without_setting_the_clock_every_reading_is_corrected() -> None:
    measured = cuff_time_to_utc(
        datetime(2025, 3, 14, 10, 15),
        received_at=CONNECTED_AT + timedelta(minutes=20),
        zone=CLINIC,
        clock=observed(timedelta(minutes=10)),
    )
    assert measured == CONNECTED_AT + timedelta(minutes=5)


# --- corrections remembered from earlier settings of the clock ----------------------------

RESET = datetime(2020, 1, 1, 0, 0)


def reset_observed_at(minutes_after_reset: int, at: datetime) -> ClockObservation:
    """The cuff's clock, reset to 2020 by a battery change, read at `at`."""
    return ClockObservation(RESET + timedelta(minutes=minutes_after_reset), at, CLINIC)


def test_a_record_stamped_before_an_earlier_setting_gets_that_settings_offset() -> None:
    first_contact = CONNECTED_AT - timedelta(hours=1)  # 09:00 in the clinic, 00:30 on the cuff
    earlier = reset_observed_at(30, first_contact)
    measured = cuff_time_to_utc(
        RESET + timedelta(minutes=10),
        received_at=CONNECTED_AT + timedelta(seconds=2),
        zone=CLINIC,
        clock=observed(timedelta(0)),  # right since the first daemon set it
        clock_set_at=CONNECTED_AT + timedelta(seconds=1),
        earlier=[earlier],
    )
    assert measured == first_contact - timedelta(minutes=20)


def test_a_record_stamped_after_an_earlier_setting_is_left_alone() -> None:
    earlier = reset_observed_at(30, CONNECTED_AT - timedelta(hours=1))
    stamp = datetime(2025, 3, 14, 9, 40)  # clinic time, after that setting
    measured = cuff_time_to_utc(
        stamp,
        received_at=CONNECTED_AT + timedelta(seconds=2),
        zone=CLINIC,
        clock=observed(timedelta(0)),
        clock_set_at=CONNECTED_AT + timedelta(seconds=1),
        earlier=[earlier],
    )
    assert measured == stamp.replace(tzinfo=CLINIC).astimezone(UTC)


def test_the_most_recent_earlier_setting_that_covers_the_stamp_wins() -> None:
    """Two battery changes: a stamp from after the second reset takes the second offset."""
    first = reset_observed_at(30, CONNECTED_AT - timedelta(days=2))
    second = reset_observed_at(45, CONNECTED_AT - timedelta(hours=1))
    assert earlier_offset(RESET + timedelta(minutes=5), [first, second]) == second.offset


def test_a_clock_that_ran_ahead_is_not_used_for_earlier_stamps() -> None:
    ahead = observed(timedelta(hours=3))
    assert earlier_offset(datetime(2025, 3, 14, 11, 0), [ahead]) is None


# --- records -------------------------------------------------------------------------------


def test_first_contact_asks_for_every_record() -> None:
    assert next_records_request(None).operator is RacpOperator.ALL


def test_later_contacts_ask_for_records_after_the_last_one() -> None:
    request = next_records_request(41)
    assert (request.operator, request.min_sequence_number) == (
        RacpOperator.GREATER_THAN_OR_EQUAL,
        42,
    )


def test_enhanced_record_becomes_a_measurement_with_its_display_time() -> None:
    enhanced = EnhancedBloodPressureMeasurement(
        PressureUnit.KPA,
        16.0,
        10.6,
        12.4,
        timestamp=datetime(2025, 3, 14, 9, 0, tzinfo=UTC),
        user_facing_time=datetime(2025, 3, 14, 10, 0),
    )
    converted = as_measurement(enhanced)
    assert converted.timestamp == datetime(2025, 3, 14, 10, 0)
    assert math.isclose(converted.pressures_mmhg[0], 16.0 * 7.50062)
