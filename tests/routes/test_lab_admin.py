"""平台管理 › 检测业务 and 证书管理: the lab API's operations for staff in the UI."""

from __future__ import annotations

import re

from litestar.testing import AsyncTestClient

from app.tables import AuditLog, Certificate, Order, OrderItem
from tests.helpers import (
    approved_booking,
    company_user,
    login,
    make_admin,
    make_pdf,
    post,
)


async def test_booking_to_order_status_certificate_and_payment(client: AsyncTestClient) -> None:
    await company_user(client)
    booking = await approved_booking(client, 2)
    await make_admin()
    await login(client, "admin", "Admin12345x")
    r = await client.get("/admin/orders")
    assert r.status_code == 200 and booking["booking_no"] in r.text
    r = await post(client, f"/admin/orders/from-booking/{booking['id']}")
    assert r.status_code == 303
    order = await Order.select().first()
    assert order["order_no"] == "DD" + booking["booking_no"].removeprefix("YY")
    items = await OrderItem.select().order_by(OrderItem.id)
    assert [i["unique_no"] for i in items] == [
        f"{order['order_no']}-001",
        f"{order['order_no']}-002",
    ]
    # Twice changes nothing; the booking no longer waits for an order.
    await post(client, f"/admin/orders/from-booking/{booking['id']}")
    assert await Order.count() == 1
    assert (
        booking["booking_no"] not in (await client.get("/admin/orders")).text.split("大单</h2>")[0]
    )

    page = f"/admin/orders/{order['id']}"
    unique = items[0]["unique_no"]
    r = await post(
        client,
        "/admin/orders/status",
        {"order_id": order["id"], "unique_no": unique, "status": "testing"},
    )
    assert r.status_code == 200 and "状态已更新" in r.text and "检测中" in r.text
    r = await post(
        client,
        "/admin/orders/status",
        {"order_id": order["id"], "unique_no": unique, "status": "x"},
    )
    assert "请选择状态" in r.text

    form = {
        "order_id": str(order["id"]),
        "unique_no": unique,
        "cert_no": "ZS-UI-1",
        "completed_on": "2026-11-20",
    }
    r = await post(
        client, "/admin/certificates/upload", form, files={"file": ("c.pdf", make_pdf("UI"))}
    )
    assert r.status_code == 200 and "证书已上传" in r.text, r.text
    r = await post(
        client, "/admin/certificates/upload", form, files={"file": ("c.pdf", b"not a pdf")}
    )
    assert r.status_code == 200 and "PDF" in r.text and re.search(r"唯一性号 .*-001", r.text)
    assert await Certificate.count() == 1
    assert (await client.get(page)).status_code == 200

    r = await client.get("/admin/certificates")
    assert "ZS-UI-1" in r.text and "未缴费" in r.text
    r = await post(client, "/admin/certificates/ZS-UI-1/payment", {"paid": "1"})
    assert "已设为已缴费" in r.text
    assert (await Certificate.select().first())["paid"] is True
    events = {a["event"] for a in await AuditLog.select(AuditLog.event)}
    assert {"检测业务", "证书上传", "证书管理"} <= events


async def test_customers_get_403_on_staff_pages(client: AsyncTestClient) -> None:
    await company_user(client)
    for url in ("/admin/orders", "/admin/certificates", "/admin/orders/1"):
        assert (await client.get(url)).status_code == 403
