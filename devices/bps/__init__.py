"""Blood Pressure Service codec: one set of value types for the cuff and the central.

Every characteristic value is a small immutable dataclass (or an ``IntFlag``) with
``from_bytes(data)`` and ``__bytes__()``, so the simulator (server) and the daemon (client)
share one codec and ``from_bytes(bytes(x)) == x`` holds for every value the constructor
accepts. Field order follows the GATT Specification Supplement (GSS) tables top to bottom.

Decoders raise :class:`MalformedPayload` (a ``ValueError``) naming the characteristic, the
field and the byte offset for anything they cannot decode faithfully: short payloads,
reserved flag bits that announce fields we cannot parse, out-of-range values, trailing
bytes. Nothing else escapes a decoder: no ``IndexError``, no ``struct.error``.

Pressures are kept in the unit the cuff sent (``unit``); ``pressures_mmhg`` converts once,
here, for everything downstream. A NaN pressure (a failed reading) round-trips as NaN;
compare such values by their bytes, since NaN != NaN.

What is here, in spec order:
- SFLOAT: ``decode_sfloat`` / ``encode_sfloat`` and the ``SFLOAT_*`` special values.
- 0x2A35 ``BloodPressureMeasurement``, 0x2A36 ``IntermediateCuffPressure`` (with
  ``PressureUnit``, ``MeasurementStatus``, ``PulseRateRange``), 0x2A49
  ``BloodPressureFeature``, 0x2B34 ``EnhancedBloodPressureMeasurement``.
- 0x2A08 ``DateTime``, 0x2A2B ``CurrentTime``, 0x2A19 ``BatteryLevel``.
- 0x2A52 Record Access Control Point: ``RacpRequest`` (``parse`` for a server),
  ``RacpResponse``, ``RacpNumberOfRecords``, ``decode_racp_indication``.
- 0x2B36 ``BloodPressureRecord`` segments, ``segment_record`` (server) and
  ``BloodPressureRecordAssembler`` (client) giving a ``StoredRecord``.
"""

from __future__ import annotations

