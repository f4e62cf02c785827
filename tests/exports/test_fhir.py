"""The FHIR R4 session Bundle (issue #8, "FHIR R4"), validated with `fhir.resources`.

fhir.resources 8 ships R4B models (`fhir.resources.R4B`), not R4: R4B changed no element
of Bundle, Patient, Device or Observation that we use, so it validates our R4 output.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.device import Device
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from devices.bps import BloodPressureMeasurement, PressureUnit
from tests.exports.clinic_records import (
    CUFF,
    PATIENT,
    START,
    esketamine_dose,
    failed_reading,
    reading,
    session,
)
from vitalsd.exports.fhir import session_bundle
from vitalsd.exports.record import ReadingRecord, SideEffectRecord

NOW = START + timedelta(hours=3)
Json = dict[str, Any]


def _resources(bundle: Json, resource_type: str) -> list[Json]:
    return [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == resource_type
    ]


def _coded(resource: Json, system: str, code: str) -> list[Json]:
    return [
        r
        for r in _resources(resource, "Observation")
        if any(c["system"] == system and c["code"] == code for c in r["code"].get("coding", []))
    ]


def _blood_pressures(bundle: Json) -> list[Json]:
    return _coded(bundle, "http://loinc.org", "85354-9")


def _component(observation: Json, loinc_or_mdc: str) -> Json:
    for component in observation["component"]:
        if any(c["code"] == loinc_or_mdc for c in component["code"]["coding"]):
            return component
    raise AssertionError(f"no component coded {loinc_or_mdc}")


def _url_of(bundle: Json, resource: Json) -> str:
    for entry in bundle["entry"]:
        if entry["resource"] is resource:
            return str(entry["fullUrl"])
    raise AssertionError("resource not in bundle")


def _full_session() -> Any:
    return session(
        (
            reading(1, -5, 128.0, 84.0, pulse=71.0, mean=98.7),
            reading(2, 40, 141.0, 88.0, pulse=80.0, flags=("body_movement", "irregular_pulse")),
            failed_reading(3, 60),
            reading(4, 125, 124.0, 79.0, pulse=None, source="manual"),
        ),
        doses=(esketamine_dose(1, 0),),
        closed_at_minute=130,
        side_effects=(SideEffectRecord(1, "dissociation", 2, START + timedelta(minutes=20)),),
    )


def test_bundle_validates_as_fhir_collection() -> None:
    bundle = session_bundle(_full_session(), now=NOW)
    parsed = Bundle.model_validate(bundle)
    assert parsed.type == "collection"
    assert len(parsed.entry) == len(bundle["entry"])


def test_every_resource_validates_as_its_own_type() -> None:
    bundle = session_bundle(_full_session(), now=NOW)
    models = {"Patient": Patient, "Device": Device, "Observation": Observation}
    for entry in bundle["entry"]:
        resource = entry["resource"]
        models[resource["resourceType"]].model_validate(resource)
        assert entry["fullUrl"] == f"urn:uuid:{resource['id']}"


def test_blood_pressure_observation_carries_loinc_and_mdc_codes_of_the_bp_profile() -> None:
    (bp,) = _blood_pressures(session_bundle(session((reading(1, 0, mean=92.0),)), now=NOW))
    assert bp["meta"]["profile"] == ["http://hl7.org/fhir/StructureDefinition/bp"]
    assert bp["category"][0]["coding"][0]["code"] == "vital-signs"
    codes = {(c["system"], c["code"]) for c in bp["code"]["coding"]}
    assert codes == {("http://loinc.org", "85354-9"), ("urn:iso:std:iso:11073:10101", "150020")}
    component_codes = [
        {(c["system"], c["code"]) for c in comp["code"]["coding"]} for comp in bp["component"]
    ]
    assert component_codes == [
        {("http://loinc.org", "8480-6"), ("urn:iso:std:iso:11073:10101", "150021")},
        {("http://loinc.org", "8462-4"), ("urn:iso:std:iso:11073:10101", "150022")},
        {("http://loinc.org", "8478-0"), ("urn:iso:std:iso:11073:10101", "150023")},
    ]


def test_blood_pressure_components_carry_the_stored_values_in_ucum_mmhg() -> None:
    stored = reading(1, 0, 131.5, 86.25, mean=101.3)
    (bp,) = _blood_pressures(session_bundle(session((stored,)), now=NOW))
    for code, value in (("8480-6", 131.5), ("8462-4", 86.25), ("150023", 101.3)):
        quantity = _component(bp, code)["valueQuantity"]
        assert quantity == {
            "value": value,
            "unit": "mmHg",
            "system": "http://unitsofmeasure.org",
            "code": "mm[Hg]",
        }


def test_reading_without_mean_pressure_has_no_mean_component() -> None:
    (bp,) = _blood_pressures(session_bundle(session((reading(1, 0, mean=None),)), now=NOW))
    assert len(bp["component"]) == 2


def test_effective_date_time_is_utc() -> None:
    cet = timezone(timedelta(hours=1))
    local = ReadingRecord(
        id=1, measured_at=datetime(2026, 11, 27, 10, 15, 30, tzinfo=cet), systolic=120.0,
        diastolic=80.0,
    )  # fmt: skip
    (bp,) = _blood_pressures(session_bundle(session((local,)), now=NOW))
    assert bp["effectiveDateTime"] == "2026-11-27T09:15:30Z"


def test_kpa_reading_from_the_cuff_is_exported_in_mmhg() -> None:
    # GSS 3.31: a cuff may report in kPa; the codec converts once, the core stores mmHg.
    frame = BloodPressureMeasurement(PressureUnit.KPA, 16.0, 10.6, 12.4)
    decoded = BloodPressureMeasurement.from_bytes(bytes(frame))
    systolic, diastolic, mean = decoded.pressures_mmhg
    stored = ReadingRecord(
        id=1, measured_at=START, systolic=systolic, diastolic=diastolic,
        mean_arterial_pressure=mean, device_address=CUFF,
    )  # fmt: skip
    (bp,) = _blood_pressures(session_bundle(session((stored,)), now=NOW))
    systolic_quantity = _component(bp, "8480-6")["valueQuantity"]
    assert systolic_quantity["code"] == "mm[Hg]"
    assert abs(systolic_quantity["value"] - 120.0) < 0.1  # 16.0 kPa = 120.01 mmHg
    assert abs(_component(bp, "8462-4")["valueQuantity"]["value"] - 79.5) < 0.1


def test_cuff_reading_references_a_device_with_device_information() -> None:
    bundle = session_bundle(session((reading(1, 0),)), now=NOW)
    (device,) = _resources(bundle, "Device")
    (bp,) = _blood_pressures(bundle)
    assert bp["device"]["reference"] == _url_of(bundle, device)
    assert device["manufacturer"] == "OMRON HEALTHCARE"
    assert device["modelNumber"] == "HEM-7530T"
    assert device["serialNumber"] == "20261127001"
    assert device["identifier"][0]["value"] == "C0-FF-EE-00-00-01"


def test_manual_reading_has_no_device_and_says_it_was_entered_by_hand() -> None:
    bundle = session_bundle(session((reading(1, 0, source="manual"),)), now=NOW)
    (bp,) = _blood_pressures(bundle)
    assert "device" not in bp
    assert _resources(bundle, "Device") == []
    assert "manual" in bp["method"]["text"]


def test_observations_reference_the_patient_with_what_is_known_of_them() -> None:
    bundle = session_bundle(session((reading(1, 0),)), now=NOW)
    (patient,) = _resources(bundle, "Patient")
    assert patient["identifier"][0]["value"] == PATIENT.identifier
    assert patient["name"][0]["text"] == PATIENT.display_name
    assert patient["birthDate"] == "1980-05-17"
    (bp,) = _blood_pressures(bundle)
    assert bp["subject"]["reference"] == _url_of(bundle, patient)


def test_pulse_is_its_own_heart_rate_observation_per_minute() -> None:
    bundle = session_bundle(session((reading(1, 0, pulse=64.0),)), now=NOW)
    (pulse,) = _coded(bundle, "http://loinc.org", "8867-4")
    assert pulse["valueQuantity"] == {
        "value": 64.0,
        "unit": "beats/minute",
        "system": "http://unitsofmeasure.org",
        "code": "/min",
    }
    assert pulse["effectiveDateTime"] == "2026-11-27T09:00:00Z"


def test_reading_without_pulse_has_no_heart_rate_observation() -> None:
    bundle = session_bundle(session((reading(1, 0, pulse=None),)), now=NOW)
    assert _coded(bundle, "http://loinc.org", "8867-4") == []


def test_measurement_status_is_its_own_observation_derived_from_the_blood_pressure() -> None:
    flagged = reading(1, 0, flags=("body_movement", "improper_position"))
    bundle = session_bundle(session((flagged,)), now=NOW)
    (status,) = _coded(bundle, "urn:iso:std:iso:11073:10101", "8410608")
    (bp,) = _blood_pressures(bundle)
    assert status["derivedFrom"] == [{"reference": _url_of(bundle, bp)}]
    bits = [comp["code"]["coding"][0]["code"] for comp in status["component"]]
    assert bits == ["8410608.0", "8410608.5"]
    assert all(
        comp["valueCodeableConcept"]["coding"][0]["code"] == "Y" for comp in status["component"]
    )


def test_unflagged_reading_has_no_measurement_status_observation() -> None:
    bundle = session_bundle(session((reading(1, 0),)), now=NOW)
    assert _coded(bundle, "urn:iso:std:iso:11073:10101", "8410608") == []


def test_failed_measurement_is_exported_with_data_absent_reason() -> None:
    bundle = session_bundle(session((failed_reading(1, 0),)), now=NOW)
    Bundle.model_validate(bundle)
    (bp,) = _blood_pressures(bundle)
    for component in bp["component"]:
        assert "valueQuantity" not in component
        assert component["dataAbsentReason"]["coding"][0]["code"] == "error"
    assert _coded(bundle, "http://loinc.org", "8867-4") == []


def test_side_effect_is_an_observation_with_a_text_code_and_severity() -> None:
    effect = SideEffectRecord(1, "blurred_vision", 3, START, note="resolved by 11:00")
    bundle = session_bundle(session(side_effects=(effect,)), now=NOW)
    (observation,) = [
        o for o in _resources(bundle, "Observation") if "Side effect" in o["code"]["text"]
    ]
    assert observation["code"] == {"text": "Side effect: blurred vision"}
    assert observation["component"][0]["valueInteger"] == 3
    assert observation["note"][0]["text"] == "resolved by 11:00"


def test_one_blood_pressure_observation_per_stored_reading() -> None:
    bundle = session_bundle(_full_session(), now=NOW)
    assert len(_blood_pressures(bundle)) == 4


def test_exporting_twice_gives_the_same_resource_ids() -> None:
    first = session_bundle(_full_session(), now=NOW)
    second = session_bundle(_full_session(), now=NOW + timedelta(days=1))
    assert [e["fullUrl"] for e in first["entry"]] == [e["fullUrl"] for e in second["entry"]]


def test_sites_of_a_clinic_group_get_distinct_ids_for_the_same_row() -> None:
    one = session_bundle(session((reading(1, 0),)), now=NOW, site="north")
    other = session_bundle(session((reading(1, 0),)), now=NOW, site="south")
    assert {e["fullUrl"] for e in one["entry"]}.isdisjoint(e["fullUrl"] for e in other["entry"])


def test_bundle_timestamp_is_the_given_now() -> None:
    assert session_bundle(session(), now=NOW)["timestamp"] == "2026-11-27T12:00:00Z"


def test_cuff_without_device_information_is_still_a_device_by_its_address() -> None:
    unknown = ReadingRecord(
        id=1, measured_at=START, systolic=120.0, diastolic=80.0, device_address="AA:00:00:00:00:09"
    )
    bundle = session_bundle(session((unknown,)), now=NOW)
    (device,) = [d for d in _resources(bundle, "Device") if "manufacturer" not in d]
    assert device["identifier"][0]["value"] == "AA-00-00-00-00-09"
    Bundle.model_validate(bundle)
