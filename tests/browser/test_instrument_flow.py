"""器具托管 as a person clicks through it (manual ch. 5), on a desktop and a phone:
新增 (first with an error) → 编辑 → 导入器具 (模板下载, an upload that adds and updates)
→ 导出器具 → filter 已超期 → 一键生成预约送检 → 从托管器具选择 → 提交 → 预约记录.
"""

from __future__ import annotations

import io
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import openpyxl
from playwright.async_api import expect

from app.clock import today
from app.services.instrument_xlsx import REGISTER_COLUMNS
from app.services.instruments import computed_valid_until
from app.tables import Booking, BookingItem, Instrument
from tests.browser import helpers as browser
from tests.browser.helpers import (
    field,
    fill_fields,
    instrument_rows,
    log_in,
    notice,
    open_import_dialog,
    open_page,
)
from tests.factories import make_enterprise, make_user
from tests.helpers import reg, register_xlsx

USERNAME = "company8"
PASSWORD = "Secret123x"
COMPANY = "测试计量单位8"
MOBILE = "13912345678"

# What the booking form needs when no 基础信息 was saved: label → value.
BOOKING_LABELS = {
    "委托单位名称": "南京红旗机械有限公司",
    "委托单位地址": "南京市江宁区东山路8号",
    "联系人": "李四",
    "电话": "025-52100000",
    "证书单位名称": "南京红旗机械有限公司",
    "证书单位地址": "南京市江宁区东山路8号",
    "手机": MOBILE,
}


# --------------------------------------------------------------------------- set-up


async def approved_company() -> None:
    """An approved company and its enterprise_admin, straight into the database."""
    ent = await make_enterprise(8, contact_phone=MOBILE)
    await make_user(ent, username=USERNAME, password=PASSWORD)


# --------------------------------------------------------------------------- helpers


async def shot(page: Any, name: str) -> None:
    await browser.shot(page, f"instruments-{name}")


def register_rows(page: Any) -> Any:
    """The rows of the 器具托管 list (not its header)."""
    return page.locator("#instrument-list tbody").get_by_role("row")


