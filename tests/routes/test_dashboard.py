"""首页 as a dashboard (#12 item 1): every count equals the rows of the list it links to;
counts stay inside the tenancy scope (a parent's include its subsidiaries); the chart of
certificates issued per week buckets by China-time weeks at any hour."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import pytest
from litestar.testing import AsyncTestClient

from app import clock
from app.clock import now, today
from app.security.sessions import auth_changed
from app.services import home, weekly
from app.services.tenancy import Scope
from app.tables import Certificate, Enterprise, Order, OrderItem, User
from tests.factories import (
    make_booking,
    make_certificate,
    make_enterprise,
    make_instrument,
    make_sms_message,
    make_user,
)
from tests.helpers import (
    approved_booking,
    company_user,
    lab_certificate,
    lab_order,
    login,
    make_admin,
    submitted_booking,
)

TILE = re.compile(r'data-count="(\w+)" href="([^"]+)"><span class="dash-n">([^<]+)</span>')


def tiles(html: str) -> dict[str, tuple[str, str]]:
    """The dashboard's counts: key → (link, number as shown)."""
    return {k: (href.replace("&amp;", "&"), n) for k, href, n in TILE.findall(html)}


def shown_rows(html: str, table_id: str | None = None) -> int:
    """Rows of the list's table (not its 暂无数据 row); of the table with ``table_id``
    when the page has several."""
    if table_id:
        html = html[html.index(f'id="{table_id}"') :]
    body = html[html.index("<tbody") : html.index("</tbody>")]
    rows = re.findall(r"<tr[^>]*>.*?</tr>", body, re.S)
    return len([r for r in rows if 'class="empty"' not in r])


async def _enterprise_of(username: str) -> Enterprise:
    user = await User.objects().get(User.username == username)
    return await Enterprise.objects().get(Enterprise.id == user.enterprise)


async def _customer_rows(client: AsyncTestClient) -> Enterprise:
    """A company with one row of each state the dashboard counts (and rows it must not)."""
    form = await company_user(client, 1)
    ent = await _enterprise_of(form["username"])
    await submitted_booking(client)  # 待审核
    await make_booking(ent, status="rejected", booking_no="YYREJ01")  # 已驳回
    booking = await approved_booking(client, items=4)
    unique = await lab_order(client, booking["booking_no"], "DD001", n=4)
    await OrderItem.update({OrderItem.status: "testing"}).where(OrderItem.unique_no == unique[0])
    await OrderItem.update({OrderItem.status: "ready"}).where(OrderItem.unique_no == unique[1])
    assert (await lab_certificate(client, "ZS-1", unique[1], paid=True)).status_code == 200
    assert (await lab_certificate(client, "ZS-2", unique[2], paid=False)).status_code == 200
    assert (await lab_certificate(client, "ZS-3", unique[3], paid=True)).status_code == 200
    await Certificate.update({Certificate.downloaded_at: now()}).where(
        Certificate.cert_no == "ZS-3"
    )
    await make_instrument(ent, serial_no="OVER", valid_until=today() - timedelta(days=1))
    await make_instrument(ent, serial_no="SOON", valid_until=today() + timedelta(days=5))
    await make_instrument(ent, serial_no="FINE", valid_until=today() + timedelta(days=200))
    return ent


async def _stranger() -> Enterprise:
    """Another company with a row of every kind: never counted."""
    other = await make_enterprise(9)
    await make_user(other, username="stranger")
    await make_booking(other, status="pending", booking_no="YYX01")
    await make_booking(other, status="rejected", booking_no="YYX02")
    await make_instrument(other, serial_no="X1", valid_until=today() - timedelta(days=3))
    await make_instrument(other, serial_no="X2", valid_until=today() + timedelta(days=3))
    await make_certificate(other, 91, paid=True)
    await make_certificate(other, 92, paid=False)
    await OrderItem.update({OrderItem.status: "testing"}).where(OrderItem.unique_no == "WY00091")
    await OrderItem.update({OrderItem.status: "ready"}).where(OrderItem.unique_no == "WY00092")
    return other


