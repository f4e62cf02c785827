"""The `[notify]` table of the settings file (NOTIFY_CONTRACT.md): channels, routing
rules (escalation tiers) and the numbers of delivery, receipts and technical alarms."""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

ChannelKind = Literal["webhook", "apprise", "webpush"]
PriorityName = Literal["high", "medium", "low"]


class ChannelSettings(BaseModel):
    """One way out: a signed webhook, an apprise URL, or web push to subscribed devices."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    kind: ChannelKind
    url: str | None = None
    # Standard Webhooks signing secret ("whsec_" + base64), webhooks only.
    secret: SecretStr | None = None
    # Whose devices (web push; default nurses) or whom this channel stands for in the
    # default chain (webhook/apprise: empty = the ward, reached at the first tier).
    roles: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _complete(self) -> ChannelSettings:
        if self.kind in ("webhook", "apprise") and not self.url:
            raise ValueError(f"notify channel {self.name!r}: a {self.kind} channel needs a url")
        if self.kind == "webhook":
            if self.secret is None:
                raise ValueError(
                    f"notify channel {self.name!r}: a webhook needs a signing secret "
                    '(secret = "whsec_...", Standard Webhooks)'
                )
            from standardwebhooks.webhooks import Webhook

            try:
                Webhook(self.secret.get_secret_value())
            except Exception as error:
                raise ValueError(
                    f"notify channel {self.name!r}: the secret is not a Standard Webhooks "
                    f'secret ("whsec_" + base64): {error}'
                ) from None
            if not self.url or not self.url.startswith(("http://", "https://")):
                raise ValueError(f"notify channel {self.name!r}: a webhook url is http(s)://")
        return self


class RuleSettings(BaseModel):
    """One tier of an escalation chain: these alerts go to these channels, at once
    (`after_minutes = 0`) or only while still unacknowledged that long after raising."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    priorities: list[PriorityName] = Field(default_factory=list)  # empty: every priority
    kinds: list[str] = Field(default_factory=list)  # empty: every kind
    channels: list[str] = Field(min_length=1)
    after_minutes: float = Field(default=0.0, ge=0)

    @property
    def after(self) -> timedelta:
        return timedelta(minutes=self.after_minutes)


class NotifySettings(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    channels: list[ChannelSettings] = Field(default_factory=list)
    rules: list[RuleSettings] = Field(default_factory=list)
    # No receipt (delivered or shown) this long after a tier went out: the next tier now.
    receipt_timeout_seconds: float = Field(default=60.0, gt=0)
    # A webhook channel posted a signed `heartbeat` envelope on this period, so a
    # dead-man's switch outside notices when vitalsd (or its notifier) is down.
    heartbeat_channel: str | None = None
    heartbeat_every_seconds: float = Field(default=60.0, gt=0)
    # Consecutive failed deliveries of one channel that raise `channel_failing`.
    channel_failing_after: int = Field(default=3, ge=1)

    @field_validator("channels")
    @classmethod
    def _unique(cls, channels: list[ChannelSettings]) -> list[ChannelSettings]:
        names = [c.name for c in channels]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"notify channel names must be unique: {', '.join(twice)}")
        return channels

    @model_validator(mode="after")
    def _references(self) -> NotifySettings:
        known = {c.name: c for c in self.channels}
        for number, rule in enumerate(self.rules, start=1):
            unknown = [name for name in rule.channels if name not in known]
            if unknown:
                raise ValueError(
                    f"notify rule {number} names unknown channel(s): {', '.join(unknown)} "
                    f"(known: {', '.join(known) or 'none'})"
                )
        if self.heartbeat_channel is not None:
            channel = known.get(self.heartbeat_channel)
            if channel is None or channel.kind != "webhook":
                raise ValueError(
                    f"heartbeat_channel {self.heartbeat_channel!r} must name a webhook channel"
                )
        return self

    @property
    def receipt_timeout(self) -> timedelta:
        return timedelta(seconds=self.receipt_timeout_seconds)

    def channel(self, name: str) -> ChannelSettings:
        for channel in self.channels:
            if channel.name == name:
                return channel
        raise KeyError(name)
