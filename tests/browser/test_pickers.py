"""The pickers keep their ticks across pages (keyset pages: 首页/上一页/下一页/末页) and
searches: tick 2 on page 1 and 1 on page 2, 3 are added; at 1280×800 and at 390×844."""

from __future__ import annotations

from typing import Any

from playwright.async_api import expect

from app.tables import Instrument
from tests.browser.helpers import instrument_rows, log_in, notice, shot
from tests.factories import make_booking, make_enterprise, make_user

USERNAME = "picker1"
PASSWORD = "Secret123x"


async def _company_with_register(n: int) -> None:
    ent = await make_enterprise(31, name="拣选测试单位")
    await make_user(ent, PASSWORD, username=USERNAME)
    await Instrument.insert(
        *[
            Instrument(enterprise=ent.id, name=f"器具{i:02d}", serial_no=f"S{i:02d}", model="M")
            for i in range(1, n + 1)
        ]
    )


async def _search_keeps_ticks_and_adds(page: Any, picker: Any, text: str, ticked: str) -> None:
    """With 3 ticked, a search for ``text`` finds the one row ``ticked`` names, still ticked,
    and the 3 ticks; 【确定】 adds the 3."""
    # Typing a moment after a swap: htmx wires the new search box once the swap settles,
    # so wait for that (no request in flight), then type; Enter searches at once as well.
    await expect(page.locator(".htmx-request")).to_have_count(0)
    search = picker.get_by_label("搜索")
    await search.fill(text)
    await search.press("Enter")
    await expect(picker.get_by_text("共 1 条")).to_be_visible(timeout=10_000)
    await expect(picker.get_by_role("checkbox", name=ticked)).to_be_checked()
    await expect(picker.get_by_text("已选 3 项")).to_be_visible()

    await picker.get_by_role("button", name="确定", exact=True).click()
    await expect(picker).to_be_hidden()
    await expect(notice(page, "已添加3个器具")).to_be_visible()
    await expect(instrument_rows(page)).to_have_count(3)


async def test_custody_picker_keeps_ticks_across_pages(page: Any) -> None:
    await _company_with_register(60)
    await log_in(page, USERNAME, PASSWORD)
    await page.goto("/bookings/new")
    await page.get_by_role("button", name="从托管器具选择").click()
    picker = page.get_by_role("dialog", name="从托管器具选择")
    await expect(picker.get_by_text("共 60 条")).to_be_visible()
    await picker.get_by_role("checkbox", name="选择 器具01 S01").check()
    await picker.get_by_role("checkbox", name="选择 器具02 S02").check()
    await expect(picker.get_by_text("已选 2 项")).to_be_visible()

    await picker.get_by_role("link", name="下一页").click()
    # Page 2 (the register in 有效期至 order, none set: by id): 器具51..器具60.
    await expect(picker.get_by_role("checkbox", name="选择 器具51 S51")).to_be_visible()
    await expect(picker.get_by_role("link", name="末页")).to_have_count(0)
    await expect(picker.get_by_text("已选 2 项")).to_be_visible()
    await (
        picker.get_by_role("checkbox").filter(has_not=page.locator("[data-check-all]")).last.check()
    )
    await expect(picker.get_by_text("已选 3 项")).to_be_visible()

    # Back on page 1 the two ticks are still there; a search keeps them too.
    await picker.get_by_role("link", name="上一页").click()
    await expect(picker.get_by_role("checkbox", name="选择 器具01 S01")).to_be_checked()
    await _search_keeps_ticks_and_adds(page, picker, "器具02", "选择 器具02 S02")


async def test_history_picker_keeps_ticks_across_pages(page: Any) -> None:
    """60 instruments booked, 10 of them twice (under another name the second time): each
    shown once, as last booked; ticks kept through 下一页, 首页, 末页 and a search."""
    ent = await make_enterprise(32, name="历史拣选单位")
    await make_user(ent, PASSWORD, username=USERNAME)
    old = [{"name": f"旧称{i:02d}", "serial_no": f"H{i:02d}", "model": "M"} for i in range(1, 11)]
    await make_booking(ent, old, "approved")
    rows = [{"name": f"历史{i:02d}", "serial_no": f"H{i:02d}", "model": "M"} for i in range(1, 61)]
    await make_booking(ent, rows, "approved")
    await log_in(page, USERNAME, PASSWORD)
    await page.goto("/bookings/new")
    await page.get_by_role("button", name="从历史预约数据选择").click()
    picker = page.get_by_role("dialog", name="从历史预约数据选择")
    # Newest first: 历史60 … 历史11 on page 1.
    await picker.get_by_role("checkbox", name="选择 历史60 H60").check()
    await picker.get_by_role("checkbox", name="选择 历史59 H59").check()
    await expect(picker.get_by_text("已选 2 项")).to_be_visible()

    await picker.get_by_role("link", name="下一页").click()
    await expect(picker.get_by_role("checkbox", name="选择 历史01 H01")).to_be_visible()
    await expect(picker.get_by_text("旧称01")).to_have_count(0)  # once, as last booked
    await picker.get_by_role("checkbox", name="选择 历史05 H05").check()
    await expect(picker.get_by_text("已选 3 项")).to_be_visible()
    await shot(page, "picker-history-page2")

    await picker.get_by_role("link", name="首页").click()
    await expect(picker.get_by_role("checkbox", name="选择 历史60 H60")).to_be_checked()
    await picker.get_by_role("link", name="末页").click()
    await expect(picker.get_by_role("checkbox", name="选择 历史05 H05")).to_be_checked()
    await expect(picker.get_by_text("已选 3 项")).to_be_visible()
    await _search_keeps_ticks_and_adds(page, picker, "H59", "选择 历史59 H59")
