"""The daemon's VAPID key pair (RFC 8292): push services accept our messages only when
signed by the key a device subscribed with, so the pair is made once, on first start,
and kept in the data directory (0600, like the token secret). Losing it silently ends
every subscription; a new one makes every device subscribe again."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid02

VAPID_KEY_FILE: Final = "vapid-private.pem"
FILE_MODE: Final = 0o600


class VapidKeyError(RuntimeError):
    """The stored key cannot be read; the message names the file and the fix."""


@dataclass(frozen=True, slots=True)
class VapidKeys:
    private_pem: bytes
    # What `PushManager.subscribe({applicationServerKey})` takes: the uncompressed P-256
    # point (65 bytes), base64url without padding.
    public_key: str

    def signer(self) -> Vapid02:
        return Vapid02.from_pem(self.private_pem)


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def keys_from_pem(pem: bytes, source: Path | None = None) -> VapidKeys:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except ValueError as error:
        raise VapidKeyError(
            f"VAPID key {source or '(given)'} is not a PEM private key ({error}); move it "
            "away to make a new one (every device must then subscribe again)"
        ) from error
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise VapidKeyError(f"VAPID key {source or '(given)'} is not a P-256 key")
    point = key.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return VapidKeys(private_pem=pem, public_key=b64url(point))


def new_private_pem() -> bytes:
    return ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def load_or_create(data_dir: Path) -> VapidKeys:
    """The pair kept in `data_dir`, made there (0600) if it is not there yet. Two
    processes starting at once agree on one pair: the file is created exclusively."""
    path = data_dir.expanduser() / VAPID_KEY_FILE
    if not path.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        pem = new_private_pem()
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
        except FileExistsError:
            pass  # another process made it first: use theirs
        else:
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
            return keys_from_pem(pem, path)
    return keys_from_pem(path.read_bytes(), path)
