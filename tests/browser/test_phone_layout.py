"""The phone at 390×844 and the desktop at 1366×900, measured (issue #13 items 4 and 5).

预约送检 with 35 instruments: on a phone the instrument fields fold away, the 器具列表 is a
stack of cards and 【提交】 stays in view; every list shows what identifies a row and its
状态 without sideways scrolling, and its tick boxes and row buttons are at least 44 px. The
desktop keeps its tables. Geometry is read off the elements' bounding boxes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import expect

from app.clock import today
from app.tables import BookingItem
from tests.browser import helpers as browser
from tests.browser.helpers import field, log_in, notice
from tests.factories import (
    make_audit_entry,
    make_booking,
    make_certificate,
    make_enterprise,
    make_instrument,
    make_sms_message,
    make_user,
)
from tests.helpers import make_admin

USERNAME = "company9"
PASSWORD = "Secret123x"
ROWS = 35
WIDTH = 390
TAP = 44  # px: the smallest tap target (WCAG 2.5.5, Apple's HIG)
# Long enough to be cut by a fixed-width cell; 号 ends it, so 3号 is not found in 33号.
NAME = "数字式精密压力校验仪"
SMS = "【计量客户服务平台】您的预约YY20260101000001已通过审核，请按预计送检日期送检。"

PHONE = pytest.mark.parametrize("page", ["phone"], indirect=True)
DESKTOP = pytest.mark.parametrize("page", ["desktop"], indirect=True)


# --------------------------------------------------------------------------- set-up


async def company() -> None:
    """A company with 35 of everything: a draft booking's 器具列表, submitted bookings,
    instruments in 器具托管 (some overdue) and certificates (some unpaid)."""
    ent = await make_enterprise(9, contact_phone="13912345678")
    user = await make_user(ent, username=USERNAME, password=PASSWORD)
    items = [
        {
            "name": f"{NAME}{k}号",
            "serial_no": f"SN-2024-{k:05d}",
            "model": "YBS-WB 0~60MPa",
            "manufacturer": "北京康斯特仪表科技股份有限公司",
            "quantity": k % 3 + 1,
        }
        for k in range(1, ROWS + 1)
    ]
    await make_booking(ent, items=items, status="draft", created_by=user.id, booking_no=None)
    for _ in range(ROWS):
        await make_booking(ent, items=2, created_by=user.id)
    for k in range(1, ROWS + 1):
        await make_instrument(
            ent,
            name=f"{NAME}{k}号",
            serial_no=f"SN-2024-{k:05d}",
            model="YBS-WB 0~60MPa",
            manufacturer="北京康斯特仪表科技股份有限公司",
            valid_until=today() + timedelta(days=10 * k - 30),
        )
    for k in range(1, ROWS + 1):
        await make_certificate(ent, k, paid=k % 4 != 0)


async def platform_records() -> None:
    """What 短信记录 and 操作日志 list: 35 lines each."""
    for k in range(ROWS):
        await make_sms_message(f"139{k:08d}", text=SMS)
        await make_audit_entry(f"company{k}", detail=f"预约 YY2026010100{k:04d} 提交成功")


async def at_size(page: Any) -> None:
    """The desktop of the issue is 1366×900 (the fixture's desktop is smaller)."""
    if page.viewport_name == "desktop":
        await page.set_viewport_size({"width": 1366, "height": 900})


async def shot(page: Any, name: str) -> None:
    """conftest's shot(), then the ``style=""`` it leaves on inputs removed (htmx's settle
    step would copy it onto swapped-in inputs: a CSP report the app did not cause)."""
    await browser.shot(page, name)
    await page.evaluate(
        "document.querySelectorAll('[style=\"\"]').forEach(e => e.removeAttribute('style'))"
    )


async def view_shot(page: Any, name: str) -> None:
    """What is on the screen now (not the whole page): where the sticky bar shows."""
    browser.SHOTS.mkdir(exist_ok=True)
    path = browser.SHOTS / f"{name}-{page.viewport_name}.png"
    await page.screenshot(path=str(path), caret="initial")


# --------------------------------------------------------------------------- measuring

# Each body row's cells under the given column headers (found by the header's text, so the
# test does not depend on how the page marks its cells): the cell's box, whether its text
# fits, and the row's tick box and buttons.
MEASURE = """([table, labels]) => {
  const heads = [...table.tHead.rows[0].cells].map((th) => th.textContent.trim());
  labels = labels || heads.filter((h) => h);
  const box = (el) => { const r = el.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom,
            width: r.width, height: r.height}; };
  const shown = (el) => el.getClientRects().length > 0;
  return [...table.tBodies[0].rows].map((tr) => ({
    cells: labels.map((label) => {
      const i = heads.indexOf(label);
      if (i < 0) return {label, missing: true};
      const td = tr.cells[i];
      return {label, text: td.textContent.trim(), ...box(td),
              fits: td.scrollWidth <= td.clientWidth + 1};
    }),
    ticks: [...tr.querySelectorAll('input[type=checkbox]')].filter(shown).map(box),
    buttons: [...tr.querySelectorAll('a.btn, button')].filter(shown)
      .map((b) => ({text: b.textContent.trim(), ...box(b)})),
  }));
}"""


async def measure(page: Any, table: Any, labels: list[str] | None) -> list[dict[str, Any]]:
    """``labels``: the columns to measure; None: all of them."""
    handle = await table.element_handle()
    return await page.evaluate(MEASURE, [handle, labels])


async def no_sideways_scroll(page: Any) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= WIDTH, f"the page scrolls sideways: {width} px wide"


def assert_in_view(rows: list[dict[str, Any]], what: str) -> None:
    """Every named cell is shown whole within the 390 px, its text uncut."""
    assert rows, f"{what}: no rows"
    for n, row in enumerate(rows, 1):
        for c in row["cells"]:
            where = f"{what}, row {n}, {c['label']}"
            assert not c.get("missing"), f"{where}: no such column"
            if not c["text"]:
                continue  # an empty cell may leave the card
            assert c["width"] > 0 and c["height"] > 0, f"{where}: hidden"
            assert c["left"] >= 0 and c["right"] <= WIDTH, f"{where}: off-screen {c}"
            assert c["fits"], f"{where}: text cut ({c['text']})"


def assert_tap_targets(rows: list[dict[str, Any]], what: str) -> None:
    for n, row in enumerate(rows, 1):
        for b in row["ticks"] + row["buttons"]:
            assert b["height"] >= TAP and b["width"] >= TAP, f"{what}, row {n}: small target {b}"


# --------------------------------------------------------------------------- 预约送检


@PHONE
async def test_booking_form_on_a_phone(page: Any) -> None:
    await company()
    await log_in(page, USERNAME, PASSWORD)
    await page.goto("/bookings/new")
    table = page.locator("#instrument-table")
    rows = table.locator("tbody").get_by_role("row")
    await expect(rows).to_have_count(ROWS)

    # The instrument fields are folded away behind one button; the list comes soon.
    await expect(field(page, "器具名称")).to_be_hidden()
    entry = page.get_by_text("录入器具", exact=True)
    await expect(entry).to_be_visible()
    first = await rows.first.bounding_box()
    assert first is not None and first["y"] < 1400, f"the list starts at {first}"

    # Cards: name, serial, model and quantity whole on screen; 修改/删除 big enough.
    cards = await measure(page, table, ["器具名称", "出厂编号", "型号规格", "器具数量"])
    assert_in_view(cards, "器具列表")
    assert_tap_targets(cards, "器具列表")
    assert [b["text"] for b in cards[0]["buttons"]] == ["修改", "删除"]
    await no_sideways_scroll(page)

    # 【提交】 stays in view wherever the list is scrolled to.
    submit = page.get_by_role("button", name="提交", exact=True)
    for n in (0, ROWS // 2, ROWS - 1):
        await rows.nth(n).scroll_into_view_if_needed()
        await expect(submit).to_be_in_viewport(ratio=1)
        b = await submit.bounding_box()
        assert b is not None and b["y"] + b["height"] <= 844 and b["height"] >= TAP
    # ...without covering the last card.
    await rows.first.scroll_into_view_if_needed()
    await view_shot(page, "booking-form-35-list-start")
    await rows.nth(ROWS // 2).scroll_into_view_if_needed()
    await view_shot(page, "booking-form-35-scrolled")
    await page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    last, bar = await rows.last.bounding_box(), await submit.bounding_box()
    assert last is not None and bar is not None and last["y"] + last["height"] <= bar["y"]
    await page.evaluate("window.scrollTo(0, 0)")
    await shot(page, "booking-form-35")

    # 录入器具 unfolds the fields; 【添加器具】 adds a card and keeps them open.
    await entry.click()
    await expect(field(page, "器具名称")).to_be_visible()
    await field(page, "器具名称").fill("新加的温度计")
    await field(page, "出厂编号").fill("XJ-1")
    await field(page, "型号规格").fill("WSS-411")
    await page.get_by_role("button", name="添加器具").click()
    await expect(notice(page, "器具已添加")).to_be_visible()
    await expect(rows).to_have_count(ROWS + 1)
    await expect(field(page, "器具名称")).to_be_visible()

    # A card's 修改 loads it into the fields, shown even though they were folded.
    await entry.click()
    await expect(field(page, "器具名称")).to_be_hidden()
    await rows.nth(4).get_by_role("button", name="修改").click()
    await expect(field(page, "器具名称")).to_have_value(f"{NAME}5号")
    await expect(field(page, "器具名称")).to_be_in_viewport()

    # A card's 删除 deletes that card only, whatever else is ticked.
    await rows.nth(1).get_by_role("checkbox").check()
    page.once("dialog", lambda d: d.accept())
    await rows.nth(2).get_by_role("button", name="删除").click()
    await expect(notice(page, "已删除1个器具")).to_be_visible()
    await expect(rows).to_have_count(ROWS)
    await expect(rows.filter(has_text=f"{NAME}3号")).to_have_count(0)
    await expect(rows.filter(has_text=f"{NAME}2号")).to_have_count(1)


@DESKTOP
async def test_booking_form_on_a_desktop_is_unchanged(page: Any) -> None:
    await at_size(page)
    await company()
    await log_in(page, USERNAME, PASSWORD)
    await page.goto("/bookings/new")
    table = page.locator("#instrument-table")
    await expect(table.locator("tbody").get_by_role("row")).to_have_count(ROWS)

    # The fields are open, with no fold; the list is a table with its header row.
    await expect(field(page, "器具名称")).to_be_visible()
    await expect(page.get_by_text("录入器具", exact=True)).to_be_hidden()
    assert await table.evaluate("t => getComputedStyle(t).display") == "table"
    await expect(table.get_by_role("columnheader", name="出厂编号")).to_be_visible()
    rows = await measure(page, table, ["器具名称", "出厂编号"])
    assert len({round(c["top"]) for c in rows[0]["cells"]}) == 1  # one line per row
    assert [b["text"] for b in rows[0]["buttons"]] == ["修改"]  # 删除 works on ticked rows
    # 【提交】 at the end of the form, not stuck to the screen.
    submit = page.get_by_role("button", name="提交", exact=True)
    assert await submit.evaluate("b => getComputedStyle(b.parentElement).position") == "static"
    await expect(page.get_by_role("button", name="删除", exact=True)).to_have_count(1)


async def test_booking_form_on_a_phone_without_javascript(browser: Any, server: str) -> None:
    """No JavaScript: the fold still opens (a checkbox and its label) and 【添加器具】 works."""
    await company()
    context = await browser.new_context(
        base_url=server,
        locale="zh-CN",
        java_script_enabled=False,
        viewport={"width": WIDTH, "height": 844},
        is_mobile=True,
        has_touch=True,
    )
    page = await context.new_page()
    try:
        await log_in(page, USERNAME, PASSWORD)
        await page.goto("/bookings/new")
        await expect(field(page, "器具名称")).to_be_hidden()
        await page.get_by_text("录入器具", exact=True).click()
        await expect(field(page, "器具名称")).to_be_visible()
        await field(page, "器具名称").fill("无脚本温度计")
        await field(page, "出厂编号").fill("WJ-1")
        await field(page, "型号规格").fill("WSS-411")
        await page.get_by_role("button", name="添加器具").click()
        await expect(notice(page, "器具已添加")).to_be_visible()
        await expect(page.locator("#instrument-table tbody tr")).to_have_count(ROWS + 1)
        assert await BookingItem.count().where(BookingItem.name == "无脚本温度计") == 1
        # A card's 删除 without JavaScript: that row only.
        rows = page.locator("#instrument-table tbody tr")
        await rows.nth(0).get_by_role("checkbox").check()
        await rows.nth(1).get_by_role("button", name="删除").click()
        await expect(notice(page, "已删除1个器具")).to_be_visible()
        await expect(rows).to_have_count(ROWS)
        await expect(rows.filter(has_text=f"{NAME}1号")).to_have_count(1)
        await expect(rows.filter(has_text=f"{NAME}2号")).to_have_count(0)
    finally:
        await context.close()


# --------------------------------------------------------------------------- the lists

# Each list: where it is, the table, what identifies a row and its 状态.
CUSTOMER_LISTS: list[tuple[str, str, list[str] | None]] = [
    ("/", "最近的预约记录", ["预约单号", "状态"]),
    ("/bookings", "预约记录", ["预约单号", "委托单位名称", "状态"]),
    ("/instruments", "器具托管列表", ["器具名称", "出厂编号", "状态", "有效期至"]),
    ("/certificates", "电子证书列表", ["证书编号", "器具名称", "出厂编号", "缴费状态"]),
    ("/settings/users", "用户列表", None),
]
ADMIN_LISTS: list[tuple[str, str, list[str] | None]] = [
    ("/admin/bookings", "预约审核", ["预约单号", "委托单位名称", "状态"]),
    ("/admin/sms", "短信记录", ["手机号", "状态"]),
    ("/admin/audit", "操作日志", ["时间", "用户", "事件", "结果"]),
    # The other lists the same table macro draws: every column.
    ("/admin/certificates", "证书", None),
    ("/admin/orders", "大单", None),
    ("/admin/enterprises/1", "账号", None),
]


def list_table(page: Any, label: str) -> Any:
    return page.get_by_role("region", name=label, exact=True).locator("table")


@PHONE
async def test_lists_on_a_phone(page: Any) -> None:
    await company()
    await make_admin()
    await platform_records()
    await log_in(page, USERNAME, PASSWORD)
    for url, label, columns in CUSTOMER_LISTS:
        await page.goto(url)
        table = list_table(page, label)
        await expect(table.locator("tbody tr").first).to_be_visible()
        rows = await measure(page, table, columns)
        assert_in_view(rows, label)
        assert_tap_targets(rows, label)
        await no_sideways_scroll(page)
        await shot(page, "list" + url.replace("/", "-").rstrip("-"))
        await table.locator("tbody tr").last.scroll_into_view_if_needed()
        await view_shot(page, "list" + url.replace("/", "-").rstrip("-") + "-end")
        if url == "/certificates":
            # 缴费状态 was the column off-screen; the unpaid say so in the card.
            unpaid = table.locator("tbody tr").filter(has_text="未缴费").first.get_by_text("未缴费")
            await unpaid.scroll_into_view_if_needed()
            await expect(unpaid).to_be_in_viewport(ratio=1)

    # The 全选 box of a list with tick boxes is there to tap too.
    await page.goto("/bookings")
    check_all = page.get_by_role("checkbox", name="全选")
    await expect(check_all).to_be_visible()
    b = await check_all.bounding_box()
    assert b is not None and b["height"] >= TAP and b["width"] >= TAP
    await check_all.check()
    await expect(page.locator("#records tbody input[name=ids]:checked")).to_have_count(20)

    await page.context.clear_cookies()
    await log_in(page, "admin", "Admin12345x")
    for url, label, columns in ADMIN_LISTS:
        await page.goto(url)
        table = list_table(page, label)
        await expect(table.locator("tbody tr").first).to_be_visible()
        rows = await measure(page, table, columns)
        assert_in_view(rows, label)
        assert_tap_targets(rows, label)
        await no_sideways_scroll(page)
        await shot(page, "list" + url.replace("/", "-").rstrip("-"))


@DESKTOP
async def test_lists_on_a_desktop_stay_tables(page: Any) -> None:
    await at_size(page)
    await company()
    await log_in(page, USERNAME, PASSWORD)
    for url, label, columns in CUSTOMER_LISTS:
        await page.goto(url)
        table = list_table(page, label)
        await expect(table.locator("tbody tr").first).to_be_visible()
        assert await table.evaluate("t => getComputedStyle(t).display") == "table"
        for column in columns or []:
            await expect(table.get_by_role("columnheader", name=column, exact=True)).to_be_visible()
        rows = await measure(page, table, columns)
        # One line per row: every cell of a row at the same height.
        for row in rows:
            assert len({round(c["top"]) for c in row["cells"]}) == 1, row
