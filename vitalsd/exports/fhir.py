"""A session as a FHIR R4 `Bundle` (type `collection`) for the patient's chart.

Pure: `session_bundle(record, now=...)` returns JSON-ready dicts; it never reads a clock.

What goes in (issue #8, DESIGN.md "Interfaces ... FHIR"):
- the Patient, as far as the clinic entered it;
- a Device per cuff, with manufacturer, model and serial from Device Information;
- per reading, an Observation on the R4 vital-signs blood-pressure profile
  (http://hl7.org/fhir/StructureDefinition/bp): LOINC 85354-9 with components 8480-6 /
  8462-4, each also coded in IEEE 11073-10101 (MDC), UCUM `mm[Hg]`;
- per reading with a pulse, a heart-rate Observation (LOINC 8867-4, `/min`);
- per reading with measurement-status flags, a "measurement status" Observation
  (MDC_BLOOD_PRESSURE_MEASUREMENT_STATUS) whose `derivedFrom` names the blood-pressure
  Observation, as the HL7 Personal Health Device IG's example does
  (https://hl7.org/fhir/uv/phd/STU2/en/Observation-bpm-status.html);
- per side effect, an Observation with a text code and the severity.

Resource ids are name-based UUIDs (RFC 4122 version 5) of the site and the stored row,
so exporting the same session twice gives the same ids and a receiving server can
de-duplicate. References inside the bundle use the entries' `urn:uuid:` full URLs.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, tzinfo
from typing import Any, Final

from vitalsd.exports.record import (
    DeviceRecord,
    PatientRecord,
    ReadingRecord,
    SessionRecord,
    SideEffectRecord,
)

Json = dict[str, Any]

LOINC: Final = "http://loinc.org"
# IEEE 11073-10101 nomenclature (MDC), as FHIR names it.
MDC: Final = "urn:iso:std:iso:11073:10101"
UCUM: Final = "http://unitsofmeasure.org"
OBSERVATION_CATEGORY: Final = "http://terminology.hl7.org/CodeSystem/observation-category"
DATA_ABSENT_REASON: Final = "http://terminology.hl7.org/CodeSystem/data-absent-reason"
# PHD IG STU 2: the bits of an ASN.1 BITS measurement, code "<MDC code>.<bit>".
ASN1_TO_HL7: Final = "http://terminology.hl7.org/CodeSystem/ASN1ToHL7"
PHD_OBSERVATION_CATEGORIES: Final = "http://hl7.org/fhir/uv/phd/CodeSystem/PhdObservationCategories"
# HL7 v2 table 0136 (Yes/No), the value of each reported status bit in the PHD IG.
YES_NO: Final = "http://terminology.hl7.org/CodeSystem/v2-0136"
BLUETOOTH_MAC: Final = "http://hl7.org/fhir/sid/eui-48/bluetooth"
CONTINUA_DEVICE_IDENTIFIERS: Final = (
    "http://hl7.org/fhir/uv/phd/CodeSystem/ContinuaDeviceIdentifiers"
)

PROFILE_BP: Final = "http://hl7.org/fhir/StructureDefinition/bp"
PROFILE_HEART_RATE: Final = "http://hl7.org/fhir/StructureDefinition/heartrate"

# R4 vital-signs profile bp: panel code and component codes (LOINC) with their MDC
# equivalents as the PHD IG's compound blood-pressure example codes them
# (https://hl7.org/fhir/uv/phd/STU2/en/Observation-compound-numeric-blood-pressure.html):
# 150020 MDC_PRESS_BLD_NONINV (the compound), 150021 systolic, 150022 diastolic,
# 150023 mean. LOINC 8478-0 is "Mean blood pressure".
BP_PANEL = ((LOINC, "85354-9", "Blood pressure panel"), (MDC, "150020", "MDC_PRESS_BLD_NONINV"))
SYSTOLIC = (
    (LOINC, "8480-6", "Systolic blood pressure"),
    (MDC, "150021", "MDC_PRESS_BLD_NONINV_SYS"),
)
DIASTOLIC = (
    (LOINC, "8462-4", "Diastolic blood pressure"),
    (MDC, "150022", "MDC_PRESS_BLD_NONINV_DIA"),
)
MEAN = ((LOINC, "8478-0", "Mean blood pressure"), (MDC, "150023", "MDC_PRESS_BLD_NONINV_MEAN"))
# R4 vital-signs profile heartrate: LOINC 8867-4; MDC 149546 is the pulse rate a
# non-invasive blood-pressure monitor reports (MDC_PULS_RATE_NON_INV).
HEART_RATE = ((LOINC, "8867-4", "Heart rate"), (MDC, "149546", "MDC_PULS_RATE_NON_INV"))
# PHD IG: MDC_BLOOD_PRESSURE_MEASUREMENT_STATUS (an IEEE 11073-10407 BITS-16 value).
MEASUREMENT_STATUS = ((MDC, "8410608", "MDC_BLOOD_PRESSURE_MEASUREMENT_STATUS"),)
# PHD IG: MDC_DEV_SPEC_PROFILE_BPM, a blood-pressure monitor.
BPM_DEVICE_TYPE = ((MDC, "528391", "MDC_DEV_SPEC_PROFILE_BPM"),)

# Our reading flags (GATT Specification Supplement 3.31.2.6, Measurement Status) to the
# IEEE 11073-10407 measurement-status bits of the PHD IG's ASN1ToHL7 code system.
# `pulse_rate_range` says "outside the cuff's range" without saying which side, so it
# has no single bit (8410608.3 is over, .4 under): it is sent as text only.
STATUS_BITS: Final[dict[str, tuple[str | None, str]]] = {
    "body_movement": ("8410608.0", "body-movement"),
    "cuff_too_loose": ("8410608.1", "cuff-too-loose"),
    "irregular_pulse": ("8410608.2", "irregular-pulse"),
    "pulse_rate_exceeds_upper_limit": ("8410608.3", "pulse-over-range-limit"),
    "pulse_rate_less_than_lower_limit": ("8410608.4", "pulse-under-range-limit"),
    "improper_position": ("8410608.5", "improper-body-position"),
    "pulse_rate_range": (None, "pulse rate outside the cuff's measuring range"),
}

DEFAULT_SITE: Final = "vitalsd"
_UUID_NAMESPACE: Final = uuid.uuid5(uuid.NAMESPACE_URL, "urn:vitalsd:fhir")
_EUI48 = re.compile(r"^([0-9A-Fa-f]{2})([:-][0-9A-Fa-f]{2}){5}$")


def resource_id(site: str, kind: str, key: object) -> str:
    """A stable id for one exported resource: the same row gives the same id."""
    return str(uuid.uuid5(_UUID_NAMESPACE, f"{site}/{kind}/{key}"))


def fhir_datetime(value: datetime, tz: tzinfo = UTC) -> str:
    """FHIR `dateTime`/`instant` with an offset: in UTC with a `Z` by default (issue #8),
    in the clinic's time zone `tz` with its offset when given (issue #14: a person
    reading the export sees local time; an instant with an offset is valid FHIR)."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value.isoformat()} cannot be exported")
    return value.astimezone(tz).isoformat().replace("+00:00", "Z")


