"""A cuff's configuration refuses what a real cuff could not be, with a clear message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from simulators.cuff import CuffConfig, FlakyLink, SimulatedCuff, battery_level
from simulators.frames import Quirk
from simulators.radio import VirtualRadio


def test_a_public_style_address_is_refused_as_not_random_static() -> None:
    with pytest.raises(ValueError, match="not a random static address"):
        CuffConfig(address="00:11:22:33:44:55")


def test_a_local_name_too_long_to_advertise_is_refused() -> None:
    with pytest.raises(ValueError, match="would not fit the advertisement"):
        CuffConfig(local_name="A blood pressure cuff with a long name")


def test_an_unknown_security_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="security must be one of none, just-works, passkey"):
        CuffConfig(security="legacy")  # type: ignore[arg-type]


def test_an_unknown_quirk_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown quirk 'omron'; known: beurer-bm85"):
        CuffConfig(quirk="omron")  # type: ignore[arg-type]


def test_a_quirk_given_by_name_becomes_the_enum() -> None:
    assert CuffConfig(quirk="beurer-bm85").quirk is Quirk.BEURER_BM85  # type: ignore[arg-type]


def test_a_passkey_must_have_six_digits() -> None:
    with pytest.raises(ValueError, match="passkey must be six digits"):
        CuffConfig(security="passkey", passkey=1_000_000)


def test_a_flaky_link_must_come_back_before_it_drops_again() -> None:
    with pytest.raises(ValueError, match="0 < lasting < every"):
        FlakyLink(every=timedelta(minutes=5), lasting=timedelta(minutes=5))


def test_a_cuff_needs_exactly_one_radio() -> None:
    with pytest.raises(ValueError, match="exactly one of link="):
        SimulatedCuff(CuffConfig())


async def test_measuring_before_start_is_a_clear_error() -> None:
    async with VirtualRadio() as radio:
        cuff = SimulatedCuff(CuffConfig(), link=radio.link)
        with pytest.raises(RuntimeError, match="not running: call start"):
            await cuff.measure()


def test_the_battery_drains_with_time_and_measurements_but_never_empties() -> None:
    assert battery_level(90, timedelta(0), 0) == 90
    assert battery_level(90, timedelta(hours=4), 8) == 86
    assert battery_level(5, timedelta(days=30), 1000) == 1


def test_a_dose_time_must_be_timezone_aware() -> None:
    cuff = SimulatedCuff(CuffConfig(), link=VirtualRadio().link)
    with pytest.raises(ValueError, match="timezone-aware"):
        cuff.record_dose(datetime(2025, 3, 4, 9, 0))
    assert cuff.record_dose(datetime(2025, 3, 4, 9, 0, tzinfo=UTC)) in cuff.doses
