"""A simulated BPS 1.1 cuff's Record Access Control Point (BPS 1.1, 3.5): report, count,
delete and abort over its stored records."""

from __future__ import annotations

import asyncio
import logging

from bumble.att import ATT_Error
from bumble.device import Connection

from devices import gatt
from devices.bps import (
    RacpNumberOfRecords,
    RacpOpCode,
    RacpRequest,
    RacpResponse,
    RacpResponseCode,
    segment_record,
)
from simulators.cuff_config import HANGS_UP
from simulators.cuff_core import CuffCore
from simulators.cuff_gatt import CuffGatt


class CuffRacp:
    """One RACP procedure at a time over the cuff's record database."""

    def __init__(self, cuff: CuffCore, gatt_server: CuffGatt) -> None:
        self._cuff = cuff
        self._gatt = gatt_server
        self.busy = False
        self._abort = False
        self.idle = asyncio.Event()
        self.idle.set()

    def on_write(self, connection: Connection | None, value: bytes) -> None:
        racp, records = self._gatt.racp, self._gatt.record
        assert racp is not None and records is not None
        if connection is None or connection not in self._cuff._links:
            return
        if not self._gatt.indicating(connection, racp):
            raise ATT_Error(gatt.ATT_CCCD_IMPROPERLY_CONFIGURED)
        request = RacpRequest.parse(value)
        if isinstance(request, RacpResponse):
            self._cuff._log("RACP request refused: %s", request.response_code.name)
            self._cuff._spawn(
                self._cuff._indicate(connection, racp, bytes(request)), "RACP response"
            )
            return
        if request.op_code is RacpOpCode.ABORT_OPERATION:
            self._abort = self.busy
            self._cuff._spawn(self._answer_abort(connection), "RACP abort")
            return
        if self.busy:
            raise ATT_Error(gatt.ATT_PROCEDURE_ALREADY_IN_PROGRESS)
        reporting = request.op_code in (
            RacpOpCode.REPORT_STORED_RECORDS,
            RacpOpCode.COMBINED_REPORT,
        )
        if reporting and not self._gatt.indicating(connection, records):
            raise ATT_Error(gatt.ATT_CCCD_IMPROPERLY_CONFIGURED)
        self.busy = True
        self.idle.clear()
        self._cuff._spawn(self._run(connection, request), "RACP procedure")

    async def _answer_abort(self, connection: Connection) -> None:
        racp = self._gatt.racp
        assert racp is not None
        await self.idle.wait()
        self._abort = False
        response = RacpResponse(RacpOpCode.ABORT_OPERATION, RacpResponseCode.SUCCESS)
        await self._cuff._indicate(connection, racp, bytes(response))

    async def _run(self, connection: Connection, request: RacpRequest) -> None:
        racp, records = self._gatt.racp, self._gatt.record
        assert racp is not None and records is not None
        try:
            selected = request.select(self._cuff._records)
            self._cuff._log(
                "RACP %s %s: %d record(s)",
                request.op_code.name,
                request.operator.name,
                len(selected),
            )
            if request.op_code is RacpOpCode.REPORT_NUMBER_OF_STORED_RECORDS:
                await self._cuff._indicate(
                    connection, racp, bytes(RacpNumberOfRecords(len(selected)))
                )
                return
            if request.op_code is RacpOpCode.DELETE_STORED_RECORDS:
                for sequence_number in selected:
                    del self._cuff._records[sequence_number]
                self._cuff._changed()
                code = RacpResponseCode.SUCCESS if selected else RacpResponseCode.NO_RECORDS_FOUND
                await self._cuff._indicate(
                    connection, racp, bytes(RacpResponse(request.op_code, code))
                )
                return
            if not selected and request.op_code is RacpOpCode.REPORT_STORED_RECORDS:
                response = RacpResponse(request.op_code, RacpResponseCode.NO_RECORDS_FOUND)
                if (
                    await self._cuff._indicate(connection, racp, bytes(response))
                    and self._cuff.config.connectable == "windows"
                ):
                    # Nothing new to read: a "windows" cuff hangs up all the same.
                    self._cuff._spawn(self._cuff._linger_then_hang_up(connection), "linger")
                return
            max_segment = connection.att_mtu - 3  # ATT_Handle_Value_Indication overhead
            for sequence_number in selected:
                if self._abort:
                    self._cuff._log("RACP report aborted")
                    return
                record = self._cuff._records.get(sequence_number)
                if record is None:
                    continue
                for segment in segment_record(
                    sequence_number,
                    gatt.BLOOD_PRESSURE_MEASUREMENT,
                    record.payload,
                    max_segment_size=max_segment,
                ):
                    if not await self._cuff._indicate(connection, records, bytes(segment)):
                        return
                self._cuff._log("sent record %s", record.describe(), level=logging.DEBUG)
            if request.op_code is RacpOpCode.COMBINED_REPORT:
                done = bytes(RacpNumberOfRecords(len(selected), combined_report=True))
            else:
                done = bytes(RacpResponse(request.op_code, RacpResponseCode.SUCCESS))
            if await self._cuff._indicate(connection, racp, done):
                self._cuff._log("sent %d stored record(s) through the RACP", len(selected))
                if self._cuff.config.connectable in HANGS_UP:
                    self._cuff._spawn(self._cuff._linger_then_hang_up(connection), "linger")
        finally:
            self.busy = False
            self.idle.set()
