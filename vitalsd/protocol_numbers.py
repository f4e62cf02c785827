"""A protocol's numbers as plain values, for reading on a screen (issue #14).

The admin's protocol screen and the dose form show what the clinic's protocol file says;
durations become minutes (as the file writes them: `recent_bp_minutes`), sets become
sorted lists, and the `[doses]` table becomes one row per drug and route. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
from datetime import timedelta
from typing import Any

from vitalsd.protocol import Protocol

Numbers = dict[str, float | int | bool | str | list[str]]


def _value(value: Any) -> float | int | bool | str | list[str]:
    if isinstance(value, frozenset | set):
        return sorted(str(v) for v in value)
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def rule_numbers(rule: Any) -> Numbers | None:
    """A rule dataclass's fields by the protocol file's own names (`*_minutes`)."""
    if rule is None:
        return None
    numbers: Numbers = {}
    for field in dataclasses.fields(rule):
        value = getattr(rule, field.name)
        if isinstance(value, timedelta):
            numbers[f"{field.name}_minutes"] = value.total_seconds() / 60
        else:
            numbers[field.name] = _value(value)
    return numbers


def default_dose(protocol: Protocol) -> dict[str, Any] | None:
    """What the dose form starts from (issue #14): the `[doses]` drug the protocol's
    name or title names (the longest such: `esketamine-rems` is esketamine, not
    ketamine), else the first listed; a route they name (`iv-infusion`: IV), else the
    drug's first. An amount only where the protocol names the drug and lists one route for it
    (esketamine's 28 mg nasal spray device): a ketamine dose is the clinician's to type.
    None without a `[doses]` table."""
    ranges = protocol.doses.ranges
    if not ranges:
        return None
    name = f"{protocol.name} {protocol.title}".lower()
    drugs = list(dict.fromkeys(drug for drug, _, _, _ in ranges))
    named = sorted((d for d in drugs if d.lower() in name), key=len, reverse=True)
    drug = named[0] if named else drugs[0]
    routes = [(route, low) for d, route, low, _ in ranges if d == drug]
    words = set(name.replace("_", " ").replace("-", " ").split())
    by_name = [(route, low) for route, low in routes if route.lower() in words]
    route, low = (by_name or routes)[0]
    amount = low if named and len(routes) == 1 else None
    return {"drug": drug, "route": route, "amount_mg": amount}


def protocol_numbers(protocol: Protocol) -> dict[str, Any]:
    """Everything a clinician checks in a protocol, without its file's text."""
    return {
        "name": protocol.name,
        "title": protocol.title,
        "course_start_sessions": protocol.course_start_sessions,
        "rems_monitoring_form": protocol.rems_monitoring_form,
        "baseline": rule_numbers(protocol.baseline),
        "post_dose": rule_numbers(protocol.post_dose),
        "infusion": rule_numbers(protocol.infusion),
        "post_infusion": rule_numbers(protocol.post_infusion),
        "close": rule_numbers(protocol.close),
        "thresholds": rule_numbers(protocol.thresholds),
        "safety": rule_numbers(protocol.safety),
        "doses": [
            {"drug": drug, "route": route, "min_mg": low, "max_mg": high}
            for drug, route, low, high in protocol.doses.ranges
        ],
        "default_dose": default_dose(protocol),
    }