def _concept(codings: tuple[tuple[str, str, str], ...], text: str | None = None) -> Json:
    concept: Json = {
        "coding": [
            {"system": system, "code": code, "display": display}
            for system, code, display in codings
        ]
    }
    if text is not None:
        concept["text"] = text
    return concept


def _quantity(value: float, unit: str, code: str) -> Json:
    return {"value": value, "unit": unit, "system": UCUM, "code": code}


def _mmhg(value: float) -> Json:
    return _quantity(value, "mmHg", "mm[Hg]")


def _reference(full_url: str, display: str | None = None) -> Json:
    reference: Json = {"reference": full_url}
    if display:
        reference["display"] = display
    return reference


_VITAL_SIGNS = {
    "coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}],
    "text": "Vital Signs",
}


def patient_resource(patient: PatientRecord, resource_uuid: str) -> Json:
    resource: Json = {"resourceType": "Patient", "id": resource_uuid}
    if patient.identifier:
        resource["identifier"] = [{"use": "usual", "value": patient.identifier}]
    if patient.display_name:
        resource["name"] = [{"text": patient.display_name}]
    if patient.date_of_birth is not None:
        resource["birthDate"] = patient.date_of_birth.isoformat()
    return resource


def device_resource(device: DeviceRecord, resource_uuid: str) -> Json:
    """A cuff as the PHD IG's PhdDevice carries it: Bluetooth address as an identifier,
    manufacturer, model and serial number, firmware revision."""
    resource: Json = {"resourceType": "Device", "id": resource_uuid}
    if _EUI48.match(device.address):
        resource["identifier"] = [
            {
                "type": {
                    "coding": [{"system": CONTINUA_DEVICE_IDENTIFIERS, "code": "BTMAC"}],
                    "text": "Bluetooth MAC address",
                },
                "system": BLUETOOTH_MAC,
                "value": device.address.replace(":", "-").upper(),
            }
        ]
    else:
        resource["identifier"] = [{"value": device.address}]
    if device.manufacturer:
        resource["manufacturer"] = device.manufacturer
    if device.serial:
        resource["serialNumber"] = device.serial
    if device.name:
        resource["deviceName"] = [{"name": device.name, "type": "user-friendly-name"}]
    if device.model:
        resource["modelNumber"] = device.model
    resource["type"] = _concept(BPM_DEVICE_TYPE, "Blood pressure monitor")
    if device.firmware:
        resource["version"] = [{"type": {"text": "firmware revision"}, "value": device.firmware}]
    return resource


