"""首页 as a dashboard (#12 item 1) in the browser at 1366×900 and 390×844: after a booking,
an order, certificates and an overdue instrument exist, clicking each count lands on a list
showing that many rows; the chart is drawn (SVG, no script) with its text alternative."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from playwright.async_api import expect

from app.clock import now, today
from app.tables import Certificate, Order, OrderItem
from tests.browser.helpers import log_in, shot
from tests.factories import (
    make_booking,
    make_certificate,
    make_enterprise,
    make_instrument,
    make_sms_message,
    make_user,
)
from tests.helpers import make_admin

PASSWORD = "Secret123x"
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1366, "height": 900}},
    "phone": {
        "viewport": {"width": 390, "height": 844},
        "device_scale_factor": 3,
        "is_mobile": True,
        "has_touch": True,
    },
}
_numbers = itertools.count(700)


@pytest.fixture(params=list(VIEWPORTS))
async def page(request: pytest.FixtureRequest, browser: Any, server: str) -> AsyncIterator[Any]:
    """conftest's page at the issue's widths; fails on any CSP violation or JS error."""
    context = await browser.new_context(base_url=server, locale="zh-CN", **VIEWPORTS[request.param])
    pg = await context.new_page()
    pg.viewport_name = request.param
    problems: list[str] = []
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    pg.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    yield pg
    await context.close()
    assert not problems, problems


async def _company(n: int) -> str:
    """A company with a row in every state the dashboard counts; its login."""
    ent = await make_enterprise(n)
    username = f"dash{n}"
    await make_user(ent, PASSWORD, username=username)
    await make_booking(ent, status="pending", booking_no=f"YYD{n}01")
    await make_booking(ent, status="pending", booking_no=f"YYD{n}02")
    await make_booking(ent, status="rejected", booking_no=f"YYD{n}03")
    await make_booking(ent, status="approved", booking_no=f"YYD{n}04")
    k = [next(_numbers) for _ in range(4)]
    await make_certificate(ent, k[0], paid=True)  # ready to download
    await make_certificate(ent, k[1], paid=False)
    done = await make_certificate(ent, k[2], paid=True)
    await Certificate.update({Certificate.downloaded_at: now()}).where(Certificate.id == done.id)
    await make_certificate(ent, k[3], paid=True)
    await OrderItem.update({OrderItem.status: "testing"}).where(
        OrderItem.unique_no.is_in([f"WY{k[0]:05d}", f"WY{k[1]:05d}"])
    )
    await OrderItem.update({OrderItem.status: "ready"}).where(
        OrderItem.unique_no == f"WY{k[2]:05d}"
    )
    await make_instrument(ent, serial_no="D-OVER", valid_until=today() - timedelta(days=3))
    await make_instrument(ent, serial_no="D-SOON", valid_until=today() + timedelta(days=10))
    await make_instrument(ent, serial_no="D-FINE", valid_until=today() + timedelta(days=300))
    return username


async def _rows_shown(page: Any) -> int:
    rows = page.locator("table.data-table tbody tr:not(:has(td.empty))")
    return await rows.count()


async def test_each_count_opens_a_list_of_that_many_rows(page: Any) -> None:
    n = 60 + (1 if page.viewport_name == "desktop" else 2)
    username = await _company(n)
    await _company(n + 10)  # another company: never counted
    await log_in(page, username, PASSWORD)
    await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()
    chart = page.locator("svg.dash-chart")
    await expect(chart).to_be_visible()
    assert await chart.locator("rect.chart-bar").count() == 12
    await expect(chart.locator("title")).to_have_text("近12周每周出具的证书数量")
    await shot(page, "dashboard-home")
    tiles = page.locator("a.dash-tile")
    keys = [await t.get_attribute("data-count") for t in await tiles.all()]
    expected = {
        "pending": 2,
        "rejected": 1,
        "testing": 2,
        "ready": 1,
        "cert_ready": 2,
        "cert_unpaid": 1,
        "overdue": 1,
        "due": 1,
    }
    assert set(keys) == set(expected)
    for key in keys:
        tile = page.locator(f'a.dash-tile[data-count="{key}"]')
        number = int(await tile.locator(".dash-n").inner_text())
        assert number == expected[key], key
        await tile.click()
        await expect(page.locator("table.data-table").first).to_be_visible()
        assert await _rows_shown(page) == number, (key, page.url)
        if key == "testing":
            await shot(page, "dashboard-testing-list")
        await page.goto("/")
        await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()


async def test_admin_counts_open_their_rows(page: Any) -> None:
    await make_admin()
    ent = await make_enterprise(80)
    await make_booking(ent, status="pending", booking_no="YYA8001")
    await make_booking(ent, status="approved", booking_no="YYA8002")
    await make_sms_message("13800000081", status="failed")
    await make_sms_message("13800000082", status="failed")
    await make_sms_message("13800000083", status="failed", created_at=now() - timedelta(days=2))
    await make_sms_message("13800000084", status="sent")
    late = Order(order_no="DD-LATE", enterprise=ent.id, created_at=now() - timedelta(days=30))
    await late.save()
    await OrderItem(order=late.id, enterprise=ent.id, unique_no="L-1", name="表").save()
    fresh = Order(order_no="DD-FRESH", enterprise=ent.id)
    await fresh.save()
    await OrderItem(order=fresh.id, enterprise=ent.id, unique_no="F-1", name="表").save()
    await log_in(page, "admin", "Admin12345x")
    await expect(page.get_by_role("heading", name="首页", level=1)).to_be_visible()
    await shot(page, "dashboard-admin-home")
    expected = {"review_bookings": 1, "sms_failed": 2, "stale_orders": 1}
    for key, n in expected.items():
        tile = page.locator(f'a.dash-tile[data-count="{key}"]')
        assert int(await tile.locator(".dash-n").inner_text()) == n, key
        await tile.click()
        table = "#order-table" if key == "stale_orders" else "table.data-table"
        rows = page.locator(f"{table} tbody tr:not(:has(td.empty))")
        await expect(rows).to_have_count(n)
        if key == "sms_failed":
            await shot(page, "dashboard-admin-sms")
        await page.goto("/")
