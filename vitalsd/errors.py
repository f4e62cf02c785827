"""Domain errors: specific exception classes the API maps to HTTP status codes.

`NotFound` -> 404, `Conflict` (and its subclasses) -> 409, `NotAllowed` -> 403,
`InvalidInput` -> 422. Each carries a `reason` a person can act on.
"""

from __future__ import annotations


class DomainError(Exception):
    """Base of every error the clinic service raises on purpose."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class NotFound(DomainError):
    """The patient, chair, session, reading, check, alert or device does not exist."""


class Conflict(DomainError):
    """The request contradicts the current state (HTTP 409)."""


class DosingHoldActive(Conflict):
    """A dosing hold stands: a clinician acknowledges it or overrides it with a reason."""


class CloseCheckMissing(Conflict):
    """The close-of-session check has no reading: a clinician closes with a reason."""


class InvalidTransition(Conflict):
    """An alert or session cannot make this transition from its current state."""


class NotAllowed(DomainError):
    """The user's role may not do this (HTTP 403)."""


class InvalidInput(DomainError, ValueError):
    """A value is out of range or inconsistent (HTTP 422)."""
