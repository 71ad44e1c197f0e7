"""预约送检 as a person clicks through it (manual ch. 5), on a desktop and a phone:
基础信息 → the booking form (添加器具, 双击修改, 删除, 导入器具, 从历史预约数据选择, reload)
→ 提交 → 预约记录 → 平台管理 › 预约审核 通过 → 短信记录 → the company sees it read-only.
"""

from __future__ import annotations

import io
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import openpyxl
from playwright.async_api import expect

from app.clock import now, today
from app.tables import Booking
from tests.browser import helpers as browser
from tests.browser.helpers import (
    field,
    fill_fields,
    instrument_rows,
    log_in,
    log_out,
    notice,
    open_admin_page,
    open_import_dialog,
    open_menu_if_phone,
    open_page,
    wait_for_sms,
)
from tests.factories import make_booking, make_enterprise, make_user
from tests.helpers import BASIC, fill_template, make_admin, xlsx_row

USERNAME = "company7"
PASSWORD = "Secret123x"
COMPANY = "测试计量单位7"
SENDER = "赵六"
HISTORY_NO = "YY20240102000001"

# 基础信息 label → value (the seven fields, all required).
BASIC_LABELS = {
    "委托单位名称": BASIC["client_name"],
    "证书单位名称": BASIC["cert_name"],
    "委托单位地址": BASIC["client_address"],
    "证书单位地址": BASIC["cert_address"],
    "委托单位联系人": BASIC["contact_name"],
    "委托单位联系人手机": BASIC["contact_mobile"],
    "委托单位电话": BASIC["contact_phone"],
}
# The booking fields they prefill.
PREFILLED = {
    "委托单位名称": BASIC["client_name"],
    "委托单位地址": BASIC["client_address"],
    "联系人": BASIC["contact_name"],
    "电话": BASIC["contact_phone"],
    "证书单位名称": BASIC["cert_name"],
    "证书单位地址": BASIC["cert_address"],
    "手机": BASIC["contact_mobile"],
}
MOBILE = BASIC["contact_mobile"]


def instrument(n: int, **over: str) -> dict[str, str]:
    """Instrument field label → value, as typed into 器具信息."""
    item = {
        "器具名称": f"温度计{n}",
        "设备编号": f"SB-{n}",
        "出厂编号": f"2023011{n:03d}",
        "型号规格": "WSS-411",
        "测量范围": "0-100℃",
        "准确度等级": "1.5级",
        "制造厂商": "明月仪表厂",
        "证书类型": "校准证书" if n == 3 else "检定证书",
        "器具数量": str(n),
    }
    item.update(over)
    return item


# --------------------------------------------------------------------------- set-up


async def company_with_history() -> None:
    """An approved company with its admin account and one earlier, submitted booking."""
    ent = await make_enterprise(7, contact_phone=MOBILE)
    user = await make_user(ent, username=USERNAME, password=PASSWORD)
    await make_booking(
        ent,
        items=[
            {
                "name": "历史压力表",
                "serial_no": "LS-001",
                "model": "Y-100",
                "manufacturer": "红旗仪表厂",
                "certificate_type": "校准证书",
                "quantity": 1,
            },
            {
                "name": "旧万用表",
                "serial_no": "LS-002",
                "model": "UT-39",
                "certificate_type": "检定证书",
                "quantity": 1,
            },
        ],
        created_by=user.id,
        booking_no=HISTORY_NO,
        cert_name=BASIC["cert_name"],
        expected_date="2024-01-05",
        sender="",
        submitted_at=now() - timedelta(days=30),
    )


# --------------------------------------------------------------------------- helpers


async def shot(page: Any, name: str) -> None:
    """conftest's shot(), then undo what the screenshot leaves behind: Playwright hides the
    caret with an inline style and leaves ``style=""`` on every input, which htmx's settle
    step would copy onto the swapped-in inputs -- a CSP violation the page did not cause."""
    await browser.shot(page, name)
    await page.evaluate(
        "document.querySelectorAll('[style=\"\"]').forEach(e => e.removeAttribute('style'))"
    )


async def add_instrument(page: Any, values: dict[str, str], rows_after: int) -> None:
    await fill_fields(page, values)
    await page.get_by_role("button", name="添加器具").click()
    await expect(notice(page, "器具已添加")).to_be_visible()
    await expect(instrument_rows(page)).to_have_count(rows_after)
    await expect(instrument_rows(page).filter(has_text=values["器具名称"])).to_have_count(1)
    await expect(field(page, "器具名称")).to_have_value("")  # the fields are blank again


# --------------------------------------------------------------------------- the flow


