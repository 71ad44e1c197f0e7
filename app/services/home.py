"""What the 首页 shows: a customer's latest bookings, an admin's pending work."""

from __future__ import annotations

from typing import Any

from app.enums import BookingStatus, EnterpriseStatus
from app.security.sessions import CurrentUser
from app.services import bookings
from app.services.tenancy import scope_for
from app.tables import Booking, Enterprise


async def overview(user: CurrentUser) -> dict[str, Any]:
    data: dict[str, Any] = {"bookings": []}
    if user.enterprise_id is not None:
        scope = await scope_for(user)
        data["bookings"] = await bookings.latest(scope, 5)
        # Several units (subsidiaries): each row says whose it is.
        data["unit_names"] = dict(scope.units) if scope.has_units else {}
    if user.is_platform_admin:
        data["pending_registrations"] = await Enterprise.count().where(
            (Enterprise.status == EnterpriseStatus.PENDING) & (Enterprise.is_contract == False)  # noqa: E712
        )
        data["pending_bookings"] = await Booking.count().where(
            Booking.status == BookingStatus.PENDING
        )
    return data
