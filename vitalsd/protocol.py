"""Clinical protocols: the check schedule and thresholds a clinic works to, from TOML.

Three presets ship in `vitalsd/protocols/` (DESIGN.md "Clinical protocol"); a clinic
copies one, edits its numbers, and points the `protocol` setting at the copy. A bad file
fails at load with a `ProtocolError` that names the key and the problem.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from importlib import resources
from pathlib import Path
from typing import Any

from vitalsd.domain import Drug, Route

PRESETS = ("ketamine-psychotherapy", "esketamine-rems", "iv-infusion")
DEFAULT_PRESET = "ketamine-psychotherapy"


class ProtocolError(ValueError):
    """A protocol file is missing a key, has an unknown one, or a value is out of range."""

    def __init__(self, key: str, problem: str, source: str = "protocol") -> None:
        super().__init__(f"{source}: key '{key}': {problem}")
        self.key = key
        self.problem = problem
        self.source = source


class PostDoseCondition(StrEnum):
    """When the post-dose check is made (DESIGN.md "Clinical protocol", points 2 and 3)."""

    ALWAYS = "always"
    ELEVATED_BASELINE = "elevated_baseline"
    COURSE_START = "course_start"
    DOSE_INCREASE = "dose_increase"


@dataclass(frozen=True)
class BaselineRule:
    required: bool = True
    # The baseline is the mean of the latest this-many valid pre-dose readings.
    readings_averaged: int = 2
    # An elevated first reading asks for a confirming one after a short rest.
    confirm_elevated: bool = True
    confirm_after: timedelta = timedelta(minutes=1)
    consider_deferring_when_elevated: bool = False


@dataclass(frozen=True)
class PostDoseRule:
    opens_after: timedelta
    closes_after: timedelta
    when: frozenset[PostDoseCondition]


@dataclass(frozen=True)
class InfusionRule:
    """A reading in every `interval` while an infusion runs."""

    interval: timedelta


@dataclass(frozen=True)
class PostInfusionRule:
    """A reading in every `interval` for `duration` after an infusion stops."""

    interval: timedelta
    duration: timedelta


@dataclass(frozen=True)
class CloseRule:
    """The close-of-session check opens this long after the last dose (or infusion stop)."""

    opens_after_last_dose: timedelta


@dataclass(frozen=True)
class ThresholdLimits:
    """Alert thresholds in mmHg and beats per minute (DESIGN.md "Thresholds")."""

    elevated_systolic: float = 140
    elevated_diastolic: float = 90
    older_patient_age: int = 65
    elevated_systolic_older: float = 150
    hold_systolic: float = 160
    hold_diastolic: float = 100
    severe_systolic: float = 180
    severe_diastolic: float = 110
    rise_systolic: float = 40
    rise_diastolic: float = 25
    hypotension_systolic: float = 90
    hypotension_diastolic: float = 60
    pulse_low: float = 50
    pulse_high: float = 120


# A drug the protocol file does not list may be given by any route in this range (mg):
# wide, a plausibility check that refuses a typing error (1e-300, 50000), no dosing advice.
DEFAULT_DOSE_RANGE_MG: tuple[float, float] = (0.01, 5000.0)


class DoseOutOfRange(ValueError):
    """A dose's amount or route is outside what the protocol file allows."""


@dataclass(frozen=True)
class DoseLimits:
    """Plausible amounts of one dose, mg, per drug and route (the protocol's `[doses]`).
    A listed drug is given only by its listed routes; an unlisted one by any route within
    `DEFAULT_DOSE_RANGE_MG`."""

    ranges: tuple[tuple[str, str, float, float], ...] = ()

    def check(self, drug: str, route: str, amount_mg: float) -> None:
        routes = {r: (low, high) for d, r, low, high in self.ranges if d == drug}
        if not routes:
            low, high = DEFAULT_DOSE_RANGE_MG
        elif route not in routes:
            raise DoseOutOfRange(
                f"{drug} is not given {route} under this protocol "
                f"(routes: {', '.join(sorted(routes))})"
            )
        else:
            low, high = routes[route]
        if not low <= amount_mg <= high:
            raise DoseOutOfRange(
                f"amount_mg {amount_mg:g} is outside {low:g}-{high:g} mg for {drug} {route} "
                "(the protocol file's [doses])"
            )


