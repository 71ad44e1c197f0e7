"""Queries compiled once per shape (app/compiled.py): the same shape run with other values
gives those values' rows, and a placeholder Piccolo would have changed is refused."""

from __future__ import annotations

import pytest
from litestar.testing import AsyncTestClient

from app import compiled
from app.db import any_matches
from app.services import bookings
from app.services.listing import Cursor
from app.services.tenancy import Scope
from app.tables import Booking
from tests.factories import make_booking, make_enterprise
from tests.helpers import approved_booking, company_user, lab_certificate, lab_order


async def test_one_shape_many_values() -> None:
    first, second = await make_enterprise(1), await make_enterprise(2)
    mine = [await make_booking(first, status="pending") for _ in range(3)]
    theirs = await make_booking(second, status="approved")
    for ent, expected in ((first, {b.id for b in mine}), (second, {theirs.id})):
        scope = Scope(user_id=0, enterprise_id=ent.id, enterprise_ids=(ent.id,))
        found = await bookings.list_bookings(scope)
        assert {r["id"] for r in found.rows} == expected and found.total.n == len(expected)
        assert [r["id"] for r in await bookings.latest(scope, 2)] == sorted(expected)[::-1][:2]
    # A filter is a value of its own shape; paging is part of the key.
    scope = Scope(user_id=0, enterprise_id=first.id, enterprise_ids=(first.id, second.id))
    found = await bookings.list_bookings(scope, status="approved")
    assert [r["id"] for r in found.rows] == [theirs.id] and found.total.n == 1
    found = await bookings.list_bookings(scope, cursor=Cursor(after=mine[1].id), per_page=3)
    assert [r["id"] for r in found.rows] == [mine[0].id] and found.total.n == 4


async def test_a_changed_placeholder_is_refused() -> None:
    with pytest.raises(ValueError, match="placeholder"):
        await compiled.select(
            "test-search",
            lambda p: Booking.select().where(any_matches([Booking.client_name], p["q"])),
            q="南京",
        )


async def test_certificate_filters_as_values_and_shapes(client: AsyncTestClient) -> None:
    await company_user(client)
    booking = await approved_booking(client)
    unique = await lab_order(client, booking["booking_no"], "DD100")
    for cert_no, u, paid, day in (
        ("ZS-100", unique[0], True, "2026-11-20"),
        ("ZS-101", unique[1], False, "2026-10-01"),
    ):
        r = await lab_certificate(client, cert_no, u, paid=paid, completed_on=day)
        assert r.status_code == 200, r.text

    async def shown(query: str) -> set[str]:
        page = (await client.get(f"/certificates?{query}")).text
        return {no for no in ("ZS-100", "ZS-101") if no in page}

    assert await shown("") == {"ZS-100", "ZS-101"}
    assert await shown("paid=paid") == {"ZS-100"}
    assert await shown("paid=unpaid") == {"ZS-101"}
    assert await shown("start=2026-11-01") == {"ZS-100"}
    assert await shown("end=2026-11-01") == {"ZS-101"}
    assert await shown("start=2026-09-01&end=2026-12-31") == {"ZS-100", "ZS-101"}
    assert await shown("start=2000-01-01&end=2000-01-02") == set()
    assert await shown("q=ZS-101") == {"ZS-101"}  # a search: not compiled
