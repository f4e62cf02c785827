"""Record Access Control Point (0x2A52) vectors: Op Code, Operator, Operand (GSS RACP)."""

from __future__ import annotations

import pytest

from devices.bps import (
    MalformedPayload,
    RacpNumberOfRecords,
    RacpOpCode,
    RacpOperator,
    RacpRequest,
    RacpRequestRejected,
    RacpResponse,
    RacpResponseCode,
    decode_racp_indication,
)


def test_op_operator_and_response_code_values_follow_the_spec() -> None:
    assert [int(c) for c in RacpOpCode] == list(range(1, 9))
    assert [int(o) for o in RacpOperator] == list(range(7))
    assert [int(c) for c in RacpResponseCode] == list(range(1, 10))


@pytest.mark.parametrize(
    ("request_", "payload"),
    [
        (RacpRequest.report_all(), "01 01"),
        (RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.FIRST), "01 05"),
        (RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.LAST), "01 06"),
        (RacpRequest(RacpOpCode.DELETE_STORED_RECORDS, RacpOperator.ALL), "02 01"),
        (RacpRequest.abort(), "03 00"),
        (RacpRequest.count_all(), "04 01"),
        (RacpRequest(RacpOpCode.COMBINED_REPORT, RacpOperator.ALL), "07 01"),
        # filter type 0x01 = sequence number, then uint16 little-endian
        (RacpRequest.report_from(0x0102), "01 03 01 02 01"),
        (
            RacpRequest(
                RacpOpCode.REPORT_STORED_RECORDS,
                RacpOperator.LESS_THAN_OR_EQUAL,
                max_sequence_number=9,
            ),
            "01 02 01 09 00",
        ),
        (
            RacpRequest(
                RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
                RacpOperator.WITHIN_RANGE,
                min_sequence_number=3,
                max_sequence_number=0x1000,
            ),
            "04 04 01 03 00 00 10",
        ),
    ],
)
def test_request_encodes_and_decodes_per_the_spec_layout(
    request_: RacpRequest, payload: str
) -> None:
    assert bytes(request_) == bytes.fromhex(payload)
    assert RacpRequest.from_bytes(bytes.fromhex(payload)) == request_


def test_response_code_indication_carries_request_op_code_and_value() -> None:
    response = RacpResponse(RacpOpCode.REPORT_STORED_RECORDS, RacpResponseCode.NO_RECORDS_FOUND)
    assert bytes(response) == bytes.fromhex("06 00 01 06")
    assert RacpResponse.from_bytes(bytes.fromhex("06 00 01 06")) == response
    assert not response.succeeded


def test_number_of_stored_records_response_is_a_uint16() -> None:
    assert bytes(RacpNumberOfRecords(258)) == bytes.fromhex("05 00 02 01")
    assert RacpNumberOfRecords.from_bytes(bytes.fromhex("05 00 02 01")).count == 258


def test_number_of_stored_records_response_accepts_a_uint32_operand() -> None:
    assert RacpNumberOfRecords.from_bytes(bytes.fromhex("05 00 02 01 00 00")).count == 258


def test_combined_report_response_uses_op_code_8() -> None:
    value = RacpNumberOfRecords(3, combined_report=True)
    assert bytes(value) == bytes.fromhex("08 00 03 00")
    assert RacpNumberOfRecords.from_bytes(bytes(value)) == value


def test_decode_racp_indication_tells_counts_from_response_codes() -> None:
    assert decode_racp_indication(bytes.fromhex("05 00 07 00")) == RacpNumberOfRecords(7)
    assert decode_racp_indication(bytes.fromhex("06 00 01 01")) == RacpResponse(
        RacpOpCode.REPORT_STORED_RECORDS, RacpResponseCode.SUCCESS
    )


def test_decode_racp_indication_rejects_a_request_op_code() -> None:
    with pytest.raises(MalformedPayload, match="op code at byte offset 0"):
        decode_racp_indication(bytes.fromhex("01 01"))


def test_response_code_with_undefined_value_names_the_field() -> None:
    with pytest.raises(MalformedPayload, match="response code value at byte offset 3"):
        RacpResponse.from_bytes(bytes.fromhex("06 00 01 0a"))


def test_response_with_a_non_null_operator_is_malformed() -> None:
    with pytest.raises(MalformedPayload, match="operator at byte offset 1"):
        RacpResponse.from_bytes(bytes.fromhex("06 01 01 01"))


