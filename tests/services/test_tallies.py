"""Tallies (issue #15): the totals the lists show, kept by triggers, always equal a fresh
COUNT: after many writes at once (inserts, status changes both ways, deletes, drafts
getting and losing their instruments) with folds running among them."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from typing import Any

import pytest
from piccolo.columns.combination import WhereRaw
from piccolo.engine.postgres import PostgresEngine

from app import clock, compiled
from app.clock import today
from app.enums import BookingStatus, ItemStatus
from app.services import audit, orders, tallies
from app.services import instruments as instruments_service
from app.services.listing import Cursor
from app.services.tenancy import Scope
from app.tables import (
    AuditLog,
    Booking,
    Certificate,
    Instrument,
    Order,
    OrderItem,
    SmsMessage,
    Tally,
)
from tests.factories import make_booking, make_certificate, make_enterprise, make_instrument
from tests.helpers import SETTINGS

STATUSES = [s.value for s in BookingStatus]


async def truth(enterprise_id: int, status: str) -> int:
    """预约记录's rows of one enterprise and status, counted."""
    return await Booking.count().where(
        (Booking.enterprise == enterprise_id)
        & (Booking.status == status)
        & ((Booking.status != BookingStatus.DRAFT) | (Booking.item_count > 0))
    )


async def check(enterprises: list[Any]) -> None:
    for ent in enterprises:
        for status in STATUSES:
            got = await tallies.total(tallies.BOOKING, [ent.id], status)
            assert got.exact and got.n == await truth(ent.id, status), (ent.id, status)
        whole = await tallies.total(tallies.BOOKING, [ent.id])
        assert whole.n == sum([await truth(ent.id, s) for s in STATUSES])
    both = await tallies.total(tallies.BOOKING, [e.id for e in enterprises], "pending")
    assert both.n == sum([await truth(e.id, "pending") for e in enterprises])
    # Over every enterprise (预约审核, 平台管理's 首页): a tally of its own (migration 08:30).
    for status in STATUSES:
        every = await tallies.total(tallies.BOOKING, None, status)
        assert every.n == sum([await truth(e.id, status) for e in enterprises]), status
    every = await tallies.total(tallies.BOOKING, None, ["pending", "approved"])
    want = [await truth(e.id, s) for e in enterprises for s in ("pending", "approved")]
    assert every.n == sum(want)


async def test_tallies_equal_a_fresh_count_after_parallel_writes() -> None:
    rng = random.Random(15)
    enterprises = [await make_enterprise(1), await make_enterprise(2)]
    made = [
        await make_booking(rng.choice(enterprises), items=rng.choice([0, 1]), status=s)
        for s in STATUSES * 6
    ]
    await check(enterprises)

    async def move(booking: Any) -> None:
        await Booking.update({Booking.status: rng.choice(STATUSES)}).where(Booking.id == booking.id)

    async def items(booking: Any) -> None:
        await Booking.update({Booking.item_count: rng.choice([0, 2])}).where(
            Booking.id == booking.id
        )

    async def delete(booking: Any) -> None:
        await Booking.delete().where(Booking.id == booking.id)

    async def add() -> None:
        await make_booking(rng.choice(enterprises), items=1, status=rng.choice(STATUSES))

    for _ in range(3):
        writes: list[Any] = []
        for booking in made:
            writes.append(rng.choice([move, move, items, delete])(booking))
        writes += [add() for _ in range(10)] + [tallies.fold(), tallies.fold()]
        rng.shuffle(writes)
        results = await asyncio.gather(*writes, return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)], results
        await check(enterprises)
        made = [b async for b in _bookings()]
    # Folded: one row per key, and the sums unchanged.
    await tallies.fold()
    keys = await Tally.select(Tally.kind, Tally.enterprise, Tally.status)
    assert len(keys) == len({tuple(k.values()) for k in keys})
    await check(enterprises)


async def _bookings() -> Any:
    for row in await Booking.select(Booking.id):
        yield Booking(id=row["id"])


