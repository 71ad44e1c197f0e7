"""器具托管 over HTTP: list, filters, 新增/编辑/删除, import (upsert), export, pickers,
【一键生成预约送检】, and tenancy on every handler that takes an id."""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from typing import Any

import openpyxl
from litestar.testing import AsyncTestClient

from app.clock import today
from app.services.instrument_xlsx import REGISTER_COLUMNS
from app.services.instruments import add_months, computed_valid_until
from app.tables import BookingItem, Instrument
from tests.helpers import (
    BOOKING,
    company_user,
    open_form,
    post,
    reg,
    register_xlsx,
    submitted_booking,
)

TODAY = today()


async def add(client: AsyncTestClient, **item: str) -> Any:
    return await post(client, "/instruments", item)


async def import_register(client: AsyncTestClient, data: bytes) -> Any:
    """【点击上传】 (htmx), then 【确定】 with the token of what it showed."""
    r = await post(client, "/instruments/import", files={"file": ("a.xlsx", data)}, htmx=True)
    token = re.search(r'name="token" value="([^"]+)"', r.text)
    assert token, r.text
    return await post(client, "/instruments/import/confirm", {"token": token.group(1)}, htmx=True)


def test_valid_until_is_computed_from_cycle() -> None:
    assert computed_valid_until(date(2025, 1, 15), 12) == date(2026, 1, 14)
    assert computed_valid_until(date(2025, 8, 31), 6) == date(2026, 2, 27)
    assert add_months(date(2024, 1, 31), 1) == date(2024, 2, 29)
    assert computed_valid_until(None, 12) is None


async def test_add_edit_filter_and_words_not_colour(client: AsyncTestClient) -> None:
    await company_user(client)
    r = await add(client, **reg(1, name="", cycle_months="0", last_verified_on="2025-13-01"))
    assert "请填写器具名称" in r.text and "1～120" in r.text and "日期" in r.text
    assert 'value="P0001"' in r.text and await Instrument.count() == 0
    overdue = (TODAY - timedelta(days=400)).isoformat()
    r = await add(client, **reg(1, last_verified_on=overdue))
    assert r.status_code == 303
    soon = (TODAY + timedelta(days=10)).isoformat()
    assert (await add(client, **reg(2, valid_until=soon, cycle_months=""))).status_code == 303
    far = (TODAY + timedelta(days=200)).isoformat()
    assert (await add(client, **reg(3, valid_until=far))).status_code == 303
    r = await add(client, **reg(3, valid_until=far))
    assert "已有同名称" in r.text and await Instrument.count() == 3
    first = await Instrument.select().where(Instrument.name == "压力表1").first()
    assert first["valid_until"] == computed_valid_until(date.fromisoformat(overdue), 12)

    page = (await client.get("/instruments")).text
    assert "已超期" in page and "即将到期" in page and "正常" in page
    assert page.index("压力表1") < page.index("压力表2") < page.index("压力表3")  # by 有效期至
    page = (await client.get("/instruments?sort=-valid_until")).text
    assert page.index("压力表3") < page.index("压力表1")
    for state, shown, hidden in (
        ("overdue", "压力表1", "压力表2"),
        ("due", "压力表2", "压力表3"),
        ("ok", "压力表3", "压力表1"),
    ):
        r = await client.get(f"/instruments?state={state}", headers={"HX-Request": "true"})
        assert shown in r.text and hidden not in r.text and "<html" not in r.text
    r = await client.get("/instruments?q=P0002")
    assert "压力表2" in r.text and "压力表1" not in r.text

    r = await client.get(f"/instruments/{first['id']}/edit")
    assert 'value="压力表1"' in r.text
    r = await post(
        client, f"/instruments/{first['id']}", reg(1, name="精密压力表", valid_until=far)
    )
    assert r.status_code == 303
    assert (await Instrument.select().where(Instrument.id == first["id"]).first())[
        "name"
    ] == "精密压力表"
    r = await post(client, "/instruments/edit", {"ids": [str(first["id"])]})
    assert r.status_code == 303 and r.headers["location"] == f"/instruments/{first['id']}/edit"
    assert "请勾选一个器具" in (await post(client, "/instruments/edit", {})).text

    r = await post(client, "/instruments/delete", {"ids": [str(first["id"])]}, htmx=True)
    assert "已删除1个器具" in r.text and await Instrument.count() == 2
    assert "请先勾选" in (await post(client, "/instruments/delete", {}, htmx=True)).text


