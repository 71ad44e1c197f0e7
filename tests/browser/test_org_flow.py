"""系统管理 › 部门管理 and 用户管理 as a person clicks through them (manual 6.2–6.3), on a
desktop and a phone: the main account builds a department tree and is refused deleting a
parent (with the reason), adds a sub-account in a department (first with a weak password)
and cannot delete itself; the sub-account logs in, has no 系统管理, and books
(预约送检 → 提交).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from playwright.async_api import expect

from app.clock import today
from app.tables import Booking, Department, User
from tests.browser import helpers as browser
from tests.browser.helpers import (
    field,
    fill_fields,
    instrument_rows,
    log_in,
    log_out,
    notice,
    open_page,
)
from tests.factories import make_enterprise, make_user

MAIN, MAIN_PASSWORD = "company9", "Secret123x"
SUB, SUB_PASSWORD = "zhang9", "Kx7mWq2024"
MOBILE = "13912345679"

BOOKING_LABELS = {
    "委托单位名称": "南京红旗机械有限公司",
    "委托单位地址": "南京市江宁区东山路8号",
    "联系人": "张九",
    "电话": "025-52100000",
    "证书单位名称": "南京红旗机械有限公司",
    "证书单位地址": "南京市江宁区东山路8号",
    "手机": MOBILE,
}


async def shot(page: Any, name: str) -> None:
    await browser.shot(page, f"org-{name}")


def tree(page: Any) -> Any:
    return page.get_by_role("list", name="部门树")


def department(page: Any, name: str) -> Any:
    """A department's item in the tree: its own line and the departments below it (the
    innermost item holding its checkbox; its ancestors' items hold it too)."""
    return (
        tree(page)
        .get_by_role("listitem")
        .filter(has=page.get_by_role("checkbox", name=name, exact=True))
        .last
    )


async def accept_confirm(page: Any, messages: list[str]) -> None:
    async def accept(dialog: Any) -> None:
        messages.append(dialog.message)
        await dialog.accept()

    page.once("dialog", accept)


async def add_department(page: Any, values: dict[str, str], parent: str | None = None) -> None:
    """From 部门管理: 【新增】 (or 新增下级 beside ``parent``), fill, 【保存】."""
    if parent:
        await department(page, parent).get_by_role("link", name=f"在 {parent} 下新增部门").click()
    else:
        await page.get_by_role("link", name="新增", exact=True).click()
    await expect(page.get_by_role("heading", name="新增部门", level=1)).to_be_visible()
    for label, value in values.items():
        if label == "父部门名称":
            await field(page, label).select_option(label=value)
        else:
            await field(page, label).fill(value)
    await page.get_by_role("button", name="保存", exact=True).click()
    await expect(page.get_by_role("heading", name="部门管理", level=1)).to_be_visible()
    await expect(notice(page, "已新增")).to_be_visible()


