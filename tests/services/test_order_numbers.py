"""Each instrument carries its order's 大单号 (order_item.order_no, kept by triggers for
检测进度's one-table searches): set on insert whatever the writer gives, moved with the
instrument, following a 大单号 that changes; and 检测进度 finds by it."""

from __future__ import annotations

import asyncio

from app.services import orders
from app.services.tenancy import Scope
from app.tables import Order, OrderItem
from tests.factories import make_enterprise


async def _numbers() -> dict[str, str]:
    rows = await OrderItem.select(OrderItem.unique_no, OrderItem.order_no, OrderItem.order.order_no)
    for r in rows:
        assert r["order_no"] == r["order.order_no"], r  # always its order's
    return {r["unique_no"]: r["order_no"] for r in rows}


async def test_the_order_number_follows_the_order() -> None:
    ent = await make_enterprise(1)
    first, second = (
        Order(order_no="DD-A1", enterprise=ent.id),
        Order(order_no="DD-B2", enterprise=ent.id),
    )
    await first.save()
    await second.save()

    async def add(unique_no: str, order: Order) -> None:
        # A writer that says another number: the order's wins.
        await OrderItem.insert(
            OrderItem(
                order=order.id, enterprise=ent.id, unique_no=unique_no, name="表", order_no="X"
            )
        )

    await asyncio.gather(*[add(f"U{k}", (first, second)[k % 2]) for k in range(8)])
    assert set((await _numbers()).values()) == {"DD-A1", "DD-B2"}
    await OrderItem.update({OrderItem.order: second.id}).where(OrderItem.unique_no == "U0")
    assert (await _numbers())["U0"] == "DD-B2"
    await Order.update({Order.order_no: "DD-C3"}).where(Order.id == first.id)
    numbers = await _numbers()
    assert numbers["U2"] == "DD-C3" and numbers["U0"] == "DD-B2"
    scope = Scope(user_id=0, enterprise_id=ent.id, enterprise_ids=(ent.id,))
    found = await orders.progress(scope, "DD-C")
    assert {r["unique_no"] for r in found} == {"U2", "U4", "U6"}
    assert [r["order_no"] for r in found] == ["DD-C3"] * 3
    # Both searches merged, by 大单号 then 唯一性号.
    found = await orders.progress(scope, "DD-")
    assert [(r["order_no"], r["unique_no"]) for r in found] == sorted(
        (n, u) for u, n in numbers.items()
    )
