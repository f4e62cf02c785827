"""The `[notify]` table: a mistake is a clear error at start, naming what is wrong."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.notify.receiver import SECRET
from vitalsd.cli import main
from vitalsd.notify.config import ChannelSettings, NotifySettings, RuleSettings
from vitalsd.settings import load_settings


def test_a_rule_naming_an_unknown_channel_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"unknown channel.*pager"):
        NotifySettings(rules=[RuleSettings(channels=["pager"])])


def test_a_webhook_needs_a_standard_webhooks_secret() -> None:
    with pytest.raises(ValidationError, match="signing secret"):
        ChannelSettings(name="w", kind="webhook", url="http://x/h")
    with pytest.raises(ValidationError, match="Standard Webhooks secret"):
        ChannelSettings(name="w", kind="webhook", url="http://x/h", secret="not base64!")


def test_channel_names_are_unique() -> None:
    pager = ChannelSettings(name="p", kind="webhook", url="http://x/h", secret=SECRET)
    with pytest.raises(ValidationError, match="unique: p"):
        NotifySettings(channels=[pager, pager])


def test_the_heartbeat_goes_to_a_webhook_channel() -> None:
    app = ChannelSettings(name="a", kind="apprise", url="json://localhost/")
    with pytest.raises(ValidationError, match="heartbeat_channel 'a'"):
        NotifySettings(channels=[app], heartbeat_channel="a")


def test_the_settings_file_carries_the_notify_table(tmp_path: Path) -> None:
    path = tmp_path / "vitalsd.toml"
    path.write_text(
        f"""
[notify]
receipt_timeout_seconds = 30
[[notify.channels]]
name = "ward"
kind = "webhook"
url = "http://127.0.0.1:9/hook"
secret = "{SECRET}"
[[notify.rules]]
priorities = ["high"]
channels = ["ward"]
after_minutes = 0.5
"""
    )
    notify = load_settings(path).notify
    assert notify.receipt_timeout_seconds == 30
    assert notify.rules[0].after_minutes == 0.5
    assert notify.channel("ward").kind == "webhook"


def test_serve_with_a_bad_notify_table_says_what_is_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "vitalsd.toml"
    path.write_text('[[notify.rules]]\nchannels = ["nowhere"]\n')
    assert main(["serve", f"--config={path}"]) == 2
    assert "unknown channel(s): nowhere" in capsys.readouterr().err
