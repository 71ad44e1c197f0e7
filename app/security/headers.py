"""Security headers on every response."""

from __future__ import annotations

from litestar.types import Message, Scope

from app.settings import get_settings

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'; object-src 'none'"
)
SECURITY_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


async def add_security_headers(message: Message, scope: Scope) -> None:
    """before_send hook: every HTTP response, 404s and static files included, gets them.

    (Litestar has no CSP middleware; app middleware would miss unrouted 404s.)
    """
    if message["type"] != "http.response.start":
        return
    headers = list(message.get("headers", []))
    present = {k.lower() for k, _ in headers}
    headers += [(k, v) for k, v in SECURITY_HEADERS if k not in present]
    if b"cache-control" not in present:
        # Pages, fragments, exports and API answers are per user: no cache may keep them.
        # (Static files set their own: long-lived, their URLs carry the content's hash.)
        headers.append((b"cache-control", b"no-store"))
    if get_settings().secure_cookies:
        headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
    message["headers"] = headers