async def test_a_filtered_total_is_counted_up_to_its_limit(monkeypatch: Any) -> None:
    ent = await make_enterprise(1)
    for _ in range(4):
        await make_booking(ent, items=1)

    def build(p: dict[str, Any]) -> Any:
        return Booking.select(Booking.id).where(Booking.enterprise == p["ent"])

    assert await tallies.bounded_count("test", build, ent=ent.id) == tallies.Total(4)
    monkeypatch.setattr(tallies, "COUNT_LIMIT", 3)
    total = await tallies.bounded_count("test", build, ent=ent.id)
    assert total == tallies.Total(3, exact=False) and str(total) == "3+"
    monkeypatch.setattr(tallies, "COUNT_LIMIT", 4)
    assert str(await tallies.bounded_count("test", build, ent=ent.id)) == "4"


async def test_totals_asked_together_are_one_statement_and_the_same(monkeypatch: Any) -> None:
    """The 首页 asks for its counts together: one statement, each total what it is alone
    (a tally, a bounded count past its limit, a scope with no enterprise)."""
    ent, other = await make_enterprise(1), await make_enterprise(2)
    for status in ("pending", "pending", "rejected"):
        await make_booking(ent, items=1, status=status)
    await make_booking(other, items=1, status="pending")

    def build(p: dict[str, Any]) -> Any:
        return Booking.select(Booking.id).where(Booking.enterprise == p["ent"])

    monkeypatch.setattr(tallies, "COUNT_LIMIT", 2)

    def countings() -> list[tallies.Counting]:
        return [
            tallies.total(tallies.BOOKING, [ent.id], "pending"),
            tallies.bounded_count("together", build, ent=ent.id),
            tallies.total(tallies.BOOKING, [], "pending"),
            tallies.total(tallies.BOOKING, [ent.id, other.id], "pending"),
            tallies.bounded_count("together", build, ent=other.id),
        ]

    alone = [await c for c in countings()]
    assert alone == [
        tallies.Total(2),
        tallies.Total(2, exact=False),
        tallies.Total(0),
        tallies.Total(3),
        tallies.Total(1),
    ]
    sent: list[str] = []
    send = compiled._send

    async def counting_send(c: Any, args: list[Any]) -> Any:
        sent.append(c.sql)
        return await send(c, args)

    monkeypatch.setattr(compiled, "_send", counting_send)
    assert await tallies.together(*countings()) == alone
    assert len(sent) == 1
    assert await tallies.together() == []


async def test_audit_and_sms_tallies_follow_parallel_inserts_and_deletes() -> None:
    async def log(k: int) -> None:
        await audit.record(("登录", "提交预约")[k % 2], detail=str(k))

    async def sms(k: int) -> None:
        await SmsMessage.insert(SmsMessage(phone="13900000000", kind="code", text=str(k)))

    await asyncio.gather(*[f(k) for k in range(30) for f in (log, sms)], tallies.fold())
    await asyncio.gather(
        AuditLog.delete().where(AuditLog.detail.is_in(["1", "2", "3"])),
        SmsMessage.delete().where(SmsMessage.text.is_in(["4", "5"])),
        tallies.fold(),
    )
    for event in ("登录", "提交预约"):
        want = await AuditLog.count().where(AuditLog.event == event)
        assert (await tallies.total(tallies.AUDIT, None, event)).n == want
    assert (await tallies.total(tallies.AUDIT, None)).n == await AuditLog.count() == 27
    assert (await tallies.total(tallies.SMS, None)).n == await SmsMessage.count() == 28


