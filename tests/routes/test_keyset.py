"""Keyset pages (issue #15): 预约记录 pages by where a page starts, newest first, with
首页 / 上一页 / 下一页 / 末页 keeping the filters; its total comes from the tally (or a
bounded count when filtered); hostile cursors give a page, never a 500. The pickers of
预约送检 page the same way (【从历史预约数据选择】: each instrument once, as its newest
booking has it; 【从托管器具选择】: the register in 有效期至 order)."""

from __future__ import annotations

import re
from datetime import date, timedelta
from html import unescape
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app import clock
from app.routes import lab_admin
from app.services import audit, bookings, tallies
from app.tables import (
    AuditLog,
    Booking,
    BookingItem,
    Certificate,
    Enterprise,
    Instrument,
    Order,
    OrderItem,
    SmsMessage,
    User,
)
from tests.factories import make_booking, make_certificate, make_enterprise, make_instrument
from tests.helpers import approved_booking, company_user, lab_order, login, make_admin, post

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
        "before=2147483648",  # past PostgreSQL's integer (a row id): was a 500 there
        "after=999999999999999999",
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


# 检测业务 and 证书管理: every order and certificate the institute ever made
STAFF_LISTS = [
    ("/admin/orders", r">(DD\d{5})</a>", "DD"),
    ("/admin/certificates", r'data-label="证书编号"[^>]*>(ZS\d{5})<', "ZS"),
]


async def staff_records(n: int) -> list[int]:
    """``n`` orders DD00000.. each with a certificate ZS00000.. (made oldest first, by
    two enterprises); their numbers ``k``, newest first."""
    first, second = await make_enterprise(1), await make_enterprise(2)
    for k in range(n):
        await make_certificate((first, second)[k % 2], k)
    return list(range(n))[::-1]


@pytest.mark.parametrize(("url", "pattern", "prefix"), STAFF_LISTS)
async def test_staff_lists_page_by_keyset_both_ways_and_searched(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch, url: str, pattern: str, prefix: str
) -> None:
    newest = await staff_records(23)
    await admin_client(client)
    expected = [f"{prefix}{k:05d}" for k in newest]
    r = await client.get(url)
    assert re.findall(pattern, r.text) == expected[:20] and "共 23 条" in r.text
    assert set(links(r.text)) == {"下一页", "末页"} and "page=" not in r.text
    monkeypatch.setattr(lab_admin, "PER_PAGE", 4)
    down, up = await walk(client, url, pattern)
    assert down == expected and up == expected
    r = await client.get(links((await client.get(url)).text)["末页"])
    assert re.findall(pattern, r.text) == expected[-4:]  # 末页: the oldest four
    # A search keeps to its rows on every page, both ways; its total is counted.
    found = [f"{prefix}{k:05d}" for k in newest if f"{k:05d}".startswith("0001")]
    down, up = await walk(client, f"{url}?q={prefix}0001", pattern)
    assert down == found and up == found and len(found) == 10
    r = await client.get(f"{url}?q={prefix}0001")
    assert "共 10 条" in r.text and all("q=" in href for href in links(r.text).values())
    assert "暂无" in (await client.get(f"{url}?q=nothing")).text


