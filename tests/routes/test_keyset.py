"""Keyset pages (issue #15): 预约记录 pages by where a page starts, newest first, with
首页 / 上一页 / 下一页 / 末页 keeping the filters; its total comes from the tally (or a
bounded count when filtered); hostile cursors give a page, never a 500."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app.services import audit, tallies
from app.tables import AuditLog, Booking, Certificate, Enterprise, OrderItem, SmsMessage
from tests.factories import make_booking, make_enterprise, make_instrument
from tests.helpers import approved_booking, company_user, lab_order, login, make_admin

PER_PAGE = 20


def numbers(html: str) -> list[str]:
    return re.findall(r">(YY\d{8}\d{6})</a>", html)


def links(html: str) -> dict[str, str]:
    pager = html[html.index('class="pager"') :]
    pager = pager[: pager.index("</nav>")]
    return {
        label: unescape(href) for href, label in re.findall(r'<a href="([^"]+)">([^<]+)</a>', pager)
    }


async def company_with(client: AsyncTestClient, n: int, **over: Any) -> list[str]:
    """A logged-in company with ``n`` bookings; their 预约单号, newest first."""
    form = await company_user(client)
    ent = await Enterprise.objects().get(Enterprise.uscc == form["uscc"])
    made = [await make_booking(ent, items=1, **over) for _ in range(n)]
    return [b.booking_no for b in reversed(made)]


async def test_pages_walk_forward_and_back_through_the_records(client: AsyncTestClient) -> None:
    newest_first = await company_with(client, 45)
    r = await client.get("/bookings")
    assert numbers(r.text) == newest_first[:20] and "共 45 条" in r.text
    first = links(r.text)
    assert set(first) == {"下一页", "末页"}  # no way further up from the newest

    r = await client.get(first["下一页"])
    assert numbers(r.text) == newest_first[20:40]
    assert set(links(r.text)) == {"首页", "上一页", "下一页", "末页"}
    r = await client.get(links(r.text)["下一页"])
    assert numbers(r.text) == newest_first[40:]
    assert set(links(r.text)) == {"首页", "上一页"}  # the oldest reached
    r = await client.get(links(r.text)["上一页"])
    assert numbers(r.text) == newest_first[20:40]

    # 末页: the oldest 20 rows; up from there, the 20 before them.
    r = await client.get(first["末页"])
    assert numbers(r.text) == newest_first[25:] and set(links(r.text)) == {"首页", "上一页"}
    r = await client.get(links(r.text)["上一页"])
    assert numbers(r.text) == newest_first[5:25]
    r = await client.get(links(r.text)["上一页"])
    assert numbers(r.text) == newest_first[:5]  # pages start where they start: a short top
    assert set(links(r.text)) == {"下一页", "末页"}


async def test_filters_ride_along_and_totals_follow_the_filter(client: AsyncTestClient) -> None:
    await company_with(client, 25, status="approved")
    r = await client.get("/bookings?status=approved")
    assert "共 25 条" in r.text
    nxt = links(r.text)["下一页"]
    assert "status=approved" in nxt and "after=" in nxt
    assert len(numbers((await client.get(nxt)).text)) == 5
    assert "共 0 条" in (await client.get("/bookings?status=rejected")).text
    # A search is counted (bounded): past the limit it says so.
    r = await client.get("/bookings?q=YY")
    assert "共 25 条" in r.text


async def test_a_long_filtered_count_stops_at_its_limit(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await company_with(client, 6)
    monkeypatch.setattr(tallies, "COUNT_LIMIT", 5)
    assert "共 5+ 条" in (await client.get("/bookings?q=YY")).text
    assert "共 6 条" in (await client.get("/bookings")).text  # the tally is exact


@pytest.mark.parametrize(
    "query",
    [
        "after=abc",
        "before=-1",
        "after=99999999999999999999999",
        "after=0",
        "before=999999999",
        "last=yes",
        "after=1&before=2&last=1",
        "after=%00",
        "page=99999999999999999999",
    ],
)
async def test_hostile_cursors_give_a_page(client: AsyncTestClient, query: str) -> None:
    newest_first = await company_with(client, 3)
    r = await client.get(f"/bookings?{query}")
    assert r.status_code == 200
    assert numbers(r.text) == newest_first  # a bad or spent cursor: the nearest end


async def test_a_page_whose_rows_went_away_shows_the_nearest_end(
    client: AsyncTestClient,
) -> None:
    newest_first = await company_with(client, 30)
    r = await client.get("/bookings")
    nxt = links(r.text)["下一页"]
    await Booking.delete().where(Booking.booking_no.is_in(newest_first[20:]))
    r = await client.get(nxt)
    assert numbers(r.text) == newest_first[:20] and "共 20 条" in r.text


# --------------------------------------------------------------------------- 平台管理's lists


async def admin_client(client: AsyncTestClient) -> None:
    await make_admin()
    r = await login(client, "admin", "Admin12345x")
    assert r.status_code in (200, 303)


async def test_review_list_pages_and_counts_every_enterprise(client: AsyncTestClient) -> None:
    first, second = await make_enterprise(1), await make_enterprise(2)
    made = [await make_booking((first, second)[k % 2], items=1) for k in range(23)]
    await make_booking(first, status="approved")
    await make_booking(first, items=0, status="draft")  # never listed
    await admin_client(client)
    r = await client.get("/admin/bookings")  # 待审核 by default
    assert "共 23 条" in r.text and numbers(r.text) == [b.booking_no for b in made[::-1][:20]]
    r = await client.get(links(r.text)["下一页"])
    assert numbers(r.text) == [b.booking_no for b in made[2::-1]]
    assert "共 24 条" in (await client.get("/admin/bookings?status=all")).text
    assert "共 1 条" in (await client.get("/admin/bookings?status=approved")).text


async def test_audit_and_sms_lists_page_with_their_tallies(client: AsyncTestClient) -> None:
    for k in range(25):
        await audit.record("提交预约", detail=f"D{k:02d}")
        await SmsMessage.insert(SmsMessage(phone=f"1390000{k % 2:04d}", kind="code", text="x"))
    await admin_client(client)  # logs 登录 too
    r = await client.get("/admin/audit?event=提交预约")
    assert "共 25 条" in r.text and "D24" in r.text and "D04" not in r.text
    r = await client.get(links(r.text)["下一页"])
    assert "D04" in r.text and "D05" not in r.text and "event=" in links(r.text)["首页"]
    total = await AuditLog.count()
    assert f"共 {total} 条" in (await client.get("/admin/audit")).text
    assert "共 25 条" in (await client.get("/admin/sms")).text
    r = await client.get("/admin/sms?phone=13900000001")
    assert "共 12 条" in r.text and "下一页" not in r.text


# --------------------------------------------------------------------------- sorted lists


async def walk(client: AsyncTestClient, url: str, pattern: str) -> tuple[list[str], list[str]]:
    """The rows (``pattern`` matches each row's identity) page by page with 下一页 from the
    first page, and with 上一页 from 末页: each way, in the list's order."""

    def shown(html: str) -> list[str]:
        return list(dict.fromkeys(re.findall(pattern, html)))  # phone cards repeat rows

    down: list[str] = []
    r = await client.get(url)
    while True:
        assert r.status_code == 200
        down += shown(r.text)
        if "下一页" not in links(r.text):
            break
        r = await client.get(links(r.text)["下一页"])
    up: list[str] = []
    r = await client.get(links((await client.get(url)).text).get("末页", url))
    while True:
        up = shown(r.text) + up
        if "上一页" not in links(r.text):
            break
        r = await client.get(links(r.text)["上一页"])
    return down, up


async def test_the_register_pages_by_due_date_with_ties_and_blanks(
    client: AsyncTestClient,
) -> None:
    form = await company_user(client)
    ent = await Enterprise.objects().get(Enterprise.uscc == form["uscc"])
    made = []
    for k in range(47):  # ties on a date, and every fifth without 有效期至
        due = None if k % 5 == 0 else date(2027, 1, 1) + timedelta(days=k % 7)
        made.append(await make_instrument(ent, serial_no=f"S{k:03d}", valid_until=due))
    dated = sorted((m for m in made if m.valid_until), key=lambda m: (m.valid_until, m.id))
    blank = [m for m in made if not m.valid_until]
    soonest = [m.serial_no for m in dated + blank]
    latest = [m.serial_no for m in dated[::-1] + blank[::-1]]
    for url, expected in (("/instruments", soonest), ("/instruments?sort=-valid_until", latest)):
        down, up = await walk(client, url, r"S\d{3}")
        assert down == expected and up == expected, url
    assert "共 47 条" in (await client.get("/instruments")).text
    r = await client.get("/instruments?after=5&at=not-a-date")  # a forged cursor
    assert r.status_code == 200 and re.findall(r"S\d{3}", r.text)[0] == soonest[0]


async def test_certificates_page_by_completion_newest_first(client: AsyncTestClient) -> None:
    await company_user(client)
    booking = await approved_booking(client)
    await lab_order(client, booking["booking_no"], "DD900", n=26)
    ent = (await Booking.objects().get(Booking.booking_no == booking["booking_no"])).enterprise
    items = await OrderItem.select(OrderItem.id).order_by(OrderItem.id)
    made = []
    for k, item in enumerate(items):
        done = None if k % 6 == 0 else date(2026, 10, 1) + timedelta(days=k % 4)
        cert = Certificate(cert_no=f"ZS{k:03d}", item=item["id"], enterprise=ent,
                           completed_on=done, paid=True)  # fmt: skip
        await cert.save()
        made.append(cert)
    dated = sorted((c for c in made if c.completed_on), key=lambda c: (c.completed_on, c.id))
    expected = [c.cert_no for c in dated[::-1] + [c for c in made if not c.completed_on][::-1]]
    down, up = await walk(client, "/certificates", r"ZS\d{3}")
    assert down == expected and up == expected
    assert "共 26 条" in (await client.get("/certificates")).text
    assert "共 6 条" in (await client.get("/certificates?start=2026-10-04")).text  # k % 4 == 3
