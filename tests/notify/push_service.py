"""A push service on a loopback port, playing RFC 8030 as FCM, Mozilla's autopush or
Apple's would: it checks the VAPID JWT (RFC 8292: ES256 signature against the key in
the `Authorization` header, `aud` its own origin, `exp` in the future and at most 24 h
ahead), decrypts the `aes128gcm` payload (RFC 8291) with the keys of the device it
stands for, and answers 201 Created, or whatever status a test sets for a device.

`Device` is what a browser makes when it subscribes: a P-256 key pair and a 16-byte
auth secret, of which it hands the public half and the secret to the server."""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import http_ece
import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

MAX_JWT_LIFETIME_S = 24 * 3600


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Device:
    """One browser's subscription keys (what `PushSubscription.getKey()` gives)."""

    name: str
    private_key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    auth_secret: bytes = field(default_factory=lambda: secrets.token_bytes(16))

    @property
    def p256dh(self) -> str:
        return b64url(
            self.private_key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )

    @property
    def auth(self) -> str:
        return b64url(self.auth_secret)


@dataclass
class Received:
    device: str
    payload: dict[str, Any]
    headers: dict[str, str]
    claims: dict[str, Any]
    vapid_key: str


class PushService:
    def __init__(self) -> None:
        self.devices: dict[str, Device] = {}
        self.answers: dict[str, int] = {}
        self.received: list[Received] = []
        self.refused: list[str] = []
        self._runner: web.AppRunner | None = None
        self.origin = ""

    def endpoint(self, device: Device) -> str:
        self.devices[device.name] = device
        return f"{self.origin}/push/{device.name}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/push/{device}", self._push)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.origin = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def _refuse(self, status: int, why: str) -> web.Response:
        self.refused.append(why)
        return web.Response(status=status, text=why)

    async def _push(self, request: web.Request) -> web.Response:
        device = self.devices.get(request.match_info["device"])
        if device is None:
            return self._refuse(404, "no such subscription")
        scheme, _, params = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "vapid":
            return self._refuse(401, "no VAPID authorization")
        fields = dict(part.strip().split("=", 1) for part in params.split(","))
        public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), unb64url(fields["k"]))
        try:
            claims = jwt.decode(
                fields["t"],
                public,
                algorithms=["ES256"],
                audience=self.origin,
                options={"require": ["aud", "exp", "sub"]},
            )
        except jwt.InvalidTokenError as error:
            return self._refuse(403, f"VAPID JWT refused: {error}")
        if claims["exp"] > time.time() + MAX_JWT_LIFETIME_S:
            return self._refuse(403, "VAPID JWT lives longer than 24 hours")
        if request.headers.get("Content-Encoding") != "aes128gcm":
            return self._refuse(415, "payload is not aes128gcm")
        if "TTL" not in request.headers:
            return self._refuse(400, "no TTL header (RFC 8030 5.2)")
        body = await request.read()
        plain = http_ece.decrypt(
            body,
            private_key=device.private_key,
            auth_secret=device.auth_secret,
            version="aes128gcm",
        )
        self.received.append(
            Received(
                device.name,
                json.loads(plain),
                {k.lower(): v for k, v in request.headers.items()},
                claims,
                fields["k"],
            )
        )
        status = self.answers.get(device.name, 201)
        return web.Response(status=status, headers={"Location": f"{self.origin}/m/1"})