def test_truncated_number_of_records_names_the_field() -> None:
    with pytest.raises(MalformedPayload, match="number of records at byte offset 2"):
        RacpNumberOfRecords.from_bytes(bytes.fromhex("05 00 07"))


# --- server side: parse() returns the response code a server owes ----------------------


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ("", RacpResponse(0, RacpResponseCode.OP_CODE_NOT_SUPPORTED)),
        ("09 01", RacpResponse(9, RacpResponseCode.OP_CODE_NOT_SUPPORTED)),
        ("05 00 01 00", RacpResponse(5, RacpResponseCode.OP_CODE_NOT_SUPPORTED)),
        ("01", RacpResponse(1, RacpResponseCode.INVALID_OPERATOR)),
        ("01 00", RacpResponse(1, RacpResponseCode.INVALID_OPERATOR)),
        ("01 07", RacpResponse(1, RacpResponseCode.INVALID_OPERATOR)),
        ("03 01", RacpResponse(3, RacpResponseCode.INVALID_OPERATOR)),
        ("03 00 01", RacpResponse(3, RacpResponseCode.INVALID_OPERAND)),
        ("01 01 01 00 00", RacpResponse(1, RacpResponseCode.INVALID_OPERAND)),
        ("01 03", RacpResponse(1, RacpResponseCode.INVALID_OPERAND)),
        ("01 03 01 05", RacpResponse(1, RacpResponseCode.INVALID_OPERAND)),
        ("01 04 01 05 00 03 00", RacpResponse(1, RacpResponseCode.INVALID_OPERAND)),
        ("01 03 02 05 00 00 00", RacpResponse(1, RacpResponseCode.OPERAND_NOT_SUPPORTED)),
    ],
)
def test_parse_answers_an_invalid_write_with_its_response_code(
    payload: str, expected: RacpResponse
) -> None:
    assert RacpRequest.parse(bytes.fromhex(payload)) == expected


def test_parse_returns_a_valid_request_unchanged() -> None:
    assert RacpRequest.parse(bytes.fromhex("01 03 01 05 00")) == RacpRequest.report_from(5)


def test_rejected_request_is_a_malformed_payload_naming_the_field() -> None:
    with pytest.raises(RacpRequestRejected, match="filter type at byte offset 2") as caught:
        RacpRequest.from_bytes(bytes.fromhex("01 03 02 05 00"))
    assert isinstance(caught.value, MalformedPayload)
    assert caught.value.response.response_code is RacpResponseCode.OPERAND_NOT_SUPPORTED


# --- construction and selection ------------------------------------------------------


def test_request_constructor_rejects_a_missing_bound() -> None:
    with pytest.raises(ValueError, match="min_sequence_number and max_sequence_number"):
        RacpRequest(
            RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.WITHIN_RANGE, min_sequence_number=1
        )


def test_request_constructor_rejects_response_op_codes() -> None:
    with pytest.raises(ValueError, match="server response"):
        RacpRequest(RacpOpCode.RESPONSE_CODE, RacpOperator.NULL)


def test_request_constructor_rejects_an_empty_range() -> None:
    with pytest.raises(ValueError, match="exceeds"):
        RacpRequest(
            RacpOpCode.REPORT_STORED_RECORDS,
            RacpOperator.WITHIN_RANGE,
            min_sequence_number=5,
            max_sequence_number=4,
        )


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        (RacpRequest.report_all(), [1, 2, 5, 9]),
        (RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.FIRST), [1]),
        (RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.LAST), [9]),
        (RacpRequest.report_from(5), [5, 9]),
        (
            RacpRequest(
                RacpOpCode.DELETE_STORED_RECORDS,
                RacpOperator.LESS_THAN_OR_EQUAL,
                max_sequence_number=2,
            ),
            [1, 2],
        ),
        (
            RacpRequest(
                RacpOpCode.REPORT_STORED_RECORDS,
                RacpOperator.WITHIN_RANGE,
                min_sequence_number=2,
                max_sequence_number=5,
            ),
            [2, 5],
        ),
    ],
)
def test_select_picks_the_stored_sequence_numbers_a_request_addresses(
    request_: RacpRequest, expected: list[int]
) -> None:
    assert request_.select([9, 1, 5, 2]) == expected


def test_select_on_no_records_is_empty() -> None:
    assert RacpRequest(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.LAST).select([]) == []
