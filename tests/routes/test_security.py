"""CSRF, security headers, cookies."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from app.security.sessions import cookie_name
from tests.helpers import approve_company, company_user, csrf_token, post, register_company


async def test_post_without_csrf_token_is_refused(client: AsyncTestClient) -> None:
    await client.get("/login")
    r = await client.post("/login", data={"username": "a", "password": "b"})
    assert r.status_code == 403 and "刷新页面" in r.text
    r = await client.post(
        "/sms-code",
        data={"purpose": "login", "phone": "13800000000"},
        headers={"HX-Request": "true", "X-CSRFToken": "forged"},
    )
    assert r.status_code == 403
    # With the token from the cookie (as htmx sends it) it goes through.
    r = await client.post(
        "/login",
        data={"username": "a", "password": "b"},
        headers={"X-CSRFToken": await csrf_token(client)},
    )
    assert r.status_code == 200 and "用户名或密码错误" in r.text


async def test_security_headers_everywhere(client: AsyncTestClient) -> None:
    for url in ("/login", "/static/app.css", "/no-such-page"):
        r = await client.get(url)
        csp = r.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"
    assert (await client.get("/no-such-page")).status_code == 404


async def test_pages_have_no_inline_script(client: AsyncTestClient) -> None:
    await company_user(client)
    for url in ("/", "/login", "/register"):
        text = (await client.get(url)).text
        assert "<script>" not in text and " style=" not in text and "onclick" not in text


async def test_session_cookie_flags(client: AsyncTestClient) -> None:
    await company_user(client, n=2, phone="13800000002")
    # httpx keeps the Set-Cookie of the last login response on the jar only; check the header.
    r = await client.post("/logout", headers={"X-CSRFToken": await csrf_token(client)})
    assert cookie_name() in r.headers.get("set-cookie", "")


async def test_session_cookie_is_httponly_samesite(client: AsyncTestClient) -> None:
    form = await register_company(client, n=3, phone="13800000003")
    await approve_company(form["uscc"])
    r = await post(client, "/login", {"username": form["username"], "password": form["password"]})
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/" in cookie


async def test_htmx_errors_come_back_as_a_short_text(client: AsyncTestClient) -> None:
    await company_user(client, n=4, phone="13800000004")
    r = await client.post(
        "/bookings/99999/items",
        data={"name": "x"},
        headers={"HX-Request": "true", "X-CSRFToken": "stale"},
    )
    assert r.status_code == 403 and r.headers["content-type"].startswith("text/plain")
    assert "刷新页面" in r.text and "<html" not in r.text
    r = await client.get("/bookings/99999/history", headers={"HX-Request": "true"})
    assert r.status_code == 404 and "<html" not in r.text
