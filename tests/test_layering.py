"""The dependency rules of the tree (STYLE.md: functional core, imperative shell; data
flows one way), read from the imports themselves (ast), so they stay true.

Each rule is a function of one module's source text, so a test can plant a violation
and see it flagged.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("vitalsd", "api", "devices", "simulators")

# Entry points: the only vitalsd modules that wire the web app and the simulators in.
COMPOSITION_ROOTS = frozenset({"vitalsd.daemon", "vitalsd.demo", "vitalsd.cli"})
PURE_CORE = frozenset(
    {
        "vitalsd.domain",
        "vitalsd.protocol",
        "vitalsd.schedule",
        "vitalsd.thresholds",
        "vitalsd.alerts",
        "vitalsd.evaluation",
        "vitalsd.technical",
        # Issue #15: who hears of an alert, and when.
        "vitalsd.notify.routing",
    }
)
# What the pure core never imports: no database, no event loop, no shell, no I/O layer.
NOT_IN_THE_CORE = (
    "sqlalchemy",
    "asyncio",
    "vitalsd.store",
    "vitalsd.clinic",
    "api",
    "devices",
    "simulators",
)
# One service per aggregate in the clinic; they share only the unit of work, the
# memory, the rows and the pure core, never each other.
CLINIC_SERVICES = frozenset(
    f"vitalsd.clinic.{name}"
    for name in (
        "registry",
        "sessions",
        "ingest",
        "equipment",
        "alerting",
        "timers",
        "reads",
        "technical_alarms",
    )
)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> Iterator[tuple[str, str, bool]]:
    """(module name, source text, is a package's __init__) of every module we ship."""
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            yield module_name(path), path.read_text(), path.name == "__init__.py"


def imports_of(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every module name `source` (the text of `module`) imports, anywhere in it
    (functions included), relative imports resolved; `from a import b` counts as
    both `a` and `a.b` (b may be a module)."""
    found: set[str] = set()
    package = module.split(".") if is_package else module.split(".")[:-1]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def within(name: str, prefix: str) -> bool:
    return name == prefix or name.startswith(prefix + ".")


def violations(module: str, source: str, is_package: bool = False) -> list[str]:
    """What in `source` (the text of `module`) breaks a layering rule, said plainly."""
    imported = imports_of(source, module, is_package)
    found: list[str] = []
    if within(module, "vitalsd") and module not in COMPOSITION_ROOTS:
        found += [
            f"{module} imports {name}: only the composition roots wire api and simulators in"
            for name in sorted(imported)
            if within(name, "api") or within(name, "simulators")
        ]
    if module in PURE_CORE:
        found += [
            f"{module} is pure core but imports {name}"
            for name in sorted(imported)
            if any(within(name, banned) for banned in NOT_IN_THE_CORE)
        ]
    if within(module, "vitalsd.clinic"):
        found += [
            f"{module} imports {name}: the Bluetooth side hands the clinic a domain reading"
            for name in sorted(imported)
            if within(name, "devices")
        ]
    if module in CLINIC_SERVICES:
        found += [
            f"{module} imports the service {name}: services never import each other"
            for name in sorted(imported & CLINIC_SERVICES)
            if name != module
        ]
    if within(module, "api"):
        found += [f"{module}:{line} reaches for clinic.engine" for line in engine_reaches(source)]
    return found


def engine_reaches(source: str) -> list[int]:
    """Lines where `source` touches a clinic's engine (`clinic.engine`,
    `x.clinic.engine`): the API goes through the clinic's own read seams."""
    return [
        node.lineno
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Attribute)
        and node.attr in ("engine", "writer_engine")
        and (
            (isinstance(node.value, ast.Name) and node.value.id == "clinic")
            or (isinstance(node.value, ast.Attribute) and node.value.attr == "clinic")
        )
    ]


def test_the_tree_keeps_its_layering() -> None:
    found = [
        v for module, source, package in modules() for v in violations(module, source, package)
    ]
    assert found == []


def test_every_rule_reads_a_real_tree() -> None:
    names = {module for module, _, _ in modules()}
    assert PURE_CORE | COMPOSITION_ROOTS | CLINIC_SERVICES <= names
    assert {"api.routes.exports", "api.routes.health", "vitalsd.clinic.facade"} <= names


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("vitalsd.evaluation", "import sqlalchemy\n", "pure core but imports sqlalchemy"),
        ("vitalsd.schedule", "def f():\n    import asyncio\n", "imports asyncio"),
        ("vitalsd.alerts", "from vitalsd.store import models\n", "imports vitalsd.store"),
        ("vitalsd.domain", "from vitalsd.clinic import Clinic\n", "imports vitalsd.clinic"),
        ("vitalsd.clinic.ingest", "from devices.bps import X\n", "domain reading"),
        ("vitalsd.clinic.sessions", "from .ingest import Ingest\n", "never import each other"),
        ("vitalsd.clinic.reads", "from . import timers\n", "never import each other"),
        ("vitalsd.views", "from api.schemas import Health\n", "composition roots"),
        ("vitalsd.clinic.facade", "import simulators.cuff\n", "composition roots"),
        ("api.routes.health", "x = context.clinic.engine.dialect\n", "clinic.engine"),
        ("api.routes.exports", "read_snapshot(clinic.engine)\n", "clinic.engine"),
    ],
)
def test_a_planted_violation_is_flagged(module: str, source: str, expected: str) -> None:
    found = violations(module, source)
    assert found and all(expected in line for line in found), found


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("vitalsd.daemon", "from api.app import create_app\nimport simulators\n"),
        ("vitalsd.clinic.sessions", "from .rules import reevaluate\nimport sqlalchemy\n"),
        ("vitalsd.evaluation", "from vitalsd.schedule import CheckSchedule\n"),
        ("api.routes.health", "clinic.database_dialect\n"),
    ],
)
def test_what_the_rules_allow_is_not_flagged(module: str, source: str) -> None:
    assert violations(module, source) == []


def test_relative_imports_resolve_inside_their_package() -> None:
    assert "vitalsd.clinic.ingest" in imports_of("from .ingest import Ingest\n", "vitalsd.clinic.x")
    assert "vitalsd.clinic.ingest" in imports_of(
        "from . import ingest\n", "vitalsd.clinic", is_package=True
    )