async def test_import_updates_existing_and_counts(client: AsyncTestClient) -> None:
    await company_user(client)
    await add(client, **reg(1, remark="旧备注"))
    rows = [
        {
            **reg(1),
            "remark": "新备注",
            "quantity": 2,
            "cycle_months": 6,
            "last_verified_on": date(2025, 1, 1),
        },
        {**reg(2), "quantity": 1, "cycle_months": 12, "valid_until": date(2026, 5, 1)},
        {**reg(3), "quantity": 1, "cycle_months": None},
    ]
    r = await import_register(client, register_xlsx(rows))
    assert "导入完成：新增2个，更新1个" in r.text and 'id="instrument-list"' in r.text
    assert await Instrument.count() == 3
    one = await Instrument.select().where(Instrument.name == "压力表1").first()
    assert one["remark"] == "新备注" and one["valid_until"] == date(2025, 6, 30)
    bad = [{**reg(4), "quantity": 1, "cycle_months": 200}, {**reg(5, name=""), "quantity": 1}]
    r = await post(
        client, "/instruments/import", files={"file": ("b.xlsx", register_xlsx(bad))}, htmx=True
    )
    assert "第2行「检定周期(月)」" in r.text and "第3行「器具名称」" in r.text
    assert await Instrument.count() == 3
    r = await post(
        client, "/instruments/import", files={"file": ("c.xlsx", b"PK\x03\x04junk")}, htmx=True
    )
    assert "不是有效的 Excel" in r.text
    r = await client.get("/instruments/template.xlsx")
    headers = [
        str(c.value).rstrip("*")
        for c in openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0][1]
    ]
    assert headers[-3:] == ["检定周期(月)", "上次检定日期", "有效期至"]


async def test_export_current_filter_dates_and_no_formulas(client: AsyncTestClient) -> None:
    await company_user(client)
    await add(client, **reg(1, valid_until=(TODAY - timedelta(days=1)).isoformat()))
    await add(
        client,
        **reg(
            2,
            remark='=HYPERLINK("http://x")',
            name="+危险",
            valid_until=(TODAY + timedelta(days=300)).isoformat(),
        ),
    )
    r = await client.get("/instruments/export.xlsx")
    assert r.status_code == 200 and "spreadsheetml" in r.headers["content-type"]
    ws = openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0]
    rows = list(ws.iter_rows(values_only=True))
    assert [c for c in rows[0]] == [c.label for c in REGISTER_COLUMNS]
    assert len(rows) == 3
    cells = {row[0]: row for row in rows[1:]}
    assert cells["+危险"][11] == '=HYPERLINK("http://x")'
    assert all(c.data_type != "f" for row in ws.iter_rows() for c in row)
    assert hasattr(cells["压力表1"][-1], "year")  # a real date
    r = await client.get("/instruments/export.xlsx?state=overdue")
    rows = list(
        openpyxl.load_workbook(io.BytesIO(r.content)).worksheets[0].iter_rows(values_only=True)
    )
    assert len(rows) == 2 and rows[1][0] == "压力表1"