async def test_booking_end_to_end(page: Any, tmp_path: Path) -> None:
    tomorrow = (today() + timedelta(days=1)).isoformat()
    await company_with_history()
    await make_admin()

    # ---- 1. log in
    await log_in(page, USERNAME, PASSWORD)
    await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()
    await expect(page.get_by_role("banner")).to_contain_text(COMPANY)

    # ---- 2. 系统管理 › 基础信息
    await open_page(page, "系统管理", "基础信息")
    for label, value in BASIC_LABELS.items():
        await field(page, label).fill(value)
    await page.get_by_role("button", name="保存", exact=True).click()
    await expect(notice(page, "已保存")).to_be_visible()
    for label, value in BASIC_LABELS.items():
        await expect(field(page, label)).to_have_value(value)

    # ---- 3. 预约管理 › 预约送检: prefilled from 基础信息
    await open_page(page, "预约管理", "预约送检")
    for label, value in PREFILLED.items():
        await expect(field(page, label)).to_have_value(value)
    await expect(instrument_rows(page)).to_have_text(["暂无数据"])
    await field(page, "预计送检日期").fill(tomorrow)
    await field(page, "送检人").fill(SENDER)

    # Nothing below reloads the page until step 9.
    form_url = page.url
    navigations: list[str] = []
    page.on(
        "framenavigated",
        lambda frame: navigations.append(frame.url) if frame == page.main_frame else None,
    )

    # ---- 4. 【添加器具】, first without 器具名称
    first = instrument(1)
    await fill_fields(page, {**first, "器具名称": ""})
    await page.get_by_role("button", name="添加器具").click()
    name = field(page, "器具名称")
    await expect(name).to_have_attribute("aria-invalid", "true")
    await expect(name).to_have_accessible_description("请填写器具名称")
    await expect(page.get_by_text("请填写器具名称")).to_be_visible()
    for label, value in first.items():
        if label != "器具名称":
            await expect(field(page, label)).to_have_value(value)
    await expect(instrument_rows(page)).to_have_text(["暂无数据"])
    await shot(page, "booking-item-error")

    await add_instrument(page, first, 1)
    await add_instrument(page, instrument(2), 2)
    await add_instrument(page, instrument(3), 3)
    await expect(instrument_rows(page).nth(2)).to_contain_text("校准证书")
    await expect(page.get_by_text("共 3 行，器具数量合计 6")).to_be_visible()
    assert page.url == form_url and navigations == [], navigations

    # ---- 5. double-click the second row: its values load into the fields
    await instrument_rows(page).nth(1).get_by_role("cell", name="温度计2", exact=True).dblclick()
    await expect(field(page, "器具名称")).to_have_value("温度计2")
    await expect(field(page, "出厂编号")).to_have_value(instrument(2)["出厂编号"])
    await expect(field(page, "器具数量")).to_have_value("2")
    await expect(page.get_by_text("正在修改已选器具“温度计2”")).to_be_visible()
    await field(page, "器具名称").fill("压力表2")
    await page.get_by_role("button", name="添加器具").click()
    await expect(notice(page, "器具已添加")).to_be_visible()
    await expect(instrument_rows(page)).to_have_count(3)
    await expect(instrument_rows(page).nth(1)).to_contain_text("压力表2")
    await expect(instrument_rows(page).filter(has_text="温度计2")).to_have_count(0)

    # ---- 6. tick the first row → 【删除】 (confirm)
    dialogs: list[str] = []

    async def accept(dialog: Any) -> None:
        dialogs.append(dialog.message)
        await dialog.accept()

    page.once("dialog", accept)
    await page.get_by_role("checkbox", name="选择 温度计1").check()
    await page.get_by_role("button", name="删除", exact=True).click()
    await expect(notice(page, "已删除1个器具")).to_be_visible()
    assert dialogs == ["确定删除勾选的器具吗？"]
    await expect(instrument_rows(page)).to_have_count(2)
    await expect(instrument_rows(page).filter(has_text="温度计1")).to_have_count(0)

    # ---- 7. 【导入器具】: 模板下载, upload two rows
    dialog, download = await open_import_dialog(page)
    assert download.suggested_filename == "器具导入模板.xlsx"
    data = Path(await download.path()).read_bytes()
    template = openpyxl.load_workbook(io.BytesIO(data)).worksheets[0]
    assert str(template["A1"].value).rstrip("*") == "器具名称"

    upload = tmp_path / "器具.xlsx"
    upload.write_bytes(fill_template([xlsx_row(11), xlsx_row(12)]))
    await dialog.get_by_label("选择文件").set_input_files(upload)
    await dialog.get_by_role("button", name="点击上传").click()
    # 【点击上传】 alone imports (manual ch. 3): the dialog closes, the section says so.
    await expect(dialog).to_be_hidden()
    await expect(notice(page, "已导入2个器具")).to_be_visible()
    await shot(page, "booking-import")
    await expect(instrument_rows(page)).to_have_count(4)
    await expect(instrument_rows(page).filter(has_text="温度计11")).to_have_count(1)
    await expect(instrument_rows(page).filter(has_text="温度计12")).to_have_count(1)

    # ---- 8. 【从历史预约数据选择】
    await page.get_by_role("button", name="从历史预约数据选择").click()
    picker = page.get_by_role("dialog", name="从历史预约数据选择")
    await expect(picker).to_be_visible()
    await expect(picker.get_by_text("共 2 条")).to_be_visible()
    await expect(picker.get_by_role("checkbox", name=re.compile("旧万用表"))).to_be_visible()
    # Tap the box, then type: a person never types within the moment htmx takes to wire up
    # the freshly swapped-in picker (fill() right after it appears can beat it on a phone).
    search = picker.get_by_label("搜索")
    await search.click()
    await search.press_sequentially("历史", delay=80)
    await expect(picker.get_by_text("共 1 条")).to_be_visible()
    await expect(picker.get_by_role("checkbox", name=re.compile("旧万用表"))).to_have_count(0)
    await picker.get_by_role("checkbox", name="选择 历史压力表 LS-001").check()
    await shot(page, "booking-history")
    await picker.get_by_role("button", name="确定").click()
    await expect(picker).to_be_hidden()
    await expect(notice(page, "已添加1个器具")).to_be_visible()
    await expect(instrument_rows(page).filter(has_text="历史压力表")).to_have_count(1)
    await expect(instrument_rows(page)).to_have_count(5)
    await expect(page.get_by_text("共 5 行，器具数量合计 10")).to_be_visible()
    assert page.url == form_url and navigations == [], navigations

    # ---- 9. reload: the draft keeps its rows and what was typed
    await page.reload()
    await expect(instrument_rows(page)).to_have_count(5)
    await expect(field(page, "送检人")).to_have_value(SENDER)
    await expect(field(page, "预计送检日期")).to_have_value(tomorrow)
    await shot(page, "booking-form")

    # ---- 10. 【提交】 → 预约记录
    await page.get_by_role("button", name="提交", exact=True).click()
    await expect(page.get_by_role("heading", name="预约记录", level=1)).to_be_visible()
    submitted = notice(page, "预约已提交")
    await expect(submitted).to_be_visible()
    booking = (
        await Booking.select()
        .where(Booking.status == "pending")
        .order_by(Booking.id, ascending=False)
        .first()
    )
    booking_no = booking["booking_no"]
    assert booking_no != HISTORY_NO and booking["sender"] == SENDER
    assert booking["expected_date"] == tomorrow and booking["item_count"] == 2 + 3 + 2 * 2 + 1
    await expect(submitted).to_contain_text(booking_no)
    await expect(submitted).to_contain_text("待审核")
    record = page.get_by_role("row").filter(has_text=booking_no)
    await expect(record).to_contain_text("待审核")
    await expect(record).to_contain_text(tomorrow)
    await shot(page, "booking-records")

    await open_menu_if_phone(page)
    await page.get_by_role("navigation", name="主菜单").get_by_role("link", name="首页").click()
    await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()
    await expect(page.get_by_role("row").filter(has_text=booking_no)).to_contain_text("待审核")

    # ---- 11. the platform admin approves it
    await log_out(page)
    await log_in(page, "admin", "Admin12345x")
    await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()
    await open_admin_page(page, "预约审核")
    row = page.get_by_role("row").filter(has_text=booking_no)
    await expect(row).to_contain_text(MOBILE)
    await expect(row).to_contain_text("待审核")
    await row.get_by_role("link", name=booking_no).click()
    await expect(page.get_by_role("heading", name=f"预约单 {booking_no}")).to_be_visible()
    await expect(page.get_by_text(SENDER, exact=True)).to_be_visible()
    detail_rows = page.get_by_role("table").get_by_role("row")
    await expect(detail_rows).to_have_count(1 + 5)
    await shot(page, "admin-booking-detail")
    await page.get_by_role("button", name="通过", exact=True).click()
    await expect(notice(page, "审核完成")).to_be_visible()
    await expect(notice(page, "审核完成")).to_contain_text(MOBILE)
    await expect(page.get_by_role("button", name="通过", exact=True)).to_have_count(0)

    await wait_for_sms(MOBILE, rf"预约单{booking_no}已审核通过")
    await open_admin_page(page, "短信记录")
    sms = page.get_by_role("row").filter(has_text=booking_no)
    await expect(sms).to_have_count(1)
    await expect(sms).to_contain_text("已审核通过")
    await expect(sms).to_contain_text(MOBILE)
    await expect(sms).to_contain_text("已发送")
    await log_out(page)

    # ---- 12. the company opens it again: read-only
    await log_in(page, USERNAME, PASSWORD)
    await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()
    await open_page(page, "预约管理", "预约记录")
    record = page.get_by_role("row").filter(has_text=booking_no)
    await expect(record).to_contain_text("已通过")
    await record.get_by_role("cell", name=tomorrow).dblclick()
    await expect(page.get_by_role("heading", name="预约送检", level=1)).to_be_visible()
    await expect(page.get_by_text(f"预约单号：{booking_no}")).to_be_visible()
    await expect(notice(page, "只能查看")).to_contain_text("该预约已通过，只能查看。")
    await expect(instrument_rows(page)).to_have_count(5)
    await expect(field(page, "送检人")).to_have_value(SENDER)
    await expect(field(page, "送检人")).to_be_disabled()
    for label in ("提交", "添加器具", "删除", "导入器具", "从历史预约数据选择"):
        await expect(page.get_by_role("button", name=label, exact=True)).to_have_count(0)
    await shot(page, "booking-readonly")
