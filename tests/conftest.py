"""Test set-up: a real database (SQLite file, or PostgreSQL when DATABASE_URL is set) and,
when REDIS_URL is set, real Redis with jobs through an arq worker.

The schema is migrated once per run; every test starts from empty tables and an empty
Redis database. Production mode wipes the database it is given, so its name must contain
"test" (CI uses the local ``test`` database and Redis database 15).
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest

_tmp = tempfile.mkdtemp(prefix="jlkf-test-")
os.environ.setdefault("DATA_DIR", _tmp)
os.environ["SECRET_KEY"] = "test-secret-key-not-for-production"
os.environ["DB_POOL"] = "0"  # the test client runs the app on a loop of its own
os.environ["SCHEDULER"] = "0"  # tests run the daily jobs themselves
os.environ["SMS_BACKEND"] = "outbox"
os.environ.setdefault("ADMIN_USERNAME", "admin")
os.environ.setdefault("ADMIN_PASSWORD", "Admin12345x")
os.environ.setdefault("LAB_API_TOKENS", "lab-token-1,lab-token-2")
os.environ.setdefault("PICCOLO_CONF", "piccolo_conf")

from app.settings import get_settings  # noqa: E402

SETTINGS = get_settings()
PRODUCTION = bool(SETTINGS.redis_url)
if SETTINGS.is_postgres and "test" not in SETTINGS.database_url.rsplit("/", 1)[-1]:
    pytest.exit("DATABASE_URL for tests must name a database containing 'test' (it is wiped)")


def _unreachable() -> str | None:
    """Why production mode's services cannot be used here, or None."""
    import socket
    from urllib.parse import urlparse

    checks = []
    if SETTINGS.is_postgres:
        checks.append(("PostgreSQL", SETTINGS.database_url, 5432))
    if SETTINGS.redis_url:
        checks.append(("Redis", SETTINGS.redis_url, 6379))
    for name, url, default_port in checks:
        u = urlparse(url)
        try:
            socket.create_connection((u.hostname or "127.0.0.1", u.port or default_port), 2).close()
        except OSError:
            return f"{name} at {u.hostname}:{u.port or default_port} is not reachable"
    return None


UNREACHABLE = _unreachable()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # Production mode without its services: every test is skipped, with the reason.
    if UNREACHABLE:
        for item in items:
            item.add_marker(pytest.mark.skip(reason=UNREACHABLE))


from litestar.testing import AsyncTestClient  # noqa: E402
from piccolo.engine import engine_finder  # noqa: E402

from app import tables  # noqa: E402
from app.main import create_app  # noqa: E402

ALL_TABLES = [
    t
    for t in vars(tables).values()
    if isinstance(t, type) and issubclass(t, tables.Table) and t is not tables.Table
]


@pytest.fixture(scope="session", autouse=True)
async def schema() -> AsyncIterator[None]:
    from app.cli import migrate

    if UNREACHABLE:
        yield
        return
    engine = engine_finder()
    if SETTINGS.is_postgres:
        await engine.run_ddl("DROP SCHEMA public CASCADE")
        await engine.run_ddl("CREATE SCHEMA public")
    await migrate()
    yield


