"""Named scenarios: pure configurations, and a fleet started on a shared radio."""

from __future__ import annotations

import pytest

from devices import gatt
from devices.bps import BloodPressureMeasurement
from simulators.frames import Quirk
from simulators.physiology import MeasurementProblem, Profile
from simulators.radio import VirtualRadio
from simulators.scenarios import SCENARIOS, scenario_configs, start_scenario
from tests.simulators.bumble_central import BumbleCentral
from tests.simulators.conftest import TEST_SPEED

REQUIRED = {
    "normotensive",
    "elevated-baseline",
    "ketamine-response",
    "severe-hypertension",
    "hypotension",
    "motion-artifact",
    "error-frame",
    "flaky-link",
    "clinic",
}


def test_every_scenario_the_issue_names_exists() -> None:
    assert REQUIRED <= set(SCENARIOS)


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_every_scenario_builds_cuffs_with_distinct_addresses_and_serials(name: str) -> None:
    configs = scenario_configs(name, count=4, seed=3)
    assert len({c.address for c in configs}) == 4
    assert len({c.serial for c in configs}) == 4
    assert all(c.measurement_interval is not None for c in configs)


def test_clinic_has_six_chairs_with_a_mix() -> None:
    configs = scenario_configs("clinic")
    assert len(configs) == 6
    assert {c.record_style for c in configs} == {"bps10", "bps11"}
    assert {c.connectable for c in configs} == {"always", "brief"}
    assert {c.profile for c in configs} >= {
        Profile.NORMOTENSIVE,
        Profile.ELEVATED,
        Profile.HYPOTENSIVE,
    }
    assert any(c.quirk is Quirk.BEURER_BM85 for c in configs)
    assert any(c.flaky_link is not None for c in configs)
    assert any(MeasurementProblem.ERROR_FRAME in c.problems for c in configs)
    assert len({c.dose_after for c in configs}) == 6


def test_the_same_seed_gives_the_same_scenario() -> None:
    assert scenario_configs("clinic", seed=11) == scenario_configs("clinic", seed=11)
    assert scenario_configs("clinic", seed=11) != scenario_configs("clinic", seed=12)


def test_an_unknown_scenario_names_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown scenario 'calm'.*clinic"):
        scenario_configs("calm")


def test_a_count_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="count must be at least 1"):
        scenario_configs("clinic", count=0)


async def test_a_scenario_started_on_a_radio_advertises_every_cuff(
    radio: VirtualRadio, central: BumbleCentral
) -> None:
    # Slow enough that the brief-window cuffs are still advertising when scanned.
    fleet = await start_scenario("clinic", seed=5, speed=60, link=radio)
    try:
        sightings = await central.discover(count=6)
        assert [s.address for s in sightings] == sorted(c.address for c in fleet.cuffs)
    finally:
        await fleet.stop()


async def test_a_scenario_cuff_measures_on_its_schedule(
    radio: VirtualRadio, central: BumbleCentral
) -> None:
    fleet = await start_scenario("severe-hypertension", seed=2, speed=TEST_SPEED, link=radio)
    try:
        cuff = fleet.cuffs[0]
        session = await central.connect(cuff.address)
        await session.pair()
        await session.subscribe(gatt.BLOOD_PRESSURE_MEASUREMENT)
        measurement = BloodPressureMeasurement.from_bytes(
            await session.next(gatt.BLOOD_PRESSURE_MEASUREMENT)
        )
        assert measurement.systolic >= 160 and measurement.diastolic >= 100
        assert cuff.measurement_log[0].measurement == measurement
    finally:
        await fleet.stop()


async def test_radio_start_scenario_puts_the_fleet_on_its_own_link(radio: VirtualRadio) -> None:
    fleet = await radio.start_scenario("normotensive", count=2, speed=TEST_SPEED)
    try:
        assert all(c.link is radio.link for c in fleet.cuffs)
        assert fleet.cuff(fleet.cuffs[1].address.lower()) is fleet.cuffs[1]
    finally:
        await fleet.stop()
