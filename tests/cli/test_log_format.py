"""The log's two formats (issue #14): short lines for a person, JSON for a program, and
credentials redacted in both."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from api.logredact import install_redaction
from vitalsd.daemon import configure_logging
from vitalsd.logformat import wants_json


class Terminal(io.StringIO):
    """A text stream that says it is a terminal, as a tty's stderr does."""

    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.mark.parametrize(
    ("setting", "terminal", "expected"),
    [
        ("auto", True, False),
        ("auto", False, True),
        ("json", True, True),
        ("text", False, False),
    ],
)
def test_auto_is_text_on_a_terminal_and_json_elsewhere_unless_forced(
    setting: str, terminal: bool, expected: bool
) -> None:
    stream = Terminal() if terminal else io.StringIO()
    assert wants_json(setting, stream) is expected  # type: ignore[arg-type]


def test_a_terminal_gets_one_short_line_per_record() -> None:
    stream = Terminal()
    configure_logging(stream=stream)
    logging.getLogger("vitalsd.daemon").info("serving at %s", "http://127.0.0.1:8000/")
    logging.getLogger("vitalsd.daemon").warning("cuff %s is quiet", "AA")
    first, second = stream.getvalue().splitlines()
    assert first.endswith(" daemon: serving at http://127.0.0.1:8000/")
    assert len(first.split(" ", 1)[0]) == len("06:16:44")
    assert " WARNING daemon: cuff AA is quiet" in second


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_credentials_are_redacted_in_both_formats(log_format: str) -> None:
    stream = Terminal()
    configure_logging(stream=stream, log_format=log_format)  # type: ignore[arg-type]
    install_redaction()
    logging.getLogger("uvicorn.access").info(
        '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5", "GET", "/ws?token=eyJsecret&since=4", "1.1", 101
    )
    written = stream.getvalue()
    assert "eyJsecret" not in written
    assert "token=[redacted]" in written
    if log_format == "json":
        assert json.loads(written)["logger"] == "uvicorn.access"
