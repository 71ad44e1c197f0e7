"""Server-side sessions and the current user.

Sessions live in the database (embedded mode) or Redis (production) so that any number of
app processes can serve. The cookie holds a random key; the store keeps only its SHA-256.
A login always creates a new key and drops the old one (no session fixation).
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Protocol

from litestar.types import ASGIApp, Receive, Scope, Send

from app.clock import now, timestamp
from app.enums import EnterpriseStatus, UserRole
from app.redis import get_redis
from app.settings import get_settings
from app.tables import User, WebSession

IDLE_TIMEOUT = timedelta(minutes=30)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
# Write last_seen at most this often: every request would otherwise be a write.
TOUCH_INTERVAL = timedelta(seconds=60)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def csrf_cookie_name() -> str:
    """The CSRF cookie: ``__Host-`` prefixed over HTTPS, like the session's."""
    return "__Host-csrftoken" if get_settings().secure_cookies else "csrftoken"


def cookie_name() -> str:
    return "__Host-session" if get_settings().secure_cookies else "session"


@dataclass(frozen=True)
class CurrentUser:
    id: int
    username: str
    name: str
    role: str
    enterprise_id: int | None
    enterprise_name: str
    is_contract: bool

    @property
    def is_platform_admin(self) -> bool:
        return self.role == UserRole.PLATFORM_ADMIN

    @property
    def is_enterprise_admin(self) -> bool:
        return self.role in (UserRole.ENTERPRISE_ADMIN, UserRole.CONTRACT_USER)

    @property
    def display_name(self) -> str:
        return self.name or self.username


class SessionStore(Protocol):
    async def get(self, key_hash: str) -> dict[str, Any] | None: ...
    async def save(self, key_hash: str, data: dict[str, Any]) -> None: ...
    async def delete(self, key_hash: str) -> None: ...
    async def delete_user(self, user_id: int) -> None: ...


class DatabaseSessionStore:
    """Sessions in the WebSession table (embedded mode)."""

    async def get(self, key_hash: str) -> dict[str, Any] | None:
        row = (
            await WebSession.select(WebSession.data).where(WebSession.key_hash == key_hash).first()
        )
        return json.loads(row["data"]) if row else None

    async def save(self, key_hash: str, data: dict[str, Any]) -> None:
        payload = json.dumps(data)
        updated = (
            await WebSession.update(
                {
                    WebSession.data: payload,
                    WebSession.user_id: data.get("uid"),
                    WebSession.last_seen: now(),
                }
            )
            .where(WebSession.key_hash == key_hash)
            .returning(WebSession.id)
        )
        if not updated:
            await WebSession.insert(
                WebSession(key_hash=key_hash, data=payload, user_id=data.get("uid"))
            )

    async def delete(self, key_hash: str) -> None:
        await WebSession.delete().where(WebSession.key_hash == key_hash)

    async def delete_user(self, user_id: int) -> None:
        await WebSession.delete().where(WebSession.user_id == user_id)

    async def purge_expired(self) -> None:
        """Drop sessions past their idle timeout (called now and then, not per request)."""
        await WebSession.delete().where(
            WebSession.last_seen < now() - IDLE_TIMEOUT - TOUCH_INTERVAL
        )