EXPECTED = {
    "pending": 1,
    "rejected": 1,
    "testing": 1,
    "ready": 1,
    "cert_ready": 1,
    "cert_unpaid": 1,
    "overdue": 1,
    "due": 1,
}


async def test_every_count_is_the_rows_its_link_shows(client: AsyncTestClient) -> None:
    await _stranger()
    await _customer_rows(client)
    r = await client.get("/")
    assert r.status_code == 200
    found = tiles(r.text)
    assert set(found) == set(EXPECTED)
    for key, (href, n) in found.items():
        assert n == str(EXPECTED[key]), (key, n)
        listed = await client.get(href)
        assert listed.status_code == 200, href
        assert shown_rows(listed.text) == EXPECTED[key], (key, href)
    assert "预约记录" in r.text  # the latest bookings stay


async def test_a_contract_customer_can_download_its_unpaid_new_certificates(
    client: AsyncTestClient,
) -> None:
    """A 协议用户 downloads unpaid certificates too: 可下载的新证书 counts every certificate
    not yet downloaded (ZS-1 paid, ZS-2 unpaid), and links to exactly those."""
    ent = await _customer_rows(client)
    await Enterprise.update({Enterprise.is_contract: True}).where(Enterprise.id == ent.id)
    await auth_changed()  # made behind the app's back: its cached users are read again
    found = tiles((await client.get("/")).text)
    href, n = found["cert_ready"]
    assert n == "2" and href == "/certificates?downloaded=no"
    assert shown_rows((await client.get(href)).text) == 2
    assert found["cert_unpaid"][1] == "1"  # still theirs to pay


async def test_a_parent_counts_its_subsidiaries(client: AsyncTestClient) -> None:
    parent = await make_enterprise(1)
    await make_user(parent, username="parent")
    child = await make_enterprise(2, parent=parent.id)
    await make_user(child, username="child")
    await _stranger()
    for ent in (parent, child):
        await make_booking(ent, status="pending", booking_no=f"YYP{ent.id}")
        await make_instrument(ent, serial_no="O", valid_until=today() - timedelta(days=2))
    await make_certificate(child, 5, paid=True)
    await login(client, "parent", "Secret123x")
    found = tiles((await client.get("/")).text)
    assert found["pending"][1] == "2"
    assert found["overdue"][1] == "2"
    assert found["cert_ready"][1] == "1"
    for key in ("pending", "overdue", "cert_ready"):
        listed = await client.get(found[key][0])
        assert shown_rows(listed.text) == int(found[key][1]), key
    await client.post("/logout")
    await login(client, "child", "Secret123x")
    found = tiles((await client.get("/")).text)
    assert found["pending"][1] == "1"  # not the parent's
    assert found["cert_ready"][1] == "1"


async def test_admin_counts_link_to_their_rows(client: AsyncTestClient) -> None:
    await make_admin()
    ent = await make_enterprise(3)
    await make_booking(ent, status="pending", booking_no="YYA01")
    await make_sms_message("13800000001", status="failed")
    await make_sms_message("13800000002", status="failed", created_at=now() - timedelta(hours=25))
    await make_sms_message("13800000003", status="sent")
    old = now() - timedelta(days=20)
    stale = Order(order_no="DD-STALE", enterprise=ent.id, created_at=old)
    await stale.save()
    await OrderItem(order=stale.id, enterprise=ent.id, unique_no="S-1", name="表").save()
    done = await make_certificate(ent, 7)  # an order whose instrument has its certificate
    await Order.update({Order.created_at: old}).where(Order.order_no == "DD00007")
    recent = Order(order_no="DD-NEW", enterprise=ent.id)
    await recent.save()
    await OrderItem(order=recent.id, enterprise=ent.id, unique_no="N-1", name="表").save()
    assert done.id
    await login(client, "admin", "Admin12345x")
    r = await client.get("/")
    found = tiles(r.text)
    assert found["sms_failed"][1] == "1"
    assert found["stale_orders"][1] == "1"
    assert found["review_bookings"][1] == "1"
    sms = await client.get(found["sms_failed"][0])
    assert shown_rows(sms.text) == 1 and "13800000001" in sms.text
    orders = await client.get(found["stale_orders"][0])
    assert shown_rows(orders.text, "order-table") == 1 and "DD-STALE" in orders.text
    bookings = await client.get(found["review_bookings"][0])
    assert shown_rows(bookings.text) == 1


