"""The login page as a person sees it, on a desktop and a phone."""

from __future__ import annotations

from playwright.async_api import Page

from tests.browser.helpers import shot


async def test_login_page_has_every_entry(page: Page) -> None:
    await page.goto("/login")
    for name in ("登录", "客户注册", "忘记密码", "使用手机号登录"):
        assert (
            await page.get_by_role("link", name=name)
            .or_(page.get_by_role("button", name=name))
            .first.is_visible()
        )
    assert await page.get_by_label("账号").is_visible()
    assert await page.get_by_label("密码").is_visible()
    await shot(page, "login")
