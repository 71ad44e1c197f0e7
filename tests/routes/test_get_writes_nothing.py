"""No state is made by a GET (issue #8 item 9): every page of the app, opened as a customer
and as the platform admin, leaves every table as it was.

The parameterless GET routes are taken from the app itself, so a new page is checked
without being listed here. Left out on purpose, each for its reason:
- sessions (``web_session``: ``last_seen`` is touched now and then) and rate-limit counters
  (``rate_hit``: the public 证书验证 link counts hits per address) -- bookkeeping, not state;
- a certificate's file and the zip of a download job: a download is recorded
  (``已下载``, 操作日志 证书下载) by design;
- the lab system's API (its own tokens; read-only, tested in test_lab_api.py).
"""

from __future__ import annotations

from typing import Any

from litestar.testing import AsyncTestClient

from app.tables import Department, Enterprise, User, WebSession
from tests.conftest import ALL_TABLES
from tests.factories import make_instrument
from tests.helpers import (
    add_item,
    company_user,
    instrument,
    login,
    make_admin,
    open_form,
    post,
    submitted_booking,
)

BOOKKEEPING = {WebSession._meta.tablename, "rate_hit"}
NOT_PAGES = ("/static", "/api/", "/schema", "/healthz")


async def snapshot() -> dict[str, list[dict[str, Any]]]:
    return {
        t._meta.tablename: await t.select().order_by(t.id)
        for t in ALL_TABLES
        if t._meta.tablename not in BOOKKEEPING
    }


def simple_pages(client: AsyncTestClient) -> list[str]:
    """Every GET route without a path parameter."""
    return sorted(
        route.path
        for route in client.app.routes
        if "GET" in getattr(route, "methods", ())
        and "{" not in route.path
        and not route.path.startswith(NOT_PAGES)
    )


async def open_all(client: AsyncTestClient, urls: list[str]) -> None:
    for url in urls:
        for headers in ({}, {"HX-Request": "true"}):
            r = await client.get(url, headers=headers)
            assert r.status_code < 500, (url, r.status_code, r.text[:300])


async def test_no_page_writes_anything(client: AsyncTestClient) -> None:
    await company_user(client)
    booking = await submitted_booking(client)
    ent = await Enterprise.objects().first()
    reg = await make_instrument(ent)
    dept = Department(enterprise=ent.id, name="计量科", code="D1")
    await dept.save()
    sub = User(username="zhang1", enterprise=ent.id, role="sub_account", department=dept.id)
    await sub.save()
    # A customer without a draft (预约送检 must not make one) ...
    before = await snapshot()
    await open_all(
        client,
        simple_pages(client)
        + [
            f"/bookings/{booking['id']}",
            f"/instruments/{reg.id}/edit",
            f"/settings/users/{sub.id}/edit",
            f"/settings/departments/{dept.id}/edit",
            f"/settings/enterprises/{ent.id}/edit",
        ],
    )
    assert await snapshot() == before
    # ... and with one.
    r = await add_item(client, "new", instrument(2))
    item_id = r.text.split("?edit=")[1].split('"')[0]
    draft_id = await open_form(client)
    before = await snapshot()
    await open_all(
        client,
        [
            f"/bookings/{draft_id}",
            f"/bookings/{draft_id}/items",
            f"/bookings/{draft_id}/items?edit={item_id}",
            f"/bookings/{draft_id}/history",
            f"/bookings/{draft_id}/custody",
            "/bookings/new",
            "/bookings/new/items",
        ],
    )
    assert await snapshot() == before

    await post(client, "/logout")
    await make_admin()
    await login(client, "admin", "Admin12345x")
    before = await snapshot()
    await open_all(
        client,
        simple_pages(client) + [f"/admin/bookings/{booking['id']}", f"/admin/enterprises/{ent.id}"],
    )
    assert await snapshot() == before
    # And anonymous: the login pages.
    await post(client, "/logout")
    before = await snapshot()
    await open_all(client, simple_pages(client))
    assert await snapshot() == before