async def test_the_chart_counts_certificates_of_the_scope_per_week(
    client: AsyncTestClient,
) -> None:
    await _stranger()
    ent = await make_enterprise(1)
    await make_user(ent, username="one")
    await make_certificate(ent, 1)
    await make_certificate(ent, 2)
    old = await make_certificate(ent, 3)
    await Certificate.update({Certificate.created_at: now() - timedelta(days=7)}).where(
        Certificate.id == old.id
    )
    await login(client, "one", "Secret123x")
    html = (await client.get("/")).text
    assert "<svg" in html and 'role="img"' in html
    bars = re.findall(r'<rect class="chart-bar[^"]*"[^>]*data-n="(\d+)"', html)
    assert len(bars) == 12
    assert bars[-1] == "2" and bars[-2] == "1" and sum(map(int, bars)) == 3
    assert "style=" not in html.split("<svg", 1)[1].split("</svg>", 1)[0]


async def test_the_chart_tally_files_each_certificate_under_its_china_week() -> None:
    """The triggers that keep the chart's tally put a certificate in the China-time week
    of its created_at (Monday 00:00 +08:00 is Sunday 16:00 UTC), on insert, when moved
    and when deleted, on both databases."""
    ent = await make_enterprise(1)
    sunday_night = datetime(2026, 11, 29, 15, 59, tzinfo=UTC)  # Sunday 23:59 in China
    monday = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)  # Monday 00:00 in China
    a, b = await make_certificate(ent, 1), await make_certificate(ent, 2)
    for cert, at in ((a, sunday_night), (b, monday)):
        await Certificate.update({Certificate.created_at: at}).where(Certificate.id == cert.id)
    weeks = [date(2026, 11, 23), date(2026, 11, 30)]
    assert await home.issued_per_week(Scope(1, ent.id, (ent.id,)), weeks) == [1, 1]
    await Certificate.update({Certificate.created_at: monday}).where(Certificate.id == a.id)
    assert await home.issued_per_week(Scope(1, ent.id, (ent.id,)), weeks) == [0, 2]
    await Certificate.delete().where(Certificate.id == b.id)
    assert await home.issued_per_week(Scope(1, ent.id, (ent.id,)), weeks) == [0, 1]


@pytest.mark.parametrize(
    "at",
    [
        "2026-11-29T23:30:00+08:00",  # Sunday night in China, Sunday afternoon in UTC
        "2026-11-30T00:30:00+08:00",  # Monday just after midnight in China, Sunday in UTC
        "2026-11-30T07:59:00+08:00",
        "2026-11-30T08:30:00+08:00",
    ],
)
def test_weeks_are_china_weeks_at_any_hour(monkeypatch: pytest.MonkeyPatch, at: str) -> None:
    instant = datetime.fromisoformat(at)
    monkeypatch.setattr(clock, "OFFSET", instant - datetime.now(UTC))
    weeks = weekly.chart_weeks()
    monday = date(2026, 11, 23) if instant.day == 29 else date(2026, 11, 30)
    assert len(weeks) == 12
    assert weeks[-1] == monday and all(w.weekday() == 0 for w in weeks)
    assert weeks[0] == monday - timedelta(weeks=11)
    # A stamp just before the China Monday midnight is the week before.
    start = clock.day_start(monday)
    counts = weekly.week_counts([start - timedelta(seconds=1), start], weeks)
    assert counts[-1] == 1 and counts[-2] == 1


async def test_a_status_list_does_not_promise_to_refresh(client: AsyncTestClient) -> None:
    """The 首页's 检测中/待取件 lists are not polled: they do not say they refresh (the
    lookup by 大单号 does)."""
    await company_user(client)
    listed = await client.get("/query/progress?status=testing")
    assert listed.status_code == 200 and "检测中的器具" in listed.text
    assert "自动刷新" not in listed.text and "data-poll" not in listed.text
    assert "自动刷新" in (await client.get("/query/progress")).text
