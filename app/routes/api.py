"""The lab system's JSON API (SPEC §10): bearer tokens from LAB_API_TOKENS, idempotent writes."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field, make_dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter

from app.enums import BookingStatus
from app.fields import INSTRUMENT_FIELDS
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


# SPEC §10: status values on the API are the Chinese words, the contract with the lab
# system whatever the code stores. An enum, so that the OpenAPI schema lists them; the
# empty value (``?status=``) asks for every submitted booking, as it always did.
LabStatus = StrEnum(  # type: ignore[misc]
    "LabStatus", [(s.name, s.label) for s in BookingStatus.submitted()] + [("ALL", "")]
)


def _lab_status(stored: str) -> LabStatus:
    return LabStatus[BookingStatus(stored).name]


# One instrument row of a booking: its fields as app/fields.py defines them.
InstrumentOut = make_dataclass(
    "InstrumentOut", [(f.key, int if f.kind == "int" else str) for f in INSTRUMENT_FIELDS]
)


@dataclass
class BookingOut:
    booking_no: str
    status: LabStatus
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
    status: LabStatus
    reason: str
    changed: bool  # False when the same decision was already recorded (idempotent)


def _booking_out(row: dict[str, Any]) -> BookingOut:
    keys = BookingOut.__dataclass_fields__
    return BookingOut(
        **{k: row[k] for k in keys if k not in ("instruments", "status")},
        status=_lab_status(row["status"]),
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
        status: Annotated[
            LabStatus, QueryParameter(description="待审核、已通过 或 已驳回；空为全部")
        ] = LabStatus.PENDING,
        page: FromQuery[int] = 1,
        per_page: FromQuery[int] = 50,
    ) -> BookingPage:
        """Bookings with their instruments (drafts never), oldest first; ``status`` filters."""
        page, per_page = max(1, page), max(1, min(per_page, 200))
        wanted = None if status == LabStatus.ALL else BookingStatus[status.name]
        rows, total = await bookings.lab_list(wanted, page, per_page)
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
            status=_lab_status(row["status"]),
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
