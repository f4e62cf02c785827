"""Named scenarios (which cuffs, on which patients, behaving how; issue #3, "Scenarios")
and the fleets running them on a radio they are given.

`scenario_configs()` is pure (name, count, seed -> CuffConfigs); `start_scenario_with()`
puts those cuffs on a radio (or on real HCI transports) and returns a `CuffFleet`. A radio
to make is handed in (`make_radio`), so `simulators.radio` can start a scenario on itself
and `simulators.scenarios` can make a `VirtualRadio`: both import this module, never each
other the wrong way round.

A scenario's session, in simulated time: the baseline reading 1 minute after start,
then one every 5 minutes; the dose 10 minutes after start (staggered per chair in the
clinic), so the response peaks about 40-50 minutes in and is gone by about 2 hours.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Final, Protocol

from bumble.link import LocalLink
from bumble.transport.common import Transport

from simulators.clock import SimClock
from simulators.cuff import CuffConfig, FlakyLink, SimulatedCuff
from simulators.frames import Quirk
from simulators.physiology import MeasurementProblem, Profile

MEASUREMENT_INTERVAL: Final = timedelta(minutes=5)
FIRST_MEASUREMENT_AFTER: Final = timedelta(minutes=1)
DOSE_AFTER: Final = timedelta(minutes=10)
FLAKY: Final = FlakyLink(every=timedelta(minutes=15), lasting=timedelta(minutes=6))
MOTION_PROBLEMS: Final = (
    None,
    MeasurementProblem.BODY_MOVEMENT,
    None,
    MeasurementProblem.LOOSE_CUFF,
    None,
    MeasurementProblem.IMPROPER_POSITION,
    None,
    MeasurementProblem.IRREGULAR_PULSE,
)
ERROR_PROBLEMS: Final = (None, None, MeasurementProblem.ERROR_FRAME)

# One chair's cuff, as CuffConfig fields; the scenario adds identity and seed.
Chair = dict[str, Any]


@dataclass(frozen=True)
class Scenario:
    """A named mix of cuffs; `chairs` is cycled when more cuffs are asked for."""

    name: str
    description: str
    chairs: tuple[Chair, ...]
    default_count: int = 1
    dose_stagger: timedelta = timedelta(0)


_SESSION: Final[Chair] = {
    "measurement_interval": MEASUREMENT_INTERVAL,
    "first_measurement_after": FIRST_MEASUREMENT_AFTER,
    "dose_after": DOSE_AFTER,
}


def _chair(**fields: Any) -> Chair:
    return {**_SESSION, **fields}


SCENARIOS: Final[dict[str, Scenario]] = {
    s.name: s
    for s in (
        Scenario(
            "normotensive",
            "normal resting pressure, a typical dose response",
            (_chair(profile=Profile.NORMOTENSIVE),),
        ),
        Scenario(
            "elevated-baseline",
            "baseline at or above 140/90 (elevated_baseline), below the dosing hold",
            (_chair(profile=Profile.ELEVATED),),
        ),
        Scenario(
            "ketamine-response",
            "the dose response: one high responder (+40 systolic or more) in three",
            (
                _chair(profile=Profile.NORMOTENSIVE, high_responder=True),
                _chair(profile=Profile.NORMOTENSIVE, high_responder=False),
                _chair(profile=Profile.ELEVATED, high_responder=False),
            ),
        ),
        Scenario(
            "severe-hypertension",
            "baseline above the 160/100 dosing hold, then a high response past 180/110",
            (_chair(profile=Profile.HYPERTENSIVE, high_responder=True),),
        ),
        Scenario(
            "hypotension",
            "resting pressure below 90/60",
            (_chair(profile=Profile.HYPOTENSIVE),),
        ),
        Scenario(
            "motion-artifact",
            "every other reading flagged: body movement, loose cuff, position, irregular pulse",
            (_chair(profile=Profile.NORMOTENSIVE, problems=MOTION_PROBLEMS),),
        ),
        Scenario(
            "error-frame",
            "every third measurement fails: all-NaN values, no status bits",
            (_chair(profile=Profile.NORMOTENSIVE, problems=ERROR_PROBLEMS),),
        ),
        Scenario(
            "flaky-link",
            "out of range 6 minutes in every 15; BPS 1.1 and 1.0 cuffs alternate",
            (
                _chair(profile=Profile.NORMOTENSIVE, flaky_link=FLAKY, record_style="bps11"),
                _chair(profile=Profile.ELEVATED, flaky_link=FLAKY, record_style="bps10"),
            ),
        ),
        Scenario(
            "short-windows",
            "cuffs that advertise only 1-3 real seconds after each measurement, as most"
            " real cuffs do; BPS 1.0 and 1.1 alternate",
            (
                _chair(profile=Profile.NORMOTENSIVE, connectable="windows"),
                _chair(profile=Profile.ELEVATED, connectable="windows", record_style="bps11"),
            ),
            default_count=2,
        ),
        Scenario(
            "beurer-bm85",
            "a Beurer BM85-style cuff: off-spec flags, byte order and user byte",
            (
                _chair(
                    profile=Profile.NORMOTENSIVE,
                    quirk=Quirk.BEURER_BM85,
                    manufacturer="Beurer (simulated)",
                    model="BM85",
                ),
            ),
        ),
        Scenario(
            "clinic",
            "six chairs with a mix of patients, cuff styles and troubles",
            (
                _chair(profile=Profile.NORMOTENSIVE),
                _chair(profile=Profile.ELEVATED, record_style="bps11", connectable="brief"),
                _chair(profile=Profile.NORMOTENSIVE, high_responder=True, record_style="bps11"),
                _chair(
                    profile=Profile.HYPOTENSIVE,
                    quirk=Quirk.BEURER_BM85,
                    manufacturer="Beurer (simulated)",
                    model="BM85",
                    connectable="brief",
                ),
                _chair(profile=Profile.NORMOTENSIVE, problems=MOTION_PROBLEMS),
                _chair(
                    profile=Profile.ELEVATED,
                    record_style="bps11",
                    flaky_link=FLAKY,
                    problems=(None, None, None, MeasurementProblem.ERROR_FRAME),
                ),
            ),
            default_count=6,
            dose_stagger=timedelta(minutes=5),
        ),
    )
}


def _scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise ValueError(
            f"unknown scenario {name!r}; known: {', '.join(sorted(SCENARIOS))}"
        ) from None


def cuff_address(seed: int, index: int) -> str:
    """A random static address per (seed, cuff): D0:5E:<seed>:<cuff number>."""
    number = index + 1
    return (
        f"D0:5E:{(seed >> 8) & 0xFF:02X}:{seed & 0xFF:02X}:"
        f"{(number >> 8) & 0xFF:02X}:{number & 0xFF:02X}"
    )


def scenario_configs(name: str, *, count: int | None = None, seed: int = 0) -> list[CuffConfig]:
    """The cuffs of scenario `name`: pure and reproducible for a given seed."""
    scenario = _scenario(name)
    count = scenario.default_count if count is None else count
    if count < 1:
        raise ValueError(f"count must be at least 1, got {count}")
    configs = []
    for index in range(count):
        chair = dict(scenario.chairs[index % len(scenario.chairs)])
        number = index + 1
        if chair.get("dose_after") is not None:
            chair["dose_after"] = chair["dose_after"] + index * scenario.dose_stagger
        prefix = "BM85-SIM" if chair.get("quirk") is Quirk.BEURER_BM85 else "SIM-BP"
        configs.append(
            CuffConfig(
                address=cuff_address(seed, index),
                local_name=f"{prefix} {number}",
                serial=f"SIM{abs(seed) % 100000:05d}-{number:03d}",
                seed=seed * 1000 + index,
                **chair,
            )
        )
    return configs


class Radio(Protocol):
    """What a fleet needs of its radio (`simulators.radio.VirtualRadio` is one)."""

    @property
    def link(self) -> LocalLink: ...

    async def close(self) -> None: ...


class CuffFleet:
    """Running cuffs of one scenario, with the radio and clock they share."""

    def __init__(
        self,
        name: str,
        cuffs: Sequence[SimulatedCuff],
        clock: SimClock,
        radio: Radio | None,
        *,
        owns_radio: bool,
    ) -> None:
        self.name = name
        self.cuffs = list(cuffs)
        self.clock = clock
        self.radio = radio
        self._owns_radio = owns_radio

    def cuff(self, address: str) -> SimulatedCuff:
        for cuff in self.cuffs:
            if cuff.address.upper() == address.upper():
                return cuff
        raise LookupError(f"no cuff {address} in scenario {self.name}")

    async def stop(self) -> None:
        """Stop every cuff; close the radio if the fleet made it."""
        for cuff in self.cuffs:
            with contextlib.suppress(Exception):
                await cuff.stop()
        if self._owns_radio and self.radio is not None:
            await self.radio.close()

    async def __aenter__(self) -> CuffFleet:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.stop()


async def start_scenario_with(
    name: str,
    *,
    make_radio: Callable[[LocalLink | None], Radio],
    count: int | None = None,
    seed: int = 0,
    speed: float = 1.0,
    link: Radio | LocalLink | None = None,
    clock: SimClock | None = None,
    transports: Sequence[Transport] | None = None,
) -> CuffFleet:
    """Start scenario `name`'s cuffs on `link` (a radio or a bare LocalLink; a radio from
    `make_radio` when it is a bare link or None), or one cuff per real HCI transport in
    `transports`."""
    if transports is not None and link is not None:
        raise ValueError("pass either link= (virtual radio) or transports= (real HCI), not both")
    if transports is not None:
        if count is not None and count > len(transports):
            raise ValueError(
                f"{count} cuffs need {count} HCI transports; got {len(transports)} "
                f"(one real controller hosts one cuff)"
            )
        count = len(transports) if count is None else count
    configs = scenario_configs(name, count=count, seed=seed)
    clock = clock or SimClock(speed)
    owns_radio = link is None and transports is None
    radio: Radio | None
    if link is not None and not isinstance(link, LocalLink):
        radio = link
    elif transports is None:
        radio = make_radio(link)
    else:
        radio = None
    cuffs: list[SimulatedCuff] = []
    try:
        for index, config in enumerate(configs):
            if transports is not None:
                cuff = SimulatedCuff(config, clock=clock, transport=transports[index])
            else:
                assert radio is not None
                cuff = SimulatedCuff(config, clock=clock, link=radio.link)
            await cuff.start()
            cuffs.append(cuff)
    except BaseException:
        await CuffFleet(name, cuffs, clock, radio, owns_radio=owns_radio).stop()
        raise
    return CuffFleet(name, cuffs, clock, radio, owns_radio=owns_radio)
