"""【导出器具】 runs in a child process, so openpyxl never holds the app process's GIL (the
figures: bench/export.py). Both modes."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import openpyxl
import pytest
from litestar.testing import AsyncTestClient

from app.services import instrument_export
from app.services.instrument_xlsx import REGISTER_COLUMNS, ImportBusy
from app.services.tenancy import Scope
from tests.helpers import company_user, free_port, post, reg


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