class RedisSessionStore:
    """Sessions in Redis (production). Keys expire with the idle timeout."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _redis(self) -> Any:
        return get_redis()

    async def get(self, key_hash: str) -> dict[str, Any] | None:
        raw = await self._redis().get(f"sess:{key_hash}")
        return json.loads(raw) if raw else None

    async def save(self, key_hash: str, data: dict[str, Any]) -> None:
        r = self._redis()
        ttl = int(IDLE_TIMEOUT.total_seconds())
        async with r.pipeline(transaction=True) as pipe:
            pipe.set(f"sess:{key_hash}", json.dumps(data), ex=ttl)
            if data.get("uid"):
                pipe.sadd(f"user-sess:{data['uid']}", key_hash)
                pipe.expire(f"user-sess:{data['uid']}", int(ABSOLUTE_TIMEOUT.total_seconds()))
            await pipe.execute()

    async def delete(self, key_hash: str) -> None:
        await self._redis().delete(f"sess:{key_hash}")

    async def delete_user(self, user_id: int) -> None:
        r = self._redis()
        keys = await r.smembers(f"user-sess:{user_id}")
        if keys:
            await r.delete(*[f"sess:{k.decode() if isinstance(k, bytes) else k}" for k in keys])
        await r.delete(f"user-sess:{user_id}")


def session_store() -> SessionStore:
    settings = get_settings()
    if settings.redis_url:
        return RedisSessionStore(settings.redis_url)
    return DatabaseSessionStore()


async def start_session(old_key: str | None, user_id: int) -> str:
    """Create a fresh session for ``user_id`` and drop the old one. Returns the cookie value."""
    store = session_store()
    if old_key:
        await store.delete(hash_key(old_key))
    key = secrets.token_urlsafe(32)
    stamp = timestamp()
    await store.save(hash_key(key), {"uid": user_id, "created": stamp, "seen": stamp})
    return key


async def end_session(key: str | None) -> None:
    if key:
        await session_store().delete(hash_key(key))


async def end_user_sessions(user_id: int) -> None:
    """End every session of a user (disabled account, password reset)."""
    await session_store().delete_user(user_id)


# A subsidiary's parent, its parent's parent, … (as deep as the tenancy tree goes): how
# many of them are 已停用. 停用 of a unit stops its whole branch.
_DISABLED_ABOVE_SQL = f"""
WITH RECURSIVE up(id, parent, status, depth) AS (
    SELECT id, parent, status, 0 FROM enterprise WHERE id = {{}}
    UNION ALL
    SELECT e.id, e.parent, e.status, up.depth + 1 FROM enterprise e JOIN up ON e.id = up.parent
    WHERE up.depth < 20
)
SELECT count(*) AS n FROM up WHERE status = '{EnterpriseStatus.DISABLED.value}'
"""


async def disabled_above(parent_id: int | None) -> bool:
    """Whether a unit whose parent is ``parent_id`` sits below a 已停用 unit."""
    if parent_id is None:
        return False
    rows = await User.raw(_DISABLED_ABOVE_SQL, parent_id)
    return bool(rows and rows[0]["n"])


async def load_user(user_id: int) -> CurrentUser | None:
    """The user behind a session, or None when it no longer may log in."""
    row = (
        await User.select(
            User.id,
            User.username,
            User.name,
            User.role,
            User.is_active,
            User.enterprise.id,
            User.enterprise.name,
            User.enterprise.status,
            User.enterprise.is_contract,
            User.enterprise.parent,
        )
        .where(User.id == user_id)
        .first()
    )
    if not row or not row["is_active"]:
        return None
    ent_id = row["enterprise.id"]
    if ent_id is not None and row["enterprise.status"] != EnterpriseStatus.APPROVED:
        return None
    if await disabled_above(row["enterprise.parent"]):
        return None
    return CurrentUser(
        id=row["id"],
        username=row["username"],
        name=row["name"],
        role=row["role"],
        enterprise_id=ent_id,
        enterprise_name=row["enterprise.name"] or "",
        is_contract=bool(row["enterprise.is_contract"]),
    )


def _cookie_from_scope(scope: Scope, name: str) -> str | None:
    for k, v in scope.get("headers", []):
        if k == b"cookie":
            for part in v.decode("latin-1").split(";"):
                n, _, val = part.strip().partition("=")
                if n == name and val:
                    return val
    return None


class SessionAuthMiddleware:
    """Puts the logged-in user (or None) into ``scope["user"]``; enforces the timeouts."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope["user"] = None
        path = scope.get("path", "")
        key = None
        if not path.startswith(("/static/", "/api/")):
            key = _cookie_from_scope(scope, cookie_name())
        if key:
            store = session_store()
            key_hash = hash_key(key)
            data = await store.get(key_hash)
            if data:
                t = timestamp()
                idle = t - data.get("seen", 0) > IDLE_TIMEOUT.total_seconds()
                old = t - data.get("created", 0) > ABSOLUTE_TIMEOUT.total_seconds()
                user = None if idle or old else await load_user(data.get("uid", 0))
                if user is None:
                    await store.delete(key_hash)
                else:
                    scope["user"] = user
                    scope["session_key"] = key
                    if t - data.get("seen", 0) > TOUCH_INTERVAL.total_seconds():
                        data["seen"] = t
                        await store.save(key_hash, data)
        await self.app(scope, receive, send)
