"""预约送检's draft (issue #8 item 9): a GET stores nothing; the first POST that needs the
draft makes it, race-free (one draft per user: a partial unique index), and parallel first
POSTs make one draft and lose no row."""

from __future__ import annotations

import asyncio
import re

from litestar.testing import AsyncTestClient

from app.tables import Booking, BookingItem, Enterprise, Instrument
from tests.factories import make_instrument
from tests.helpers import (
    BASIC,
    BOOKING,
    add_item,
    at_once,
    company_user,
    fill_template,
    instrument,
    open_form,
    post,
    submitted_booking,
    xlsx_row,
)


async def test_opening_the_form_writes_no_row(client: AsyncTestClient) -> None:
    await company_user(client)
    await post(client, "/settings/basic", BASIC)
    before = await Booking.count()
    async with at_once(client) as c:
        pages = await asyncio.gather(*[c.get("/bookings/new") for _ in range(10)])
    assert all(p.status_code == 200 for p in pages)
    page = pages[0].text
    # The empty form, prefilled from 基础信息, its actions on the draft-to-be.
    assert f'value="{BASIC["client_name"]}"' in page and "暂无数据" in page
    assert 'action="/bookings/new/submit"' in page
    assert 'hx-post="/bookings/new/items"' in page
    # The pickers and 【清空】 read, and write nothing either.
    for url in ("/bookings/new/items", "/bookings/new/history", "/bookings/new/custody"):
        r = await client.get(url, headers={"HX-Request": "true"})
        assert r.status_code == 200, (url, r.status_code)
    assert await Booking.count() == before == 0


async def test_first_add_makes_the_draft_and_the_form_finds_it(client: AsyncTestClient) -> None:
    await company_user(client)
    assert await open_form(client) == "new"
    r = await add_item(client, "new", instrument(1), sender="新送检人")
    assert r.status_code == 200 and "器具已添加" in r.text and "温度计1" in r.text
    draft = await Booking.select().where(Booking.status == "draft").first()
    assert draft["sender"] == "新送检人" and draft["item_count"] == 1
    # From now on the form is that draft's; "new" still names it.
    assert await open_form(client) == draft["id"]
    r = await add_item(client, "new", instrument(2))
    assert "温度计1" in r.text and "温度计2" in r.text
    assert await Booking.count() == 1 and await BookingItem.count() == 2


async def test_parallel_first_adds_make_one_draft_and_keep_every_row(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    async with at_once(client) as c:
        results = await asyncio.gather(
            *[add_item(c, "new", instrument(n, quantity=str(n))) for n in range(1, 11)]
        )
    assert all(r.status_code == 200 and "器具已添加" in r.text for r in results)
    drafts = await Booking.select().where(Booking.status == "draft")
    assert len(drafts) == 1
    assert await BookingItem.count().where(BookingItem.booking == drafts[0]["id"]) == 10
    assert drafts[0]["item_count"] == sum(range(1, 11))


async def test_every_first_post_makes_the_same_one_draft(client: AsyncTestClient) -> None:
    """添加器具, an import, the pickers' 【确定】, 一键生成预约送检 and 提交, all at once."""
    await company_user(client)
    history = await submitted_booking(client)  # one earlier booking to pick from
    old_item = await BookingItem.select().where(BookingItem.booking == history["id"]).first()
    ent = await Enterprise.objects().first()
    # Every source brings another instrument (the same one twice would be skipped).
    reg = [await make_instrument(ent, name=f"托管{n}", serial_no=f"P000{n}") for n in (1, 2)]
    assert await Booking.count().where(Booking.status == "draft") == 0
    xlsx = fill_template([xlsx_row(7), xlsx_row(8)])
    async with at_once(client) as c:
        results = await asyncio.gather(
            add_item(c, "new", instrument(3)),
            add_item(c, "new", instrument(2)),
            post(c, "/bookings/new/import", files={"file": ("a.xlsx", xlsx)}, htmx=True),
            post(c, "/bookings/new/history", {"history_ids": [str(old_item["id"])]}, htmx=True),
            post(c, "/bookings/new/custody", {"custody_ids": [str(reg[0].id)]}, htmx=True),
            post(c, "/instruments/to-booking", {"ids": [str(reg[1].id)]}, htmx=True),
            post(c, "/bookings/new/submit", {**BOOKING, "mobile": "1"}),  # refused, kept
        )
    assert [r.status_code for r in results] == [200] * len(results), [r.text for r in results]
    drafts = await Booking.select().where(Booking.status == "draft")
    assert len(drafts) == 1
    rows = await BookingItem.select(BookingItem.name).where(BookingItem.booking == drafts[0]["id"])
    assert sorted(r["name"] for r in rows) == sorted(
        ["温度计3", "温度计2", "温度计7", "温度计8", old_item["name"], "托管1", "托管2"]
    )
    assert await Instrument.count() == 2


async def test_nothing_ticked_in_a_form_without_draft_makes_none(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    r = await post(client, "/bookings/new/items/delete", {}, htmx=True)
    assert r.status_code == 200 and "请先勾选要删除的器具" in r.text
    r = await post(client, "/bookings/new/import", {}, htmx=True)
    assert r.status_code == 200 and "请选择" in r.text
    r = await client.get("/bookings/new/items?edit=1", headers={"HX-Request": "true"})
    assert r.status_code == 404
    assert await Booking.count() == 0


async def test_submit_from_the_blank_form(client: AsyncTestClient) -> None:
    await company_user(client)
    r = await post(client, "/bookings/new/submit", BOOKING)
    assert r.status_code == 200 and "请至少添加一个器具" in r.text
    # The draft made by that 提交 keeps what was typed; the next 添加器具 fills it.
    await add_item(client, "new", instrument(1))
    r = await post(client, "/bookings/new/submit", BOOKING)
    assert r.status_code == 303 and "submitted=YY" in r.headers["location"]
    assert await Booking.count() == 1
    assert (await Booking.select().first())["status"] == "pending"
    # The next 预约送检 is the blank form again.
    assert await open_form(client) == "new"


async def test_double_submit_of_a_form_opened_blank(client: AsyncTestClient) -> None:
    """The form's URLs say "new"; once the draft is made its section names it, so a second
    提交 finds the booking submitted (one booking, one number) instead of a new draft."""
    await company_user(client)
    r = await add_item(client, "new", instrument(1))
    named = re.search(r'name="draft_id" value="(\d+)"', r.text)
    assert named, r.text
    form = {**BOOKING, "draft_id": named.group(1)}
    async with at_once(client) as c:
        first, second = await asyncio.gather(
            *[post(c, "/bookings/new/submit", form) for _ in range(2)]
        )
    assert first.status_code == second.status_code == 303
    r = await post(client, "/bookings/new/submit", form)  # a third, after both came back
    assert r.status_code == 303 and r.headers["location"] == first.headers["location"]
    assert await Booking.count() == 1
    assert (await Booking.select().first())["status"] == "pending"