async def test_history_into_register_and_one_click_booking(client: AsyncTestClient) -> None:
    await company_user(client)
    await submitted_booking(client, 2)
    r = await client.get("/instruments/history", headers={"HX-Request": "true"})
    assert "温度计1" in r.text
    item = await BookingItem.select().where(BookingItem.name == "温度计1").first()
    r = await post(client, "/instruments/history", {"history_ids": [str(item["id"])]}, htmx=True)
    assert "新增1个" in r.text and await Instrument.count() == 1
    await add(client, **reg(7, valid_until=(TODAY - timedelta(days=3)).isoformat()))
    overdue = await Instrument.select().where(Instrument.name == "压力表7").first()
    r = await post(client, "/instruments/to-booking", {"ids": [str(overdue["id"])]}, htmx=True)
    assert r.headers["hx-redirect"] == "/bookings/new?from_register=1#instrument-section"
    page = (await client.get("/bookings/new?from_register=1")).text
    assert "压力表7" in page and "从托管器具选择" in page and "已从器具托管加入1个器具" in page
    booking_id = await open_form(client)
    r = await client.get(f"/bookings/{booking_id}/custody?q=温度计", headers={"HX-Request": "true"})
    assert "温度计1" in r.text and "压力表7" not in r.text
    reg_item = await Instrument.select().where(Instrument.name == "温度计1").first()
    r = await post(
        client, f"/bookings/{booking_id}/custody", {"custody_ids": [str(reg_item["id"])]}, htmx=True
    )
    assert "已添加1个器具" in r.text and "温度计1" in r.text
    r = await post(client, f"/bookings/{booking_id}/submit", BOOKING)
    assert r.status_code == 303


async def test_other_enterprise_gets_404(client: AsyncTestClient) -> None:
    await company_user(client, n=1, phone="13800000001")
    await add(client, **reg(1))
    theirs = (await Instrument.select().first())["id"]
    await submitted_booking(client)
    their_history = (await BookingItem.select().first())["id"]
    await post(client, "/logout")
    await company_user(client, n=2, phone="13800000002")
    mine = await open_form(client)
    checks = [
        await client.get(f"/instruments/{theirs}/edit"),
        await post(client, f"/instruments/{theirs}", reg(1)),
        await post(client, "/instruments/delete", {"ids": [str(theirs)]}),
        await post(client, "/instruments/to-booking", {"ids": [str(theirs)]}),
        await post(client, f"/bookings/{mine}/custody", {"custody_ids": [str(theirs)]}),
        await post(client, "/instruments/history", {"history_ids": [str(their_history)]}),
        await post(client, "/instruments/edit", {"ids": [str(theirs)]}),
    ]
    assert [r.status_code for r in checks] == [404] * len(checks)
    assert "压力表1" not in (await client.get("/instruments")).text
    assert "压力表1" not in (await client.get(f"/bookings/{mine}/custody")).text
    assert "温度计1" not in (await client.get("/instruments/history")).text
    rows = list(
        openpyxl.load_workbook(io.BytesIO((await client.get("/instruments/export.xlsx")).content))
        .worksheets[0]
        .iter_rows()
    )
    assert len(rows) == 1
    assert (await Instrument.select().first())["name"] == "压力表1"


async def test_import_of_3000_new_and_updated_rows(client: AsyncTestClient) -> None:
    await company_user(client)
    await add(client, **reg(0))
    rows = [
        {**reg(n), "quantity": 1, "cycle_months": 12, "last_verified_on": date(2025, 3, 1)}
        for n in range(3000)
    ]
    r = await import_register(client, register_xlsx(rows))
    assert "新增2999个，更新1个" in r.text
    assert await Instrument.count() == 3000
    last = await Instrument.select().where(Instrument.name == "压力表2999").first()
    assert last["valid_until"] == date(2026, 2, 28) and last["remark"] == ""


async def test_messages_are_never_taken_from_the_url(client: AsyncTestClient) -> None:
    await company_user(client)
    r = await client.get("/instruments?done=您的账号已冻结请拨打电话")
    assert "您的账号已冻结" not in r.text
    assert "已保存" in (await client.get("/instruments?done=saved")).text
