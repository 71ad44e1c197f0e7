from __future__ import annotations

from litestar.testing import AsyncTestClient

from tests.helpers import company_user, outbox


async def test_login_page(client: AsyncTestClient) -> None:
    r = await client.get("/login")
    assert r.status_code == 200
    for text in ("登录", "客户注册", "忘记密码", "使用手机号登录"):
        assert text in r.text


async def test_register_and_login(client: AsyncTestClient) -> None:
    form = await company_user(client)
    r = await client.get("/")
    assert r.status_code == 200, r.text
    assert form["name"] in r.text
    assert await outbox(form["contact_phone"])