@dataclass(frozen=True)
class SafetyRule:
    """The numbers of DESIGN.md "Safety rules that hold in every preset"."""

    # Dosing gate: a dose with no valid reading this recent before it is `no_recent_bp`.
    recent_bp: timedelta = timedelta(minutes=30)
    # Monitor until stable: a follow-up check this long after a post-dose reading in the
    # rise or hold range (sooner after a severe one), open for `follow_up_window`.
    follow_up_after: timedelta = timedelta(minutes=10)
    follow_up_after_severe: timedelta = timedelta(minutes=5)
    follow_up_window: timedelta = timedelta(minutes=10)
    # A severe side effect (this severity or more) raises a medium alert and a check.
    severe_side_effect_severity: int = 3
    side_effect_check_after: timedelta = timedelta(minutes=5)
    # Closing: the close check needs a valid reading this recent.
    close_reading_within: timedelta = timedelta(minutes=15)
    # Alarm behaviour (IEC 60601-1-8 style).
    renotify_high_every: timedelta = timedelta(minutes=2)
    snooze_total: timedelta = timedelta(minutes=30)
    snooze_total_high: timedelta = timedelta(minutes=5)
    worsening_systolic: float = 10
    worsening_diastolic: float = 5
    # Time: a live reading whose cuff clock is further off than this is re-stamped.
    cuff_clock_tolerance: timedelta = timedelta(minutes=2)


@dataclass(frozen=True)
class Protocol:
    name: str
    title: str
    course_start_sessions: int
    baseline: BaselineRule
    post_dose: PostDoseRule | None
    infusion: InfusionRule | None
    post_infusion: PostInfusionRule | None
    close: CloseRule
    thresholds: ThresholdLimits
    safety: SafetyRule = SafetyRule()
    # Keep what the esketamine REMS patient monitoring form asks for.
    rems_monitoring_form: bool = False
    source_text: str = ""
    doses: DoseLimits = DoseLimits()


