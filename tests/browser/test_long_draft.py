"""预约送检 with a 5,000-row draft (issue #11 item 3), on the desktop of the issue (1366×900)
and a 390×844 phone: the 器具列表 shows 50 rows a page; 【添加器具】, 修改 and 删除 change
only their rows (each answer a few KB); 上一页/下一页 and 末页 page the list, with or
without JavaScript."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from app.tables import BookingItem
from tests.browser import helpers as browser
from tests.browser.helpers import field, fill_fields, instrument_rows, log_in, notice
from tests.factories import make_booking, make_enterprise, make_user

USERNAME = "company11"
PASSWORD = "Secret123x"
ROWS = 5000
NAME = "数字式精密压力校验仪"
MAX_ANSWER = 10 * 1024


async def long_draft() -> None:
    ent = await make_enterprise(11)
    user = await make_user(ent, username=USERNAME, password=PASSWORD)
    items = [
        {
            "name": f"{NAME}{k}号",
            "serial_no": f"SN-2024-{k:05d}",
            "model": "YBS-WB 0~60MPa",
            "manufacturer": "北京康斯特仪表科技股份有限公司",
            "quantity": 1,
        }
        for k in range(1, ROWS + 1)
    ]
    await make_booking(ent, items=items, status="draft", created_by=user.id, booking_no=None)


async def at_size(page: Any) -> None:
    """The desktop of the issue is 1366×900 (the fixture's desktop is smaller)."""
    if page.viewport_name == "desktop":
        await page.set_viewport_size({"width": 1366, "height": 900})


async def shot(page: Any, name: str) -> None:
    """helpers.shot(), then the ``style=""`` it leaves on inputs removed (htmx's settle
    step would copy it onto swapped-in inputs: a CSP report the app did not cause)."""
    await browser.shot(page, name)
    await page.evaluate(
        "document.querySelectorAll('[style=\"\"]').forEach(e => e.removeAttribute('style'))"
    )


def pager(page: Any) -> Any:
    return page.get_by_role("navigation", name="器具列表分页")


async def test_adding_to_a_long_draft_and_paging(page: Any) -> None:
    await at_size(page)
    await long_draft()
    await log_in(page, USERNAME, PASSWORD)
    await page.goto("/bookings/new")
    rows = instrument_rows(page)
    await expect(rows).to_have_count(50)
    await expect(rows.first).to_contain_text(f"{NAME}1号")
    await expect(page.get_by_text(f"共 {ROWS} 行，器具数量合计 {ROWS}")).to_be_visible()
    await expect(pager(page)).to_contain_text("第 1/100 页")
    await expect(pager(page).get_by_role("link", name="上一页")).to_have_count(0)

    # 【添加器具】: the new row joins the rows shown, the counts follow; the answer is small.
    phone = page.viewport_name == "phone"
    if phone:
        await page.get_by_text("录入器具", exact=True).click()
    typed = {"器具名称": "新加的温度计", "出厂编号": "XJ-1", "型号规格": "WSS-411", "器具数量": "2"}
    await fill_fields(page, typed)
    async with page.expect_response(lambda r: r.request.method == "POST") as answer:
        await page.get_by_role("button", name="添加器具").click()
    assert len(await (await answer.value).body()) <= MAX_ANSWER
    await expect(notice(page, "器具已添加")).to_be_visible()
    await expect(rows).to_have_count(51)
    await expect(rows.last).to_contain_text("新加的温度计")
    await expect(page.get_by_text(f"共 {ROWS + 1} 行，器具数量合计 {ROWS + 2}")).to_be_visible()
    await expect(pager(page)).to_contain_text("第 1/101 页")
    await expect(field(page, "器具名称")).to_have_value("")
    if not phone:
        await expect(field(page, "器具名称")).to_be_focused()
    await shot(page, "booking-long-draft-added")

    # 修改 (a double-click on the desktop, the card's button on a phone): that row changes.
    if phone:
        await rows.last.get_by_role("button", name="修改").click()
    else:
        await rows.last.get_by_role("cell", name="新加的温度计", exact=True).dblclick()
    await expect(field(page, "器具名称")).to_have_value("新加的温度计")
    await expect(rows.last).to_have_class("clickable selected")
    await field(page, "器具名称").fill("改过的温度计")
    await page.get_by_role("button", name="添加器具").click()
    await expect(rows.last).to_contain_text("改过的温度计")
    await expect(rows).to_have_count(51)
    await expect(rows.filter(has_text="新加的温度计")).to_have_count(0)
    await expect(rows.last).not_to_have_class("clickable selected")
    await expect(page.get_by_text(f"共 {ROWS + 1} 行")).to_be_visible()

    # 下一页, 上一页 and 末页: 50 rows at a time, the new one on the last page.
    await pager(page).get_by_role("link", name="下一页").click()
    await expect(pager(page)).to_contain_text("第 2/101 页")
    await expect(rows).to_have_count(50)
    await expect(rows.first).to_contain_text(f"{NAME}51号")
    assert page.url.endswith("?page=2")
    await shot(page, "booking-long-draft-page-2")
    await pager(page).get_by_role("link", name="上一页").click()
    await expect(pager(page)).to_contain_text("第 1/101 页")
    await expect(rows.first).to_contain_text(f"{NAME}1号")
    await expect(rows).to_have_count(50)  # the new row on its own page now
    await pager(page).get_by_role("link", name="末页").click()
    await expect(pager(page)).to_contain_text("第 101/101 页")
    await expect(rows).to_have_text([_contains("改过的温度计")])

    # 删除 the only row of the last page: the list shows its new last page.
    page.once("dialog", lambda d: d.accept())
    if phone:
        await rows.first.get_by_role("button", name="删除").click()
    else:
        await page.get_by_role("checkbox", name="选择 改过的温度计").check()
        await page.get_by_role("button", name="删除", exact=True).click()
    await expect(notice(page, "已删除1个器具")).to_be_visible()
    await expect(pager(page)).to_contain_text("第 100/100 页")
    await expect(rows).to_have_count(50)
    await expect(rows.last).to_contain_text(f"{NAME}{ROWS}号")
    await expect(page.get_by_text(f"共 {ROWS} 行，器具数量合计 {ROWS}")).to_be_visible()
    assert await BookingItem.count() == ROWS

    # 【提交】 still in view on a phone, wherever the list is.
    if phone:
        await rows.nth(25).scroll_into_view_if_needed()
        await expect(page.get_by_role("button", name="提交", exact=True)).to_be_in_viewport()


def _contains(text: str) -> Any:
    """A row's whole text, matched by a part of it."""
    return re.compile(re.escape(text))


async def test_paging_a_long_draft_without_javascript(browser: Any, server: str) -> None:
    await long_draft()
    context = await browser.new_context(
        base_url=server,
        locale="zh-CN",
        java_script_enabled=False,
        viewport={"width": 1366, "height": 900},
    )
    page = await context.new_page()
    try:
        await log_in(page, USERNAME, PASSWORD)
        await page.goto("/bookings/new")
        rows = instrument_rows(page)
        await expect(rows).to_have_count(50)
        await pager(page).get_by_role("link", name="下一页").click()
        await expect(pager(page)).to_contain_text("第 2/100 页")
        await expect(rows.first).to_contain_text(f"{NAME}51号")
        # 【添加器具】 without JavaScript: the page of the new row.
        await fill_fields(page, {"器具名称": "无脚本温度计", "出厂编号": "WJ-1", "型号规格": "W-1"})
        await page.get_by_role("button", name="添加器具").click()
        await expect(notice(page, "器具已添加")).to_be_visible()
        await expect(pager(page)).to_contain_text("第 101/101 页")
        await expect(rows).to_have_count(1)
        await expect(rows.first).to_contain_text("无脚本温度计")
    finally:
        await context.close()
