"""Every query the growing lists send is served by an index (issue #15, PostgreSQL mode).

The pages are opened as a customer and as the platform admin while every query the app
sends is recorded; each is then explained with sequential scans made a last resort
(``enable_seqscan = off``): a plan that still scans a table sequentially has no index to
use, and at 1,000,000 rows it would read them all. The plans at 1,000,000 rows themselves
are saved by bench/scale.py --plans into bench/plans/.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import asyncpg
import pytest
from litestar.testing import AsyncTestClient
from piccolo.engine.postgres import PostgresEngine

from app import clock, compiled
from app.services import audit, orders, tallies
from app.services.listing import Cursor
from app.tables import Certificate, Enterprise, Order, OrderItem, SmsMessage
from tests.factories import (
    make_booking,
    make_certificate,
    make_email_message,
    make_enterprise,
    make_instrument,
)
from tests.helpers import PRODUCTION, SETTINGS, company_user, login, make_admin

pytestmark = pytest.mark.skipif(
    not SETTINGS.is_postgres, reason="query plans are PostgreSQL's (production mode)"
)
assert PRODUCTION or not SETTINGS.is_postgres  # the plans are the production database's

CUSTOMER_PAGES = [
    "/",
    "/bookings",
    "/bookings?status=pending",
    "/bookings?last=1",
    "/bookings?after={mid}",
    "/bookings?before={mid}",
    "/instruments",
    "/instruments?sort=-valid_until",
    "/instruments?last=1",
    "/instruments?after={instrument}&at=2027-01-03",
    "/instruments?before={instrument}",
    "/certificates",
    "/certificates?last=1",
    "/certificates?after=1&at=2026-10-01",
    "/query/progress?q=DD",
    # The 首页's counts (#12; "/" above) and the lists they link to.
    "/query/progress?status=testing",
    "/query/progress?status=ready&after={mid}",
    "/certificates?paid=paid&downloaded=no",
    "/certificates?paid=unpaid",
    "/instruments?state=overdue",
    "/instruments?state=due",
    # 预约送检's pickers (htmx): first page, 下一页, 上一页, 末页, a search.
    "/bookings/new/history",
    "/bookings/new/history?after={item}",
    "/bookings/new/history?before={item}",
    "/bookings/new/history?last=1",
    "/bookings/new/history?q=器具",
    "/bookings/new/custody",
    "/bookings/new/custody?after={instrument}&at=2027-01-03",
    "/bookings/new/custody?after={instrument}",
    "/bookings/new/custody?last=1",
    "/bookings/new/custody?q=S0",
]
ADMIN_PAGES = [
    "/admin/bookings",
    "/admin/bookings?status=all",
    "/admin/bookings?after={mid}",
    "/admin/bookings?last=1",
    "/admin/audit",
    "/admin/audit?event=登录",
    "/admin/audit?last=1",
    "/admin/sms",
    "/admin/sms?phone=13900000001",
    "/admin/sms?last=1",
    "/",  # 平台管理's 首页 (#12): 预约审核, SMS failures of 24 h, orders without certificates
    "/admin/sms?status=failed&hours=24",
    "/admin/emails",  # 邮件记录, and of one mailbox
    "/admin/emails?address=a@example.com",
    "/admin/orders",  # 检测业务: 待生成大单的预约 (booking_awaiting_order), the orders
    "/admin/orders?stale=1",  # the 首页's late orders
    # 检测业务's orders and 证书管理: keyset pages over every order and certificate made.
    "/admin/orders?after={order}",
    "/admin/orders?before={order}",
    "/admin/orders?last=1",
    "/admin/orders?q=DD0003",
    "/admin/orders?stale=1&after={order}",
    "/admin/orders?stale=1&last=1",
    "/admin/certificates",
    "/admin/certificates?after={certificate}",
    "/admin/certificates?before={certificate}",
    "/admin/certificates?last=1",
    "/admin/certificates?q=ZS0003",
]


def seq_scans(plan: dict[str, Any]) -> Iterator[str]:
    if plan.get("Node Type") == "Seq Scan":
        yield plan["Relation Name"]
    for child in plan.get("Plans", []):
        yield from seq_scans(child)


def indexes(plan: dict[str, Any]) -> Iterator[str]:
    if "Index Name" in plan:
        yield plan["Index Name"]
    for child in plan.get("Plans", []):
        yield from indexes(child)


async def _usable_indexes(
    conn: asyncpg.Connection, table: str, sql: str, args: tuple[Any, ...]
) -> set[str]:
    """The indexes ``sql``'s plan reads when ``table`` has only its primary key and its
    partial indexes (dropped in a transaction rolled back): whether the query's WHERE lets
    the planner use a partial index, whatever small data makes the others cost."""
    others = await conn.fetch(
        "SELECT i.indexrelid::regclass::text AS name FROM pg_index i"
        " WHERE i.indrelid = $1::regclass AND NOT i.indisprimary AND i.indpred IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        table,
    )
    dropping = conn.transaction()
    await dropping.start()
    try:
        for row in others:
            await conn.execute(f'DROP INDEX "{row["name"]}"')
        [row] = await conn.fetch(f"EXPLAIN (FORMAT JSON) {sql}", *args)
        return set(indexes(json.loads(row[0])[0]["Plan"]))
    finally:
        await dropping.rollback()  # the indexes stay


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...]]]:
    """Every SELECT the app sends while the test runs, with its arguments."""
    sent: list[tuple[str, tuple[Any, ...]]] = []
    run = PostgresEngine.run_querystring

    async def recording(self: PostgresEngine, querystring: Any, in_pool: bool = True) -> Any:
        sql, args = querystring.compile_string(engine_type=self.engine_type)
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            sent.append((sql, tuple(args)))
        return await run(self, querystring, in_pool)

    fetch = compiled.fetch

    async def recording_compiled(engine: PostgresEngine, sql: str, args: Any) -> Any:
        if sql.lstrip().upper().startswith(("SELECT", "WITH")):
            sent.append((sql, tuple(args)))
        return await fetch(engine, sql, args)

    monkeypatch.setattr(PostgresEngine, "run_querystring", recording)
    # app/compiled.py's queries go to the connection without Piccolo.
    monkeypatch.setattr(compiled, "fetch", recording_compiled)
    return sent


async def test_the_growing_lists_read_through_indexes(
    client: AsyncTestClient, recorded: list[tuple[str, tuple[Any, ...]]]
) -> None:
    form = await company_user(client)
    mine = await Enterprise.objects().get(Enterprise.uscc == form["uscc"])
    other = await make_enterprise(2)
    made = []
    for k in range(60):
        status = ("pending", "approved", "rejected")[k % 3]
        made.append(await make_booking((mine, other)[k % 2], items=1, status=status))
        await audit.record(("登录", "提交预约")[k % 2], detail=str(k))
        await SmsMessage.insert(SmsMessage(phone=f"1390000{k % 3:04d}", kind="code", text="x"))
        await make_email_message(("a@example.com", "b@example.com")[k % 2])
        due = None if k % 5 == 0 else date(2027, 1, 1) + timedelta(days=k % 7)
        await make_instrument(mine, serial_no=f"S{k:03d}", valid_until=due)
    # Orders: some late and still waiting for a certificate, the rest with all of theirs.
    for k in range(40):
        cert = await make_certificate((mine, other)[k % 2], k)
        if k % 4 == 0:
            await OrderItem.delete().where(OrderItem.id == cert.item)
            order = await Order.select(Order.id).where(Order.order_no == f"DD{k:05d}").first()
            await OrderItem.insert(
                OrderItem(
                    order=order["id"], enterprise=cert.enterprise, unique_no=f"L{k}", name="表"
                )
            )
            old = clock.now() - timedelta(days=60)
            await Order.update({Order.created_at: old}).where(Order.id == order["id"])
    # Most approved bookings have their lab order already, as at a working institute.
    for k, booking in enumerate(b for b in made if b.status == "approved"):
        if k >= 4:
            await Order.insert(
                Order(order_no=f"DB{k:05d}", booking=booking.id, enterprise=booking.enterprise)
            )
    mid = made[30].id
    cert = (await Certificate.objects().get(Certificate.cert_no == "ZS00021")).id
    order = (await Order.objects().get(Order.order_no == "DD00021")).id
    instrument = item = mid  # any id: the cursor's query is what is explained
    pages: list[tuple[str, tuple[Any, ...]]] = []  # the pages' queries (not the set-up's)

    async def open_pages(urls: list[str]) -> None:
        for url in urls:
            start = len(recorded)
            ids = {"instrument": instrument, "item": item, "order": order, "certificate": cert}
            r = await client.get(url.format(mid=mid, **ids))
            assert r.status_code == 200, url
            pages.extend(recorded[start:])

    await open_pages(CUSTOMER_PAGES)
    await make_admin()
    assert (await login(client, "admin", "Admin12345x")).status_code in (200, 303)
    await open_pages(ADMIN_PAGES)
    # The list the 首页's late orders link to, with its total checked.
    start = len(recorded)
    late_list = await orders.orders(Cursor(), 20, before=orders.stale_before(14))
    assert late_list.total == tallies.Total(10)
    assert (await orders.approved_without_order(1, 50))[1].n == 4  # made[k], k % 3 == 1
    pages.extend(recorded[start:])
    assert any("tally" in sql for sql, _ in pages) and any("booking" in sql for sql, _ in pages)

    conn = await asyncpg.connect(SETTINGS.database_url)
    try:
        await conn.execute("ANALYZE")
        await conn.execute("SET enable_seqscan = off")
        unindexed = {}
        walks: dict[str, set[str]] = {}
        late: dict[str, set[str]] = {}
        awaiting: dict[str, set[str]] = {}
        for sql, args in dict.fromkeys(pages):
            [row] = await conn.fetch(f"EXPLAIN (FORMAT JSON) {sql}", *args)
            plan = json.loads(row[0])[0]["Plan"]
            if "FROM booking_item k" in sql:  # the history picker's walk
                walks[sql] = set(indexes(plan))
            if orders.WAITING in sql and "COUNT" in sql.upper():
                late[sql] = set(indexes(plan))
            if orders.AWAITING_ORDER in sql:
                awaiting[sql] = await _usable_indexes(conn, "booking", sql, args)
            if scans := sorted(set(seq_scans(plan))):
                unindexed[sql] = scans
    finally:
        await conn.close()
    assert not unindexed, json.dumps(unindexed, ensure_ascii=False, indent=1)
    # 平台管理's late orders (the 首页's count, the list's total): a range of the partial
    # index of the orders still waiting for a certificate, not their instruments.
    assert len(late) >= 2, list(late)
    for sql, used in late.items():
        assert "lab_order_waiting" in used, (sql, used)
        assert not [i for i in used if i.startswith(("order_item", "certificate"))], (sql, used)
    # 检测业务's 待生成大单的预约 (its count and its page) can read the partial index of the
    # approved bookings without an order, not every approved booking (bench/plans shows
    # PostgreSQL choosing it at 1,000,000 bookings; with this test's few rows any index is
    # as cheap, so the others are taken away first).
    assert len(awaiting) >= 2, list(awaiting)
    for sql, used in awaiting.items():
        assert used == {"booking_awaiting_order"}, (sql, used)
    # The history picker walks the customer's booked instruments by its own index (the
    # primary key, filtered, would read other customers' rows: 1.5M of 1.6M once), and asks
    # the other whether a later booking has the same instrument.
    assert len(walks) >= 5, list(walks)
    for sql, used in walks.items():
        assert "booking_item_history" in used, (sql, used)
        if "NOT EXISTS" in sql:
            assert "booking_item_instrument" in used, (sql, used)
