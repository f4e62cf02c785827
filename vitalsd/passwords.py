"""Which new passwords are accepted (NIST SP 800-63B section 3.1.1.2, issue #17).

Pure: `check_new_password(password, username)` raises `WeakPassword` saying why. At least
`MIN_PASSWORD_LENGTH` characters (NFKC-normalised, so look-alike forms do not count
twice), not on the list of common passwords shipped with the package, not one character
or a short pattern repeated, not a run like `123456789012` or `abcdefghijkl`, and not the
username or the product's name padded out. No composition rules and no expiry: NIST
advises against both.
"""

from __future__ import annotations

import functools
import unicodedata
from importlib import resources
from typing import Final

# NIST SP 800-63B 3.1.1.2 asks at least 8; a clinic's shared tablets and PHI ask more
# (issue #17: "at least 12 characters for new ones"). Existing shorter passwords still
# log in; only new ones are checked.
MIN_PASSWORD_LENGTH: Final = 12
# Argon2 hashes whatever it is given; bound the work one request can ask for.
MAX_PASSWORD_LENGTH: Final = 256
COMMON_PASSWORDS_FILE: Final = "common_passwords.txt"
# Words that make a password guessable here (NIST: "context-specific words").
CONTEXT_WORDS: Final = ("vitalsd", "ketamine", "esketamine", "clinic", "password")
_RUNS: Final = (
    "0123456789012345678901234567890",
    "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
    "qwertyuiopasdfghjklzxcvbnm",
    "1qaz2wsx3edc4rfv5tgb6yhn7ujm8ik9ol0p",
)


class WeakPassword(ValueError):
    """A new password the policy refuses; the message says why."""


@functools.cache
def common_passwords() -> frozenset[str]:
    """The shipped list (lower case), read once."""
    text = resources.files("vitalsd").joinpath(COMMON_PASSWORDS_FILE).read_text("utf-8")
    return frozenset(
        line.strip().casefold() for line in text.splitlines() if line.strip() and line[0] != "#"
    )


def check_new_password(password: str, username: str | None = None) -> None:
    """Raise `WeakPassword` unless `password` may be set (for `username`, if given)."""
    normal = unicodedata.normalize("NFKC", password)
    if len(normal) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(normal) > MAX_PASSWORD_LENGTH:
        raise WeakPassword(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    folded = normal.casefold()
    squeezed = "".join(folded.split())
    if not squeezed:
        raise WeakPassword("a password cannot be only spaces")
    if folded in common_passwords() or squeezed in common_passwords():
        raise WeakPassword("this password is on the list of common passwords: choose another")
    if _repeats(squeezed):
        raise WeakPassword("a password cannot be one character or a short pattern repeated")
    if any(squeezed in run or squeezed[::-1] in run for run in _RUNS):
        raise WeakPassword("a password cannot be a run of keys or digits")
    words = [*CONTEXT_WORDS, *([username.casefold()] if username else [])]
    for word in words:
        rest = squeezed.replace(word, "")
        if len(word) >= 3 and word in squeezed and len(set(rest)) <= 3:
            raise WeakPassword(f"a password cannot be {word!r} padded out: choose another")


def _repeats(text: str) -> bool:
    """Whether `text` is a pattern of at most 4 characters repeated (`abab...`)."""
    for size in range(1, 5):
        unit = text[:size]
        if len(text) > size and (unit * (len(text) // size + 1))[: len(text)] == text:
            return True
    return False
