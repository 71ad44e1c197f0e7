"""【导出器具】 runs in a child process, so openpyxl never holds the app process's GIL (the
figures: bench/export.py). Both modes."""

from __future__ import annotations

import asyncio
import contextlib
import io
from typing import Any

import asyncpg
import openpyxl
import pytest
from litestar.testing import AsyncTestClient

from app.services import instrument_export
from app.services.instrument_xlsx import REGISTER_COLUMNS, ImportBusy
from app.services.tenancy import Scope
from app.tables import Instrument
from tests.helpers import SETTINGS, company_user, free_port, post, reg


async def _register(client: AsyncTestClient, n: int) -> None:
    await company_user(client)
    for k in range(1, n + 1):
        r = await post(client, "/instruments/", reg(k), htmx=True)
        assert r.status_code == 200, r.text


async def test_the_export_is_written_by_another_process(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _register(client, 3)

    def not_here(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the export was written in the app process")

    # No workbook can be made in this process; the child is a fresh interpreter.
    monkeypatch.setattr(openpyxl, "Workbook", not_here)
    r = await client.get("/instruments/export.xlsx?q=压力表")
    assert r.status_code == 200 and "spreadsheetml" in r.headers["content-type"]
    rows = list(openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0].values)
    assert list(rows[0]) == [c.label for c in REGISTER_COLUMNS]
    assert sorted(row[0] for row in rows[1:]) == ["压力表1", "压力表2", "压力表3"]


async def test_database_away_in_the_child_is_the_503_page(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _register(client, 1)
    # The child reads its settings afresh: its database is a port nobody listens on.
    monkeypatch.setenv("DATABASE_URL", f"postgresql://127.0.0.1:{free_port()}/gone")
    r = await client.get("/instruments/export.xlsx")
    assert r.status_code == 503 and "系统服务暂时不可用" in r.text
    monkeypatch.undo()
    assert (await client.get("/instruments/export.xlsx")).status_code == 200


@pytest.mark.skipif(not SETTINGS.is_postgres, reason="a table lock of PostgreSQL")
async def test_a_database_that_stops_answering_the_child_is_the_503_page(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's batches keep a request's deadline (app/deadline.py): the request does not
    count the child's time, so a child waiting on a database that does not answer (here a
    lock holds every read of the register) would otherwise hold it for as long."""
    await _register(client, 1)
    monkeypatch.setenv("REQUEST_DEADLINE", "1")  # the child reads its settings afresh
    locker = await asyncpg.connect(SETTINGS.database_url)
    table = Instrument._meta.tablename
    try:
        await locker.execute(f"BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
        # The server lets the lock go after 20 s (a child still waiting then would export).
        held = asyncio.create_task(locker.execute("SELECT pg_sleep(20); COMMIT"))
        await asyncio.sleep(0.2)
        r = await client.get("/instruments/export.xlsx")
    finally:
        await Instrument.raw("SELECT pg_cancel_backend({})", locker.get_server_pid())
        with contextlib.suppress(asyncpg.QueryCanceledError):
            await held
        await locker.close()
    assert r.status_code == 503 and "系统服务暂时不可用" in r.text
    monkeypatch.undo()
    assert (await client.get("/instruments/export.xlsx")).status_code == 200


async def test_exports_past_the_limit_wait_then_hear_the_server_is_busy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    release = asyncio.Event()
    running: list[dict[str, Any]] = []

    async def child(request: dict[str, Any]) -> int:
        running.append(request)
        await release.wait()
        return 0

    monkeypatch.setattr(instrument_export, "_run_child", child)
    monkeypatch.setattr(instrument_export, "EXPORT_WAIT", 0.2)
    scope = Scope(user_id=1, enterprise_id=1, enterprise_ids=(1,))
    exports = [
        asyncio.create_task(instrument_export.export_file(instrument_export.ROOT, scope, "", ""))
        for _ in range(instrument_export.MAX_EXPORTS)
    ]
    while len(running) < instrument_export.MAX_EXPORTS:
        await asyncio.sleep(0.01)
    with pytest.raises(ImportBusy, match="导出的请求较多"):
        await instrument_export.export_file(instrument_export.ROOT, scope, "", "")
    release.set()
    assert await asyncio.gather(*exports) == [0] * instrument_export.MAX_EXPORTS
