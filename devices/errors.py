"""Why a link to a cuff failed, as types, each with the advice a person can act on.

As bleak-retry-connector's errors carry advice strings (``DEVICE_MISSING_ADVICE``...),
each `CuffLinkError` subclass says what went wrong and what to do about it, so the
supervisor's `CuffUnreachable` event (and the clinic's technical alert) can name both.
`link_error()` turns whatever a connection attempt raised into one of them.
"""

from __future__ import annotations

from typing import ClassVar

from bleak.exc import BleakError


class CuffLinkError(BleakError):
    """The link to a cuff failed in a way the supervisor should log and retry."""

    ADVICE: ClassVar[str] = "it is retried each time the cuff advertises"

    def __init__(self, address: str, problem: str) -> None:
        self.address = address
        self.problem = problem
        super().__init__(f"{address}: {problem}")

    @property
    def advice(self) -> str:
        return self.ADVICE


class CuffConnectTimeout(CuffLinkError):
    """No connection was made: the cuff stopped advertising, or is out of range."""

    ADVICE: ClassVar[str] = (
        "The cuff stopped advertising before it could be connected; bring it within a few"
        " metres of the Bluetooth adapter, or take a measurement to wake it"
    )


class CuffConnectFailed(CuffLinkError):
    """The controller or the cuff refused or dropped the connection as it was made."""

    ADVICE: ClassVar[str] = (
        "The connection failed as it was made; if it keeps failing, switch the cuff off"
        " and on (or change its batteries), and check the Bluetooth adapter"
    )


class CuffPairingRefused(CuffLinkError):
    """The cuff would not pair (or re-encrypt with its bond): its readings need it."""

    ADVICE: ClassVar[str] = (
        "The cuff refused to pair; clear its pairings (see its manual), then take a"
        " measurement so that it pairs again"
    )


class CuffSetUpStalled(CuffLinkError):
    """Connected, but the cuff stopped answering while it was being set up."""

    ADVICE: ClassVar[str] = (
        "The cuff connected but stopped answering while it was set up; switch it off and"
        " on (or change its batteries) if it keeps happening"
    )


class CuffLinkLost(CuffLinkError):
    """The link dropped while the cuff was being set up or read."""

    ADVICE: ClassVar[str] = (
        "The cuff disconnected while it was being read; keep it within range of the"
        " Bluetooth adapter"
    )


def link_error(address: str, error: BaseException) -> CuffLinkError:
    """`error` as a `CuffLinkError` (itself if it is one already): a TimeoutError from
    connecting, or a connect failure whose cause was a missing advertisement, is a
    `CuffConnectTimeout`; any other Bleak error a `CuffConnectFailed`."""
    if isinstance(error, CuffLinkError):
        return error
    chain = _chain(error)
    innermost = str(chain[-1]) or type(chain[-1]).__name__
    if any(isinstance(e, TimeoutError) for e in chain) or any(
        "no connectable advertisement" in str(e) for e in chain
    ):
        return CuffConnectTimeout(address, f"connection timed out ({innermost})")
    return CuffConnectFailed(address, f"connection failed: {innermost}")


def _chain(error: BaseException) -> list[BaseException]:
    """The error and its causes, outermost first (bleak-retry-connector wraps ours)."""
    seen: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__
    return seen
