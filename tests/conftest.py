"""Test set-up: a real database (SQLite file, or PostgreSQL when DATABASE_URL is set) and,
when REDIS_URL is set, real Redis with jobs through an arq worker.

The schema is migrated once per run; every test starts from empty tables and an empty
Redis database. Production mode wipes the database it is given, so its name must contain
"test" (CI uses the local ``test`` database and Redis database 15).
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator
from urllib.parse import urlparse

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

from argon2 import PasswordHasher  # noqa: E402
from litestar.testing import AsyncTestClient  # noqa: E402
from piccolo.engine import engine_finder  # noqa: E402
from redis.asyncio import Redis  # noqa: E402

from app import tables  # noqa: E402
from app.cli import migrate  # noqa: E402
from app.main import create_app  # noqa: E402
from app.security import passwords  # noqa: E402
from tests.helpers import PRODUCTION, SETTINGS  # noqa: E402

if SETTINGS.is_postgres and "test" not in SETTINGS.database_url.rsplit("/", 1)[-1]:
    pytest.exit("DATABASE_URL for tests must name a database containing 'test' (it is wiped)")


def _unreachable() -> str | None:
    """Why production mode's services cannot be used here, or None."""
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


# Argon2 at its defaults costs ~0.25 s of CPU per hash and check here, and the suite makes
# hundreds of accounts: the tests hash with the cheapest Argon2 (the same code path; a hash
# carries its own parameters, so checking one is as cheap). The app's own processes (the
# browser tests' server, the workers) keep the defaults.
passwords._hasher = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)

ALL_TABLES = [
    t
    for t in vars(tables).values()
    if isinstance(t, type) and issubclass(t, tables.Table) and t is not tables.Table
]


@pytest.fixture(scope="session", autouse=True)
async def schema() -> AsyncIterator[None]:
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
    # The tallies last: SQLite's DELETE fires the triggers that write them.
    names = sorted((t._meta.tablename for t in ALL_TABLES), key=lambda n: n == "tally")
    if SETTINGS.is_postgres:
        await engine.run_ddl(f"TRUNCATE {', '.join(names)} RESTART IDENTITY CASCADE")
    else:
        for name in names:
            await engine.run_ddl(f"DELETE FROM {name}")
        # Piccolo's SQLite ids are rowids without AUTOINCREMENT: emptied tables restart at 1.
    # Files that belong to rows: 企业管理's 证件 (ids restart, so old files would be mistaken).
    shutil.rmtree(SETTINGS.data_dir / "licences", ignore_errors=True)
    if PRODUCTION:
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