def _observation_base(
    resource_uuid: str,
    effective: datetime,
    patient_url: str,
    device_url: str | None,
    manual: bool,
    tz: tzinfo = UTC,
) -> Json:
    resource: Json = {
        "resourceType": "Observation",
        "id": resource_uuid,
        "status": "final",
        "subject": _reference(patient_url),
        "effectiveDateTime": fhir_datetime(effective, tz),
    }
    if device_url is not None:
        resource["device"] = _reference(device_url)
    if manual:
        resource["method"] = {"text": "Entered by hand (manual measurement)"}
    return resource


def blood_pressure_observation(
    reading: ReadingRecord,
    resource_uuid: str,
    patient_url: str,
    device_url: str | None,
    tz: tzinfo = UTC,
) -> Json:
    """One reading on the R4 `bp` profile. A failed measurement keeps its place in the
    record with `dataAbsentReason` "error" on both components (the profile requires
    the systolic and diastolic components, each with a value or a reason)."""
    resource = _observation_base(
        resource_uuid,
        reading.measured_at,
        patient_url,
        device_url,
        reading.source == "manual",
        tz,
    )
    resource["meta"] = {"profile": [PROFILE_BP]}
    resource["category"] = [_VITAL_SIGNS]
    resource["code"] = _concept(BP_PANEL, "Blood pressure")
    components: list[Json] = []
    for codings, text, value in (
        (SYSTOLIC, "Systolic blood pressure", reading.systolic),
        (DIASTOLIC, "Diastolic blood pressure", reading.diastolic),
    ):
        component: Json = {"code": _concept(codings, text)}
        if reading.valid and value is not None:
            component["valueQuantity"] = _mmhg(value)
        else:
            component["dataAbsentReason"] = {
                "coding": [{"system": DATA_ABSENT_REASON, "code": "error", "display": "Error"}]
            }
        components.append(component)
    if reading.valid and reading.mean_arterial_pressure is not None:
        components.append(
            {
                "code": _concept(MEAN, "Mean blood pressure"),
                "valueQuantity": _mmhg(reading.mean_arterial_pressure),
            }
        )
    resource["component"] = components
    if not reading.valid:
        reason = reading.failure_reason or "the cuff reported a failed measurement"
        resource["note"] = [{"text": f"Measurement failed: {reason}"}]
    return resource


