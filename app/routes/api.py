"""The lab system's JSON API (SPEC §10): bearer tokens from LAB_API_TOKENS, idempotent writes."""

from __future__ import annotations

import hmac
from dataclasses import dataclass, field, make_dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any

from litestar import Controller, Request, get, post, put
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.spec import Components, SecurityScheme
from litestar.params import Body, FromPath, FromQuery, JSONBody, QueryParameter
from msgspec import Meta, Struct

from app.enums import BookingStatus, ItemStatus
from app.fields import INSTRUMENT_FIELDS
from app.services import bookings, certificates, orders
from app.services.errors import FormError
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


# 检测进度 on the API: the Chinese words too (SPEC §10).
LabItemStatus = StrEnum(  # type: ignore[misc]
    "LabItemStatus", [(s.name, s.label) for s in ItemStatus]
)
LAB = "实验室系统"
No = Annotated[str, Meta(min_length=1, max_length=50)]
Text100 = Annotated[str, Meta(max_length=100)]


class OrderLineIn(Struct):
    unique_no: No  # 唯一性号
    name: Annotated[str, Meta(min_length=1, max_length=100)]  # 器具名称
    serial_no: Text100 = ""  # 出厂编号
    model: Text100 = ""  # 型号规格
    status: LabItemStatus | None = None  # omitted: 待收样 for a new instrument, else unchanged


class OrderIn(Struct):
    booking_no: Annotated[str, Meta(min_length=1, max_length=30)]
    instruments: Annotated[list[OrderLineIn], Meta(min_length=1, max_length=orders.MAX_LINES)]


class ItemOut(Struct):
    unique_no: str
    name: str
    serial_no: str
    model: str
    status: LabItemStatus
    status_at: datetime


class OrderOut(Struct):
    order_no: str
    booking_no: str
    changed: bool  # False when the order already said all this (idempotent)


class StatusIn(Struct):
    status: LabItemStatus
    at: datetime | None = None  # when it happened, with its UTC offset; omitted: now


class StatusOut(Struct):
    unique_no: str
    status: LabItemStatus
    status_at: datetime
    changed: bool


@dataclass
class CertificateUpload:
    file: UploadFile  # the certificate PDF, at most 20 MB
    unique_no: str  # the instrument's 唯一性号
    completed_on: str = ""  # 完工日期, YYYY-MM-DD
    paid: str = "false"  # 缴费状态: true / false


class CertificateOut(Struct):
    cert_no: str
    unique_no: str
    completed_on: date | None
    paid: bool
    version: int  # 1, and one more for each replacing file
    changed: bool


class PaymentIn(Struct):
    paid: bool


def _bool(raw: str, name: str) -> bool:
    value = raw.strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no", ""):
        return False
    raise FormError({name: f"{name} 只能是 true 或 false"})


def _date(raw: str, name: str) -> date | None:
    if not raw.strip():
        return None
    try:
        return date.fromisoformat(raw.strip())
    except ValueError:
        raise FormError({name: f"{name} 应为日期，例如 2026-11-26"}) from None


def _cert_out(row: dict[str, Any], changed: bool) -> CertificateOut:
    return CertificateOut(
        cert_no=row["cert_no"],
        unique_no=row["unique_no"],
        completed_on=row["completed_on"],
        paid=row["paid"],
        version=row["version"],
        changed=changed,
    )


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

    @put("/orders/{order_no:str}", status_code=200)
    async def put_order(
        self, request: Request, order_no: FromPath[str], data: JSONBody[OrderIn]
    ) -> OrderOut:
        """The order (大单号) of an approved booking, each instrument with its 唯一性号.
        Repeating the call changes nothing; a later call may add instruments."""
        lines = [
            orders.OrderLine(
                line.unique_no,
                line.name,
                line.serial_no,
                line.model,
                ItemStatus[line.status.name] if line.status else None,
            )
            for line in data.instruments
        ]
        order, changed = await orders.put_order(
            order_no, data.booking_no, lines, actor=LAB, ip=client_ip(request)
        )
        return OrderOut(order_no=order["order_no"], booking_no=data.booking_no, changed=changed)

    @post("/instruments/{unique_no:str}/status", status_code=200)
    async def set_status(
        self, request: Request, unique_no: FromPath[str], data: JSONBody[StatusIn]
    ) -> StatusOut:
        """An instrument's 检测进度: 待收样, 检测中, 待取件 or 已取件, with when it happened."""
        row, changed = await orders.set_status(
            unique_no, ItemStatus[data.status.name], data.at, actor=LAB, ip=client_ip(request)
        )
        return StatusOut(
            unique_no=row["unique_no"],
            status=LabItemStatus[ItemStatus(row["status"]).name],
            status_at=row["status_at"],
            changed=changed,
        )

    @put("/certificates/{cert_no:str}", status_code=200)
    async def put_certificate(
        self,
        request: Request,
        cert_no: FromPath[str],
        data: Annotated[CertificateUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> CertificateOut:
        """A certificate PDF for an instrument. The same file again changes nothing;
        another file replaces it (the old one then verifies as superseded)."""
        content = await data.file.read(certificates.certpdf.MAX_PDF_BYTES + 1)
        row, changed = await certificates.put_certificate(
            cert_no,
            data.unique_no,
            _date(data.completed_on, "completed_on"),
            _bool(data.paid, "paid"),
            content,
            actor=LAB,
            ip=client_ip(request),
        )
        return _cert_out(row, changed)

    @post("/certificates/{cert_no:str}/payment", status_code=200)
    async def set_payment(
        self, request: Request, cert_no: FromPath[str], data: JSONBody[PaymentIn]
    ) -> CertificateOut:
        """缴费状态 of a certificate. Repeating the call changes nothing."""
        row, changed = await certificates.set_payment(
            cert_no, data.paid, actor=LAB, ip=client_ip(request)
        )
        return _cert_out(row, changed)


BEARER = Components(
    security_schemes={
        "bearer": SecurityScheme(
            type="http", scheme="bearer", description="LAB_API_TOKENS 中的令牌"
        ),
    }
)
