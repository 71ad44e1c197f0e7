"""What an outside tester sent: huge numbers, huge searches, control characters, odd
paths. Each gets a clear answer, never a 500, and nothing is stored as typed."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from litestar.testing import AsyncTestClient

from app.services import bookings as service
from app.services.audit import Actor
from app.services.errors import NotFound
from app.tables import AuditLog, Booking, BookingItem, Instrument
from tests.helpers import (
    BOOKING,
    add_item,
    at_once,
    company_user,
    instrument,
    open_form,
    post,
    submitted_booking,
)


@pytest.mark.parametrize("quantity", ["9223372036854775808", "10000", "-1", "1e9"])
async def test_quantity_out_of_bounds_is_a_message(client: AsyncTestClient, quantity: str) -> None:
    await company_user(client)
    booking_id = await open_form(client)
    r = await add_item(client, booking_id, instrument(1, quantity=quantity))
    assert r.status_code == 200 and "器具数量" in r.text and "1～9999" in r.text
    assert await BookingItem.count() == 0
    r = await post(client, "/instruments", {"name": "表", "quantity": quantity})
    assert r.status_code == 200 and "1～9999" in r.text
    assert await Instrument.count() == 0


@pytest.mark.parametrize(
    "url",
    [
        "/bookings",
        "/instruments",
        "/certificates",
        "/query/progress",
        "/bookings/{booking}/history",
        "/bookings/{booking}/custody",
    ],
)
async def test_huge_searches_and_pages(client: AsyncTestClient, url: str) -> None:
    await company_user(client)
    booking_id = await open_form(client)
    url = url.format(booking=booking_id)
    for query in ("q=" + "a" * 60_000, "page=99999999999999999999", "page=-5", "q=%25_%25"):
        r = await client.get(f"{url}?{query}")
        assert r.status_code == 200, (url, query[:20], r.text[:300])


async def test_control_characters_are_not_stored(client: AsyncTestClient) -> None:
    await company_user(client)
    booking_id = await open_form(client)
    name = "压力\x00表\u202e\ufeff\x07"
    r = await add_item(client, booking_id, instrument(1, name=name))
    assert r.status_code == 200 and "器具已添加" in r.text
    row = await BookingItem.select(BookingItem.name).first()
    assert row["name"] == "压力表"
    r = await post(client, f"/bookings/{booking_id}/submit", {**BOOKING, "sender": "张\x00三"})
    assert r.status_code == 303


async def test_odd_static_paths_are_404(client: AsyncTestClient) -> None:
    for path in ("/static/%00", "/static/..%2f..%2fapp%2fsettings.py", "/static/%2e%2e/x"):
        r = await client.get(path)
        assert r.status_code in (400, 404), (path, r.status_code)


async def test_parallel_opens_and_submits_make_one_draft_and_one_audit_row(
    client: AsyncTestClient,
) -> None:
    await company_user(client)
    async with at_once(client) as c:
        pages = await asyncio.gather(*[c.get("/bookings/new") for _ in range(10)])
        assert all(p.status_code == 200 for p in pages)
        assert await Booking.count() == 0  # opening the form makes nothing
        added = await asyncio.gather(*[add_item(c, "new", instrument(n)) for n in range(10)])
        assert all("器具已添加" in r.text for r in added)
        assert await Booking.count().where(Booking.status == "draft") == 1
        booking_id = await open_form(client)
        results = await asyncio.gather(
            *[post(c, f"/bookings/{booking_id}/submit", BOOKING) for _ in range(10)]
        )
    assert all(r.status_code == 303 for r in results), [r.status_code for r in results]
    assert await Booking.count().where(Booking.status == "pending") == 1
    assert await AuditLog.count().where(AuditLog.event == "提交预约") == 1


async def test_review_racing_a_delete_is_a_404(
    client: AsyncTestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    await company_user(client)
    booking = await submitted_booking(client)
    real_update = Booking.update

    class DeletedFirst:
        """The review's UPDATE, with the customer's 删除 landing just before it runs."""

        def __init__(self, query: Any) -> None:
            self.query = query

        def where(self, *args: Any) -> DeletedFirst:
            return DeletedFirst(self.query.where(*args))

        def returning(self, *args: Any) -> DeletedFirst:
            return DeletedFirst(self.query.returning(*args))

        def __await__(self) -> Any:
            return self.run().__await__()

        async def run(self) -> Any:
            await Booking.delete().where(Booking.id == booking["id"])
            return await self.query

    def update_after_delete(*args: Any, **kwargs: Any) -> DeletedFirst:
        return DeletedFirst(real_update(*args, **kwargs))

    monkeypatch.setattr(Booking, "update", update_after_delete)
    with pytest.raises(NotFound):
        await service.review(booking["booking_no"], True, "", by=Actor("admin", ""))
