"""What the browser tests do over and over, as a person would: find a field by its label,
log in and out, open a page through the sidebar, fill instrument fields, read an SMS off
the phone; and a screenshot of what they saw."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

from playwright.async_api import expect

from tests.helpers import outbox

SHOTS = Path(__file__).resolve().parents[2] / "screenshots"


async def shot(page: Any, name: str) -> None:
    """Keep a screenshot of what the user saw (screenshots/, not committed)."""
    SHOTS.mkdir(exist_ok=True)
    # caret="initial": hiding the caret leaves style="" on inputs, which htmx's settle step
    # would copy onto swapped-in inputs: a CSP report the app did not cause.
    await page.screenshot(
        path=str(SHOTS / f"{name}-{page.viewport_name}.png"), full_page=True, caret="initial"
    )


async def wait_for_sms(phone: str, pattern: str = r"验证码为(\d{6})", seconds: float = 15) -> str:
    """Poll the 短信记录 (outbox) until an SMS to ``phone`` matches; returns group 1."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for msg in await outbox(phone):
            if msg["status"] == "sent" and (m := re.search(pattern, msg["text"])):
                return m.group(1) if m.groups() else m.group(0)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no SMS matching {pattern!r} to {phone}")


async def open_menu_if_phone(page: Any) -> None:
    """On a phone the sidebar is folded behind the 菜单 button."""
    if page.viewport_name == "phone":
        await page.get_by_role("button", name="菜单").click()


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


async def open_admin_page(page: Any, label: str) -> None:
    await open_page(page, "平台管理", label)


async def open_import_dialog(page: Any) -> tuple[Any, Any]:
    """【导入器具】, then its 模板下载: the dialog, and the template as downloaded."""
    await page.get_by_role("button", name="导入器具").click()
    dialog = page.get_by_role("dialog", name="导入器具")
    await expect(dialog).to_be_visible()
    async with page.expect_download() as download_info:
        await dialog.get_by_role("link", name="模板下载").click()
    return dialog, await download_info.value


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
