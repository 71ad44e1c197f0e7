"""Hardening found by an outside tester: caching of private answers, proxy headers."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from litestar.testing import AsyncTestClient

from tests.helpers import company_user, last_code, post, register_company, uscc

ROOT = Path(__file__).resolve().parents[2]


async def test_private_answers_are_never_cached(client: AsyncTestClient) -> None:
    await company_user(client)
    for url in ("/", "/bookings", "/bookings/new", "/instruments", "/instruments/export.xlsx"):
        r = await client.get(url)
        assert r.status_code == 200, url
        assert r.headers["cache-control"] == "no-store", url
    r = await client.get("/login")
    assert r.headers["cache-control"] == "no-store"


async def test_static_files_have_hashed_urls_and_long_caching(client: AsyncTestClient) -> None:
    page = (await client.get("/login")).text
    urls = re.findall(r'(?:href|src)="(/static/[^"]+)"', page)
    assert len(urls) >= 3 and all(re.search(r"\?v=[0-9a-f]{12}$", u) for u in urls), urls
    for url in urls:
        r = await client.get(url)
        assert r.status_code == 200, url
        assert "max-age=31536000" in r.headers["cache-control"], url
        assert "immutable" in r.headers["cache-control"], url


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_run_trusts_proxy_headers_only_from_the_named_proxy() -> None:
    def command(**env: str) -> str:
        run_env = {k: v for k, v in os.environ.items() if k != "FORWARDED_ALLOW_IPS"}
        out = subprocess.run(
            ["make", "-n", "run"],
            cwd=ROOT,
            env={**run_env, **env},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        return next(line for line in out.splitlines() if "uvicorn" in line)

    default = command()
    assert "--no-proxy-headers" in default and "--forwarded-allow-ips" not in default
    behind = command(FORWARDED_ALLOW_IPS="10.0.0.5")
    assert "--proxy-headers --forwarded-allow-ips=10.0.0.5" in behind


async def test_csrf_token_is_renewed_at_login(client: AsyncTestClient) -> None:
    form = await company_user(client)
    await client.get("/login")
    await client.post("/logout", headers={"X-CSRFToken": client.cookies.get("csrftoken", "")})
    await client.get("/login")
    before = client.cookies.get("csrftoken")
    assert before
    r = await post(client, "/login", {"username": form["username"], "password": form["password"]})
    assert r.status_code == 303
    assert client.cookies.get("csrftoken") is None  # dropped with the old session
    await client.get("/")
    after = client.cookies.get("csrftoken")
    assert after and after != before
    # The pre-login token no longer passes.
    r = await client.post("/bookings/delete", data={}, headers={"X-CSRFToken": before})
    assert r.status_code == 403


async def test_registration_says_who_exists_only_after_a_right_code(
    client: AsyncTestClient,
) -> None:
    first = await register_company(client, 1, phone="13800000011")
    # Same USCC and account, a wrong code: only the code is talked about.
    await post(client, "/sms-code", {"purpose": "register", "contact_phone": "13800000012"})
    form = {**first, "contact_phone": "13800000012", "code": "000000"}
    r = await post(client, "/register", form)
    assert "验证码错误" in r.text
    assert "已注册" not in r.text and "已被使用" not in r.text
    # The right code: now the duplicates are named, and the code is still good.
    code = await last_code(client, "13800000012")
    r = await post(client, "/register", {**form, "code": code})
    assert "该统一社会信用代码已注册" in r.text and "该登录账号已被使用" in r.text
    r = await post(
        client, "/register", {**form, "code": code, "uscc": uscc(2), "username": "company2"}
    )
    assert "待审核" in r.text


async def test_registration_is_throttled_per_address(client: AsyncTestClient) -> None:
    form = {"name": "甲", "contact_phone": "13800000013", "code": "1"}
    statuses = [(await post(client, "/register", form)).status_code for _ in range(31)]
    assert statuses[:30] == [200] * 30 and statuses[30] == 429
