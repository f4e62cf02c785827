"""SFLOAT (IEEE 11073-20601 16-bit float, GSS 2.3 "medfloat16") vectors."""

from __future__ import annotations

import math

import pytest

from devices.bps import (
    SFLOAT_NAN,
    SFLOAT_NEGATIVE_INFINITY,
    SFLOAT_NRES,
    SFLOAT_POSITIVE_INFINITY,
    SFLOAT_RESERVED,
    decode_sfloat,
    encode_sfloat,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0x0078, 120.0),  # exponent 0, mantissa 120
        (0xF0BD, 18.9),  # exponent -1, mantissa 189
        (0x0FFF, -1.0),  # exponent 0, mantissa -1 (two's complement 12 bits)
        (0xFFFF, -0.1),  # exponent -1, mantissa -1
        (0x212C, 30000.0),  # exponent 2, mantissa 300
        (0x8001, 1e-8),  # smallest exponent
        (0x7001, 1e7),  # largest exponent
        (0x07FD, 2045.0),  # largest plain mantissa at exponent 0
        (0x17FF, 20470.0),  # mantissa 2047 is a number when the exponent is not 0
        (0x0000, 0.0),
    ],
)
def test_decode_sfloat_reads_exponent_and_mantissa_as_twos_complement(
    raw: int, expected: float
) -> None:
    assert decode_sfloat(raw) == expected


@pytest.mark.parametrize("raw", [SFLOAT_NAN, SFLOAT_NRES, SFLOAT_RESERVED])
def test_nan_nres_and_reserved_sfloat_decode_to_nan(raw: int) -> None:
    assert math.isnan(decode_sfloat(raw))


def test_positive_infinity_sfloat_decodes_to_inf() -> None:
    assert decode_sfloat(SFLOAT_POSITIVE_INFINITY) == math.inf


def test_negative_infinity_sfloat_decodes_to_minus_inf() -> None:
    assert decode_sfloat(SFLOAT_NEGATIVE_INFINITY) == -math.inf


def test_special_sfloat_values_have_their_spec_bit_patterns() -> None:
    assert (SFLOAT_NAN, SFLOAT_NRES, SFLOAT_POSITIVE_INFINITY) == (0x07FF, 0x0800, 0x07FE)
    assert (SFLOAT_NEGATIVE_INFINITY, SFLOAT_RESERVED) == (0x0802, 0x0801)


@pytest.mark.parametrize(
    ("value", "raw"),
    [
        (18.9, 0xF0BD),  # keeps one decimal: mantissa 189, exponent -1
        (120.0, 0x0078),  # whole number: mantissa 120, exponent 0
        (2050.0, 0x10CD),  # too big for exponent 0: 205 x 10^1
        (-0.1, 0xFFFF),
        (0.0, 0x0000),
        (-2040.0, 0x0808),
        (1e7, 0x43E8),  # 1000 x 10^4: the smallest exponent whose mantissa fits
        (1e-8, 0x8001),
    ],
)
def test_encode_sfloat_picks_the_exponent_that_keeps_the_precision(value: float, raw: int) -> None:
    assert encode_sfloat(value) == raw


def test_encode_sfloat_maps_nan_and_infinities_to_special_values() -> None:
    assert encode_sfloat(math.nan) == SFLOAT_NAN
    assert encode_sfloat(math.inf) == SFLOAT_POSITIVE_INFINITY
    assert encode_sfloat(-math.inf) == SFLOAT_NEGATIVE_INFINITY


@pytest.mark.parametrize(
    "value",
    [
        123.456,  # six significant digits
        0.1 + 0.2,  # 0.30000000000000004
        1e-9,  # exponent below -8
        1e12,  # exponent above 7
        2046.0,  # would collide with +INF (0x07FE) at exponent 0
        -2048.0,  # would collide with NRes (0x0800) at exponent 0
    ],
)
def test_encode_sfloat_rejects_values_it_cannot_carry_exactly(value: float) -> None:
    with pytest.raises(ValueError, match="cannot be carried exactly"):
        encode_sfloat(value)


def test_decode_sfloat_rejects_more_than_16_bits() -> None:
    with pytest.raises(ValueError, match="16 bits"):
        decode_sfloat(0x10000)


def test_every_non_special_sfloat_survives_decode_then_encode_then_decode() -> None:
    for raw in range(0x10000):
        value = decode_sfloat(raw)
        if math.isnan(value):
            continue
        assert decode_sfloat(encode_sfloat(value)) == value, hex(raw)