def heart_rate_observation(
    reading: ReadingRecord,
    resource_uuid: str,
    patient_url: str,
    device_url: str | None,
    tz: tzinfo = UTC,
) -> Json:
    assert reading.pulse_rate is not None
    resource = _observation_base(
        resource_uuid, reading.measured_at, patient_url, device_url, reading.source == "manual", tz
    )
    resource["meta"] = {"profile": [PROFILE_HEART_RATE]}
    resource["category"] = [_VITAL_SIGNS]
    resource["code"] = _concept(HEART_RATE, "Heart rate")
    resource["valueQuantity"] = _quantity(reading.pulse_rate, "beats/minute", "/min")
    return resource


def measurement_status_observation(
    reading: ReadingRecord,
    resource_uuid: str,
    patient_url: str,
    device_url: str | None,
    blood_pressure_url: str,
    tz: tzinfo = UTC,
) -> Json:
    """The cuff's measurement-status bits as the PHD IG's "BITS enumeration"
    Observation: one component per reported bit, valued Y, `derivedFrom` the
    blood-pressure Observation they qualify."""
    resource = _observation_base(
        resource_uuid, reading.measured_at, patient_url, device_url, manual=False, tz=tz
    )
    resource["category"] = [{"coding": [{"system": PHD_OBSERVATION_CATEGORIES, "code": "phd"}]}]
    resource["code"] = _concept(MEASUREMENT_STATUS, "Blood pressure measurement status")
    resource["derivedFrom"] = [_reference(blood_pressure_url)]
    components: list[Json] = []
    for flag in reading.flags:
        code, text = STATUS_BITS.get(flag, (None, flag.replace("_", " ")))
        concept: Json = {"text": text}
        if code is not None:
            concept["coding"] = [{"system": ASN1_TO_HL7, "code": code, "display": text}]
        components.append(
            {
                "code": concept,
                "valueCodeableConcept": {
                    "coding": [{"system": YES_NO, "code": "Y", "display": "Yes"}]
                },
            }
        )
    resource["component"] = components
    return resource


def side_effect_observation(
    side_effect: SideEffectRecord, resource_uuid: str, patient_url: str, tz: tzinfo = UTC
) -> Json:
    """A side effect seen during the session: a text code (there is no agreed code list
    for these in the clinic's workflow) and its severity as the nurse graded it."""
    resource = _observation_base(
        resource_uuid, side_effect.observed_at, patient_url, None, manual=False, tz=tz
    )
    label = side_effect.effect.replace("_", " ")
    resource["code"] = {"text": f"Side effect: {label}"}
    resource["valueString"] = label
    resource["component"] = [{"code": {"text": "Severity"}, "valueInteger": side_effect.severity}]
    notes = [text for text in (side_effect.note,) if text]
    if side_effect.recorded_by:
        notes.append(f"Recorded by {side_effect.recorded_by}")
    if notes:
        resource["note"] = [{"text": text} for text in notes]
    return resource


def _entry(resource: Json) -> Json:
    return {"fullUrl": f"urn:uuid:{resource['id']}", "resource": resource}


def _reading_entries(
    readings: Iterable[ReadingRecord],
    patient_urls: Mapping[int | None, str],
    device_urls: Mapping[str, str],
    site: str,
    tz: tzinfo,
) -> list[Json]:
    """Per reading: its blood-pressure Observation, the pulse and the status flags."""
    entries: list[Json] = []
    for reading in readings:
        patient_url = patient_urls[reading.patient_id]
        device_url = device_urls.get(reading.device_address or "")
        bp = blood_pressure_observation(
            reading, resource_id(site, "reading-bp", reading.id), patient_url, device_url, tz
        )
        entries.append(_entry(bp))
        if reading.valid and reading.pulse_rate is not None:
            pulse = heart_rate_observation(
                reading,
                resource_id(site, "reading-pulse", reading.id),
                patient_url,
                device_url,
                tz,
            )
            entries.append(_entry(pulse))
        if reading.flags:
            status = measurement_status_observation(
                reading,
                resource_id(site, "reading-status", reading.id),
                patient_url,
                device_url,
                f"urn:uuid:{bp['id']}",
                tz,
            )
            entries.append(_entry(status))
    return entries


