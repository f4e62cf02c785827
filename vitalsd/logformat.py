"""How the log reads (issue #14, "the newcomer's terminal").

On a terminal a person reads the log: one short line per record (`06:16:44 info
daemon: serving at ...`). Anywhere else (journald, Docker, a file, a pipe) a program
reads it: one JSON object per line. The `log_format` setting forces either.

Credentials are redacted before any formatter sees a record (`api.logredact` filters
on the loggers), so both formats stay clean.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Final, Literal, TextIO

LogFormat = Literal["auto", "json", "text"]
LOG_FORMATS: Final = ("auto", "json", "text")

# The long package prefixes say little on a terminal: `vitalsd.daemon` reads as `daemon`.
_SHORT_PREFIXES: Final = ("vitalsd.", "simulators.", "devices.", "api.")
# The ones a newcomer needs to see; `info` is the usual case and is left unsaid.
_LEVEL_MARKS: Final = {
    logging.DEBUG: "debug ",
    logging.INFO: "",
    logging.WARNING: "WARNING ",
    logging.ERROR: "ERROR ",
    logging.CRITICAL: "CRITICAL ",
}


def wants_json(log_format: LogFormat, stream: TextIO) -> bool:
    """JSON unless the format is `text`, or `auto` and the stream is a terminal."""
    if log_format == "json":
        return True
    if log_format == "text":
        return False
    isatty = getattr(stream, "isatty", None)
    return not (callable(isatty) and isatty())


def short_logger_name(name: str) -> str:
    for prefix in _SHORT_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix) :]
    return name


class TextLogFormatter(logging.Formatter):
    """`HH:MM:SS [LEVEL ]logger: message`, in the machine's local time (what the
    person at the terminal reads on their clock)."""

    def format(self, record: logging.LogRecord) -> str:
        at = datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        mark = _LEVEL_MARKS.get(record.levelno, f"{record.levelname} ")
        line = f"{at} {mark}{short_logger_name(record.name)}: {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line