async def test_the_dashboard_tallies_follow_parallel_writes() -> None:
    """The 首页's tallies (lab instruments by status, certificates by paid/downloaded,
    器具托管 by 有效期至) equal a fresh COUNT after parallel inserts, changes both ways,
    deletes and folds, for every status and range the 首页 and the lists ask."""
    rng = random.Random(12)
    ents = [await make_enterprise(1), await make_enterprise(2)]
    certs = [await make_certificate(ents[k % 2], k, paid=k % 3 != 0) for k in range(1, 13)]
    start = today()
    days = [None, *(start + timedelta(days=d) for d in (-40, -1, 0, 1, 30, 31, 400))]
    instruments = [
        await make_instrument(ents[k % 2], serial_no=f"T{k}", valid_until=rng.choice(days))
        for k in range(16)
    ]
    statuses = [s.value for s in ItemStatus]

    async def item(c: Any) -> None:
        await OrderItem.update({OrderItem.status: rng.choice(statuses)}).where(
            OrderItem.id == c.item
        )

    async def cert(c: Any) -> None:
        await Certificate.update(
            {
                Certificate.paid: rng.random() < 0.5,
                Certificate.downloaded_at: rng.choice([None, clock.now()]),
            }
        ).where(Certificate.id == c.id)

    async def due(i: Any) -> None:
        await Instrument.update({Instrument.valid_until: rng.choice(days)}).where(
            Instrument.id == i.id
        )

    for _ in range(3):
        await asyncio.gather(
            *[f(c) for c in certs for f in (item, cert)],
            *[due(i) for i in instruments],
            tallies.fold(),
        )
    await asyncio.gather(
        Certificate.delete().where(Certificate.id == certs[0].id),
        OrderItem.delete().where(OrderItem.id == certs[1].item),
        Instrument.delete().where(Instrument.id == instruments[0].id),
        tallies.fold(),
    )
    soon = start + timedelta(days=instruments_service.DUE_DAYS)
    for ent in ents:
        for s in statuses:
            want = await OrderItem.count().where(
                (OrderItem.enterprise == ent.id) & (OrderItem.status == s)
            )
            assert (await tallies.total(tallies.ITEM_STATUS, [ent.id], s)).n == want, s
        for paid in (True, False):
            for done in (True, False):
                got = await tallies.total(
                    tallies.CERT_STATE,
                    [ent.id],
                    f"{'paid' if paid else 'unpaid'}-{'done' if done else 'new'}",
                )
                downloaded = (
                    Certificate.downloaded_at.is_not_null()
                    if done
                    else Certificate.downloaded_at.is_null()
                )
                want = await Certificate.count().where(
                    (Certificate.enterprise == ent.id) & (Certificate.paid == paid) & downloaded
                )
                assert got.n == want, (paid, done)
        scope = Scope(1, ent.id, (ent.id,))
        mine = Instrument.enterprise == ent.id
        overdue = await Instrument.count().where(mine & (Instrument.valid_until < start))
        due_soon = await Instrument.count().where(
            mine & (Instrument.valid_until >= start) & (Instrument.valid_until <= soon)
        )
        assert (await instruments_service.count_instruments(scope, state="overdue")).n == overdue
        assert (await instruments_service.count_instruments(scope, state="due")).n == due_soon
    assert overdue + due_soon > 0  # the ranges were not empty
    # 证书管理's total over every enterprise (its own tally, migration 08:30).
    assert (await tallies.total(tallies.CERTIFICATE, None)).n == await Certificate.count()


# The late orders as the 首页 asked before the counts were kept (an instrument without any
# certificate): the truth the kept counts are checked against.
MISSING_CERTIFICATE = (
    'EXISTS (SELECT 1 FROM order_item i WHERE i."order" = lab_order.id'
    " AND NOT EXISTS (SELECT 1 FROM certificate c WHERE c.item = i.id))"
)


