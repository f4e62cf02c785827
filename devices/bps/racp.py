"""Record Access Control Point (0x2A52): requests a server parses, indications a client
decodes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Final, NoReturn, Self

# --- Errors ------------------------------------------------------------------------
from devices.bps.support import MalformedPayload, _check_range, _Reader

# --- Record Access Control Point (GSS 3.187 "Record Access Control Point", 0x2A52) ---------
# Used by Blood Pressure Service 1.1 (section 3.5) to report, count, delete and abort the
# stored Blood Pressure Records. Layout: Op Code (uint8), Operator (uint8), Operand.


class RacpOpCode(IntEnum):
    """RACP op codes (GSS, Record Access Control Point, Op Code field)."""

    REPORT_STORED_RECORDS = 0x01
    DELETE_STORED_RECORDS = 0x02
    ABORT_OPERATION = 0x03
    REPORT_NUMBER_OF_STORED_RECORDS = 0x04
    NUMBER_OF_STORED_RECORDS_RESPONSE = 0x05
    RESPONSE_CODE = 0x06
    COMBINED_REPORT = 0x07
    COMBINED_REPORT_RESPONSE = 0x08


class RacpOperator(IntEnum):
    """RACP operators (GSS, Record Access Control Point, Operator field)."""

    NULL = 0x00
    ALL = 0x01
    LESS_THAN_OR_EQUAL = 0x02
    GREATER_THAN_OR_EQUAL = 0x03
    WITHIN_RANGE = 0x04
    FIRST = 0x05
    LAST = 0x06


class RacpFilterType(IntEnum):
    """First byte of a filtering operand. Blood Pressure Records are filtered by their
    uint16 sequence number (BPS 1.1, 3.5.1)."""

    SEQUENCE_NUMBER = 0x01


class RacpResponseCode(IntEnum):
    """Response Code Values (GSS, Record Access Control Point, Operand of op code 0x06)."""

    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_OPERATOR = 0x03
    OPERATOR_NOT_SUPPORTED = 0x04
    INVALID_OPERAND = 0x05
    NO_RECORDS_FOUND = 0x06
    ABORT_UNSUCCESSFUL = 0x07
    PROCEDURE_NOT_COMPLETED = 0x08
    OPERAND_NOT_SUPPORTED = 0x09


_RACP: Final = "Record Access Control Point"
# Op codes a client writes that act on a selection of records.
_RACP_RECORD_OP_CODES: Final = frozenset(
    {
        RacpOpCode.REPORT_STORED_RECORDS,
        RacpOpCode.DELETE_STORED_RECORDS,
        RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS,
        RacpOpCode.COMBINED_REPORT,
    }
)
_RACP_BOUNDS: Final = {
    RacpOperator.ALL: (False, False),
    RacpOperator.FIRST: (False, False),
    RacpOperator.LAST: (False, False),
    RacpOperator.LESS_THAN_OR_EQUAL: (False, True),
    RacpOperator.GREATER_THAN_OR_EQUAL: (True, False),
    RacpOperator.WITHIN_RANGE: (True, True),
}


@dataclass(frozen=True)
class RacpResponse:
    """RACP "Response Code" indication (op code 0x06, operator Null): the outcome of the
    request whose op code it names. ``request_op_code`` stays a plain int when a client
    sent an op code we do not know (the answer is then OP_CODE_NOT_SUPPORTED)."""

    request_op_code: RacpOpCode | int
    response_code: RacpResponseCode

    def __post_init__(self) -> None:
        _check_range("request_op_code", int(self.request_op_code), 0, 0xFF)
        try:
            object.__setattr__(self, "request_op_code", RacpOpCode(self.request_op_code))
        except ValueError:
            object.__setattr__(self, "request_op_code", int(self.request_op_code))
        object.__setattr__(self, "response_code", RacpResponseCode(self.response_code))

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        reader = _Reader(_RACP, data)
        _expect_racp_header(reader, RacpOpCode.RESPONSE_CODE)
        request_op_code = reader.uint("request op code", 1)
        offset = reader.offset
        raw_code = reader.uint("response code value", 1)
        reader.end()
        try:
            code = RacpResponseCode(raw_code)
        except ValueError:
            raise reader.error(
                "response code value", f"{raw_code:#04x} is not a defined response code", offset
            ) from None
        return cls(request_op_code, code)

    def __bytes__(self) -> bytes:
        return bytes(
            (
                RacpOpCode.RESPONSE_CODE,
                RacpOperator.NULL,
                int(self.request_op_code),
                self.response_code,
            )
        )

    @property
    def succeeded(self) -> bool:
        return self.response_code is RacpResponseCode.SUCCESS


@dataclass(frozen=True)
class RacpNumberOfRecords:
    """RACP "Number of Stored Records Response" (op code 0x05) or, with
    ``combined_report``, the "Combined Report Response" (0x08) that ends a Combined Report.

    The count is a uint16 (BPS sequence numbers are uint16); a 4-byte (uint32) operand, as
    some services use, is accepted on decode, and counts above 0xFFFF encode as uint32.
    """

    count: int
    combined_report: bool = False

    def __post_init__(self) -> None:
        _check_range("count", self.count, 0, 0xFFFF_FFFF)

    @property
    def op_code(self) -> RacpOpCode:
        if self.combined_report:
            return RacpOpCode.COMBINED_REPORT_RESPONSE
        return RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        reader = _Reader(_RACP, data)
        op_code = _expect_racp_header(
            reader,
            RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE,
            RacpOpCode.COMBINED_REPORT_RESPONSE,
        )
        size = 4 if reader.remaining() == 4 else 2
        count = reader.uint("number of records", size)
        reader.end()
        return cls(count, combined_report=op_code is RacpOpCode.COMBINED_REPORT_RESPONSE)

    def __bytes__(self) -> bytes:
        size = 2 if self.count <= 0xFFFF else 4
        return bytes((self.op_code, RacpOperator.NULL)) + self.count.to_bytes(size, "little")


RacpIndication = RacpResponse | RacpNumberOfRecords


def decode_racp_indication(data: bytes | bytearray | memoryview) -> RacpIndication:
    """Decode what a server indicates on the RACP: a response code or a record count."""
    reader = _Reader(_RACP, data)
    op_code = reader.uint("op code", 1)
    if op_code == RacpOpCode.RESPONSE_CODE:
        return RacpResponse.from_bytes(data)
    if op_code in (
        RacpOpCode.NUMBER_OF_STORED_RECORDS_RESPONSE,
        RacpOpCode.COMBINED_REPORT_RESPONSE,
    ):
        return RacpNumberOfRecords.from_bytes(data)
    raise reader.error("op code", f"{op_code:#04x} is not a response a server indicates", 0)


def _expect_racp_header(reader: _Reader, *op_codes: RacpOpCode) -> RacpOpCode:
    raw = reader.uint("op code", 1)
    if raw not in op_codes:
        expected = " or ".join(f"{c:#04x}" for c in op_codes)
        raise reader.error("op code", f"expected {expected}, got {raw:#04x}", 0)
    operator = reader.uint("operator", 1)
    if operator != RacpOperator.NULL:
        raise reader.error("operator", f"responses carry the Null operator, got {operator:#04x}", 1)
    return RacpOpCode(raw)


class RacpRequestRejected(MalformedPayload):
    """A RACP write the server must refuse; ``response`` is the indication to send back."""

    def __init__(self, response: RacpResponse, field: str, offset: int, reason: str) -> None:
        super().__init__(_RACP, field, offset, reason)
        self.response = response


@dataclass(frozen=True)
class RacpRequest:
    """A RACP write from the client (op codes 1-4 and 7).

    Records are selected by ``operator``: ALL, FIRST, LAST take no bounds;
    LESS_THAN_OR_EQUAL takes ``max_sequence_number``; GREATER_THAN_OR_EQUAL takes
    ``min_sequence_number``; WITHIN_RANGE takes both (min <= max). ABORT_OPERATION takes
    the Null operator and no bounds. A bound goes on the wire as filter type 0x01
    (sequence number) followed by a uint16 per bound (BPS 1.1, 3.5.1).
    """

    op_code: RacpOpCode
    operator: RacpOperator
    min_sequence_number: int | None = None
    max_sequence_number: int | None = None

    def __post_init__(self) -> None:
        op_code = RacpOpCode(self.op_code)
        operator = RacpOperator(self.operator)
        object.__setattr__(self, "op_code", op_code)
        object.__setattr__(self, "operator", operator)
        low, high = self.min_sequence_number, self.max_sequence_number
        if op_code is RacpOpCode.ABORT_OPERATION:
            if operator is not RacpOperator.NULL or low is not None or high is not None:
                raise ValueError("ABORT_OPERATION takes the NULL operator and no operand")
            return
        if op_code not in _RACP_RECORD_OP_CODES:
            raise ValueError(f"{op_code.name} is a server response, not a request")
        if operator is RacpOperator.NULL:
            raise ValueError(f"{op_code.name} needs an operator other than NULL")
        wants_low, wants_high = _RACP_BOUNDS[operator]
        if (low is not None) != wants_low or (high is not None) != wants_high:
            wanted = [
                name
                for name, needed in (
                    ("min_sequence_number", wants_low),
                    ("max_sequence_number", wants_high),
                )
                if needed
            ]
            raise ValueError(f"{operator.name} takes {' and '.join(wanted) or 'no bounds'}")
        for name, bound in (("min_sequence_number", low), ("max_sequence_number", high)):
            if bound is not None:
                _check_range(name, bound, 0, 0xFFFF)
        if low is not None and high is not None and low > high:
            raise ValueError(f"min_sequence_number {low} exceeds max_sequence_number {high}")

    # Convenience constructors for the requests a collector actually sends.
    @classmethod
    def report_all(cls) -> Self:
        return cls(RacpOpCode.REPORT_STORED_RECORDS, RacpOperator.ALL)

    @classmethod
    def report_from(cls, sequence_number: int) -> Self:
        """Records with sequence number >= ``sequence_number``: the ones not yet collected."""
        return cls(
            RacpOpCode.REPORT_STORED_RECORDS,
            RacpOperator.GREATER_THAN_OR_EQUAL,
            min_sequence_number=sequence_number,
        )

    @classmethod
    def count_all(cls) -> Self:
        return cls(RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS, RacpOperator.ALL)

    @classmethod
    def abort(cls) -> Self:
        return cls(RacpOpCode.ABORT_OPERATION, RacpOperator.NULL)

    def select(self, sequence_numbers: Iterable[int]) -> list[int]:
        """The stored sequence numbers this request addresses, in ascending order (for a
        server). FIRST / LAST mean the lowest / highest sequence number (the oldest and
        newest record: BPS sequence numbers only grow until they wrap)."""
        ordered = sorted(set(sequence_numbers))
        low = self.min_sequence_number
        high = self.max_sequence_number
        match self.operator:
            case RacpOperator.ALL:
                return ordered
            case RacpOperator.FIRST:
                return ordered[:1]
            case RacpOperator.LAST:
                return ordered[-1:]
            case RacpOperator.LESS_THAN_OR_EQUAL:
                return [n for n in ordered if high is not None and n <= high]
            case RacpOperator.GREATER_THAN_OR_EQUAL:
                return [n for n in ordered if low is not None and n >= low]
            case RacpOperator.WITHIN_RANGE:
                return [
                    n for n in ordered if low is not None and high is not None and low <= n <= high
                ]
            case _:
                return []

    def __bytes__(self) -> bytes:
        head = bytes((self.op_code, self.operator))
        bounds = [b for b in (self.min_sequence_number, self.max_sequence_number) if b is not None]
        if not bounds:
            return head
        return (
            head
            + bytes((RacpFilterType.SEQUENCE_NUMBER,))
            + b"".join(b.to_bytes(2, "little") for b in bounds)
        )

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> Self:
        """Decode a RACP write; raises RacpRequestRejected (a MalformedPayload) naming the
        field, offset and the response code a server owes the client."""
        reader = _Reader(_RACP, data)

        def reject(code: RacpResponseCode, op: int, field: str, off: int, why: str) -> NoReturn:
            raise RacpRequestRejected(RacpResponse(op, code), field, off, why)

        if reader.remaining() == 0:
            reject(RacpResponseCode.OP_CODE_NOT_SUPPORTED, 0, "op code", 0, "empty write")
        raw_op = reader.uint("op code", 1)
        if raw_op not in _RACP_RECORD_OP_CODES and raw_op != RacpOpCode.ABORT_OPERATION:
            reject(
                RacpResponseCode.OP_CODE_NOT_SUPPORTED,
                raw_op,
                "op code",
                0,
                f"{raw_op:#04x} is not a request op code",
            )
        op_code = RacpOpCode(raw_op)
        if reader.remaining() == 0:
            reject(RacpResponseCode.INVALID_OPERATOR, raw_op, "operator", 1, "missing")
        raw_operator = reader.uint("operator", 1)
        if op_code is RacpOpCode.ABORT_OPERATION:
            if raw_operator != RacpOperator.NULL:
                reject(
                    RacpResponseCode.INVALID_OPERATOR,
                    raw_op,
                    "operator",
                    1,
                    f"ABORT_OPERATION takes the Null operator, got {raw_operator:#04x}",
                )
            if reader.remaining():
                reject(RacpResponseCode.INVALID_OPERAND, raw_op, "operand", 2, "abort takes none")
            return cls(op_code, RacpOperator.NULL)
        if raw_operator not in _RACP_BOUNDS:
            reject(
                RacpResponseCode.INVALID_OPERATOR,
                raw_op,
                "operator",
                1,
                f"{raw_operator:#04x} is not an operator for {op_code.name}",
            )
        operator = RacpOperator(raw_operator)
        wants_low, wants_high = _RACP_BOUNDS[operator]
        bound_count = int(wants_low) + int(wants_high)
        if bound_count == 0:
            if reader.remaining():
                reject(
                    RacpResponseCode.INVALID_OPERAND,
                    raw_op,
                    "operand",
                    2,
                    f"{operator.name} takes no operand, got {reader.remaining()} byte(s)",
                )
            return cls(op_code, operator)
        if reader.remaining() == 0:
            reject(RacpResponseCode.INVALID_OPERAND, raw_op, "filter type", 2, "missing")
        filter_type = reader.uint("filter type", 1)
        if filter_type != RacpFilterType.SEQUENCE_NUMBER:
            reject(
                RacpResponseCode.OPERAND_NOT_SUPPORTED,
                raw_op,
                "filter type",
                2,
                f"{filter_type:#04x}; only 0x01 (sequence number) is supported",
            )
        if reader.remaining() != 2 * bound_count:
            reject(
                RacpResponseCode.INVALID_OPERAND,
                raw_op,
                "filter parameters",
                3,
                f"{operator.name} takes {2 * bound_count} bytes of uint16 sequence numbers, "
                f"got {reader.remaining()}",
            )
        first = reader.uint("filter parameter", 2)
        second = reader.uint("filter parameter", 2) if bound_count == 2 else None
        if second is not None and first > second:
            reject(
                RacpResponseCode.INVALID_OPERAND,
                raw_op,
                "filter parameters",
                3,
                f"range {first}..{second} is empty (min > max)",
            )
        if operator is RacpOperator.LESS_THAN_OR_EQUAL:
            return cls(op_code, operator, max_sequence_number=first)
        if operator is RacpOperator.GREATER_THAN_OR_EQUAL:
            return cls(op_code, operator, min_sequence_number=first)
        return cls(op_code, operator, min_sequence_number=first, max_sequence_number=second)

    @classmethod
    def parse(cls, data: bytes | bytearray | memoryview) -> Self | RacpResponse:
        """For a server: the request, or the RacpResponse to indicate when it is invalid
        (op code not supported, invalid operator, invalid or unsupported operand)."""
        try:
            return cls.from_bytes(data)
        except RacpRequestRejected as rejected:
            return rejected.response
