"""The clinic service: the imperative shell around the pure rules.

The API and the Bluetooth side call `Clinic` (`facade`); it stores, asks the pure core
(`vitalsd.evaluation`, `vitalsd.schedule`, `vitalsd.thresholds`, `vitalsd.alerts`) what
follows, stores that too, and publishes events. Its rooms: `unit_of_work` (one write
transaction, its events numbered, stored, published after commit), `memory` (the
writer's identity map), `session_state` and `rows` (rows as the rules and the API see
them), `rules` (the evaluation's shell), and one service per aggregate: `registry`,
`sessions`, `ingest`, `equipment`, `alerting`, `timers`, `reads`.
"""

from vitalsd.auth import SYSTEM_ACTOR, Actor
from vitalsd.evaluation import DEFAULT_STALE_AFTER

from .facade import Clinic, utc_now
from .rows import mean_arterial_pressure_of

__all__ = [
    "DEFAULT_STALE_AFTER",
    "SYSTEM_ACTOR",
    "Actor",
    "Clinic",
    "mean_arterial_pressure_of",
    "utc_now",
]
