"""CSRF tokens bound to the session (issue #8 item 11).

A token is good only for the session it was given to: a logged-in user's for that session,
an anonymous visitor's for the pre-session id in its cookie (replaced at login). So a token
taken from another session is refused, one from before login is refused after it, and
logout ends the tokens of the session it ends. The cookie holding a copy of the token is
never what is checked: planting it (the double-submit weakness) gains nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app.main import create_app
from app.security.csrf import presession_cookie_name
from app.security.sessions import cookie_name, csrf_cookie_name, end_user_sessions
from app.settings import get_settings
from app.tables import Booking, User
from tests.factories import make_enterprise, make_user
from tests.helpers import (
    add_item,
    company_user,
    csrf_token,
    instrument,
    login,
    post,
    submitted_booking,
)

REFUSED = "页面已过期或请求无效，请刷新页面后重试"


async def page_token(client: AsyncTestClient, url: str = "/") -> str:
    """The token a page carries for htmx (``hx-headers``) -- the one its forms carry too."""
    text = (await client.get(url)).text
    header = re.search(r'"X-CSRFToken": "([0-9a-f]+)"', text)
    field = re.search(r'name="_csrf_token" value="([0-9a-f]+)"', text)
    assert header, text[:500]
    assert field is None or field.group(1) == header.group(1)
    return header.group(1)


def plant(client: AsyncTestClient, token: str) -> None:
    """Put ``token`` into the CSRF cookie, as a cookie-injecting attacker would."""
    client.cookies.delete(csrf_cookie_name())
    client.cookies.set(csrf_cookie_name(), token, domain="testserver.local")


async def delete_booking(client: AsyncTestClient, token: str, htmx: bool = False) -> object:
    headers = {"X-CSRFToken": token}
    if htmx:
        headers["HX-Request"] = "true"
    return await client.post("/bookings/delete", data={}, headers=headers)


async def test_a_token_from_another_session_is_refused(client: AsyncTestClient) -> None:
    await company_user(client, n=1, phone="13800000001")
    async with AsyncTestClient(app=create_app(), base_url="http://testserver.local") as other:
        other.follow_redirects = False
        await company_user(other, n=2, phone="13800000002")
        theirs = await page_token(other)
        mine = await page_token(client)
        assert theirs != mine
        # Their token, in the header, in the form field, and with the cookie planted too.
        r = await delete_booking(client, theirs)
        assert r.status_code == 403 and REFUSED in r.text
        r = await client.post("/bookings/delete", data={"_csrf_token": theirs})
        assert r.status_code == 403 and REFUSED in r.text
        plant(client, theirs)
        r = await delete_booking(client, theirs, htmx=True)
        assert r.status_code == 403 and REFUSED in r.text and "<html" not in r.text
        # The same account in a second session: still another session's token.
        await login(other, "company1", "Secret123x")
        r = await delete_booking(client, await page_token(other))
        assert r.status_code == 403
        # My own token passes (whatever the cookie says), from any page of the session.
        for token in (mine, await page_token(client, "/bookings")):
            r = await delete_booking(client, token)
            assert r.status_code == 200 and "请先勾选要删除的预约" in r.text


async def test_a_token_from_before_login_is_refused_after_it(client: AsyncTestClient) -> None:
    form = await company_user(client)
    await post(client, "/logout")
    before = await page_token(client, "/login")
    r = await client.post(
        "/login",
        data={"username": form["username"], "password": form["password"]},
        headers={"X-CSRFToken": before},
    )
    assert r.status_code == 303
    for planted in (False, True):
        if planted:
            plant(client, before)
        r = await delete_booking(client, before)
        assert r.status_code == 403 and REFUSED in r.text
    after = await page_token(client)
    assert after != before
    assert (await delete_booking(client, after)).status_code == 200


async def test_logout_ends_the_sessions_tokens(client: AsyncTestClient) -> None:
    anonymous = await page_token(client, "/login")  # registration and login use it
    form = await company_user(client)
    token = await page_token(client)
    r = await client.post("/logout", headers={"X-CSRFToken": token})
    assert r.status_code == 303
    # The session's token no longer passes anywhere, not even where no login is needed,
    # and the visitor's token from before that session is not good again either.
    for old in (token, anonymous):
        r = await client.post("/login", data={**form, "_csrf_token": old})
        assert r.status_code == 403 and REFUSED in r.text
    # A fresh page gives the visitor a token of its own again.
    fresh = await page_token(client, "/login")
    r = await client.post("/login", data={**form, "_csrf_token": fresh})
    assert r.status_code == 303


async def test_anonymous_tokens_are_bound_to_the_visitor(client: AsyncTestClient) -> None:
    """Login CSRF: another visitor's token (and their planted cookie) does not pass."""
    async with AsyncTestClient(app=create_app(), base_url="http://testserver.local") as other:
        theirs = await page_token(other, "/login")
        mine = await page_token(client, "/login")
        data = {"username": "nobody", "password": "x"}
        plant(client, theirs)
        r = await client.post("/login", data=data, headers={"X-CSRFToken": theirs})
        assert r.status_code == 403 and REFUSED in r.text
        r = await client.post("/login", data=data, headers={"X-CSRFToken": mine})
        assert r.status_code == 200 and "用户名或密码错误" in r.text
        # A visitor without the pre-session cookie has no token that passes.
        client.cookies.delete(presession_cookie_name())
        r = await client.post("/login", data=data, headers={"X-CSRFToken": mine})
        assert r.status_code == 403


