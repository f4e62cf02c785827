"""A cuff's frame as the event the daemon gets: the link's functional core, pure and
clock-injected, shared by the link (`devices.link`) and the measurement inbox
(`devices.inbox`), which replays a frame after a crash exactly as the link would have
delivered it.

`reading_key` and `cuff_key` say when two frames are the same reading,
`cuff_time_to_utc` when a reading was really taken, `DeliveredReadings` and `CuffMemory`
what a cuff's links remember between connections.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Final

from devices.bps import (
    BloodPressureMeasurement,
    EnhancedBloodPressureMeasurement,
    MalformedPayload,
    RacpRequest,
)
from devices.events import (
    CuffIdentity,
    MeasurementFailed,
    MeasurementReceived,
)
from devices.quirks import decode_measurement

# A live reading's cuff timestamp lies between the moment we set the clock and its
# receipt; this much slack covers the clock's 1 s resolution and a measurement stamped
# when it started rather than when it ended (IEC 80601-2-30 cuffs take 30-60 s).
LIVE_STAMP_TOLERANCE: Final = timedelta(seconds=60)
# How many delivered reading keys a cuff remembers (a cuff stores at most a few hundred).
DELIVERED_MEMORY: Final = 4096
UNKNOWN_USER_KEY: Final = 0xFF


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ReadingKey:
    """What makes a reading the same reading when a cuff sends it again.

    Cuff + user + the cuff's own timestamp (as stamped, before any clock correction, so a
    replay matches whatever we learnt about the clock since) + the values it carries. A
    BPS 1.1 cuff indicates a reading live on 0x2A35 (no sequence number) and later serves
    it as a record (with one), so the sequence number joins the key only when there is no
    timestamp. The values are part of it because a cuff whose clock was reset (a battery
    change) stamps a new reading with a time an earlier one already had: without them the
    new reading was taken for a replay and dropped (found by the power-cut test, #18).
    """

    address: str
    user_id: int
    timestamp: datetime | None
    sequence_number: int | None
    values: tuple[float | None, ...] = ()


def reading_key(
    address: str, measurement: BloodPressureMeasurement, sequence_number: int | None
) -> ReadingKey | None:
    """The dedupe key, or None when nothing identifies the reading (no timestamp, no
    sequence number): such a reading is delivered every time it arrives."""
    user = measurement.user_id if measurement.user_id is not None else UNKNOWN_USER_KEY
    values = _values_of(measurement)
    if measurement.timestamp is not None:
        return ReadingKey(address.upper(), user, measurement.timestamp, None, values)
    if sequence_number is not None:
        return ReadingKey(address.upper(), user, None, sequence_number, values)
    return None


def _values_of(measurement: BloodPressureMeasurement) -> tuple[float | None, ...]:
    """The pressures and pulse as sent (NaN, which never equals itself, as None)."""
    sent = (
        measurement.systolic,
        measurement.diastolic,
        measurement.mean_arterial_pressure,
        measurement.pulse_rate,
    )
    return tuple(None if v is None or math.isnan(v) else float(v) for v in sent)


def cuff_key(
    measurement: BloodPressureMeasurement, sequence_number: int | None, received_at: datetime
) -> str:
    """The reading's identity from what the cuff itself sent, for the clinic's unique
    (cuff address, cuff key): the raw cuff timestamp (never corrected: the correction
    depends on when a daemon set the clock, which a restarted daemon does not know), the
    user, the values, and the BPS 1.1 sequence number only when there is no timestamp (a
    reading indicated live on 0x2A35 is later served as a record with one; both must give
    the same key, as in `reading_key`). Without either, nothing the cuff sent tells two
    readings apart: the key is the moment we received it, which is still stable when the
    same frame is replayed from the inbox after a crash.

    E.g. ``"2026-11-27T01:08:47 u1 120/80/93 mmHg p72"``.
    """
    user = measurement.user_id if measurement.user_id is not None else UNKNOWN_USER_KEY
    if measurement.timestamp is not None:
        when = measurement.timestamp.replace(tzinfo=None).isoformat(timespec="seconds")
    elif sequence_number is not None:
        when = f"seq{sequence_number}"
    else:
        when = "rx" + received_at.astimezone(UTC).isoformat(timespec="microseconds")
    pressures = "/".join(
        f"{value:g}"
        for value in (
            measurement.systolic,
            measurement.diastolic,
            measurement.mean_arterial_pressure,
        )
    )
    pulse = "-" if measurement.pulse_rate is None else f"{measurement.pulse_rate:g}"
    return f"{when} u{user} {pressures} {measurement.unit.value} p{pulse}"


class DeliveredReadings:
    """The keys of readings the daemon has stored, oldest forgotten first."""

    def __init__(self, capacity: int = DELIVERED_MEMORY) -> None:
        self._keys: OrderedDict[ReadingKey, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, key: object) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)

    def add(self, key: ReadingKey) -> None:
        self._keys[key] = None
        self._keys.move_to_end(key)
        while len(self._keys) > self._capacity:
            self._keys.popitem(last=False)


@dataclass(frozen=True)
class ClockObservation:
    """The cuff's clock as we read it on connecting, before setting it.

    ``cuff_clock`` is the naive wall-clock time the cuff showed; ``observed_at`` (UTC)
    when we read it; ``zone`` the zone cuffs are set to (the clinic's).
    """

    cuff_clock: datetime
    observed_at: datetime
    zone: tzinfo

    @property
    def local_now(self) -> datetime:
        return self.observed_at.astimezone(self.zone).replace(tzinfo=None)

    @property
    def offset(self) -> timedelta:
        """How far the cuff's clock was ahead (positive) or behind (negative), to the
        second: the resolution of the clock (Date Time, GSS 3.70)."""
        return timedelta(seconds=round((self.cuff_clock - self.local_now).total_seconds()))


def cuff_time_to_utc(
    timestamp: datetime | None,
    *,
    received_at: datetime,
    zone: tzinfo,
    clock: ClockObservation | None = None,
    clock_set_at: datetime | None = None,
    earlier: Sequence[ClockObservation] = (),
) -> datetime:
    """When a reading was really taken, in UTC.

    A cuff stamps readings with its own naive clock. If we observed that clock on this
    connection, a reading stamped before we set it is corrected by the offset we saw; a
    reading stamped after we set it needs no correction. Which is which: a reading
    received before the clock was set was stamped before; one received after is live if
    its stamp falls between the setting and its receipt (give or take
    `LIVE_STAMP_TOLERANCE`), and stored otherwise. (A cuff running ahead by D can put a
    stored reading taken exactly D before now inside that window; then it is read as
    live.) Without a timestamp the reading was taken when it arrived (`received_at`).

    A reading stamped before an `earlier` setting of the clock (on an earlier connection
    or by a daemon since restarted: a reading taken before the first setting and not
    collected then) is corrected by the offset observed then, when the correction from
    this connection's own observation would leave it where it is (`earlier_offset`).
    """
    if timestamp is None:
        return received_at
    local = timestamp
    if clock is not None:
        corrected = timestamp - clock.offset
        if clock_set_at is None or received_at < clock_set_at:
            local = corrected
        else:
            set_local = clock_set_at.astimezone(zone).replace(tzinfo=None)
            received_local = received_at.astimezone(zone).replace(tzinfo=None)
            live = (
                set_local - LIVE_STAMP_TOLERANCE
                <= timestamp
                <= received_local + LIVE_STAMP_TOLERANCE
            )
            stored = timestamp <= clock.cuff_clock + LIVE_STAMP_TOLERANCE
            local = corrected if stored and not live else timestamp
    if abs(local - timestamp) <= LIVE_STAMP_TOLERANCE:
        offset = earlier_offset(timestamp, earlier)
        if offset is not None:
            local = timestamp - offset
    return local.replace(tzinfo=zone).astimezone(UTC)


def is_clock_behind(observation: ClockObservation) -> bool:
    """Behind by more than the stamp tolerance (a clock reset to its 2020 default, say):
    only such a setting is worth remembering, because only its stamps can be told from
    later ones (everything stamped before it is earlier than everything after it)."""
    return observation.offset < -LIVE_STAMP_TOLERANCE


def earlier_offset(timestamp: datetime, earlier: Sequence[ClockObservation]) -> timedelta | None:
    """The offset of the most recent earlier setting of a clock that was behind, if the
    stamp was made before it (at or before what the cuff showed then); None otherwise.
    A clock that ran ahead is not remembered: its old stamps overlap the true times that
    followed, and nothing tells them apart."""
    for observation in reversed(earlier):
        if is_clock_behind(observation) and timestamp <= (
            observation.cuff_clock + LIVE_STAMP_TOLERANCE
        ):
            return observation.offset
    return None


def next_records_request(last_sequence_number: int | None) -> RacpRequest:
    """BPS 1.1 3.5.2: everything on first contact, then what came after the last record."""
    if last_sequence_number is None:
        return RacpRequest.report_all()
    return RacpRequest.report_from(min(last_sequence_number + 1, 0xFFFF))


def as_measurement(
    recorded: BloodPressureMeasurement | EnhancedBloodPressureMeasurement,
) -> BloodPressureMeasurement:
    """An Enhanced Blood Pressure Measurement (BPS 1.1, 0x2B34) in the 0x2A35 shape the
    daemon consumes; its display time stands in for the local timestamp."""
    if isinstance(recorded, BloodPressureMeasurement):
        return recorded
    return BloodPressureMeasurement(
        recorded.unit,
        recorded.systolic,
        recorded.diastolic,
        recorded.mean_arterial_pressure,
        timestamp=recorded.user_facing_time,
        pulse_rate=recorded.pulse_rate,
        user_id=recorded.user_id,
        status=recorded.status,
    )


@dataclass(frozen=True)
class ReadingContext:
    """What the link knew about a cuff when one of its frames arrived: enough to turn the
    frame into the same event now or, replayed from the inbox, after a restart."""

    identity: CuffIdentity
    zone: tzinfo
    clock: ClockObservation | None = None
    clock_set_at: datetime | None = None
    earlier: tuple[ClockObservation, ...] = ()
    # The frame came right after the cuff inflated on this connection: taken live.
    live: bool = False

    def measured_at(
        self,
        recorded: BloodPressureMeasurement | EnhancedBloodPressureMeasurement,
        received_at: datetime,
    ) -> datetime:
        if isinstance(recorded, EnhancedBloodPressureMeasurement) and recorded.timestamp:
            return recorded.timestamp  # already UTC (BPS 1.1)
        return cuff_time_to_utc(
            recorded.timestamp if isinstance(recorded, BloodPressureMeasurement) else None,
            received_at=received_at,
            zone=self.zone,
            clock=self.clock,
            clock_set_at=self.clock_set_at,
            earlier=self.earlier,
        )


def reading_event(
    context: ReadingContext,
    raw: bytes,
    received_at: datetime,
    sequence_number: int | None = None,
    decoded: BloodPressureMeasurement | EnhancedBloodPressureMeasurement | None = None,
) -> tuple[MeasurementReceived | MeasurementFailed, ReadingKey | None]:
    """A measurement frame as the event the daemon gets, and its dedupe key (None for a
    frame that cannot be decoded: it is reported every time)."""
    identity = context.identity
    try:
        recorded = decoded or decode_measurement(
            raw, manufacturer=identity.manufacturer, model=identity.model
        )
    except MalformedPayload as error:
        return MeasurementFailed(identity, raw, received_at, str(error)), None
    measurement = as_measurement(recorded)
    key = reading_key(identity.address, measurement, sequence_number)
    if measurement.is_error_frame:
        failed = MeasurementFailed(
            identity, raw, received_at, cuff_key=cuff_key(measurement, sequence_number, received_at)
        )
        return failed, key
    event = MeasurementReceived(
        identity,
        measurement,
        context.measured_at(recorded, received_at),
        received_at,
        raw,
        sequence_number,
        cuff_key(measurement, sequence_number, received_at),
        live=context.live and sequence_number is None,
        clock_checked=(
            context.clock is not None
            or measurement.timestamp is None
            or (isinstance(recorded, EnhancedBloodPressureMeasurement) and bool(recorded.timestamp))
        ),
    )
    return event, key


@dataclass
class CuffMemory:
    """What the supervisor keeps about a cuff between connections."""

    address: str
    identity: CuffIdentity | None = None
    last_sequence_number: int | None = None
    delivered: DeliveredReadings = field(default_factory=DeliveredReadings)
    bonded: bool = False
    # Earlier settings of its clock when it was behind (`is_clock_behind`), oldest first.
    clock_settings: list[ClockObservation] = field(default_factory=list)