async def test_the_orders_waiting_for_a_certificate_follow_parallel_writes() -> None:
    """平台管理's late orders come from counts kept by triggers (each instrument's
    certificates, each order's instruments without one): after parallel certificates for
    the same and for different instruments, deletes, certificates and instruments moved,
    instruments added and deleted, every count equals a fresh COUNT, and the 首页's count
    and the list it links to are the orders the old query found."""
    rng = random.Random(8)
    ents = [await make_enterprise(1), await make_enterprise(2)]
    stamp = clock.now()
    lab_orders = []
    for k in range(8):
        order = Order(
            order_no=f"DD-W{k}",
            enterprise=ents[k % 2].id,
            created_at=stamp - timedelta(days=(40, 2)[k % 2 == 1 and k > 4]),
        )
        await order.save()
        lab_orders.append(order)
    numbers = iter(range(10**6))

    async def add_item(order: Any | None = None) -> None:
        order = order or rng.choice(lab_orders)
        await OrderItem.insert(
            OrderItem(
                order=order.id,
                enterprise=order.enterprise,
                unique_no=f"W{next(numbers)}",
                name="表",
            )
        )

    for order in lab_orders[:-1]:  # the last order has no instrument
        for _ in range(3):
            await add_item(order)

    async def items() -> list[dict[str, Any]]:
        return await OrderItem.select(OrderItem.id, OrderItem.enterprise)

    async def certify(item: dict[str, Any]) -> None:
        await Certificate.insert(
            Certificate(
                cert_no=f"ZS-W{next(numbers)}", item=item["id"], enterprise=item["enterprise"]
            )
        )

    async def uncertify(cert: dict[str, Any]) -> None:
        await Certificate.delete().where(Certificate.id == cert["id"])

    async def move_cert(cert: dict[str, Any], to: dict[str, Any]) -> None:
        await Certificate.update({Certificate.item: to["id"]}).where(Certificate.id == cert["id"])

    async def move_item(item: dict[str, Any]) -> None:
        to = rng.choice(lab_orders)
        await OrderItem.update({OrderItem.order: to.id}).where(OrderItem.id == item["id"])

    async def drop_item(item: dict[str, Any]) -> None:
        await OrderItem.delete().where(OrderItem.id == item["id"])

    for _ in range(4):
        now_items = await items()
        certs = await Certificate.select(Certificate.id, Certificate.item)
        # Each row written by one statement at a time (deleting an instrument while moving
        # its certificate is a deadlock PostgreSQL would end: not what is tested here).
        pool = rng.sample(now_items, len(now_items))
        writes: list[Any] = []
        for item in pool[:4]:  # several certificates for the same instrument at once
            writes += [certify(item) for _ in range(rng.choice([2, 3]))]
        writes += [certify(item) for item in pool[4:10]]
        targets = pool[10:14]
        for cert in rng.sample(certs, min(6, len(certs))):
            if rng.random() < 0.5 and targets:
                writes.append(move_cert(cert, targets.pop()))
            else:
                writes.append(uncertify(cert))
        touched = {c["item"] for c in certs} | {i["id"] for i in pool[:14]}
        free = [i for i in pool[14:] if i["id"] not in touched]
        writes += [move_item(i) for i in free[:3]]
        writes += [drop_item(i) for i in free[3:5]]
        writes += [add_item() for _ in range(4)]
        rng.shuffle(writes)
        results = await asyncio.gather(*writes, return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)], results
        await _check_waiting(stamp)
    # And the instruments that hold certificates go too (their certificates with them).
    held = await Certificate.select(Certificate.item)
    await asyncio.gather(
        *[drop_item({"id": r["item"]}) for r in held[:3]], *[add_item() for _ in range(3)]
    )
    await _check_waiting(stamp)


async def _check_waiting(stamp: Any) -> None:
    for item in await OrderItem.select(OrderItem.id, OrderItem.certificates):
        n = await Certificate.count().where(Certificate.item == item["id"])
        assert item["certificates"] == n, item
    waiting_orders = 0
    for order in await Order.select(Order.id, Order.waiting):
        mine = await OrderItem.select(OrderItem.id).where(OrderItem.order == order["id"])
        n = 0
        for item in mine:
            n += not await Certificate.exists().where(Certificate.item == item["id"])
        assert order["waiting"] == n, order
        waiting_orders += n > 0
    assert waiting_orders  # something was still waiting
    for days in (1, 14, 60):
        before = stamp - timedelta(days=days) + timedelta(seconds=1)
        late = Order.created_at < before
        truth = await Order.select(Order.id).where(late, WhereRaw(MISSING_CERTIFICATE))
        want = sorted(r["id"] for r in truth)
        assert (await orders.count_stale(before)).n == len(want), days
        found = await orders.orders(Cursor(), 100, before=before)
        assert found.total == tallies.Total(len(want)), days
        assert sorted(r["id"] for r in found.rows) == want, days


