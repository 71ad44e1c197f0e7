"""PostgreSQL or Redis away: a clear 503 page at once, never a stack trace or a hang."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from redis.exceptions import ConnectionError as RedisConnectionError

from app.security import sessions
from app.services import bookings
from tests.helpers import company_user


def _fails(exc: BaseException) -> Any:
    async def fail(*args: Any, **kwargs: Any) -> Any:
        raise exc

    return fail


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.InterfaceError("connection is closed"),
        TimeoutError(),
    ],
    ids=["refused", "starting", "closed", "timeout"],
)
async def test_database_away_is_a_503_page(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch, exc: BaseException
) -> None:
    await company_user(client)
    monkeypatch.setattr(bookings, "list_bookings", _fails(exc))
    r = await client.get("/bookings")
    assert r.status_code == 503 and "系统服务暂时不可用" in r.text
    assert r.headers["retry-after"] == "10" and "Traceback" not in r.text
    r = await client.get("/bookings", headers={"HX-Request": "true"})
    assert r.status_code == 503 and r.text == "系统服务暂时不可用，请稍后重试"
    monkeypatch.undo()
    assert (await client.get("/bookings")).status_code == 200  # back by itself


async def test_session_store_away_is_a_503_page(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await company_user(client)
    store = type(sessions.session_store())
    # A request reads its session with the user cache's generation (lookup).
    monkeypatch.setattr(store, "lookup", _fails(RedisConnectionError("Connection refused")))
    r = await client.get("/bookings")
    assert r.status_code == 503 and "系统服务暂时不可用" in r.text
    monkeypatch.undo()
    assert (await client.get("/bookings")).status_code == 200


async def test_a_lost_file_is_not_called_a_service_away(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await company_user(client)
    monkeypatch.setattr(bookings, "list_bookings", _fails(FileNotFoundError(2, "gone")))
    r = await client.get("/bookings")
    assert r.status_code == 500 and "系统服务暂时不可用" not in r.text


async def test_a_logged_path_cannot_forge_log_lines(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """#8 item 7: the path goes into the log escaped (repr), so a %0A in a URL starts no
    line of its own."""
    await company_user(client)
    store = type(sessions.session_store())
    monkeypatch.setattr(store, "lookup", _fails(RedisConnectionError("Connection refused")))
    with caplog.at_level("WARNING"):
        r = await client.get("/certificates/jobs/x%0AERROR%20admin%20logged%20in")
    assert r.status_code == 503
    logged = [m for m in (rec.getMessage() for rec in caplog.records) if "unavailable" in m]
    assert len(logged) == 1 and "logged in" in logged[0], logged  # the path is in the line
    assert "\n" not in logged[0]