from devices.bps.feature import (
    _NO_ADJUSTMENT as _NO_ADJUSTMENT,
)
from devices.bps.feature import (
    AdjustReason as AdjustReason,
)
from devices.bps.feature import (
    BatteryLevel as BatteryLevel,
)
from devices.bps.feature import (
    BloodPressureFeature as BloodPressureFeature,
)
from devices.bps.feature import (
    CurrentTime as CurrentTime,
)
from devices.bps.measurement import (
    _BPM_FLAGS_RFU as _BPM_FLAGS_RFU,
)
from devices.bps.measurement import (
    _BPM_MEASUREMENT_STATUS_PRESENT as _BPM_MEASUREMENT_STATUS_PRESENT,
)
from devices.bps.measurement import (
    _BPM_PULSE_RATE_PRESENT as _BPM_PULSE_RATE_PRESENT,
)
from devices.bps.measurement import (
    _BPM_TIME_STAMP_PRESENT as _BPM_TIME_STAMP_PRESENT,
)
from devices.bps.measurement import (
    _BPM_UNITS_KPA as _BPM_UNITS_KPA,
)
from devices.bps.measurement import (
    _BPM_USER_ID_PRESENT as _BPM_USER_ID_PRESENT,
)
from devices.bps.measurement import (
    UNKNOWN_USER as UNKNOWN_USER,
)
from devices.bps.measurement import (
    BloodPressureMeasurement as BloodPressureMeasurement,
)
from devices.bps.measurement import (
    BloodPressureMeasurementFlags as BloodPressureMeasurementFlags,
)
from devices.bps.measurement import (
    IntermediateCuffPressure as IntermediateCuffPressure,
)
from devices.bps.measurement import (
    _Frame as _Frame,
)
from devices.bps.measurement import (
    _read_frame as _read_frame,
)
from devices.bps.measurement import (
    _validate_common as _validate_common,
)
from devices.bps.measurement import (
    _write_frame as _write_frame,
)
from devices.bps.racp import (
    _RACP as _RACP,
)
from devices.bps.racp import (
    _RACP_BOUNDS as _RACP_BOUNDS,
)
from devices.bps.racp import (
    _RACP_RECORD_OP_CODES as _RACP_RECORD_OP_CODES,
)
from devices.bps.racp import (
    RacpFilterType as RacpFilterType,
)
from devices.bps.racp import (
    RacpIndication as RacpIndication,
)
from devices.bps.racp import (
    RacpNumberOfRecords as RacpNumberOfRecords,
)
from devices.bps.racp import (
    RacpOpCode as RacpOpCode,
)
from devices.bps.racp import (
    RacpOperator as RacpOperator,
)
from devices.bps.racp import (
    RacpRequest as RacpRequest,
)
from devices.bps.racp import (
    RacpRequestRejected as RacpRequestRejected,
)
from devices.bps.racp import (
    RacpResponse as RacpResponse,
)
from devices.bps.racp import (
    RacpResponseCode as RacpResponseCode,
)
from devices.bps.racp import (
    _expect_racp_header as _expect_racp_header,
)
from devices.bps.racp import (
    decode_racp_indication as decode_racp_indication,
)
from devices.bps.record import (
    _EBPM_FLAGS_RFU as _EBPM_FLAGS_RFU,
)
from devices.bps.record import (
    _RECORD as _RECORD,
)
from devices.bps.record import (
    _RECORD_HEADER_SIZE as _RECORD_HEADER_SIZE,
)
from devices.bps.record import (
    _SEGMENT_COUNTER_MODULUS as _SEGMENT_COUNTER_MODULUS,
)
from devices.bps.record import (
    DEFAULT_MAX_SEGMENT_SIZE as DEFAULT_MAX_SEGMENT_SIZE,
)
from devices.bps.record import (
    BloodPressureRecord as BloodPressureRecord,
)
from devices.bps.record import (
    BloodPressureRecordAssembler as BloodPressureRecordAssembler,
)
from devices.bps.record import (
    EnhancedBloodPressureMeasurement as EnhancedBloodPressureMeasurement,
)
from devices.bps.record import (
    EnhancedBloodPressureMeasurementFlags as EnhancedBloodPressureMeasurementFlags,
)
from devices.bps.record import (
    EpochStart as EpochStart,
)
from devices.bps.record import (
    StoredRecord as StoredRecord,
)
from devices.bps.record import (
    _epoch_seconds as _epoch_seconds,
)
from devices.bps.record import (
    e2e_crc as e2e_crc,
)
from devices.bps.record import (
    segment_record as segment_record,
)
from devices.bps.support import (
    _SFLOAT_EXPONENT_MAX as _SFLOAT_EXPONENT_MAX,
)
from devices.bps.support import (
    _SFLOAT_EXPONENT_MIN as _SFLOAT_EXPONENT_MIN,
)
from devices.bps.support import (
    _SFLOAT_MANTISSA_MAX as _SFLOAT_MANTISSA_MAX,
)
from devices.bps.support import (
    _SFLOAT_MANTISSA_MIN as _SFLOAT_MANTISSA_MIN,
)
from devices.bps.support import (
    _YEAR_MAX as _YEAR_MAX,
)
from devices.bps.support import (
    _YEAR_MIN as _YEAR_MIN,
)
from devices.bps.support import (
    MMHG_PER_KPA as MMHG_PER_KPA,
)
from devices.bps.support import (
    SFLOAT_NAN as SFLOAT_NAN,
)
from devices.bps.support import (
    SFLOAT_NEGATIVE_INFINITY as SFLOAT_NEGATIVE_INFINITY,
)
from devices.bps.support import (
    SFLOAT_NRES as SFLOAT_NRES,
)
from devices.bps.support import (
    SFLOAT_POSITIVE_INFINITY as SFLOAT_POSITIVE_INFINITY,
)
from devices.bps.support import (
    SFLOAT_RESERVED as SFLOAT_RESERVED,
)
from devices.bps.support import (
    SFLOAT_SPECIAL_VALUES as SFLOAT_SPECIAL_VALUES,
)
from devices.bps.support import (
    DateTime as DateTime,
)
from devices.bps.support import (
    MalformedPayload as MalformedPayload,
)
from devices.bps.support import (
    MeasurementStatus as MeasurementStatus,
)
from devices.bps.support import (
    PressureUnit as PressureUnit,
)
from devices.bps.support import (
    PulseRateRange as PulseRateRange,
)
from devices.bps.support import (
    _check_range as _check_range,
)
from devices.bps.support import (
    _check_sfloat as _check_sfloat,
)
from devices.bps.support import (
    _check_timestamp as _check_timestamp,
)
from devices.bps.support import (
    _Reader as _Reader,
)
from devices.bps.support import (
    _sfloat_fits as _sfloat_fits,
)
from devices.bps.support import (
    _to_mmhg as _to_mmhg,
)
from devices.bps.support import (
    _WallClock as _WallClock,
)
from devices.bps.support import (
    decode_sfloat as decode_sfloat,
)
from devices.bps.support import (
    encode_sfloat as encode_sfloat,
)
