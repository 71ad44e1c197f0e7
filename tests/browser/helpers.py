"""What the browser tests do over and over, as a person would: find a field by its label,
log in and out, open a page through the sidebar, fill instrument fields."""

from __future__ import annotations

import re
from typing import Any

from playwright.async_api import expect

from tests.browser.conftest import open_menu_if_phone


def field(page: Any, label: str) -> Any:
    """The input labelled exactly ``label`` (its label may start with the red 星号)."""
    return page.get_by_label(re.compile(rf"^\*?{re.escape(label)}$"))


async def log_in(page: Any, username: str, password: str) -> None:
    if not page.url.split("?")[0].endswith("/login"):
        await page.goto("/login")
    await page.get_by_label("账号").fill(username)
    await field(page, "密码").fill(password)
    await page.get_by_role("button", name="登录", exact=True).click()


async def log_out(page: Any) -> None:
    await page.get_by_role("banner").get_by_role("button", name="退出").click()
    await expect(page.get_by_role("status")).to_contain_text("您已安全退出")
    await expect(page.get_by_role("heading", name="用户登录")).to_be_visible()


def menu_link(page: Any, group: str, label: str) -> Any:
    """``group`` › ``label`` in the sidebar."""
    item = (
        page.get_by_role("navigation", name="主菜单")
        .get_by_role("listitem")
        .filter(has=page.get_by_text(group, exact=True))
    )
    return item.get_by_role("link", name=label, exact=True)


async def open_page(page: Any, group: str, label: str, heading: str | None = None) -> None:
    """``group`` › ``label`` through the sidebar (behind 菜单 on a phone)."""
    await open_menu_if_phone(page)
    await menu_link(page, group, label).click()
    await expect(page.get_by_role("heading", name=heading or label, level=1)).to_be_visible()


def notice(page: Any, text: str) -> Any:
    return page.get_by_role("status").filter(has_text=text)


async def fill_fields(page: Any, values: dict[str, str]) -> None:
    """Field label → value; 证书类型 is a select."""
    for label, value in values.items():
        if label == "证书类型":
            await field(page, label).select_option(label=value)
        else:
            await field(page, label).fill(value)


def instrument_rows(page: Any) -> Any:
    """The rows of a booking's 器具列表 (not its header)."""
    return page.locator("#instrument-table tbody").get_by_role("row")