class _Table:
    """Reads one TOML table, remembering which keys were used so unknown ones are errors."""

    def __init__(self, raw: dict[str, Any], prefix: str, source: str) -> None:
        self.raw = raw
        self.prefix = prefix
        self.source = source
        self.used: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.prefix}{name}"

    def error(self, name: str, problem: str) -> ProtocolError:
        return ProtocolError(self.key(name), problem, self.source)

    def has(self, name: str) -> bool:
        return name in self.raw

    def _get(self, name: str, default: Any) -> Any:
        self.used.add(name)
        if name not in self.raw:
            if default is _REQUIRED:
                raise self.error(name, "is required")
            return default
        return self.raw[name]

    def string(self, name: str, default: Any = None) -> str:
        value = self._get(name, _REQUIRED if default is None else default)
        if not isinstance(value, str) or not value.strip():
            raise self.error(name, f"must be a non-empty string, got {value!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._get(name, default)
        if not isinstance(value, bool):
            raise self.error(name, f"must be true or false, got {value!r}")
        return value

    def number(self, name: str, default: float | None = None, minimum: float = 0) -> float:
        value = self._get(name, _REQUIRED if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(name, f"must be a number, got {value!r}")
        if value < minimum:
            raise self.error(name, f"must be at least {minimum:g}, got {value!r}")
        return float(value)

    def integer(self, name: str, default: int | None = None, minimum: int = 0) -> int:
        value = self._get(name, _REQUIRED if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(name, f"must be a whole number, got {value!r}")
        if value < minimum:
            raise self.error(name, f"must be at least {minimum}, got {value!r}")
        return value

    def minutes(self, name: str, default: float | None = None, minimum: float = 0) -> timedelta:
        return timedelta(minutes=self.number(name, default, minimum))

    def table(self, name: str) -> _Table | None:
        self.used.add(name)
        if name not in self.raw:
            return None
        value = self.raw[name]
        if not isinstance(value, dict):
            raise self.error(name, f"must be a table ([{self.key(name)}]), got {value!r}")
        return _Table(value, f"{self.key(name)}.", self.source)

    def string_list(self, name: str) -> list[str]:
        value = self._get(name, _REQUIRED)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.error(name, f"must be a list of strings, got {value!r}")
        return value

    def finish(self) -> None:
        unknown = sorted(set(self.raw) - self.used)
        if unknown:
            raise self.error(unknown[0], "is not a known setting (misspelt?)")


_REQUIRED = object()


def _baseline(table: _Table | None) -> BaselineRule:
    if table is None:
        return BaselineRule()
    rule = BaselineRule(
        required=table.boolean("required", True),
        readings_averaged=table.integer("readings_averaged", 2, minimum=1),
        confirm_elevated=table.boolean("confirm_elevated", True),
        confirm_after=table.minutes("confirm_after_minutes", 1),
        consider_deferring_when_elevated=table.boolean("consider_deferring_when_elevated", False),
    )
    table.finish()
    return rule


def _post_dose(table: _Table | None) -> PostDoseRule | None:
    if table is None:
        return None
    opens = table.minutes("opens_after_minutes")
    closes = table.minutes("closes_after_minutes")
    if closes <= opens:
        raise table.error(
            "closes_after_minutes",
            f"must be later than opens_after_minutes ({opens.total_seconds() / 60:g}), "
            f"got {closes.total_seconds() / 60:g}",
        )
    when: set[PostDoseCondition] = set()
    for item in table.string_list("when"):
        try:
            when.add(PostDoseCondition(item))
        except ValueError:
            allowed = ", ".join(c.value for c in PostDoseCondition)
            raise table.error("when", f"unknown condition {item!r} (one of {allowed})") from None
    if not when:
        raise table.error("when", "must name at least one condition (or remove [post_dose])")
    table.finish()
    return PostDoseRule(opens_after=opens, closes_after=closes, when=frozenset(when))


def _infusion(table: _Table | None) -> InfusionRule | None:
    if table is None:
        return None
    rule = InfusionRule(interval=table.minutes("interval_minutes", minimum=1))
    table.finish()
    return rule


def _post_infusion(table: _Table | None) -> PostInfusionRule | None:
    if table is None:
        return None
    interval = table.minutes("interval_minutes", minimum=1)
    duration = table.minutes("duration_minutes", minimum=1)
    if duration < interval:
        raise table.error("duration_minutes", "must be at least one interval_minutes")
    table.finish()
    return PostInfusionRule(interval=interval, duration=duration)


def _close(table: _Table | None) -> CloseRule:
    if table is None:
        return CloseRule(opens_after_last_dose=timedelta(minutes=60))
    rule = CloseRule(opens_after_last_dose=table.minutes("opens_after_last_dose_minutes", 60))
    table.finish()
    return rule


def _thresholds(table: _Table | None) -> ThresholdLimits:
    if table is None:
        return ThresholdLimits()
    defaults = ThresholdLimits()
    values: dict[str, Any] = {}
    for name in ThresholdLimits.__dataclass_fields__:
        default = getattr(defaults, name)
        if name == "older_patient_age":
            values[name] = table.integer(name, default, minimum=1)
        else:
            values[name] = table.number(name, default, minimum=1)
    table.finish()
    limits = ThresholdLimits(**values)
    ordered = [
        ("elevated_systolic", "hold_systolic"),
        ("elevated_systolic_older", "hold_systolic"),
        ("hold_systolic", "severe_systolic"),
        ("elevated_diastolic", "hold_diastolic"),
        ("hold_diastolic", "severe_diastolic"),
        ("hypotension_systolic", "elevated_systolic"),
        ("hypotension_diastolic", "elevated_diastolic"),
        ("pulse_low", "pulse_high"),
    ]
    for lower, higher in ordered:
        if getattr(limits, lower) >= getattr(limits, higher):
            raise table.error(
                higher,
                f"must be greater than {table.key(lower)} ({getattr(limits, lower):g}), "
                f"got {getattr(limits, higher):g}",
            )
    return limits


def _safety(table: _Table | None) -> SafetyRule:
    defaults = SafetyRule()
    if table is None:
        return defaults
    values: dict[str, Any] = {}
    for name in SafetyRule.__dataclass_fields__:
        default = getattr(defaults, name)
        if isinstance(default, timedelta):
            minutes = default.total_seconds() / 60
            values[name] = table.minutes(f"{name}_minutes", minutes, minimum=0.1)
        elif isinstance(default, int):
            values[name] = table.integer(name, default, minimum=1)
        else:
            values[name] = table.number(name, default, minimum=0)
    table.finish()
    rule = SafetyRule(**values)
    if rule.snooze_total_high > rule.snooze_total:
        raise table.error(
            "snooze_total_high_minutes", "must not be longer than snooze_total_minutes"
        )
    return rule


def _doses(table: _Table | None) -> DoseLimits:
    if table is None:
        return DoseLimits()
    ranges: list[tuple[str, str, float, float]] = []
    for drug in sorted(table.raw):
        if drug not in {d.value for d in Drug}:
            raise table.error(drug, f"is not a drug ({', '.join(d.value for d in Drug)})")
        routes = table.table(drug)
        assert routes is not None
        for route in sorted(routes.raw):
            value = routes.raw[route]
            routes.used.add(route)
            if route not in {r.value for r in Route}:
                raise routes.error(route, f"is not a route ({', '.join(r.value for r in Route)})")
            if (
                not isinstance(value, list)
                or len(value) != 2
                or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
                or not 0 < value[0] <= value[1]
            ):
                raise routes.error(
                    route, f"must be [least, most] mg with 0 < least <= most, got {value!r}"
                )
            ranges.append((drug, route, float(value[0]), float(value[1])))
    return DoseLimits(tuple(ranges))


def parse_protocol(text: str, source: str = "protocol") -> Protocol:
    """Parse and validate a protocol file's text."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        raise ProtocolError("(file)", f"is not valid TOML: {error}", source) from None
    root = _Table(raw, "", source)
    name = root.string("name")
    protocol = Protocol(
        name=name,
        title=root.string("title", name),
        course_start_sessions=root.integer("course_start_sessions", 2),
        baseline=_baseline(root.table("baseline")),
        post_dose=_post_dose(root.table("post_dose")),
        infusion=_infusion(root.table("infusion")),
        post_infusion=_post_infusion(root.table("post_infusion")),
        close=_close(root.table("close")),
        thresholds=_thresholds(root.table("thresholds")),
        safety=_safety(root.table("safety")),
        rems_monitoring_form=root.boolean("rems_monitoring_form", False),
        source_text=text,
        doses=_doses(root.table("doses")),
    )
    root.finish()
    if protocol.post_infusion is not None and protocol.infusion is None:
        raise ProtocolError("post_infusion", "needs an [infusion] table", source)
    return protocol


def load_protocol(name_or_path: str | Path) -> Protocol:
    """Load a preset by name (`ketamine-psychotherapy`, ...) or a clinic's file by path."""
    if isinstance(name_or_path, str) and name_or_path in PRESETS:
        text = resources.files("vitalsd.protocols").joinpath(f"{name_or_path}.toml").read_text()
        return parse_protocol(text, f"preset {name_or_path}")
    path = Path(name_or_path)
    if not path.is_file():
        raise ProtocolError(
            "(file)",
            f"no preset of that name ({', '.join(PRESETS)}) and no such file: {path}",
            str(name_or_path),
        )
    return parse_protocol(path.read_text(encoding="utf-8"), str(path))
