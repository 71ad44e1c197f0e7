"""企业管理 as a person clicks through it (manual 6.4), on a desktop and a phone: the group's
main account adds a subsidiary (行政区域 from three selects, a renamed text file refused as
证件, then a PNG); the subsidiary logs in and books; the group sees that booking in 预约记录
with its unit, and the subsidiary does not see the group's.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from playwright.async_api import expect

from app.clock import today
from app.tables import Booking, Enterprise, EnterpriseLicence
from tests.browser import helpers as browser
from tests.browser.helpers import field, fill_fields, log_in, log_out, notice, open_page
from tests.factories import make_booking, make_enterprise, make_user
from tests.helpers import BASIC, tiny_png, uscc

GROUP = "测试集团"
SUB = "测试南京子公司"
GROUP_BOOKING = "YY20260101000001"

SUBSIDIARY = {
    "社会统一信用代码": uscc(777),
    "单位名称": SUB,
    "单位地址": "南京市玄武区中山路1号",
    "登录账号": "njsub",
    "联系人": "李四",
    "登录密码": "Zigongsi2026",
    "单位电话": "025-84440000",
    "联系人手机": "13900000777",
}
BOOKING = {
    "委托单位名称": SUB,
    "委托单位地址": "南京市玄武区中山路1号",
    "联系人": "李四",
    "电话": "025-84440000",
    "证书单位名称": SUB,
    "证书单位地址": "南京市玄武区中山路1号",
    "手机": "13900000777",
    "送检人": "王五",
}


async def shot(page: Any, name: str) -> None:
    """As in the booking flow: undo the ``style=""`` a screenshot leaves on inputs."""
    await browser.shot(page, name)
    await page.evaluate(
        "document.querySelectorAll('[style=\"\"]').forEach(e => e.removeAttribute('style'))"
    )


async def choose(page: Any, label: str, option: str) -> None:
    """Pick ``option`` once the server has put it into the select and htmx has settled the
    swap (a select changed before htmx has processed it sends no request)."""
    select = field(page, label)
    await expect(select.locator("option", has_text=option)).to_have_count(1)
    await expect(page.locator(".htmx-request, .htmx-settling, .htmx-added")).to_have_count(0)
    await select.select_option(label=option)


async def test_add_a_subsidiary_that_books(page: Any) -> None:
    group = await make_enterprise(1, name=GROUP, contact_phone=BASIC["contact_mobile"])
    await make_user(group, username="group1")
    await make_booking(group, booking_no=GROUP_BOOKING)

    # ---- 1. the group: 系统管理 › 企业管理 › 【新增】
    await log_in(page, "group1", "Secret123x")
    await open_page(page, "系统管理", "企业管理")
    await expect(page.get_by_text("暂无子公司")).to_be_visible()
    await page.get_by_role("link", name="新增", exact=True).click()
    await expect(page.get_by_role("heading", name="新增子公司", level=1)).to_be_visible()
    await fill_fields(page, SUBSIDIARY)
    await expect(field(page, "市").locator("option")).to_have_count(1)  # 请先选择省
    await choose(page, "省", "江苏省")
    await choose(page, "市", "南京市")
    await choose(page, "区县", "玄武区")
    # A text file renamed .png is refused by its content.
    await field(page, "证件").set_input_files(
        files=[{"name": "营业执照.png", "mimeType": "image/png", "buffer": b"just text\n" * 20}]
    )
    await page.get_by_role("button", name="保存", exact=True).click()
    licence = field(page, "证件")
    await expect(licence).to_have_attribute("aria-invalid", "true")
    await expect(licence).to_have_accessible_description(
        "文件内容不是 PDF、JPEG 或 PNG（只改扩展名无效），请重新选择证件文件"
    )
    await expect(field(page, "单位名称")).to_have_value(SUB)  # the rest is kept
    await expect(field(page, "区县")).to_have_value("320102")
    await expect(field(page, "登录密码")).to_have_value("")  # never sent back
    assert await Enterprise.count() == 1
    await shot(page, "subsidiary-licence-refused")

    await field(page, "登录密码").fill(SUBSIDIARY["登录密码"])
    await field(page, "证件").set_input_files(
        files=[{"name": "营业执照.png", "mimeType": "image/png", "buffer": tiny_png()}]
    )
    await page.get_by_role("button", name="保存", exact=True).click()
    await expect(notice(page, "已新增子公司")).to_be_visible()
    row = page.get_by_role("row").filter(has_text=SUB)
    await expect(row).to_contain_text("江苏省 南京市 玄武区")
    await expect(row).to_contain_text("njsub")
    await expect(row).to_contain_text("已通过")
    await expect(row.get_by_role("link", name="查看")).to_be_visible()
    assert await EnterpriseLicence.count() == 1
    await shot(page, "subsidiary-list")
    await log_out(page)

    # ---- 2. the subsidiary logs in and books
    await log_in(page, "njsub", SUBSIDIARY["登录密码"])
    await expect(page.get_by_role("banner")).to_contain_text(SUB)
    await open_page(page, "预约管理", "预约送检")
    await fill_fields(page, BOOKING)
    await field(page, "预计送检日期").fill((today() + timedelta(days=1)).isoformat())
    await fill_fields(page, {"器具名称": "数字压力计", "出厂编号": "NJ-001", "型号规格": "D-1"})
    await page.get_by_role("button", name="添加器具").click()
    await expect(notice(page, "器具已添加")).to_be_visible()
    await page.get_by_role("button", name="提交", exact=True).click()
    await expect(notice(page, "预约已提交")).to_be_visible()
    sub_id = (await Enterprise.select().where(Enterprise.name == SUB).first())["id"]
    booking = await Booking.select().where(Booking.enterprise == sub_id).first()
    booking_no = booking["booking_no"]
    await expect(page.get_by_role("row").filter(has_text=booking_no)).to_have_count(1)
    # Not the group's booking, and no 所属单位 column: it sees only itself.
    await expect(page.get_by_text(GROUP_BOOKING)).to_have_count(0)
    await expect(page.get_by_role("columnheader", name="所属单位")).to_have_count(0)
    await shot(page, "subsidiary-records")
    await log_out(page)

    # ---- 3. the group sees it in 预约记录, with its unit, and filters by unit
    await log_in(page, "group1", "Secret123x")
    await open_page(page, "预约管理", "预约记录")
    record = page.get_by_role("row").filter(has_text=booking_no)
    await expect(record).to_contain_text(SUB)
    await expect(page.get_by_role("row").filter(has_text=GROUP_BOOKING)).to_contain_text(GROUP)
    await field(page, "所属单位").select_option(label=SUB)
    await expect(page.get_by_role("row").filter(has_text=GROUP_BOOKING)).to_have_count(0)
    await expect(record).to_be_visible()
    await shot(page, "subsidiary-group-records")
