"""Accounts as a person clicks through them (manual ch. 1), on a desktop and a phone:
客户注册 → 注册审核 → the three logins (账号密码, 手机号, 忘记密码 then the new password).

Codes are read only from the SMS outbox (短信记录), as a user reads their phone.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import expect

from app.tables import Enterprise, SmsCode, SmsMessage
from tests.browser.helpers import (
    field,
    log_in,
    log_out,
    menu_link,
    open_admin_page,
    shot,
    wait_for_sms,
)
from tests.helpers import make_admin, outbox, uscc

COMPANY = "测试计量单位1"
ADDRESS = "南京市光华路1号"
CONTACT = "张三"
PHONE = "13800000001"
USERNAME = "company1"
PASSWORD = "Secret123x"
NEW_PASSWORD = "Newpass456y"

CODE_BUTTON = re.compile(r"^(获取验证码|\d+秒后重新获取)$")


# --------------------------------------------------------------------------- helpers


async def a_minute_later(phone: str) -> None:
    """The platform allows one code per phone a minute: let that minute pass for ``phone``,
    and drop the code SMS already read so the next one read is the new one."""
    await SmsCode.update({SmsCode.created_at: SmsCode.created_at - timedelta(seconds=61)}).where(
        SmsCode.phone == phone
    )
    await SmsMessage.delete().where((SmsMessage.phone == phone) & (SmsMessage.kind == "code"))


async def fill_registration(page: Any, uscc_code: str) -> None:
    await page.get_by_label("单位名称").fill(COMPANY)
    await page.get_by_label("统一社会信用代码").fill(uscc_code)
    await page.get_by_label("单位地址").fill(ADDRESS)
    await field(page, "联系人").fill(CONTACT)
    await page.get_by_label("联系人手机").fill(PHONE)


async def fill_account(page: Any, password2: str = PASSWORD) -> None:
    await page.get_by_label("登录账号").fill(USERNAME)
    await field(page, "密码").fill(PASSWORD)
    await page.get_by_label("确认密码").fill(password2)
    await page.get_by_role("checkbox", name="我已阅读并同意免责声明").check()


async def request_code(page: Any, phone: str) -> str:
    """获取验证码, see the status line and the countdown, then read the code off the phone."""
    button = page.get_by_role("button", name=CODE_BUTTON)
    await button.click()
    await expect(page.get_by_text("验证码已发送")).to_be_visible()
    await expect(button).to_have_text(re.compile(r"^\d+秒后重新获取$"))
    await expect(button).to_be_disabled()
    return await wait_for_sms(phone)


# --------------------------------------------------------------------------- tests


async def test_register_review_and_three_logins(page: Any) -> None:
    # 客户注册
    await page.goto("/login")
    await page.get_by_role("link", name="客户注册").click()
    await expect(page.get_by_role("heading", name="客户注册")).to_be_visible()
    await fill_registration(page, uscc(1))
    code = await request_code(page, PHONE)
    await page.get_by_label("短信验证码").fill(code)
    await fill_account(page)
    await shot(page, "register-filled")
    await page.get_by_role("button", name="注册", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("待审核")
    await shot(page, "register-pending")

    # Not yet reviewed: the login page says so, as information (nothing is wrong).
    await page.get_by_role("link", name="返回登录").click()
    await log_in(page, USERNAME, PASSWORD)
    await expect(page.get_by_role("status")).to_contain_text("待审核")
    await expect(page.get_by_role("alert")).to_have_count(0)
    await expect(page).to_have_url(re.compile(r"/login(\?.*)?$"))
    await expect(page.get_by_role("heading", name="用户登录")).to_be_visible()

    # The platform admin approves it.
    await make_admin()
    await log_in(page, "admin", "Admin12345x")
    await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()
    await open_admin_page(page, "注册审核")
    row = page.get_by_role("region", name=COMPANY)
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text(uscc(1))
    await expect(row).to_contain_text(USERNAME)
    await shot(page, "admin-registrations")
    await row.get_by_role("button", name="通过").click()
    await expect(page.get_by_role("status")).to_contain_text("审核完成")
    await expect(page.get_by_role("region", name=COMPANY)).to_have_count(0)

    # The company is told by SMS; 短信记录 lists it first.
    await wait_for_sms(PHONE, r"注册申请已审核通过")
    await open_admin_page(page, "短信记录")
    rows = page.get_by_role("table").get_by_role("row")
    await expect(rows.nth(1)).to_contain_text("注册申请已审核通过")
    await expect(rows.nth(1)).to_contain_text(PHONE)
    await expect(rows.nth(1)).to_contain_text("已发送")
    await expect(rows.nth(2)).to_contain_text("验证码为")  # the older register code
    await shot(page, "admin-sms")
    await log_out(page)

    # 1. 账号 + 密码
    await log_in(page, USERNAME, PASSWORD)
    await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()
    await expect(page.get_by_role("heading", name="预约记录")).to_be_visible()
    await expect(page.get_by_role("cell", name="暂无预约记录")).to_be_visible()
    await expect(page.get_by_role("banner")).to_contain_text(COMPANY)
    await shot(page, "company-home")
    await log_out(page)

    # 2. 使用手机号登录
    await a_minute_later(PHONE)
    await page.get_by_role("link", name="使用手机号登录").click()
    await expect(page.get_by_role("heading", name="使用手机号登录")).to_be_visible()
    await page.get_by_label("手机号").fill(PHONE)
    code = await request_code(page, PHONE)
    await page.get_by_label("短信验证码").fill(code)
    await page.get_by_role("button", name="登录", exact=True).click()
    await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()
    await expect(page.get_by_role("banner")).to_contain_text(COMPANY)
    await log_out(page)

    # 3. 忘记密码, then the new password
    await a_minute_later(PHONE)
    await page.get_by_role("link", name="忘记密码").click()
    await expect(page.get_by_role("heading", name="忘记密码")).to_be_visible()
    await page.get_by_label("用户名").fill(USERNAME)
    await page.get_by_label("手机号").fill(PHONE)
    await page.get_by_label("新密码").fill(NEW_PASSWORD)
    await page.get_by_label("确认密码").fill(NEW_PASSWORD)
    code = await request_code(page, PHONE)
    await page.get_by_label("短信验证码").fill(code)
    await page.get_by_role("button", name="确认", exact=True).click()
    await expect(page.get_by_role("status")).to_contain_text("密码已重置")
    await expect(page.get_by_role("heading", name="用户登录")).to_be_visible()

    await log_in(page, USERNAME, PASSWORD)  # the old one no longer works
    await expect(page.get_by_role("alert")).to_contain_text("用户名或密码错误")
    await log_in(page, USERNAME, NEW_PASSWORD)
    await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()
    await expect(page.get_by_role("banner")).to_contain_text(COMPANY)

    assert [m["kind"] for m in await outbox(PHONE)] == ["code", "registration"]


async def test_register_bad_input_keeps_values(page: Any) -> None:
    good = uscc(2)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    await page.goto("/login")
    await page.get_by_role("link", name="客户注册").click()
    await fill_registration(page, bad)
    await fill_account(page, password2=PASSWORD + "z")
    await page.get_by_role("button", name="注册", exact=True).click()

    uscc_input = page.get_by_label("统一社会信用代码")
    await expect(uscc_input).to_have_attribute("aria-invalid", "true")
    await expect(uscc_input).to_have_accessible_description(re.compile("校验位不正确"))
    password2 = page.get_by_label("确认密码")
    await expect(password2).to_have_attribute("aria-invalid", "true")
    await expect(password2).to_have_accessible_description("两次输入的密码不一致")
    await expect(page.get_by_text("校验位不正确")).to_be_visible()
    await expect(page.get_by_text("两次输入的密码不一致")).to_be_visible()

    await expect(page.get_by_label("单位名称")).to_have_value(COMPANY)
    await expect(uscc_input).to_have_value(bad)
    await expect(page.get_by_label("单位地址")).to_have_value(ADDRESS)
    await expect(field(page, "联系人")).to_have_value(CONTACT)
    await expect(page.get_by_label("联系人手机")).to_have_value(PHONE)
    await expect(page.get_by_label("登录账号")).to_have_value(USERNAME)
    await expect(field(page, "密码")).to_have_value("")  # never echoed
    await shot(page, "register-errors")
    assert await Enterprise.count() == 0


async def test_wrong_password_message(page: Any) -> None:
    await make_admin()
    await page.goto("/login")
    await log_in(page, "admin", "Wrong12345x")
    await expect(page.get_by_role("alert")).to_have_text("用户名或密码错误")
    await expect(page.get_by_label("账号")).to_have_value("admin")
    await expect(field(page, "密码")).to_have_value("")
    await expect(page.get_by_role("heading", name="用户登录")).to_be_visible()


# The drawer exists on a phone only: run there alone rather than skip the desktop run.
@pytest.mark.parametrize("page", ["phone"], indirect=True)
async def test_phone_menu_folds(page: Any) -> None:
    await make_admin()
    await log_in(page, "admin", "Admin12345x")
    await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()

    menu = page.get_by_role("button", name="菜单")
    await expect(menu).to_have_attribute("aria-expanded", "false")
    await expect(page.get_by_role("navigation", name="主菜单")).to_be_hidden()
    await expect(menu_link(page, "平台管理", "注册审核")).to_be_hidden()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    await menu.click()
    await expect(menu).to_have_attribute("aria-expanded", "true")
    await expect(page.get_by_text("平台管理", exact=True)).to_be_visible()
    for label in ("注册审核", "短信记录"):
        await expect(menu_link(page, "平台管理", label)).to_be_visible()
        await expect(menu_link(page, "平台管理", label)).to_be_in_viewport(
            ratio=1
        )  # drawer slid in
    await shot(page, "menu-open")
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    await menu_link(page, "平台管理", "注册审核").click()
    await expect(page.get_by_role("heading", name="注册审核", level=1)).to_be_visible()
    await expect(menu_link(page, "平台管理", "注册审核")).to_be_hidden()
    assert await page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
