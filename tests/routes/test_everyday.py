"""Small things a clerk meets every day (the everyday-UX issue): the skip link, the
institute's name on the login page, 操作日志 to the second, the admin's 首页 counts."""

from __future__ import annotations

import re

from litestar.testing import AsyncTestClient

from tests.helpers import company_user, login, make_admin, post, submitted_booking


async def test_login_page_names_the_institute(client: AsyncTestClient) -> None:
    r = await client.get("/login")
    assert "计量检定测试院" in r.text


async def test_skip_link_and_admin_home_counts_and_audit_seconds(client: AsyncTestClient) -> None:
    await company_user(client)
    r = await client.get("/")
    assert 'href="#content">跳到主要内容</a>' in r.text and 'id="content" tabindex="-1"' in r.text
    await submitted_booking(client)
    await post(client, "/logout")
    await make_admin()
    await login(client, "admin", "Admin12345x")
    r = await client.get("/")
    tile = r'data-count="review_bookings" href="[^"]+"><span class="dash-n">1</span>'
    assert re.search(tile, r.text)
    r = await client.get("/admin/audit")
    assert re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", r.text)