async def test_a_token_of_an_ended_session_asks_to_log_in_again(
    client: AsyncTestClient,
) -> None:
    """A tab left open past its session: its POST goes to the login page (not a 403), and
    nothing is done."""
    await company_user(client)
    booking = await submitted_booking(client)
    token = await page_token(client)
    user = await User.select(User.id).first()
    await end_user_sessions(user["id"])
    data = {"ids": [str(booking["id"])], "_csrf_token": token}
    r = await client.post("/bookings/delete", data=data)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")
    r = await client.post("/bookings/delete", data=data, headers={"HX-Request": "true"})
    assert r.status_code == 401 and r.headers["hx-redirect"].startswith("/login")
    assert await Booking.count() == 1


async def test_forms_and_htmx_pass_with_the_pages_token(client: AsyncTestClient) -> None:
    await company_user(client)
    token = await page_token(client, "/bookings/new")
    r = await add_item(client, "new", instrument(1))  # htmx, with the cookie's copy
    assert "器具已添加" in r.text
    r = await client.post(
        "/bookings/new/items",
        data={"_csrf_token": token, **instrument(2)},
        headers={"HX-Request": "true"},
    )
    assert "器具已添加" in r.text
    # The cookie's copy always belongs to the session in use.
    assert await csrf_token(client)
    assert cookie_name() in client.cookies


@pytest.fixture
def over_https(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("SECURE_COOKIES", "1")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


async def test_cookies_over_https_have_the_host_prefix(over_https: None) -> None:
    def set_cookies(r: Any) -> dict[str, str]:
        values = r.headers.get_list("set-cookie")
        return {h.split("=", 1)[0]: h.lower() for h in values}

    ent = await make_enterprise(5)
    await make_user(ent, username="company5")
    async with AsyncTestClient(app=create_app(), base_url="https://testserver.local") as c:
        c.follow_redirects = False
        r = await c.get("/login")
        cookies = set_cookies(r)
        assert set(cookies) == {"__Host-presession", "__Host-csrftoken"}
        assert "httponly" in cookies["__Host-presession"]
        token = re.search(r'"X-CSRFToken": "([0-9a-f]+)"', r.text)
        assert token
        data = {"username": "company5", "password": "Secret123x", "_csrf_token": token.group(1)}
        login_answer = await c.post("/login", data=data)
        assert login_answer.status_code == 303
        # Set, and cleared (at login and logout), every one of them Secure, host-only, path /.
        logout = await c.post("/logout", headers={"X-CSRFToken": await page_token(c)})
        assert logout.status_code == 303
        answers = [cookies, set_cookies(login_answer), set_cookies(logout)]
        assert set(answers[1]) == {"__Host-presession", "__Host-csrftoken", "__Host-session"}
        assert "max-age=0" in answers[2]["__Host-session"]
        for header in [h for answer in answers for h in answer.values()]:
            assert "secure" in header and "path=/" in header and "domain" not in header
            assert "samesite=lax" in header
        assert "max-age=0" in set_cookies(login_answer)["__Host-presession"]