def _device_entries(
    readings: Iterable[ReadingRecord], known: Mapping[str, DeviceRecord], site: str
) -> tuple[list[Json], dict[str, str]]:
    """A Device per cuff that measured one of the readings, and its full URL by address."""
    entries: list[Json] = []
    urls: dict[str, str] = {}
    for address in dict.fromkeys(r.device_address for r in readings if r.device_address):
        device = device_resource(
            known.get(address) or DeviceRecord(address=address),
            resource_id(site, "device", address),
        )
        urls[address] = f"urn:uuid:{device['id']}"
        entries.append(_entry(device))
    return entries, urls


def session_bundle(
    record: SessionRecord, *, now: datetime, site: str = DEFAULT_SITE, tz: tzinfo = UTC
) -> Json:
    """The session's Bundle (type collection), timestamped `now`; times in `tz` with
    its offset (UTC by default).

    `site` makes resource ids unique across the sites of a clinic group that share
    a FHIR server (row ids repeat between databases).
    """
    patient = patient_resource(record.patient, resource_id(site, "patient", record.patient.id))
    patient_url = f"urn:uuid:{patient['id']}"
    known = {d.address: d for d in record.devices}
    devices, device_urls = _device_entries(record.readings, known, site)
    # Every reading of the session is the session's patient's, whatever its row says.
    patient_urls = {r.patient_id: patient_url for r in record.readings}
    entries = [
        _entry(patient),
        *devices,
        *_reading_entries(record.readings, patient_urls, device_urls, site, tz),
    ]
    for side_effect in record.side_effects:
        entries.append(
            _entry(
                side_effect_observation(
                    side_effect,
                    resource_id(site, "side-effect", side_effect.id),
                    patient_url,
                    tz,
                )
            )
        )

    return {
        "resourceType": "Bundle",
        "id": resource_id(site, "session-bundle", record.id),
        "type": "collection",
        "timestamp": fhir_datetime(now, tz),
        "entry": entries,
    }


def readings_bundle(
    readings: Iterable[ReadingRecord],
    patients: Iterable[PatientRecord],
    devices: Iterable[DeviceRecord],
    *,
    now: datetime,
    key: str,
    site: str = DEFAULT_SITE,
    tz: tzinfo = UTC,
) -> Json:
    """The clinic's readings of a date range as one Bundle (type collection): each
    patient once, each cuff once, the readings' Observations. A reading attached to no
    patient is left out (the blood-pressure profile requires a subject; the CSV keeps
    it). `key` names the range, so the bundle's id is stable for the same range."""
    kept = [r for r in readings if r.patient_id is not None]
    entries: list[Json] = []
    patient_urls: dict[int | None, str] = {}
    wanted = {r.patient_id for r in kept}
    for patient in patients:
        if patient.id in wanted and patient.id not in patient_urls:
            resource = patient_resource(patient, resource_id(site, "patient", patient.id))
            patient_urls[patient.id] = f"urn:uuid:{resource['id']}"
            entries.append(_entry(resource))
    for patient_id in sorted(p for p in wanted if p not in patient_urls and p is not None):
        resource = patient_resource(
            PatientRecord(id=patient_id), resource_id(site, "patient", patient_id)
        )
        patient_urls[patient_id] = f"urn:uuid:{resource['id']}"
        entries.append(_entry(resource))
    device_entries, device_urls = _device_entries(kept, {d.address: d for d in devices}, site)
    entries.extend(device_entries)
    entries.extend(_reading_entries(kept, patient_urls, device_urls, site, tz))
    return {
        "resourceType": "Bundle",
        "id": resource_id(site, "readings-bundle", key),
        "type": "collection",
        "timestamp": fhir_datetime(now, tz),
        "entry": entries,
    }
