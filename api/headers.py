"""Security headers on every HTTP response (issue #17, finding 7).

A strict Content-Security-Policy (the dashboard has no inline script or style: its
modules and stylesheet are files of its own origin), no framing (`frame-ancestors
'none'` and X-Frame-Options for older browsers), no MIME sniffing, no Referer leaving the
dashboard, `Cache-Control: no-store` on every API answer (patient data must not stay in a
shared tablet's cache) and HSTS when served over TLS.
"""

from __future__ import annotations

import re
from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
# Swagger UI (only when `api_docs` is on) runs an inline script and loads from its CDN.
DOCS_CONTENT_SECURITY_POLICY: Final = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
    "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)
DOCS_PATHS: Final = frozenset({"/docs", "/docs/oauth2-redirect"})
# The printable session report (issue #8) is one self-contained page: its stylesheet is
# inline, it runs no script at all.
REPORT_CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)
# The REMS form page (issue #14) is the same kind of page.
REPORT_PATH: Final = re.compile(r"/api/sessions/[0-9]+/(report|rems\.html)")
# One year (RFC 6797); no includeSubDomains: the clinic's other hosts are not ours.
HSTS: Final = "max-age=31536000"
COMMON: Final = (
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "no-referrer"),
    ("cross-origin-opener-policy", "same-origin"),
    ("cross-origin-resource-policy", "same-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=()"),
)


def _private(path: str) -> bool:
    """Answers that may hold patient data or account state: never stored by a cache."""
    return path.startswith("/api/") or path in ("/healthz", "/openapi.json")


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        tls = scope.get("scheme") == "https"
        if path in DOCS_PATHS:
            policy = DOCS_CONTENT_SECURITY_POLICY
        elif REPORT_PATH.fullmatch(path):
            policy = REPORT_CONTENT_SECURITY_POLICY
        else:
            policy = CONTENT_SECURITY_POLICY

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in COMMON:
                    headers.setdefault(name, value)
                headers["content-security-policy"] = policy
                if _private(path):
                    headers["cache-control"] = "no-store"
                    headers["pragma"] = "no-cache"
                if tls:
                    headers["strict-transport-security"] = HSTS
            await send(message)

        await self.app(scope, receive, send_with_headers)
