"""Cross-site request defences in front of every route (issue #17, finding 2).

- **Origin check**: a state-changing request (POST, PUT, PATCH, DELETE) and the `/ws`
  handshake are refused (403) when the browser says they come from another origin than
  the dashboard's own or one of `settings.allowed_origins`. Same-*site* is not enough:
  another port on the clinic's host is another origin.
- **CSRF token** (double submit, signed): a request that signs in with the dashboard's
  cookie must also send `X-CSRF-Token`, the HMAC of that cookie's token which the login
  set in the readable `vitalsd_csrf` cookie. A page elsewhere can make the browser send
  the cookie, never read it to compute the header. Bearer-token clients need no header:
  a browser never adds an `Authorization` header by itself.

A pure ASGI middleware, so it also guards the WebSocket handshake before any route runs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Final
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.requests import cookie_parser
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

TOKEN_COOKIE: Final = "vitalsd_token"
CSRF_COOKIE: Final = "vitalsd_csrf"
CSRF_HEADER: Final = "x-csrf-token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
# The login sets the cookie; it cannot ask for a token it has not issued yet (its own
# forgery is stopped by the Origin check).
CSRF_EXEMPT: Final = frozenset({"/api/auth/token"})
_DEFAULT_PORTS: Final = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def csrf_token_for(token: str, key: bytes) -> str:
    """The CSRF token that goes with an access token (HMAC-SHA256, hex)."""
    return hmac.new(key, b"csrf:" + token.encode(), hashlib.sha256).hexdigest()


def _origin_tuple(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    if parts.hostname is None or port is None:
        return None
    return scheme, parts.hostname.lower(), port


def origin_allowed(origin: str, scope: Scope, allowed: Iterable[str]) -> bool:
    """Whether a browser's `Origin` is the server's own (the scheme the request came in
    by, as uvicorn saw it through trusted proxies, and its Host) or an allowed one."""
    if origin.lower() in allowed:
        return True
    parts = urlsplit(origin)
    theirs = _origin_tuple(parts.scheme.lower(), parts.netloc)
    host = Headers(scope=scope).get("host", "")
    ours = _origin_tuple(str(scope.get("scheme", "http")), host)
    return theirs is not None and theirs == ours


def _refuse(status: int, detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status)


class RequestGuard:
    """Origin check for unsafe requests and `/ws`, CSRF token for cookie sessions."""

    def __init__(self, app: ASGIApp, *, csrf_key: bytes, allowed_origins: Iterable[str]) -> None:
        self.app = app
        self.csrf_key = csrf_key
        self.allowed = frozenset(o.lower() for o in allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        unsafe = scope["type"] == "websocket" or scope["method"] not in SAFE_METHODS
        if unsafe:
            refusal = self._origin_refusal(scope, headers)
            if refusal is None and scope["type"] == "http":
                refusal = self._csrf_refusal(scope, headers)
            if refusal is not None:
                if scope["type"] == "websocket":
                    await self._deny_websocket(scope, receive, send, refusal)
                else:
                    await _refuse(403, refusal)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _origin_refusal(self, scope: Scope, headers: Headers) -> str | None:
        origin = headers.get("origin")
        if origin is None:
            # Browsers send Origin on every cross-origin POST and WebSocket; a request
            # without one is a non-browser client or same-origin. Fetch metadata, where
            # sent, still tells a cross-site one apart.
            if headers.get("sec-fetch-site") in ("cross-site", "same-site"):
                return "cross-site request refused (Sec-Fetch-Site)"
            return None
        if origin_allowed(origin, scope, self.allowed):
            return None
        return (
            f"cross-origin request from {origin[:100]!r} refused: only the dashboard's own "
            "origin or an allowed_origins setting may change data or open the stream"
        )

    def _csrf_refusal(self, scope: Scope, headers: Headers) -> str | None:
        if scope["path"] in CSRF_EXEMPT or not scope["path"].startswith("/api/"):
            return None
        if headers.get("authorization", "").lower().startswith("bearer "):
            return None
        cookie = _cookie(headers, TOKEN_COOKIE)
        if cookie is None:
            return None  # not signed in by cookie: the route answers 401
        sent = headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), csrf_token_for(cookie, self.csrf_key).encode()):
            return (
                f"missing or wrong {CSRF_HEADER} header: a request signed in by the "
                f"dashboard's cookie sends the value of the {CSRF_COOKIE} cookie"
            )
        return None

    async def _deny_websocket(self, scope: Scope, receive: Receive, send: Send, why: str) -> None:
        if "websocket.http.response" in scope.get("extensions", {}):
            await _refuse(403, why)(scope, receive, send)
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.close", "code": 1008, "reason": why[:120]})


def _cookie(headers: Headers, name: str) -> str | None:
    """A cookie's value, parsed as Starlette parses it for the routes."""
    value = cookie_parser(headers.get("cookie", "")).get(name)
    return value or None