@pytest.mark.skipif(not SETTINGS.is_postgres, reason="SQLite serialises writers: no row locks")
async def test_a_certificate_arriving_while_its_order_is_resent_does_not_deadlock(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The lab re-sends an order, changing an instrument and adding one, while the changed
    instrument's first certificate arrives. The certificate's triggers lock the instrument,
    then its order; put_order must take them in the same order (its changes before its
    inserts, which lock the order), or each waits for the other until PostgreSQL ends one."""
    ent = await make_enterprise(1)
    booking = await make_booking(ent, items=1, status=BookingStatus.APPROVED)
    lab = audit.Actor("lab", "127.0.0.1")
    await orders.put_order("DD-L1", booking.booking_no, [orders.OrderLine("W-1", "表")], by=lab)
    item = await OrderItem.select().where(OrderItem.unique_no == "W-1").first()
    wrote = asyncio.Event()
    run = PostgresEngine.run_querystring

    async def pausing(self: PostgresEngine, querystring: Any, in_pool: bool = True) -> Any:
        result = await run(self, querystring, in_pool)
        sql = querystring.compile_string(engine_type=self.engine_type)[0].lstrip()
        writes = sql.startswith(('INSERT INTO "order_item"', 'UPDATE "order_item"'))
        if writes and not wrote.is_set():
            wrote.set()  # put_order's first write: the certificate arrives meanwhile
            await asyncio.sleep(0.5)
        return result

    monkeypatch.setattr(PostgresEngine, "run_querystring", pausing)

    async def certificate_arrives() -> None:
        await wrote.wait()
        await Certificate.insert(Certificate(cert_no="ZS-L1", item=item["id"], enterprise=ent.id))

    lines = [orders.OrderLine("W-2", "表"), orders.OrderLine("W-1", "压力表")]  # new first
    results = await asyncio.gather(
        orders.put_order("DD-L1", booking.booking_no, lines, by=lab),
        certificate_arrives(),
        return_exceptions=True,
    )
    assert not [r for r in results if isinstance(r, BaseException)], results
    assert await Order.select(Order.waiting).first() == {"waiting": 1}  # W-2


async def test_bookings_awaiting_their_order_follow_parallel_writes() -> None:
    """检测业务's 待生成大单的预约 come from each booking's count of lab orders, kept by
    triggers: after parallel orders made, deleted and moved between bookings (some to none),
    every count equals a fresh COUNT and the list is what the old NOT IN found, oldest
    review first."""
    rng = random.Random(12)
    ent = await make_enterprise(1)
    stamp = clock.now()
    bookings = []
    for k in range(12):
        status = (BookingStatus.APPROVED, BookingStatus.PENDING)[k % 4 == 3]
        booking = await make_booking(ent, items=1, status=status)
        at = stamp - timedelta(hours=k)
        await Booking.update({Booking.reviewed_at: at}).where(Booking.id == booking.id)
        bookings.append(booking)
    numbers = iter(range(10**6))

    async def make_order(booking: Any | None) -> None:
        await Order.insert(
            Order(
                order_no=f"DD-B{next(numbers)}",
                booking=None if booking is None else booking.id,
                enterprise=ent.id,
            )
        )

    async def drop_order(order: dict[str, Any]) -> None:
        await Order.delete().where(Order.id == order["id"])

    async def move_order(order: dict[str, Any]) -> None:
        to = rng.choice([*bookings, None])
        await Order.update({Order.booking: None if to is None else to.id}).where(
            Order.id == order["id"]
        )

    for booking in bookings[::3]:
        await make_order(booking)
    for _ in range(4):
        existing = await Order.select(Order.id)
        pool = rng.sample(existing, len(existing))
        writes: list[Any] = [make_order(rng.choice([*bookings, None])) for _ in range(5)]
        # several orders for one booking at once
        writes += [make_order(bookings[1]) for _ in range(3)]
        writes += [drop_order(o) for o in pool[:3]] + [move_order(o) for o in pool[3:6]]
        rng.shuffle(writes)
        results = await asyncio.gather(*writes, return_exceptions=True)
        assert not [r for r in results if isinstance(r, BaseException)], results
        await _check_awaiting_order()
    # Every order gone: every approved booking waits again.
    await Order.delete().where(Order.id > 0)
    assert len(await _check_awaiting_order()) == 9


async def _check_awaiting_order() -> list[int]:
    for booking in await Booking.select(Booking.id, Booking.order_count):
        n = await Order.count().where(Order.booking == booking["id"])
        assert booking["order_count"] == n, booking
    taken = Order.select(Order.booking).where(Order.booking.is_not_null())
    old = (Booking.status == BookingStatus.APPROVED) & Booking.id.not_in(taken)
    want = await Booking.select(Booking.id).where(old).order_by(Booking.reviewed_at)
    rows, total = await orders.approved_without_order(1, 50)
    assert [r["id"] for r in rows] == [r["id"] for r in want] and total.n == len(want)
    return [r["id"] for r in rows]
