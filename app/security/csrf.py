"""CSRF tokens bound to the session (SPEC §3).

A token is ``nonce + HMAC(key, binding, nonce)``, good only for the binding it was made
for: a logged-in session (the hash of its key), or for an anonymous visitor a random
pre-session id kept in an HttpOnly cookie. Nothing is stored on the server. So a token
taken from another session or visitor is refused, and any response that sets or clears
the session cookie (login, logout) drops the pre-session id: no token from before a login
passes after it, and a session's tokens die with it. Every page gets a fresh nonce, so no
two responses carry the same token (nothing for a compression oracle to find, BREACH).

Every unsafe request (POST, ...) carries a token of its own binding, in the
``X-CSRFToken`` header (htmx, from ``<body hx-headers>``) or the ``_csrf_token`` field
(``csrf_input`` in plain forms). The ``csrftoken`` cookie holds a copy of a valid token for
scripts (tests, benchmarks); it is never what is checked, so planting one gains nothing
(the weakness of a double-submit cookie).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Any

from litestar.datastructures import Cookie, MutableScopeHeaders
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from litestar.utils.scope.state import ScopeState

from app.security.sessions import cookie_name, csrf_cookie_name, hash_key
from app.settings import get_settings

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HEADER = "x-csrftoken"
FIELD = "_csrf_token"
# Not pages: static files, the lab system's API (bearer tokens, no cookies), the health
# check (polled by monitors: no cookies for them).
UNGUARDED = ("/static/", "/api/", "/healthz")
NONCE_HEX = 32  # 16 random bytes
MAC_HEX = 64  # SHA-256
TOKEN = re.compile(rf"[0-9a-f]{{{NONCE_HEX + MAC_HEX}}}")
PRESESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32)
# The message of a refusal; the error page turns it into 页面已过期或请求无效.
FAILED = "CSRF token verification failed"


def presession_cookie_name() -> str:
    """The anonymous visitor's pre-session id: ``__Host-`` prefixed over HTTPS."""
    return "__Host-presession" if get_settings().secure_cookies else "presession"


def _key() -> bytes:
    """Derived from SECRET_KEY, so no other signature made with it can pass as a token."""
    secret = get_settings().secret_key.encode("utf-8")
    return hmac.new(secret, b"jlkf csrf token v1", hashlib.sha256).digest()


def _mac(binding: str, nonce: str) -> str:
    return hmac.new(_key(), f"{binding}|{nonce}".encode(), hashlib.sha256).hexdigest()


def make_token(binding: str) -> str:
    nonce = secrets.token_hex(NONCE_HEX // 2)
    return nonce + _mac(binding, nonce)


def token_valid(token: str | None, binding: str | None) -> bool:
    if not token or not binding or not TOKEN.fullmatch(token):
        return False
    nonce, mac = token[:NONCE_HEX], token[NONCE_HEX:]
    return hmac.compare_digest(mac, _mac(binding, nonce))


def binding_of(scope: Scope, presession: str | None) -> str | None:
    """What this request's tokens are bound to: its live session (put into the scope by
    SessionAuthMiddleware), else the visitor's pre-session id; None when it has neither."""
    key = scope.get("session_key")
    if key and scope.get("user") is not None:
        return "session:" + hash_key(key)
    if presession and PRESESSION_ID.fullmatch(presession):
        return "visitor:" + presession
    return None


def _cookie(name: str, value: str, *, httponly: bool, expire: bool = False) -> str:
    """A Set-Cookie value: host-only, path /, Secure over HTTPS (a ``__Host-`` cookie, even
    one being cleared, is refused by browsers without it)."""
    return Cookie(
        key=name,
        value=value,
        path="/",
        secure=get_settings().secure_cookies,
        httponly=httponly,
        samesite="lax",
        max_age=0 if expire else None,
        expires=0 if expire else None,
    ).to_header(header="")


def _sets_session_cookie(headers: MutableScopeHeaders) -> bool:
    prefix = cookie_name() + "="
    return any(v.startswith(prefix) for v in headers.getall("set-cookie", ()))


class CSRFMiddleware:
    """Checks the token of every unsafe request; gives every page a token (``csrf_input``,
    ``csrf_token()``) and keeps the cookies that go with it. Runs inside
    SessionAuthMiddleware, which tells whose session the request belongs to."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(UNGUARDED):
            await self.app(scope, receive, send)
            return
        request: Any = scope["litestar_app"].request_class(scope=scope, receive=receive)
        cookies = request.cookies
        binding = binding_of(scope, cookies.get(presession_cookie_name()))
        state = ScopeState.from_scope(scope)
        if request.method in SAFE_METHODS:
            presession = None
            if binding is None:
                presession = secrets.token_urlsafe(32)
                binding = binding_of(scope, presession)
            assert binding is not None
            state.csrf_token = make_token(binding)
            # The cookie's copy, when the one the browser has is not this binding's.
            copy = None
            if not token_valid(cookies.get(csrf_cookie_name()), binding):
                copy = state.csrf_token
            await self.app(scope, receive, self._send(send, presession, copy))
            return
        submitted = request.headers.get(HEADER)
        if not submitted and request.content_type[0] in (
            RequestEncodingType.URL_ENCODED,
            RequestEncodingType.MULTI_PART,
        ):
            value = (await request.form()).get(FIELD)  # parsed once, kept for the handler
            submitted = value if isinstance(value, str) else None
        if token_valid(submitted, binding):
            state.csrf_token = submitted
            await self.app(scope, receive, self._send(send))
            return
        if scope.get("user") is None and cookies.get(cookie_name()):
            # A page left open past its session: log in again (nothing is done).
            raise NotAuthorizedException("登录已超时，请重新登录")
        raise PermissionDeniedException(FAILED)

    def _send(self, send: Send, presession: str | None = None, copy: str | None = None) -> Send:
        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableScopeHeaders.from_message(message)  # type: ignore[arg-type]
                for cookie in _cookies(headers, presession, copy):
                    headers.add("set-cookie", cookie)
            await send(message)

        return send_with_cookies


def _cookies(headers: MutableScopeHeaders, presession: str | None, copy: str | None) -> list[str]:
    """The Set-Cookie values a response gets from here."""
    if _sets_session_cookie(headers):
        # Logged in or out: whatever was bound to the visitor before goes.
        return [
            _cookie(presession_cookie_name(), "", httponly=True, expire=True),
            _cookie(csrf_cookie_name(), "", httponly=False, expire=True),
        ]
    cookies = []
    if presession:
        cookies.append(_cookie(presession_cookie_name(), presession, httponly=True))
    if copy:
        cookies.append(_cookie(csrf_cookie_name(), copy, httponly=False))
    return cookies
