"""Every request's deadline (#8, app/deadline.py): past REQUEST_DEADLINE seconds of its own
time a request gets the 503 page and has written nothing; its client's time (a slow upload)
and work with limits of its own (an import's parse, the export's child) do not count.

The real thing, a PostgreSQL that stops answering under load, is
tests/workers/test_outages.py's partition (production mode).
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app.enums import BookingStatus
from app.main import create_app
from app.services import audit, bookings, instrument_export, instrument_xlsx
from app.settings import get_settings
from app.tables import AuditLog, Booking, Instrument
from tests.helpers import (
    BOOKING,
    SETTINGS,
    add_item,
    company_user,
    free_port,
    instrument,
    open_form,
    post,
    reg,
    register_xlsx,
    wait_for_port,
)

DEADLINE = 0.5  # seconds
UNAVAILABLE = "系统服务暂时不可用"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def hasty(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[AsyncTestClient]:
    """The app with a deadline of DEADLINE seconds, on the same database. Log in with
    ``client`` and copy its cookies here: a password check alone may take longer."""
    monkeypatch.setenv("REQUEST_DEADLINE", str(DEADLINE))
    get_settings.cache_clear()
    app = create_app()
    monkeypatch.delenv("REQUEST_DEADLINE")
    get_settings.cache_clear()
    async with AsyncTestClient(app=app, base_url="http://testserver.local") as c:
        c.follow_redirects = False
        yield c


async def _stuck(*args: Any, **kwargs: Any) -> Any:
    """A service that does not answer (as one behind a network partition) for far longer
    than the deadline (finite: without a deadline the test fails rather than hangs)."""
    await asyncio.sleep(20 * DEADLINE)


def _slowed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` (run on a worker thread) taking three deadlines longer."""

    def slow(*args: Any, **kwargs: Any) -> Any:
        time.sleep(3 * DEADLINE)
        return fn(*args, **kwargs)

    return slow


async def test_a_submit_past_its_deadline_is_the_503_page_and_stays_a_draft(
    client: AsyncTestClient,
    hasty: AsyncTestClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await company_user(client)
    booking_id = await open_form(client)
    assert "器具已添加" in (await add_item(client, booking_id, instrument(1))).text
    hasty.cookies = client.cookies
    # The 操作日志 row, the second write of the transaction, never comes back.
    monkeypatch.setattr(audit, "record", _stuck)
    with caplog.at_level("WARNING"):
        r = await post(hasty, f"/bookings/{booking_id}/submit", BOOKING)
    assert r.status_code == 503 and UNAVAILABLE in r.text and "Traceback" not in r.text
    # On PostgreSQL the transaction's connection was dropped, never waited on.
    dropped = "1 connection(s) terminated" if SETTINGS.is_postgres else "0 connection(s)"
    assert f"deadline passed on POST '/bookings/{booking_id}/submit': {dropped}" in caplog.text
    [row] = await Booking.select()
    assert row["status"] == BookingStatus.DRAFT and not row["booking_no"]
    assert await AuditLog.count().where(AuditLog.event == "提交预约") == 0
    monkeypatch.undo()
    r = await post(hasty, f"/bookings/{booking_id}/submit", BOOKING)
    assert r.status_code == 303
    assert await AuditLog.count().where(AuditLog.event == "提交预约") == 1


async def test_a_read_past_its_deadline_is_the_503_text_for_htmx(
    client: AsyncTestClient, hasty: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await company_user(client)
    hasty.cookies = client.cookies
    monkeypatch.setattr(bookings, "list_bookings", _stuck)
    r = await hasty.get("/bookings", headers={"HX-Request": "true"})
    assert r.status_code == 503 and r.text == "系统服务暂时不可用，请稍后重试"
    assert r.headers["retry-after"] == "10"
    monkeypatch.undo()
    assert (await hasty.get("/bookings")).status_code == 200


async def test_an_import_parsed_longer_than_the_deadline_is_not_cut(
    client: AsyncTestClient, hasty: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await company_user(client)
    hasty.cookies = client.cookies
    slow = _slowed(instrument_xlsx.read_instruments)
    monkeypatch.setattr(instrument_xlsx, "read_instruments", slow)
    files = {"file": ("i.xlsx", register_xlsx([reg(i) for i in range(20)]))}
    r = await post(hasty, "/instruments/import", files=files, htmx=True)
    token = re.search(r'name="token" value="([A-Za-z0-9_-]+)"', r.text)
    assert r.status_code == 200 and token, r.text[:300]
    r = await post(hasty, "/instruments/import/confirm", {"token": token.group(1)})
    assert "导入完成：新增20个" in r.text and await Instrument.count() == 20


async def test_an_export_whose_child_outlasts_the_deadline_is_not_cut(
    client: AsyncTestClient, hasty: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await company_user(client)
    files = {"file": ("i.xlsx", register_xlsx([reg(i) for i in range(3)]))}
    r = await post(client, "/instruments/import", files=files, htmx=True)
    token = re.search(r'name="token" value="([A-Za-z0-9_-]+)"', r.text)
    assert token, r.text[:300]
    await post(client, "/instruments/import/confirm", {"token": token.group(1)})
    hasty.cookies = client.cookies
    run_child = instrument_export._run_child

    async def slow_child(request: dict[str, Any]) -> int:
        await asyncio.sleep(3 * DEADLINE)
        return await run_child(request)

    monkeypatch.setattr(instrument_export, "_run_child", slow_child)
    r = await hasty.get("/instruments/export.xlsx")
    assert r.status_code == 200 and r.content.startswith(b"PK"), r.text[:300]


async def test_a_slow_upload_is_the_clients_time_not_the_apps(tmp_path: Path) -> None:
    """A real server with a deadline of 1 s takes a form sent over 3 s: its answer is the
    form's (here the CSRF refusal, cheap to reach), not the 503 page."""
    port = free_port()
    env = {**os.environ, "REQUEST_DEADLINE": "1"}
    with open(tmp_path / "server.log", "wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "app.asgi:app", "--port", str(port),
             "--log-level", "warning"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        await asyncio.to_thread(wait_for_port, port, server)
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        body = b"username=someone&password=secret&_csrf_token=" + b"0" * 96
        head = (
            "POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        )
        writer.write(head.encode())
        for k in range(3):  # a third of the body a second
            writer.write(body[k * len(body) // 3 : (k + 1) * len(body) // 3])
            await writer.drain()
            await asyncio.sleep(1.0)
        status = await asyncio.wait_for(reader.readline(), 10)
        writer.close()
        assert status.split()[1] == b"403", (status, (tmp_path / "server.log").read_text())
    finally:
        server.terminate()
        await asyncio.to_thread(server.wait, 10)
