"""Chairs, the cuffs seen, and which cuff sits on which chair."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.deps import ClinicDep, EquipmentManager, Reader
from api.errors import AUTH_ERRORS, CONFLICT, NOT_FOUND
from api.params import IdPath
from api.schemas import ChairAssignment, ChairIn, ChairOut, CuffAssignment, DeviceOut
from vitalsd.errors import NotFound

chairs = APIRouter(prefix="/api/chairs", tags=["chairs"], responses=AUTH_ERRORS)
devices = APIRouter(prefix="/api/devices", tags=["devices"], responses=AUTH_ERRORS)

AddressPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=r"^[^\s\x00]+$", description="Bluetooth address")
]


@chairs.post("", response_model=ChairOut, status_code=201, responses=CONFLICT)
async def create_chair(body: ChairIn, clinic: ClinicDep, user: EquipmentManager) -> ChairOut:
    return ChairOut.model_validate(await clinic.create_chair(body.name, by=user))


@chairs.get("", response_model=list[ChairOut])
async def list_chairs(clinic: ClinicDep, user: Reader) -> list[ChairOut]:
    return [ChairOut.model_validate(c) for c in await clinic.list_chairs()]


@chairs.get("/{chair_id}", response_model=ChairOut, responses=NOT_FOUND)
async def get_chair(chair_id: IdPath, clinic: ClinicDep, user: Reader) -> ChairOut:
    for chair in await clinic.list_chairs():
        if chair.id == chair_id:
            return ChairOut.model_validate(chair)
    raise NotFound(f"no chair with id {chair_id}")


@chairs.patch("/{chair_id}", response_model=ChairOut, responses=NOT_FOUND | CONFLICT)
async def rename_chair(
    chair_id: IdPath, body: ChairIn, clinic: ClinicDep, user: EquipmentManager
) -> ChairOut:
    """Give the chair another name (audited); 409 when another chair has it."""
    return ChairOut.model_validate(await clinic.rename_chair(chair_id, body.name, by=user))


@chairs.post("/{chair_id}/retire", response_model=ChairOut, responses=NOT_FOUND | CONFLICT)
async def retire_chair(chair_id: IdPath, clinic: ClinicDep, user: EquipmentManager) -> ChairOut:
    """Take the chair out of service (audited): it leaves the ward, its cuff is
    released, it takes no new session. 409 while it has an open session."""
    return ChairOut.model_validate(await clinic.retire_chair(chair_id, by=user))


@chairs.put("/{chair_id}/cuff", response_model=ChairOut, responses=NOT_FOUND | CONFLICT)
async def assign_cuff(
    chair_id: IdPath, body: CuffAssignment, clinic: ClinicDep, user: EquipmentManager
) -> ChairOut:
    """Bind a cuff to the chair (null unbinds); the cuff leaves any other chair. 409
    without `confirm` and `reason` when a chair's open session would change cuff."""
    return ChairOut.model_validate(
        await clinic.assign_cuff(
            chair_id, body.cuff_address, by=user, confirm=body.confirm, reason=body.reason
        )
    )


@chairs.delete("/{chair_id}/cuff", response_model=ChairOut, responses=NOT_FOUND | CONFLICT)
async def unassign_cuff(
    chair_id: IdPath,
    clinic: ClinicDep,
    user: EquipmentManager,
    confirm: Annotated[bool, Query(description="Unbind although the chair is in session")] = False,
    reason: Annotated[str | None, Query(max_length=2000, description="Why (audited)")] = None,
) -> ChairOut:
    """Unbind the chair's cuff; 409 without `confirm` and `reason` while it is in session."""
    return ChairOut.model_validate(
        await clinic.assign_cuff(chair_id, None, by=user, confirm=confirm, reason=reason)
    )


@devices.get("", response_model=list[DeviceOut])
async def list_devices(clinic: ClinicDep, user: Reader) -> list[DeviceOut]:
    """Every cuff seen: identity, battery, signal, connection state, chair."""
    return [DeviceOut.model_validate(d) for d in await clinic.list_devices()]


@devices.get("/{address}", response_model=DeviceOut, responses=NOT_FOUND)
async def get_device(address: AddressPath, clinic: ClinicDep, user: Reader) -> DeviceOut:
    wanted = address.upper()
    for device in await clinic.list_devices():
        if device.address == wanted:
            return DeviceOut.model_validate(device)
    raise NotFound(f"no cuff with address {address}")


@devices.post("/{address}/assign", response_model=ChairOut, responses=NOT_FOUND | CONFLICT)
async def assign_device(
    address: AddressPath, body: ChairAssignment, clinic: ClinicDep, user: EquipmentManager
) -> ChairOut:
    """The same as `PUT /api/chairs/{chair_id}/cuff`, from the cuff's side."""
    return ChairOut.model_validate(
        await clinic.assign_cuff(
            body.chair_id, address, by=user, confirm=body.confirm, reason=body.reason
        )
    )
