"""Credentials never reach the logs (issue #17, finding 3).

uvicorn logs each request line and each WebSocket connect with its query string
(`"WebSocket /ws?token=eyJ..." [accepted]`). This filter, put on uvicorn's loggers,
replaces the value of every credential parameter with `[redacted]` before a handler
formats the record.
"""

from __future__ import annotations

import logging
import re
from typing import Final

CREDENTIAL_PARAMETERS: Final = ("token", "access_token", "ticket", "password", "csrf")
_PATTERN: Final = re.compile(r"(?i)([?&;](?:" + "|".join(CREDENTIAL_PARAMETERS) + r")=)[^&\s\"';]*")
UVICORN_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access")


def redact(text: str) -> str:
    return _PATTERN.sub(r"\1[redacted]", text)


class RedactCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def install_redaction(names: tuple[str, ...] = UVICORN_LOGGERS) -> None:
    """Add the filter to uvicorn's loggers, once per logger."""
    for name in names:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactCredentials) for f in logger.filters):
            logger.addFilter(RedactCredentials())