async def no_sideways_scroll(page: Any) -> bool:
    return bool(await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


# --------------------------------------------------------------------------- the flow


async def test_instrument_register_end_to_end(page: Any, tmp_path: Path) -> None:
    day = today()
    tomorrow = (day + timedelta(days=1)).isoformat()
    last_verified = day - timedelta(days=400)
    far = day + timedelta(days=200)
    soon = day + timedelta(days=10)
    overdue = {
        "器具名称": "压力表A",
        "设备编号": "SB-A",
        "出厂编号": "P0001",
        "型号规格": "Y-100",
        "测量范围": "0-1.6MPa",
        "准确度等级": "1.6级",
        "制造厂商": "红旗仪表",
        "证书类型": "检定证书",
        "器具数量": "1",
        "检定周期(月)": "12",
        "上次检定日期": last_verified.isoformat(),
    }
    second = {
        "器具名称": "温度计B",
        "出厂编号": "T0002",
        "型号规格": "WSS-411",
        "证书类型": "校准证书",
        "器具数量": "2",
        "有效期至": far.isoformat(),
    }
    new_model = "WSS-411F"

    await approved_company()

    # ---- 1. log in
    await log_in(page, USERNAME, PASSWORD)
    await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()
    await expect(page.get_by_role("banner")).to_contain_text(COMPANY)

    # ---- 2. 器具托管 › 器具托管, 【新增】 with 器具名称 empty, then two instruments
    await open_page(page, "器具托管", "器具托管")
    await expect(register_rows(page)).to_have_text(["暂无数据"])
    await page.get_by_role("link", name="新增", exact=True).click()
    await expect(page.get_by_role("heading", name="新增器具", level=1)).to_be_visible()
    await fill_fields(page, {**overdue, "器具名称": ""})
    await page.get_by_role("button", name="确定", exact=True).click()
    name = field(page, "器具名称")
    await expect(name).to_have_attribute("aria-invalid", "true")
    await expect(name).to_have_accessible_description("请填写器具名称")
    await expect(page.get_by_text("请填写器具名称")).to_be_visible()
    await expect(page.get_by_role("alert")).to_contain_text("请修改标红的项目")
    for label, value in overdue.items():
        if label != "器具名称":
            await expect(field(page, label)).to_have_value(value)
    await shot(page, "new-error")
    assert await Instrument.count() == 0

    await name.fill(overdue["器具名称"])
    await page.get_by_role("button", name="确定", exact=True).click()
    await expect(page.get_by_role("heading", name="器具托管", level=1)).to_be_visible()
    await expect(notice(page, "已新增")).to_be_visible()
    await expect(register_rows(page)).to_have_count(1)

    await page.get_by_role("link", name="新增", exact=True).click()
    await expect(page.get_by_role("heading", name="新增器具", level=1)).to_be_visible()
    await fill_fields(page, second)
    await page.get_by_role("button", name="确定", exact=True).click()
    await expect(notice(page, "已新增")).to_be_visible()
    await expect(register_rows(page)).to_have_count(2)
    # Sorted by 有效期至: the overdue one first, and it says so in words.
    first_row, second_row = register_rows(page).nth(0), register_rows(page).nth(1)
    await expect(first_row).to_contain_text("压力表A")
    await expect(first_row.get_by_text("已超期", exact=True)).to_be_visible()
    computed = computed_valid_until(last_verified, 12)
    assert computed is not None and computed < day
    await expect(first_row).to_contain_text(computed.isoformat())  # 有效期至 computed
    await expect(second_row).to_contain_text("温度计B")
    await expect(second_row.get_by_text("正常", exact=True)).to_be_visible()
    await expect(second_row).to_contain_text(far.isoformat())

    # ---- 3. tick the second row → toolbar 【编辑】 → change 型号规格 → 确定
    await page.get_by_role("checkbox", name="选择 温度计B T0002").check()
    await page.get_by_role("button", name="编辑", exact=True).click()
    await expect(page.get_by_role("heading", name="编辑器具", level=1)).to_be_visible()
    await expect(field(page, "器具名称")).to_have_value("温度计B")
    await expect(field(page, "有效期至")).to_have_value(far.isoformat())
    await field(page, "型号规格").fill(new_model)
    await page.get_by_role("button", name="确定", exact=True).click()
    await expect(page.get_by_role("heading", name="器具托管", level=1)).to_be_visible()
    await expect(notice(page, "已保存")).to_be_visible()
    await expect(register_rows(page)).to_have_count(2)
    await expect(register_rows(page).nth(1)).to_contain_text(new_model)

    # ---- 4. 【导入器具】: 模板下载, then three rows (one the edited 温度计B: an update)
    dialog, download = await open_import_dialog(page)
    assert download.suggested_filename == "器具托管导入模板.xlsx"
    template = openpyxl.load_workbook(io.BytesIO(Path(await download.path()).read_bytes()))
    headers = [str(c.value).rstrip("*") for c in template.worksheets[0][1]]
    assert headers == [c.label for c in REGISTER_COLUMNS]

    rows = [
        {
            **reg(2, name="温度计B", serial_no="T0002", model=new_model, remark="导入更新"),
            "certificate_type": "校准证书",
            "quantity": 3,
            "cycle_months": 12,
            "last_verified_on": None,
            "valid_until": far,
        },
        {**reg(3, name="万用表C"), "quantity": 1, "cycle_months": 6, "valid_until": soon},
        {
            **reg(4, name="游标卡尺D"),
            "quantity": 1,
            "cycle_months": 12,
            "last_verified_on": day - timedelta(days=30),
            "valid_until": None,
        },
    ]
    upload = tmp_path / "器具托管.xlsx"
    upload.write_bytes(register_xlsx(rows))
    await dialog.get_by_label("选择文件").set_input_files(upload)
    await dialog.get_by_role("button", name="点击上传").click()
    # 【点击上传】 shows what 【确定】 will do (manual ch. 5); 【确定】 imports.
    await expect(dialog.get_by_role("status")).to_contain_text("将新增2个，更新1个")
    await shot(page, "import-result")
    assert await Instrument.count() == 2
    await dialog.get_by_role("button", name="确定", exact=True).click()
    await expect(dialog).to_be_hidden()
    await expect(notice(page, "导入完成：新增2个，更新1个")).to_be_visible()
    await expect(register_rows(page)).to_have_count(4)
    await page.reload()
    await expect(register_rows(page)).to_have_count(4)
    await expect(register_rows(page).filter(has_text="万用表C")).to_contain_text("即将到期")
    updated = register_rows(page).filter(has_text="温度计B")
    await expect(updated).to_have_count(1)
    await expect(updated).to_contain_text("导入更新")
    assert await Instrument.count() == 4
    await shot(page, "list")

    # ---- 5. 【导出器具】: the register's columns, 4 rows, dates as dates
    async with page.expect_download() as download_info:
        await page.get_by_role("link", name="导出器具").click()
    download = await download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    sheet = openpyxl.load_workbook(io.BytesIO(Path(await download.path()).read_bytes()))
    exported = list(sheet.worksheets[0].iter_rows(values_only=True))
    assert list(exported[0]) == [c.label for c in REGISTER_COLUMNS]
    assert len(exported) == 1 + 4
    by_name = {r[0]: r for r in exported[1:]}
    assert set(by_name) == {"压力表A", "温度计B", "万用表C", "游标卡尺D"}
    valid_col = [c.key for c in REGISTER_COLUMNS].index("valid_until")
    last_col = [c.key for c in REGISTER_COLUMNS].index("last_verified_on")
    for row in exported[1:]:
        assert isinstance(row[valid_col], (date, datetime)), row
    assert isinstance(by_name["压力表A"][last_col], (date, datetime))
    assert by_name["温度计B"][3] == new_model

    # ---- 6. 有效期 = 已超期 → only 压力表A → 一键生成预约送检
    await page.get_by_label("有效期").select_option(label="已超期")
    await expect(register_rows(page)).to_have_count(1)
    await expect(register_rows(page).first).to_contain_text("压力表A")
    await expect(register_rows(page).first).to_contain_text("已超期")
    await expect(page).to_have_url(re.compile(r"state=overdue"))
    await page.get_by_role("checkbox", name="选择 压力表A P0001").check()
    await page.get_by_role("button", name="一键生成预约送检").click()
    await expect(page.get_by_role("heading", name="预约送检", level=1)).to_be_visible()
    await expect(page).to_have_url(
        re.compile(r"/bookings/new\?from_register=1#instrument-section$")
    )
    await expect(page.get_by_text("已从器具托管加入1个器具")).to_be_visible()
    await expect(instrument_rows(page)).to_have_count(1)
    await expect(instrument_rows(page).first).to_contain_text("压力表A")
    await expect(instrument_rows(page).first).to_contain_text("P0001")
    await shot(page, "to-booking")

    await field(page, "预计送检日期").fill(tomorrow)
    for label, value in BOOKING_LABELS.items():
        await field(page, label).fill(value)

    await page.get_by_role("button", name="从托管器具选择").click()
    picker = page.get_by_role("dialog", name="从托管器具选择")
    await expect(picker).to_be_visible()
    await expect(picker.get_by_text("共 4 条")).to_be_visible()
    await picker.get_by_role("checkbox", name="选择 万用表C P0003").check()
    await picker.get_by_role("button", name="确定", exact=True).click()
    await expect(picker).to_be_hidden()
    await expect(notice(page, "已添加1个器具")).to_be_visible()
    await expect(instrument_rows(page)).to_have_count(2)
    await expect(instrument_rows(page).filter(has_text="万用表C")).to_have_count(1)
    # What was typed above the swapped 器具信息 is still there.
    await expect(field(page, "预计送检日期")).to_have_value(tomorrow)
    for label, value in BOOKING_LABELS.items():
        await expect(field(page, label)).to_have_value(value)

    await page.get_by_role("button", name="提交", exact=True).click()
    await expect(page.get_by_role("heading", name="预约记录", level=1)).to_be_visible()
    submitted = notice(page, "预约已提交")
    await expect(submitted).to_be_visible()
    await expect(submitted).to_contain_text("待审核")
    booking = await Booking.select().where(Booking.status == "pending").first()
    assert booking is not None and booking["mobile"] == MOBILE
    assert booking["expected_date"] == tomorrow
    await expect(submitted).to_contain_text(booking["booking_no"])
    record = page.get_by_role("row").filter(has_text=booking["booking_no"])
    await expect(record).to_contain_text("待审核")
    items = await BookingItem.select(BookingItem.name).where(BookingItem.booking == booking["id"])
    assert sorted(i["name"] for i in items) == ["万用表C", "压力表A"]