async def _wipe() -> None:
    engine = engine_finder()
    names = [t._meta.tablename for t in ALL_TABLES]
    if SETTINGS.is_postgres:
        await engine.run_ddl(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE")
    else:
        for name in names:
            await engine.run_ddl(f"DELETE FROM {name}")
        # Piccolo's SQLite ids are rowids without AUTOINCREMENT: emptied tables restart at 1.
    if PRODUCTION:
        from redis.asyncio import Redis

        r = Redis.from_url(SETTINGS.redis_url)
        await r.flushdb()
        await r.aclose()


@pytest.fixture(autouse=True)
async def clean_db(schema: None) -> AsyncIterator[None]:
    if not UNREACHABLE:
        await _wipe()
    yield


@pytest.fixture
async def client() -> AsyncIterator[AsyncTestClient]:
    async with AsyncTestClient(app=create_app(), base_url="http://testserver.local") as c:
        c.follow_redirects = False  # tests look at the 303s themselves
        yield c


# --------------------------------------------------------------------------- helpers


async def csrf_token(client: AsyncTestClient) -> str:
    token = client.cookies.get("csrftoken")
    if not token:
        await client.get("/login")
        token = client.cookies.get("csrftoken")
    assert token, "no CSRF cookie"
    return token


async def post(
    client: AsyncTestClient,
    url: str,
    data: dict[str, Any] | None = None,
    htmx: bool = False,
    **kwargs: Any,
) -> Any:
    """A form POST carrying the CSRF token, as the browser would send it."""
    headers = {"X-CSRFToken": await csrf_token(client), **kwargs.pop("headers", {})}
    if htmx:
        headers["HX-Request"] = "true"
    return await client.post(url, data=data or {}, headers=headers, **kwargs)


async def run_jobs(client: AsyncTestClient | None = None) -> None:
    """Finish every queued job: in-process ones, or through a burst arq worker on Redis."""
    if PRODUCTION:
        from arq.connections import RedisSettings
        from arq.worker import Worker

        from workers.main import WorkerSettings

        worker = Worker(
            functions=WorkerSettings.functions,
            redis_settings=RedisSettings.from_dsn(SETTINGS.redis_url),
            burst=True,
            poll_delay=0,
            handle_signals=False,
            max_tries=1,
        )
        try:
            await worker.main()
        finally:
            await worker.close()
        return
    from app import jobs

    if client is not None and getattr(client, "blocking_portal", None) is not None:
        client.blocking_portal.call(jobs.drain)
    await jobs.drain()


def set_session_cookie(client: AsyncTestClient, value: str) -> None:
    """Replace the session cookie, as an attacker or a stale tab would send it."""
    from app.security import cookie_name

    client.cookies.delete(cookie_name())
    client.cookies.set(cookie_name(), value, domain="testserver.local")


async def outbox(phone: str | None = None) -> list[dict[str, Any]]:
    """短信记录 rows, newest first."""
    q = tables.SmsMessage.select().order_by(tables.SmsMessage.id, ascending=False)
    if phone:
        q = q.where(tables.SmsMessage.phone == phone)
    return await q


async def last_code(client: AsyncTestClient, phone: str) -> str:
    """The code from the newest SMS to ``phone``, read as the user would read it."""
    await run_jobs(client)
    for msg in await outbox(phone):
        if msg["kind"] == "code" and msg["status"] == "sent":
            m = re.search(r"验证码为(\d{6})", msg["text"])
            assert m, msg["text"]
            # A minute passes before the next code, as it would for a person.
            await tables.SmsCode.update(
                {tables.SmsCode.created_at: tables.SmsCode.created_at - timedelta(seconds=61)}
            ).where(tables.SmsCode.phone == phone)
            return m.group(1)
    raise AssertionError(f"no code SMS to {phone}")


VALID_USCC = "91350100M000100Y43"


def uscc(n: int) -> str:
    """A valid 统一社会信用代码 that differs by ``n``."""
    from app.services.validators import uscc_check_char

    first = f"91320000{n:09d}"[:17]
    return first + uscc_check_char(first)


async def register_company(
    client: AsyncTestClient,
    n: int = 1,
    phone: str = "13800000001",
    username: str | None = None,
    password: str = "Secret123x",
) -> dict[str, str]:
    """Register a company through the real form (code read from the outbox)."""
    r = await post(client, "/sms-code", {"purpose": "register", "contact_phone": phone}, htmx=True)
    assert r.status_code in (200, 201), r.text
    code = await last_code(client, phone)
    form = {
        "name": f"测试计量单位{n}",
        "uscc": uscc(n),
        "address": "南京市光华路1号",
        "contact_name": "张三",
        "contact_phone": phone,
        "code": code,
        "username": username or f"company{n}",
        "password": password,
        "password2": password,
        "agree": "1",
    }
    r = await post(client, "/register", form)
    assert "待审核" in r.text, r.text
    return form


async def approve_company(uscc_code: str) -> int:
    """Approve directly in the database (the review UI has its own tests)."""
    await tables.Enterprise.update({tables.Enterprise.status: "approved"}).where(
        tables.Enterprise.uscc == uscc_code
    )
    row = (
        await tables.Enterprise.select(tables.Enterprise.id)
        .where(tables.Enterprise.uscc == uscc_code)
        .first()
    )
    return int(row["id"])


async def login(client: AsyncTestClient, username: str, password: str) -> Any:
    r = await post(client, "/login", {"username": username, "password": password})
    return r


async def make_admin() -> None:
    from app.services.accounts import ensure_admin

    await ensure_admin("admin", "Admin12345x")


async def company_user(client: AsyncTestClient, n: int = 1, phone: str | None = None) -> dict:
    """A registered, approved, logged-in company."""
    form = await register_company(client, n, phone or f"1380000{n:04d}")
    await approve_company(form["uscc"])
    r = await login(client, form["username"], form["password"])
    assert r.status_code in (200, 303), r.text
    return form
