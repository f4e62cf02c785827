"""Named scenarios: which cuffs, on which patients, behaving how (issue #3, "Scenarios").

`scenario_configs()` is pure (name, count, seed -> CuffConfigs); `start_scenario()` puts
those cuffs on a virtual radio (a new `VirtualRadio` unless one is given) or on real HCI
transports and returns a `CuffFleet`. The scenarios themselves and the fleet live in
`simulators.fleet`, which `simulators.radio` uses too: the dependency goes one way.

A scenario's session, in simulated time: the baseline reading 1 minute after start,
then one every 5 minutes; the dose 10 minutes after start (staggered per chair in the
clinic), so the response peaks about 40-50 minutes in and is gone by about 2 hours.
"""

from __future__ import annotations

from collections.abc import Sequence

from bumble.link import LocalLink
from bumble.transport.common import Transport

from simulators.clock import SimClock
from simulators.fleet import (
    _SESSION as _SESSION,
)
from simulators.fleet import (
    DOSE_AFTER as DOSE_AFTER,
)
from simulators.fleet import (
    ERROR_PROBLEMS as ERROR_PROBLEMS,
)
from simulators.fleet import (
    FIRST_MEASUREMENT_AFTER as FIRST_MEASUREMENT_AFTER,
)
from simulators.fleet import (
    FLAKY as FLAKY,
)
from simulators.fleet import (
    MEASUREMENT_INTERVAL as MEASUREMENT_INTERVAL,
)
from simulators.fleet import (
    MOTION_PROBLEMS as MOTION_PROBLEMS,
)
from simulators.fleet import (
    SCENARIOS as SCENARIOS,
)
from simulators.fleet import (
    Chair as Chair,
)
from simulators.fleet import (
    CuffFleet as CuffFleet,
)
from simulators.fleet import (
    Radio as Radio,
)
from simulators.fleet import (
    Scenario as Scenario,
)
from simulators.fleet import (
    _chair as _chair,
)
from simulators.fleet import (
    _scenario as _scenario,
)
from simulators.fleet import (
    cuff_address as cuff_address,
)
from simulators.fleet import (
    scenario_configs as scenario_configs,
)
from simulators.fleet import start_scenario_with
from simulators.radio import VirtualRadio


async def start_scenario(
    name: str,
    *,
    count: int | None = None,
    seed: int = 0,
    speed: float = 1.0,
    link: VirtualRadio | LocalLink | None = None,
    clock: SimClock | None = None,
    transports: Sequence[Transport] | None = None,
) -> CuffFleet:
    """Start scenario `name`'s cuffs on `link` (a VirtualRadio or a bare LocalLink; a new
    radio when None), or one cuff per real HCI transport in `transports`."""
    return await start_scenario_with(
        name,
        make_radio=VirtualRadio,
        count=count,
        seed=seed,
        speed=speed,
        link=link,
        clock=clock,
        transports=transports,
    )
