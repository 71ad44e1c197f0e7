"""The lab system's JSON API (SPEC §10): bearer tokens from LAB_API_TOKENS, idempotent writes."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import HTTPException, NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath, FromQuery, JSONBody

from app.services import bookings
from app.settings import get_settings
from app.web.requests import client_ip


def lab_token_required(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """``Authorization: Bearer <token>`` with one of LAB_API_TOKENS (constant-time compare)."""
    header = connection.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    tokens = get_settings().lab_api_tokens
    ok = (
        scheme.lower() == "bearer"
        and token
        and any(hmac.compare_digest(token.encode(), t.encode()) for t in tokens)
    )
    if not ok:
        raise NotAuthorizedException("缺少或无效的访问令牌（Authorization: Bearer <token>）")


@dataclass
class InstrumentOut:
    name: str
    equipment_no: str
    serial_no: str
    model: str
    measuring_range: str
    accuracy_class: str
    supply_voltage: str
    manufacturer: str
    verification_requirement: str
    certificate_type: str
    quantity: int
    remark: str


@dataclass
class BookingOut:
    booking_no: str
    status: str
    client_name: str
    client_address: str
    contact_name: str
    phone: str
    cert_name: str
    cert_address: str
    mobile: str
    expected_date: str
    sender: str
    item_count: int
    reject_reason: str
    submitted_at: datetime | None
    reviewed_at: datetime | None
    instruments: list[InstrumentOut] = field(default_factory=list)


@dataclass
class BookingPage:
    total: int
    page: int
    per_page: int
    bookings: list[BookingOut]


@dataclass
class ReviewIn:
    approved: bool
    reason: str = ""


@dataclass
class ReviewOut:
    booking_no: str
    status: str
    reason: str
    changed: bool  # False when the same decision was already recorded (idempotent)


def _booking_out(row: dict[str, Any]) -> BookingOut:
    keys = BookingOut.__dataclass_fields__
    return BookingOut(
        **{k: row[k] for k in keys if k != "instruments"},
        instruments=[
            InstrumentOut(**{k: it[k] for k in InstrumentOut.__dataclass_fields__})
            for it in row.get("items", [])
        ],
    )


class LabApiController(Controller):
    path = "/api/v1"
    guards = [lab_token_required]
    tags = ["实验室系统接口"]
    security = [{"bearer": []}]

    @get("/bookings")
    async def list_bookings(
        self,
        status: FromQuery[str] = "待审核",
        page: FromQuery[int] = 1,
        per_page: FromQuery[int] = 50,
    ) -> BookingPage:
        """Bookings with their instruments (drafts never), oldest first; ``status`` filters."""
        if status and status not in bookings.STATUSES[1:]:
            raise HTTPException(status_code=400, detail="status 只能是 待审核、已通过 或 已驳回")
        page, per_page = max(1, page), max(1, min(per_page, 200))
        rows, total = await bookings.lab_list(status, page, per_page)
        return BookingPage(
            total=total, page=page, per_page=per_page, bookings=[_booking_out(r) for r in rows]
        )

    @post("/bookings/{booking_no:str}/review", status_code=200)
    async def review(
        self, request: Request, booking_no: FromPath[str], data: JSONBody[ReviewIn]
    ) -> ReviewOut:
        """通过 or 驳回 (with a reason) a 待审核 booking. Repeating the call changes nothing."""
        row, changed = await bookings.review(
            booking_no, data.approved, data.reason, actor="实验室系统", ip=client_ip(request)
        )
        return ReviewOut(
            booking_no=booking_no,
            status=row["status"],
            reason=row["reject_reason"],
            changed=changed,
        )


BEARER = Components(
    security_schemes={
        "bearer": SecurityScheme(
            type="http", scheme="bearer", description="LAB_API_TOKENS 中的令牌"
        ),
    }
)