async def test_staff_list_totals_are_bounded_or_from_the_tally(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await staff_records(8)
    await admin_client(client)
    monkeypatch.setattr(tallies, "COUNT_LIMIT", 5)
    assert "共 5+ 条" in (await client.get("/admin/orders")).text  # counted up to a limit
    assert "共 5+ 条" in (await client.get("/admin/orders?q=DD")).text
    assert "共 8 条" in (await client.get("/admin/certificates")).text  # the tally: exact
    assert "共 5+ 条" in (await client.get("/admin/certificates?q=ZS")).text
    assert "共 1 条" in (await client.get("/admin/certificates?q=ZS00003")).text


async def test_stale_orders_page_by_keyset(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """?stale=1 (the 首页's link): orders past N days with an instrument still without a
    certificate, paged the same way, the filter kept by every link."""
    newest = await staff_records(12)
    ent = await make_enterprise(3)
    old = clock.now() - timedelta(days=400)
    for k in range(12, 21):  # without certificates: stale once old
        order = Order(order_no=f"DD{k:05d}", enterprise=ent.id)
        await order.save()
        await OrderItem(order=order.id, enterprise=ent.id, unique_no=f"WY{k:05d}", name="表").save()
    await Order.update({Order.created_at: old}).where(Order.order_no != "DD00020")
    await admin_client(client)
    monkeypatch.setattr(lab_admin, "PER_PAGE", 4)
    stale = [f"DD{k:05d}" for k in range(19, 11, -1)]  # DD00020 is new, DD00000.. certified
    down, up = await walk(client, "/admin/orders?stale=1", r">(DD\d{5})</a>")
    assert down == stale and up == stale
    r = await client.get("/admin/orders?stale=1")
    assert "共 8 条" in r.text and all("stale=1" in h for h in links(r.text).values())
    down, _ = await walk(client, "/admin/orders?stale=1&q=DD0001", r">(DD\d{5})</a>")
    assert down == stale and "共 8 条" in (await client.get("/admin/orders?stale=1&q=DD0001")).text
    assert "共 10 条" in (await client.get("/admin/orders?q=DD0001")).text  # DD00010..19
    r = await client.get("/admin/orders?stale=1&q=DD0000")  # certified, none stale
    assert not re.findall(r">(DD\d{5})</a>", r.text) and "共 0 条" in r.text
    assert len(newest) == 12


async def test_a_payment_set_on_page_two_shows_page_two_again(client: AsyncTestClient) -> None:
    """证书管理's 【设为已缴费】 re-renders the list the user was on (its cursor from the
    page's address), not the first page."""
    await staff_records(25)
    await admin_client(client)
    r = await client.get("/admin/certificates")
    second = "http://testserver.local" + links(r.text)["下一页"]
    r = await post(
        client, "/admin/certificates/ZS00002/payment", {"paid": "1"}, headers={"Referer": second}
    )
    assert "证书 ZS00002 已设为已缴费" in r.text
    assert re.findall(STAFF_LISTS[1][1], r.text) == [f"ZS{k:05d}" for k in range(4, -1, -1)]


@pytest.mark.parametrize(("url", "pattern", "prefix"), STAFF_LISTS)
@pytest.mark.parametrize(
    "query",
    [
        "after=abc",
        "before=-1",
        "after=99999999999999999999999",
        "before=999999999999999999",
        "after=999999999999999999",
        "after=0",
        "last=yes",
        "after=1&before=2&last=1",
        "after=%00",
        "page=99999999999999999999",
        "page=3",
        "q=%25&after=1",
        "stale=1&before=abc",
    ],
)
async def test_hostile_staff_list_cursors_give_a_page(
    client: AsyncTestClient, url: str, pattern: str, prefix: str, query: str
) -> None:
    newest = await staff_records(3)
    await admin_client(client)
    r = await client.get(f"{url}?{query}")
    assert r.status_code == 200 and 'class="pager"' in r.text
    shown = re.findall(pattern, r.text)
    everything = [f"{prefix}{k:05d}" for k in newest]
    if "q=" in query or "stale" in query:  # "%" is a LIKE wildcard; none is stale
        assert shown in ([], everything)
    else:
        assert shown == everything  # the nearest end


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


# --------------------------------------------------------------------------- pickers

HX = {"HX-Request": "true"}


def picker_links(html: str) -> dict[str, str]:
    """A picker's pager: its links are htmx GETs (the dialog's body is swapped)."""
    pager = html[html.index('class="pager"') :]
    pager = pager[: pager.index("</nav>")]
    return {
        label: unescape(href)
        for href, label in re.findall(r'<a href="#" hx-get="([^"]+)"[^>]*>([^<]+)</a>', pager)
    }


def picker_ids(html: str, body: str) -> list[int]:
    """The rows a picker shows, by id (each row's tick box, ticked or not)."""
    return [int(i) for i in re.findall(rf'id="{body}-(\d+)"', html)]


async def walk_picker(client: AsyncTestClient, url: str, body: str) -> tuple[list[int], list[int]]:
    """A picker's rows page by page with 下一页 from its first page, and with 上一页 from
    末页 (each way in the list's order); no row twice either way."""
    down: list[int] = []
    r = await client.get(url, headers=HX)
    first = picker_links(r.text)
    while True:
        assert r.status_code == 200 and "<html" not in r.text
        down += picker_ids(r.text, body)
        if "下一页" not in picker_links(r.text):
            break
        r = await client.get(picker_links(r.text)["下一页"], headers=HX)
    up: list[int] = []
    r = await client.get(first.get("末页", url), headers=HX)
    while True:
        up = picker_ids(r.text, body) + up
        if "上一页" not in picker_links(r.text):
            break
        r = await client.get(picker_links(r.text)["上一页"], headers=HX)
    assert len(set(down)) == len(down) and len(set(up)) == len(up)
    return down, up


def tool(serial: str, name: str = "") -> dict[str, Any]:
    return {"name": name or f"器具{serial}", "serial_no": serial, "model": "M-1"}


async def history_company(client: AsyncTestClient) -> Enterprise:
    """A logged-in company whose bookings repeat instruments: 旧名S000..旧名S059 (approved),
    then S030..S089 again under new names (pending), then S090..S119 and S000 again
    (rejected); the user's draft has D000..D004 and S010; another company booked S001..S005
    and X000..X009."""
    form = await company_user(client)
    ent = await Enterprise.objects().get(Enterprise.uscc == form["uscc"])
    user = await User.select(User.id).where(User.enterprise == ent.id).first()
    await make_booking(ent, [tool(f"S{k:03d}", f"旧名S{k:03d}") for k in range(60)], "approved")
    await make_booking(ent, [tool(f"S{k:03d}") for k in range(30, 90)], "pending")
    await make_booking(ent, [tool(f"S{k:03d}") for k in [*range(90, 120), 0]], "rejected")
    drafted = [tool(f"D{k:03d}") for k in range(5)] + [tool("S010")]
    await make_booking(ent, drafted, "draft", created_by=user["id"])
    other = await make_enterprise(9)
    await make_booking(other, [tool(f"S{k:03d}") for k in range(1, 6)], "approved")
    await make_booking(other, [tool(f"X{k:03d}") for k in range(10)], "approved")
    return ent


async def newest_of_each(ent: Enterprise) -> list[int]:
    """The truth: the company's booked rows but its drafts', newest first, each serial once."""
    rows = await BookingItem.raw(
        "SELECT i.id, i.serial_no FROM booking_item i JOIN booking b ON b.id = i.booking"
        " WHERE i.enterprise = {} AND b.status <> 'draft' ORDER BY i.id DESC",
        ent.id,
    )
    seen: dict[str, int] = {}
    for r in rows:
        seen.setdefault(r["serial_no"], r["id"])
    return list(seen.values())


async def test_the_history_picker_pages_each_instrument_once_newest_first(
    client: AsyncTestClient,
) -> None:
    ent = await history_company(client)
    expected = await newest_of_each(ent)
    assert len(expected) == 120
    down, up = await walk_picker(client, "/bookings/new/history", "history-body")
    assert down == expected and up == expected
    items = {r["id"]: r for r in await BookingItem.select()}
    names = {items[i]["serial_no"]: items[i]["name"] for i in down}
    # A repeated instrument is shown as its newest booking has it.
    assert names["S030"] == "器具S030" and names["S000"] == "器具S000"
    assert names["S060"] == "器具S060" and names["S029"] == "旧名S029"
    assert all(items[i]["enterprise"] == ent.id for i in down)  # never another company's
    assert not any(items[i]["serial_no"].startswith("D") for i in down)  # nor a draft's

    r = await client.get("/bookings/new/history", headers=HX)
    assert set(picker_links(r.text)) == {"下一页", "末页"}
    assert "共" not in r.text  # 120 instruments on 3 pages: no count (it would read them all)
    # S010 is in the draft: shown from history (the draft's row does not hide it), marked.
    r = await client.get(picker_links(r.text)["末页"], headers=HX)
    s010 = next(i for i in down if items[i]["serial_no"] == "S010")
    assert re.search(rf'disabled id="history-body-{s010}"[^>]*（已在列表中）', r.text)


async def test_history_pages_that_stop_looking_still_walk_every_instrument(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A page looks at no more than HISTORY_LOOK rows: where repeats or a search leave
    fewer than a page, it says so, and 上一页 / 下一页 go on from where it stopped."""
    ent = await history_company(client)
    monkeypatch.setattr(bookings, "HISTORY_LOOK", 7)
    expected = await newest_of_each(ent)
    down, up = await walk_picker(client, "/bookings/new/history", "history-body")
    assert down == expected and up == expected
    r = await client.get("/bookings/new/history", headers=HX)
    assert len(picker_ids(r.text, "history-body")) == 7  # the draft's 6 rows not looked at
    # The third booking's 31 rows, then the second's 60: 30 of them S030..S059 again.
    r = await client.get(picker_links(r.text)["下一页"], headers=HX)
    while len(picker_ids(r.text, "history-body")) == 7:
        r = await client.get(picker_links(r.text)["下一页"], headers=HX)
    assert "本页只查看了一部分历史记录，点【下一页】继续查找更早的" in r.text


async def test_the_history_picker_searches_the_newest_matching_row(
    client: AsyncTestClient,
) -> None:
    await history_company(client)
    r = await client.get("/bookings/new/history?q=S03", headers=HX)
    ids = picker_ids(r.text, "history-body")
    rows = await BookingItem.select().where(BookingItem.id.is_in(ids))
    assert sorted(row["name"] for row in rows) == [f"器具S03{k}" for k in range(10)]
    assert "共 10 条" in r.text and not picker_links(r.text)  # one page: counted for free
    r = await client.get("/bookings/new/history?q=S0", headers=HX)  # S000..S099: 2 pages
    assert set(picker_links(r.text)) == {"下一页", "末页"}
    r = await client.get(picker_links(r.text)["下一页"], headers=HX)  # the search kept
    assert len(picker_ids(r.text, "history-body")) == 50 and "S1" not in r.text
    # An earlier name finds the instrument as it was booked under that name.
    r = await client.get("/bookings/new/history?q=旧名S03", headers=HX)
    assert "共 10 条" in r.text and "旧名S035" in r.text and "器具S035" not in r.text
    for q in ("X00", "D00"):  # another company's, the draft's
        r = await client.get(f"/bookings/new/history?q={q}", headers=HX)
        assert not picker_ids(r.text, "history-body") and "暂无历史预约器具" in r.text


async def custody_company(client: AsyncTestClient) -> list[str]:
    """A logged-in company with 57 register rows (ties on a date, every fifth without
    有效期至), another company's beside; its serials in the picker's order."""
    form = await company_user(client)
    ent = await Enterprise.objects().get(Enterprise.uscc == form["uscc"])
    made = []
    for k in range(57):
        due = None if k % 5 == 0 else date(2027, 1, 1) + timedelta(days=k % 7)
        made.append(await make_instrument(ent, serial_no=f"S{k:03d}", valid_until=due))
    other = await make_enterprise(9)
    for k in range(5):
        await make_instrument(other, serial_no=f"X{k:03d}", valid_until=date(2026, 1, 1))
    dated = sorted((m for m in made if m.valid_until), key=lambda m: (m.valid_until, m.id))
    return [m.serial_no for m in dated + [m for m in made if not m.valid_until]]


async def test_the_custody_picker_pages_the_register_by_due_date(
    client: AsyncTestClient,
) -> None:
    soonest = await custody_company(client)
    down, up = await walk_picker(client, "/bookings/new/custody", "custody-body")
    serials = {r["id"]: r["serial_no"] for r in await Instrument.select()}
    assert [serials[i] for i in down] == soonest and [serials[i] for i in up] == soonest
    r = await client.get("/bookings/new/custody", headers=HX)
    assert "共 57 条" in r.text and set(picker_links(r.text)) == {"下一页", "末页"}
    r = await client.get("/bookings/new/custody?q=S00", headers=HX)
    assert "共 10 条" in r.text and "X00" not in r.text

    # Ticks ride along: one made on page 1 stays (hidden) on page 2, one of page 2 shows.
    first = picker_ids((await client.get("/bookings/new/custody", headers=HX)).text, "custody-body")
    page2 = picker_links((await client.get("/bookings/new/custody", headers=HX)).text)["下一页"]
    second = picker_ids((await client.get(page2, headers=HX)).text, "custody-body")
    r = await client.get(f"{page2}&custody_ids={first[0]}&custody_ids={second[0]}", headers=HX)
    assert f'<input type="hidden" name="custody_ids" value="{first[0]}">' in r.text
    assert re.search(rf'value="{second[0]}" id="custody-body-{second[0]}" checked', r.text)
    assert "已选 2 项" in r.text


@pytest.mark.parametrize("picker", ["history", "custody"])
@pytest.mark.parametrize(
    "query",
    [
        "after=abc",
        "before=-1",
        "after=99999999999999999999",
        "before=99999999999999999999",
        "after=0",
        "before=999999999",
        "before=2147483648",
        "after=999999999999999999&at=2027-01-01",
        "last=yes",
        "after=1&before=2&last=1",
        "after=%00",
        "after=5&at=not-a-date",
        "page=99999999999999999999",
    ],
)
async def test_hostile_picker_cursors_give_the_nearest_end(
    client: AsyncTestClient, picker: str, query: str
) -> None:
    form = await company_user(client)
    ent = await Enterprise.objects().get(Enterprise.uscc == form["uscc"])
    if picker == "history":
        await make_booking(ent, [tool(f"S{k:03d}") for k in range(3)], "approved")
    else:
        for k in range(3):
            await make_instrument(ent, serial_no=f"S{k:03d}", valid_until=date(2027, 1, 1 + k))
    r = await client.get(f"/bookings/new/{picker}?{query}", headers=HX)
    assert r.status_code == 200
    assert len(picker_ids(r.text, f"{picker}-body")) == 3