async def test_departments_sub_account_and_its_booking(page: Any) -> None:
    ent = await make_enterprise(9)
    await make_user(ent, username=MAIN, password=MAIN_PASSWORD, name="王经理")

    # ---- 1. the main account: 系统管理 › 部门管理, a tree of three levels
    await log_in(page, MAIN, MAIN_PASSWORD)
    await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()
    await open_page(page, "系统管理", "部门管理")
    await expect(page.get_by_text("暂无部门")).to_be_visible()
    await add_department(page, {"部门名称": "总部", "部门级别": "一级", "部门代码": "ZB"})
    await add_department(page, {"部门名称": "生产部", "部门级别": "二级", "部门代码": "SC"}, "总部")
    await expect(field(page, "父部门名称")).to_have_count(0)  # back on the list
    await add_department(
        page,
        {"部门名称": "质检科", "父部门名称": "　└ 生产部", "部门级别": "三级", "部门代码": "ZJ"},
    )
    await add_department(page, {"部门名称": "财务部", "父部门名称": "总部", "部门代码": "CW"})
    # 质检科 sits inside 生产部, which sits inside 总部; 财务部 is not below 生产部.
    production = department(page, "生产部")
    await expect(production.get_by_role("checkbox", name="质检科")).to_be_visible()
    await expect(production.get_by_role("checkbox", name="财务部")).to_have_count(0)
    await expect(department(page, "总部").get_by_role("checkbox")).to_have_count(4)
    await expect(department(page, "质检科")).to_contain_text("代码 ZJ")
    await shot(page, "tree")

    # A second 部门代码 ZB: refused beside the field, what was typed kept.
    await page.get_by_role("link", name="新增", exact=True).click()
    await fill_fields(page, {"部门名称": "销售部", "部门代码": "ZB"})
    await page.get_by_role("button", name="保存", exact=True).click()
    code = field(page, "部门代码")
    await expect(code).to_have_attribute("aria-invalid", "true")
    await expect(code).to_have_accessible_description("本单位已有该部门代码，请换一个")
    await expect(field(page, "部门名称")).to_have_value("销售部")
    await shot(page, "department-error")
    await page.get_by_role("link", name="取消").click()

    # ---- 2. deleting 总部 (it has sub-departments) is refused, with the reason
    asked: list[str] = []
    await accept_confirm(page, asked)
    await page.get_by_role("checkbox", name="总部", exact=True).check()
    await page.get_by_role("button", name="删除", exact=True).click()
    refused = page.get_by_role("alert").filter(has_text="不能删除")
    await expect(refused).to_contain_text("「总部」下还有下级部门")
    assert asked == ["确定删除勾选的部门吗？"]
    await expect(page.get_by_role("checkbox", name="总部", exact=True)).to_be_checked()
    await expect(tree(page).get_by_role("checkbox")).to_have_count(4)
    await shot(page, "delete-refused")

    # ---- 3. 用户管理 › 【新增】 a sub-account in 质检科 (first with a weak password)
    await open_page(page, "系统管理", "用户管理")
    await expect(page.get_by_role("row").filter(has_text=MAIN)).to_contain_text("企业管理员")
    await page.get_by_role("link", name="新增", exact=True).click()
    await expect(page.get_by_role("heading", name="新增用户", level=1)).to_be_visible()
    sub = {"登录账号": SUB, "用户姓名": "张九", "密码": "abc12345", "手机": MOBILE}
    await fill_fields(page, sub)
    await field(page, "部门").select_option(label="　　└ 质检科")  # two levels down
    await page.get_by_role("button", name="保存", exact=True).click()
    password = field(page, "密码")
    await expect(password).to_have_attribute("aria-invalid", "true")
    await expect(page.get_by_text("密码过于常见或包含账号")).to_be_visible()
    await expect(field(page, "登录账号")).to_have_value(SUB)
    await expect(field(page, "手机")).to_have_value(MOBILE)
    qc = await Department.select(Department.id).where(Department.name == "质检科").first()
    await expect(field(page, "部门")).to_have_value(str(qc["id"]))
    await shot(page, "user-error")
    await password.fill(SUB_PASSWORD)
    await page.get_by_role("button", name="保存", exact=True).click()
    await expect(page.get_by_role("heading", name="用户管理", level=1)).to_be_visible()
    await expect(notice(page, "已新增")).to_be_visible()
    row = page.get_by_role("row").filter(has_text=SUB)
    await expect(row).to_contain_text("质检科")
    await expect(row).to_contain_text("子账户")
    await expect(row).to_contain_text("启用")
    await shot(page, "users")

    # ---- 4. the main account cannot delete itself
    await accept_confirm(page, asked)
    await page.get_by_role("checkbox", name=f"选择 {MAIN}").check()
    await page.get_by_role("button", name="删除", exact=True).click()
    await expect(page.get_by_role("alert").filter(has_text="不能删除")).to_contain_text(
        "不能删除当前登录的企业主账户"
    )
    await expect(page.get_by_role("row").filter(has_text=MAIN)).to_have_count(1)
    await shot(page, "self-delete-refused")
    await log_out(page)

    # ---- 5. the sub-account: no 系统管理, but 预约送检 → 提交
    await log_in(page, SUB, SUB_PASSWORD)
    await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()
    menu = page.locator("#sidebar")  # folded behind 菜单 on a phone: read, not looked at
    await expect(menu).to_contain_text("预约送检")
    await expect(menu).not_to_contain_text("系统管理")
    # Typed into the address bar it is refused (fetched aside: the page fixture counts a
    # 403 in the console as an error).
    refused = await page.request.get("/settings/users")
    assert refused.status == 403 and "仅企业主账户可以使用系统管理" in await refused.text()

    await open_page(page, "预约管理", "预约送检")
    await fill_fields(page, BOOKING_LABELS)
    await field(page, "预计送检日期").fill((today() + timedelta(days=1)).isoformat())
    await field(page, "送检人").fill("张九")
    await fill_fields(
        page,
        {"器具名称": "温度计", "出厂编号": "T-9", "型号规格": "WSS", "证书类型": "检定证书"},
    )
    await page.get_by_role("button", name="添加器具").click()
    await expect(notice(page, "器具已添加")).to_be_visible()
    await expect(instrument_rows(page)).to_have_count(1)
    await page.get_by_role("button", name="提交", exact=True).click()
    await expect(page.get_by_role("heading", name="预约记录", level=1)).to_be_visible()
    await expect(notice(page, "预约已提交")).to_be_visible()
    await shot(page, "sub-account-booked")
    booking = await Booking.select().where(Booking.status == "pending").first()
    sub_id = (await User.select(User.id).where(User.username == SUB).first())["id"]
    assert booking["created_by"] == sub_id and booking["enterprise"] == ent.id
