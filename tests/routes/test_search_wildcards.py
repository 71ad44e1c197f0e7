"""A search finds what was typed: ``%``, ``_`` and ``\\`` are characters, not LIKE's
wildcards or escape ("50%" found every "50…" and "P_X" every "P?X" before), on both
databases, through each way a search is sent: Piccolo conditions (器具托管, 预约记录,
检测业务), raw SQL (the history picker), case still ignored."""

from __future__ import annotations

from litestar.testing import AsyncTestClient

from app.tables import Enterprise, Order
from tests.factories import make_booking, make_instrument
from tests.helpers import company_user, login, make_admin

HX = {"HX-Request": "true"}
# Each pair: the value with the special character, one LIKE would have taken for it too.
PAIRS = [("A50%1", "A5001"), ("AP_X", "APAX"), ("AQ\\1", "AQ\\\\1")]


async def _found(client: AsyncTestClient, url: str, q: str, **headers: str) -> str:
    r = await client.get(url, params={"q": q}, headers=headers)
    assert r.status_code == 200, (url, q, r.text[:300])
    return r.text


async def test_customer_searches_take_wildcards_as_typed(client: AsyncTestClient) -> None:
    form = await company_user(client)
    ent = await Enterprise.objects().get(Enterprise.uscc == form["uscc"])
    for pair in PAIRS:
        for serial in pair:
            await make_instrument(ent, serial_no=serial, name=f"表{serial}")
    items = [{"name": f"器具{s}", "serial_no": s, "model": "M"} for pair in PAIRS for s in pair]
    await make_booking(ent, items=items, status="approved")
    for typed, other in PAIRS:
        q = typed[1:].lower()  # a part of it, in lower case: case is still ignored
        text = await _found(client, "/instruments", q)
        assert f"表{typed}" in text and f"表{other}" not in text, (q, "器具托管")
        text = await _found(client, "/bookings/new/history", q, **HX)
        assert f"器具{typed}" in text and f"器具{other}" not in text, (q, "历史预约")
    # A search that is all wildcards finds nothing that does not hold them.
    text = await _found(client, "/instruments", "%_%")
    assert "表A5001" not in text and "表A50%1" not in text


async def test_staff_searches_take_wildcards_as_typed(client: AsyncTestClient) -> None:
    form = await company_user(client)
    ent = await Enterprise.objects().get(Enterprise.uscc == form["uscc"])
    for pair in PAIRS:
        for number in pair:
            await Order.insert(Order(order_no=f"DD{number}", enterprise=ent.id))
    await make_admin()
    assert (await login(client, "admin", "Admin12345x")).status_code in (200, 303)
    for typed, other in PAIRS:
        text = await _found(client, "/admin/orders", typed.lower())
        assert f"DD{typed}" in text and f"DD{other}" not in text, typed
