"""What a clerk meets every day (issue #13 items 3, 6, 10, 11), in the browser at 1366×900
and 390×844: no instrument twice in a 器具列表 and the pickers say which are in it; Enter in
预约信息 adds nothing and 【添加器具】 gives the cursor back to 器具名称; the 器具托管 import
shows what 【确定】 will do; the 预约送检 import closes its dialog; 待审核 is information;
long 单位名称/地址 are not cut; overdue rows are tinted; 基础信息 starts from the
registration."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import expect

from app.clock import today
from app.tables import Booking, BookingItem, Instrument
from tests.browser.helpers import (
    field,
    fill_fields,
    instrument_rows,
    log_in,
    notice,
    shot,
)
from tests.factories import make_booking, make_enterprise, make_instrument, make_user
from tests.helpers import fill_template, make_admin, reg, register_xlsx, xlsx_row

PASSWORD = "Secret123x"
LONG_NAME = "江苏省南京市江宁区精密仪器仪表制造有限公司计量检测中心"
LONG_ADDRESS = "江苏省南京市江宁区秣陵街道将军大道科学园创业路128号9号楼"
# The widths: a 1366×900 desktop and a 390×844 phone.
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1366, "height": 900}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 3,
        "is_mobile": True,
        "has_touch": True,
    },
}


@pytest.fixture(params=list(VIEWPORTS))
async def page(request: pytest.FixtureRequest, browser: Any, server: str) -> AsyncIterator[Any]:
    """conftest's page at the issue's widths; fails on any CSP violation or JS error."""
    context = await browser.new_context(base_url=server, locale="zh-CN", **VIEWPORTS[request.param])
    pg = await context.new_page()
    pg.viewport_name = request.param
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    yield pg
    await context.close()
    assert not problems, problems


async def company(n: int, **over: Any) -> Any:
    ent = await make_enterprise(n, **over)
    await make_user(ent, PASSWORD, username=f"ux{n}")
    return ent


def item_fields(name: str, serial: str, model: str) -> dict[str, str]:
    return {"器具名称": name, "出厂编号": serial, "型号规格": model, "证书类型": "检定证书"}


async def tidy_shot(page: Any, name: str) -> None:
    """A screenshot, then drop the ``style=""`` Playwright leaves on inputs (htmx's settle
    would copy it onto swapped-in inputs: a CSP report the app did not cause)."""
    await shot(page, name)
    await page.evaluate(
        "document.querySelectorAll('[style=\"\"]').forEach(e => e.removeAttribute('style'))"
    )


# --------------------------------------------------------------------------- item 3


async def test_an_instrument_goes_into_the_list_once(page: Any, tmp_path: Path) -> None:
    ent = await company(41)
    await make_instrument(ent, name="压力表A", serial_no="PA-1", model="Y-100")
    await make_instrument(ent, name="压力表B", serial_no="PB-1", model="Y-100")
    await make_booking(
        ent,
        items=[
            {"name": "历史温度计", "serial_no": "H-1", "model": "W-1"},
            {"name": "历史万用表", "serial_no": "H-2", "model": "U-1"},
        ],
    )
    await log_in(page, "ux41", PASSWORD)
    await page.goto("/bookings/new")

    # 从托管器具选择: 压力表A in; the picker then marks it and offers no box for it.
    await page.get_by_role("button", name="从托管器具选择").click()
    picker = page.get_by_role("dialog", name="从托管器具选择")
    await picker.get_by_role("checkbox", name="选择 压力表A PA-1").check()
    await picker.get_by_role("button", name="确定", exact=True).click()
    await expect(picker).to_be_hidden()
    await expect(notice(page, "已添加1个器具")).to_be_visible()
    await page.get_by_role("button", name="从托管器具选择").click()
    row_a = picker.get_by_role("row").filter(has_text="压力表A")
    await expect(row_a.get_by_text("已在列表中")).to_be_visible()
    await expect(row_a.get_by_role("checkbox")).to_be_disabled()
    await expect(picker.get_by_role("checkbox", name="选择 压力表A PA-1")).to_have_count(0)
    await expect(picker.get_by_role("checkbox", name="选择 压力表B PB-1")).to_be_enabled()
    await tidy_shot(page, "ux-custody-picker-marks")
    # 全选 ticks what can still be added, and nothing twice.
    await picker.get_by_role("checkbox", name="全选").check()
    await expect(picker.get_by_text("已选 1 项")).to_be_visible()
    await picker.get_by_role("button", name="确定", exact=True).click()
    await expect(picker).to_be_hidden()
    await expect(instrument_rows(page)).to_have_count(2)

    # 压力表A typed again (its 出厂编号 and 型号规格): refused beside 出厂编号, typing kept.
    await fill_fields(page, item_fields("另一个压力表", "PA-1", "Y-100"))
    await page.get_by_role("button", name="添加器具").click()
    serial = field(page, "出厂编号")
    await expect(serial).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_text("该器具已在列表中")).to_be_visible()
    await expect(field(page, "器具名称")).to_have_value("另一个压力表")
    await expect(instrument_rows(page)).to_have_count(2)

    # 历史温度计 typed in; the history picker marks it.
    await fill_fields(page, item_fields("历史温度计", "H-1", "W-1"))
    await page.get_by_role("button", name="添加器具").click()
    await expect(notice(page, "器具已添加")).to_be_visible()
    await page.get_by_role("button", name="从历史预约数据选择").click()
    history = page.get_by_role("dialog", name="从历史预约数据选择")
    marked = history.get_by_role("row").filter(has_text="历史温度计")
    await expect(marked.get_by_text("已在列表中")).to_be_visible()
    await expect(marked.get_by_role("checkbox")).to_be_disabled()
    await history.get_by_role("checkbox", name="选择 历史万用表 H-2").check()
    await history.get_by_role("button", name="确定", exact=True).click()
    await expect(history).to_be_hidden()
    await expect(instrument_rows(page)).to_have_count(4)

    # The import: a row already in the list and a row twice in the file are skipped, said
    # so; and the dialog closes by itself on success (manual ch. 3: 【点击上传】 alone).
    await page.get_by_role("button", name="导入器具").click()
    dialog = page.get_by_role("dialog", name="导入器具")
    upload = tmp_path / "器具.xlsx"
    upload.write_bytes(
        fill_template(
            [
                xlsx_row(1, serial_no="PB-1", model="Y-100", name="压力表B"),
                xlsx_row(2),
                xlsx_row(2),
            ]
        )
    )
    await dialog.get_by_label("选择文件").set_input_files(upload)
    await dialog.get_by_role("button", name="点击上传").click()
    await expect(dialog).to_be_hidden()
    await expect(notice(page, "已导入1个器具")).to_be_visible()
    skipped = notice(page, "已在列表中，跳过 2 个")
    await expect(skipped).to_be_visible()
    await expect(skipped).to_contain_text("压力表B")
    await expect(page.locator("#instrument-section .notice").first).to_be_focused()
    await expect(instrument_rows(page)).to_have_count(5)
    await tidy_shot(page, "ux-import-skipped")
    draft = await Booking.select(Booking.id).where(Booking.status == "draft").first()
    listed = await BookingItem.select(BookingItem.serial_no).where(
        BookingItem.booking == draft["id"]
    )
    serials = [r["serial_no"] for r in listed]
    assert len(serials) == len(set(serials)) == 5


# --------------------------------------------------------------------------- item 6


async def test_enter_adds_nothing_and_focus_returns_to_the_name(page: Any) -> None:
    await company(42)
    await log_in(page, "ux42", PASSWORD)
    await page.goto("/bookings/new")
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url) if r.method == "POST" else None)
    sender = field(page, "送检人")
    await sender.fill("赵六")
    await sender.press("Enter")
    await field(page, "联系人").press("Enter")
    await expect(instrument_rows(page)).to_have_text(["暂无数据"])
    await expect(page.get_by_text("请填写器具名称")).to_have_count(0)
    assert requests == []

    # 【添加器具】 by the keyboard: the cursor is back in 器具名称 for the next one.
    await fill_fields(page, item_fields("温度计1", "T-1", "W-1"))
    await page.get_by_role("button", name="添加器具").focus()
    await page.keyboard.press("Enter")
    await expect(notice(page, "器具已添加")).to_be_visible()
    await expect(field(page, "器具名称")).to_be_focused()
    await page.keyboard.type("温度计2")
    await expect(field(page, "器具名称")).to_have_value("温度计2")
    # Enter in an instrument field does not add it either (only the button does).
    await field(page, "出厂编号").fill("T-2")
    await field(page, "型号规格").fill("W-1")
    await field(page, "型号规格").press("Enter")
    await expect(instrument_rows(page)).to_have_count(1)
    await page.get_by_role("button", name="添加器具").click()
    await expect(instrument_rows(page)).to_have_count(2)
    await expect(field(page, "器具名称")).to_be_focused()
    await expect(field(page, "送检人")).to_have_value("赵六")


# --------------------------------------------------------------------------- item 8


async def test_the_menu_shows_where_you_are(page: Any) -> None:
    """Item 8: the menu marks the page the user is on (on a phone, inside the folded menu)."""
    await company(46)
    await log_in(page, "ux46", PASSWORD)
    nav = page.locator("nav#sidebar")  # folded on a phone: hidden from role queries
    for href, label in (("/bookings", "预约记录"), ("/instruments", "器具托管"), ("/", "首页")):
        await page.goto(href)
        marked = nav.locator('a[aria-current="page"]')
        await expect(marked).to_have_count(1)
        await expect(marked).to_have_text(label)
        await expect(marked).to_have_attribute("href", href)


# --------------------------------------------------------------------------- item 9

# Records, at the moment each request leaves, which buttons are disabled and whether the
# form's "正在导入…" shows; a window listener (after the app's, on document) keeps a plain
# form's navigation from leaving, so the test reads the page as the clerk sees it while
# the form is sent, with no network hold.
WATCH_BUSY = """() => {
  window.busy = [];
  const disabled = () => [...document.querySelectorAll('button')]
    .filter((b) => b.disabled && b.getClientRects().length)
    .map((b) => [b.textContent.trim(), b.getAttribute('aria-busy')]);
  document.body.addEventListener('htmx:beforeSend', (e) => {
    const form = e.detail.elt.closest('form');
    const ind = form && form.querySelector('.htmx-indicator');
    window.busy.push({ disabled: disabled(),
                       indicator: ind ? ind.classList.contains('htmx-request') : null });
  });
  window.addEventListener('submit', (e) => {
    if (e.target.hasAttribute('hx-post')) return;
    e.preventDefault();
    setTimeout(() => window.busy.push({ disabled: disabled(), plain: true }), 20);
  });
}"""


async def busy_states(page: Any, count: int) -> list[dict[str, Any]]:
    """The states recorded since the last call, once ``count`` are in (wait_for_function
    would evaluate a string, which the CSP forbids)."""
    for _ in range(200):
        if await page.evaluate("window.busy.length") >= count:
            return await page.evaluate("window.busy.splice(0)")
        await asyncio.sleep(0.025)
    raise AssertionError(f"fewer than {count} requests were sent")


async def test_buttons_are_busy_while_their_request_is_on_its_way(
    page: Any, tmp_path: Path
) -> None:
    """添加器具, 点击上传, 确定 and 提交 are disabled while sent; imports say 正在导入…."""
    await company(45)
    await log_in(page, "ux45", PASSWORD)
    await page.goto("/bookings/new")
    await page.evaluate(WATCH_BUSY)

    await fill_fields(page, item_fields("温度计1", "T-1", "W-1"))
    await page.get_by_role("button", name="添加器具").click()
    [state] = await busy_states(page, 1)
    assert ["添加器具", None] in state["disabled"], state
    await expect(instrument_rows(page)).to_have_count(1)
    await expect(page.get_by_role("button", name="添加器具")).to_be_enabled()

    # 提交 is a plain form post: disabled (and aria-busy) once the browser sends it.
    submit = page.get_by_role("button", name="提交", exact=True)
    await submit.click()
    [state] = await busy_states(page, 1)
    assert state == {"disabled": [["提交", "true"]], "plain": True}, state

    # A real 提交 comes back as a new page whose 提交 is usable.
    await page.reload()
    await expect(submit).to_be_enabled()

    # 器具托管: 点击上传 and 确定 are disabled and 正在导入… shows while each is sent.
    await page.goto("/instruments")
    await page.evaluate(WATCH_BUSY)
    await page.get_by_role("button", name="导入器具").click()
    dialog = page.get_by_role("dialog", name="导入器具")
    upload = tmp_path / "托管.xlsx"
    upload.write_bytes(register_xlsx([{**reg(1), "quantity": 1, "cycle_months": 12}]))
    await dialog.get_by_label("选择文件").set_input_files(upload)
    await dialog.get_by_role("button", name="点击上传").click()
    [state] = await busy_states(page, 1)
    assert ["点击上传", None] in state["disabled"] and state["indicator"] is True, state
    await dialog.get_by_role("button", name="确定", exact=True).click()
    [state] = await busy_states(page, 1)
    assert ["确定", None] in state["disabled"] and state["indicator"] is True, state
    await expect(notice(page, "导入完成：新增1个")).to_be_visible()


# --------------------------------------------------------------------------- item 10


async def test_register_import_shows_what_confirm_will_do(page: Any, tmp_path: Path) -> None:
    ent = await company(43)
    await make_instrument(ent, name="压力表1", serial_no="P0001", model="Y-100", remark="旧")
    await log_in(page, "ux43", PASSWORD)
    await page.goto("/instruments")
    await page.get_by_role("button", name="导入器具").click()
    dialog = page.get_by_role("dialog", name="导入器具")
    upload = tmp_path / "托管.xlsx"
    upload.write_bytes(
        register_xlsx(
            [
                {**reg(1), "remark": "新", "quantity": 1, "cycle_months": 12},
                {**reg(2), "quantity": 1, "cycle_months": 12},
                {**reg(3), "quantity": 1, "cycle_months": 12},
            ]
        )
    )
    await dialog.get_by_label("选择文件").set_input_files(upload)
    await dialog.get_by_role("button", name="点击上传").click()
    plan = dialog.get_by_role("status")
    await expect(plan).to_contain_text("将新增2个，更新1个")
    table = dialog.get_by_role("region", name="将导入的器具")
    await expect(table.get_by_role("row").filter(has_text="压力表1")).to_contain_text("更新")
    await expect(table.get_by_role("row").filter(has_text="压力表2")).to_contain_text("新增")
    await tidy_shot(page, "ux-register-import-plan")
    assert await Instrument.count() == 1  # nothing imported before 【确定】

    await dialog.get_by_role("button", name="确定", exact=True).click()
    await expect(dialog).to_be_hidden()
    done = notice(page, "导入完成：新增2个，更新1个")
    await expect(done).to_be_visible()
    await expect(done).to_be_focused()
    rows = page.locator("#instrument-list tbody").get_by_role("row")
    await expect(rows).to_have_count(3)
    assert await Instrument.count() == 3
    await tidy_shot(page, "ux-register-imported")

    # A file with errors: each by row, and no 【确定】.
    await page.get_by_role("button", name="导入器具").click()
    await expect(dialog.get_by_role("status")).to_have_count(0)  # the last use is forgotten
    upload.write_bytes(register_xlsx([{**reg(4, name=""), "quantity": 1}]))
    await dialog.get_by_label("选择文件").set_input_files(upload)
    await dialog.get_by_role("button", name="点击上传").click()
    await expect(dialog.get_by_role("alert")).to_contain_text("第2行「器具名称」")
    await expect(dialog.get_by_role("button", name="确定", exact=True)).to_have_count(0)


async def test_awaiting_review_is_said_as_information(page: Any) -> None:
    await company(44, status="pending")
    await log_in(page, "ux44", PASSWORD)
    info = page.get_by_role("status").filter(has_text="等待管理员审核")
    await expect(info).to_be_visible()
    await expect(info).to_have_class("notice notice-info")
    await expect(page.get_by_role("alert")).to_have_count(0)
    await tidy_shot(page, "ux-login-pending")


# --------------------------------------------------------------------------- item 11


async def test_long_names_are_not_cut_and_basic_info_starts_from_registration(
    page: Any,
) -> None:
    await company(
        45, name=LONG_NAME, address=LONG_ADDRESS, contact_name="钱七", contact_phone="13912340045"
    )
    await log_in(page, "ux45", PASSWORD)
    await page.goto("/settings/basic")
    for label, value in (
        ("委托单位名称", LONG_NAME),
        ("证书单位名称", LONG_NAME),
        ("委托单位地址", LONG_ADDRESS),
        ("证书单位地址", LONG_ADDRESS),
        ("委托单位联系人", "钱七"),
        ("委托单位联系人手机", "13912340045"),
    ):
        await expect(field(page, label)).to_have_value(value)
    await expect(notice(page, "已按注册信息预填")).to_be_visible()
    await tidy_shot(page, "ux-basic-prefilled")

    await page.goto("/bookings/new")
    name, contact = field(page, "委托单位名称"), field(page, "联系人")
    await expect(name).to_have_value(LONG_NAME)
    await tidy_shot(page, "ux-long-names")
    name_box, contact_box = await name.bounding_box(), await contact.bounding_box()
    assert name_box and contact_box
    if page.viewport_name == "desktop":
        # Two grid columns: the whole name shows.
        assert name_box["width"] > 1.8 * contact_box["width"], (name_box, contact_box)
        assert await name.evaluate("e => e.scrollWidth <= e.clientWidth")
        assert await field(page, "委托单位地址").evaluate("e => e.scrollWidth <= e.clientWidth")
    else:
        assert abs(name_box["width"] - contact_box["width"]) < 1  # one column: full width


async def test_long_names_span_the_admin_detail_view(page: Any) -> None:
    ent = await company(46)
    booking = await make_booking(ent, client_name=LONG_NAME, client_address=LONG_ADDRESS)
    await make_admin()
    await log_in(page, "admin", "Admin12345x")
    await page.goto(f"/admin/bookings/{booking.id}")
    address = page.locator("dd").filter(has_text=LONG_ADDRESS)
    contact = page.locator("dd").filter(has_text="王五")
    await expect(address).to_be_visible()
    a, c = await address.bounding_box(), await contact.bounding_box()
    assert a and c
    if page.viewport_name == "desktop":
        assert a["width"] > 2 * c["width"], (a, c)
        assert a["height"] < 2 * c["height"]  # one line, not squeezed into many
    else:
        assert a["x"] + a["width"] <= 390 and a["height"] > c["height"]  # wrapped, not cut
    await tidy_shot(page, "ux-admin-detail-long")


async def test_overdue_and_due_soon_rows_are_tinted(page: Any) -> None:
    ent = await company(47)
    day = today()
    for name, serial, valid in (
        ("超期表", "O-1", day - timedelta(days=3)),
        ("将到期表", "S-1", day + timedelta(days=5)),
        ("正常表甲", "K-1", day + timedelta(days=300)),
        ("正常表乙", "K-2", day + timedelta(days=301)),
    ):
        await make_instrument(ent, name=name, serial_no=serial, valid_until=valid)
    await log_in(page, "ux47", PASSWORD)
    await page.goto("/instruments")
    rows = page.locator("#instrument-list tbody").get_by_role("row")
    await expect(rows).to_have_count(4)

    async def tint(name: str) -> str:
        cell = rows.filter(has_text=name).get_by_role("cell").nth(1)
        # A desktop row tints its cells; a phone card (cells transparent) tints itself.
        return str(
            await cell.evaluate(
                """e => {
                  const own = getComputedStyle(e).backgroundColor;
                  return own === 'rgba(0, 0, 0, 0)'
                    ? getComputedStyle(e.closest('tr')).backgroundColor : own;
                }"""
            )
        )

    overdue, soon, ok, ok2 = (
        await tint("超期表"),
        await tint("将到期表"),
        await tint("正常表甲"),
        await tint("正常表乙"),
    )
    assert overdue not in (ok, ok2, soon), (overdue, soon, ok, ok2)
    assert soon not in (ok, ok2), (soon, ok, ok2)
    # Still said in words, not colour alone.
    await expect(rows.filter(has_text="超期表").get_by_text("已超期")).to_be_visible()
    await tidy_shot(page, "ux-register-tinted")
