"""The supervisor's pure parts: `--ble` parsing, reconnection back-off, cuff detection."""

from __future__ import annotations

from pathlib import Path

import pytest
from bleak.backends.scanner import AdvertisementData

from devices import gatt
from devices.supervisor import ReconnectBackoff, is_blood_pressure_cuff
from devices.transport import (
    ADDRESS_FILE_NAME,
    BleOptionError,
    BleTransport,
    open_ble,
    stable_host_address,
)


def test_ble_bluez_is_plain_bleak() -> None:
    assert BleTransport.parse("bluez") == BleTransport("bluez")


def test_ble_bumble_keeps_the_whole_bumble_transport() -> None:
    parsed = BleTransport.parse("bumble:tcp-client:127.0.0.1:9100")
    assert (parsed.kind, parsed.bumble_transport) == ("bumble", "tcp-client:127.0.0.1:9100")


def test_ble_option_prints_back_as_given() -> None:
    assert str(BleTransport.parse("bumble:usb:0")) == "bumble:usb:0"


def test_ble_bumble_without_a_transport_says_what_to_write() -> None:
    with pytest.raises(BleOptionError, match="bumble:tcp-client"):
        BleTransport.parse("bumble:")


def test_unknown_ble_option_is_refused_with_the_choices() -> None:
    with pytest.raises(BleOptionError, match="'bluez' or 'bumble:TRANSPORT'"):
        BleTransport.parse("hci0")


async def test_bluez_stack_lets_bleak_pick_its_default_backend() -> None:
    async with open_ble("bluez", pair=False) as stack:
        assert stack.client_kwargs() == {}
        assert stack.scanner_kwargs() == {}


def test_backoff_doubles_from_its_first_delay() -> None:
    backoff = ReconnectBackoff(initial=0.25, factor=2.0, maximum=8.0)
    assert [backoff.delay(n) for n in (1, 2, 3)] == [0.25, 0.5, 1.0]


def test_backoff_stops_growing_at_its_maximum() -> None:
    assert ReconnectBackoff(initial=0.25, factor=2.0, maximum=8.0).delay(20) == 8.0


def test_no_failures_means_no_backoff() -> None:
    assert ReconnectBackoff().delay(0) == 0.0


def test_backoff_refuses_a_shrinking_factor() -> None:
    with pytest.raises(ValueError, match="factor >= 1"):
        ReconnectBackoff(factor=0.5)


def advertisement(*service_uuids: str) -> AdvertisementData:
    return AdvertisementData("cuff", {}, {}, list(service_uuids), None, -60, ())


def test_a_cuff_is_found_by_the_blood_pressure_service_it_advertises() -> None:
    assert is_blood_pressure_cuff(advertisement(gatt.uuid128(gatt.BLOOD_PRESSURE_SERVICE)))


def test_a_heart_rate_strap_is_not_a_cuff() -> None:
    assert not is_blood_pressure_cuff(advertisement(gatt.uuid128(0x180D)))


def test_the_host_address_is_made_once_and_kept_in_the_data_directory(tmp_path: Path) -> None:
    first = stable_host_address(tmp_path)
    assert stable_host_address(tmp_path) == first
    assert (tmp_path / ADDRESS_FILE_NAME).read_text().strip() == first


def test_the_host_address_is_a_random_static_address(tmp_path: Path) -> None:
    """Core Vol 6 Part B 1.3.2.1: the two most significant bits are 1."""
    assert int(stable_host_address(tmp_path)[:2], 16) >> 6 == 0b11


def test_a_damaged_host_address_file_says_how_to_recover(tmp_path: Path) -> None:
    (tmp_path / ADDRESS_FILE_NAME).write_text("not an address\n")
    with pytest.raises(BleOptionError, match="delete it"):
        stable_host_address(tmp_path)
