"""Queries compiled once per shape (app/compiled.py): the same shape run with other values
gives those values' rows, and a placeholder Piccolo would have changed is refused."""

from __future__ import annotations

import pytest

from app import compiled
from app.db import any_matches
from app.services import bookings
from app.services.tenancy import Scope
from app.tables import Booking
from tests.factories import make_booking, make_enterprise


async def test_one_shape_many_values() -> None:
    first, second = await make_enterprise(1), await make_enterprise(2)
    mine = [await make_booking(first, status="pending") for _ in range(3)]
    theirs = await make_booking(second, status="approved")
    for ent, expected in ((first, {b.id for b in mine}), (second, {theirs.id})):
        scope = Scope(user_id=0, enterprise_id=ent.id, enterprise_ids=(ent.id,))
        rows, total = await bookings.list_bookings(scope)
        assert {r["id"] for r in rows} == expected and total == len(expected)
        assert [r["id"] for r in await bookings.latest(scope, 2)] == sorted(expected)[::-1][:2]
    # A filter is a value of its own shape; paging is part of the key.
    scope = Scope(user_id=0, enterprise_id=first.id, enterprise_ids=(first.id, second.id))
    rows, total = await bookings.list_bookings(scope, status="approved")
    assert [r["id"] for r in rows] == [theirs.id] and total == 1
    rows, total = await bookings.list_bookings(scope, page=2, per_page=3)
    assert [r["id"] for r in rows] == [mine[0].id] and total == 4


async def test_a_changed_placeholder_is_refused() -> None:
    with pytest.raises(ValueError, match="placeholder"):
        await compiled.select(
            "test-search",
            lambda p: Booking.select().where(any_matches([Booking.client_name], p["q"])),
            q="南京",
        )
