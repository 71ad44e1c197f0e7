"""Keyset pages (issue #15): 预约记录 pages by where a page starts, newest first, with
首页 / 上一页 / 下一页 / 末页 keeping the filters; its total comes from the tally (or a
bounded count when filtered); hostile cursors give a page, never a 500."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app.services import tallies
from app.tables import Booking, Enterprise
from tests.factories import make_booking
from tests.helpers import company_user

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
