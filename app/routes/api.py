"""The lab system's JSON API (SPEC §10): bearer tokens from LAB_API_TOKENS, idempotent writes."""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass, field, make_dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, get, post, put
from litestar.connection import ASGIConnection
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import NotAuthorizedException, ValidationException
from litestar.handlers.base import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import (
    Components,
    Example,
    Link,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Schema,
    SecurityScheme,
)
from litestar.params import Body, JSONBody, KwargDefinition, Parameter, QueryParameter
from msgspec import UNSET, Meta, Struct, UnsetType

from app.enums import BookingStatus, ItemStatus
from app.fields import INSTRUMENT_FIELDS
from app.services import booking_print, bookings, certificates, orders
from app.services.audit import Actor
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


# One instrument row of a booking: its fields as app/fields.py defines them, then its 序号
# and the code on its label (#12 item 2, app/services/booking_print.py).
InstrumentOut = make_dataclass(
    "InstrumentOut",
    [(f.key, int if f.kind == "int" else str) for f in INSTRUMENT_FIELDS]
    + [
        (
            "row",
            Annotated[
                int,
                KwargDefinition(ge=1, description="序号：该器具在预约单器具列表中的位置，从 1 起"),
            ],
        ),
        (
            "label_code",
            Annotated[
                str,
                KwargDefinition(
                    description="器具标签二维码的内容：<预约单号>-<序号>，按最后一个 - 拆分",
                    examples=[Example(value="YY20261126000001-1")],
                ),
            ],
        ),
    ],
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


class ReviewIn(Struct):
    approved: bool
    reason: Annotated[str, Meta(max_length=200, pattern=TEXT)] = ""


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

# The contract's bounds, stated once: the schema says them and the decoder enforces them,
# so a request the schema allows is never refused as malformed, and one it forbids is a 400.
MAX_PAGE = 10_000
MAX_PER_PAGE = 200
BOOKING_NO_LENGTH = 30  # Booking.booking_no's column
# 预约单号, 大单号, 唯一性号, 证书编号: letters and digits, then also . _ - (never a space,
# a slash or anything a URL path would have to escape).
NO_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._-]*$"
# Free text: anything but NUL (PostgreSQL's text cannot hold it); VISIBLE also needs one
# character that is not white space (the services strip it).
TEXT = r"^[^\x00]*$"
VISIBLE = r"^[^\x00]*[^\s\x00][^\x00]*$"
DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"


def _no(label: str, max_length: int, example: str) -> Any:
    return Meta(
        min_length=1,
        max_length=max_length,
        pattern=NO_PATTERN,
        description=f"{label}：字母或数字开头，字母、数字及 . _ -，至多 {max_length} 个字符",
        examples=[example],
    )


BookingNo = Annotated[str, _no("已通过的预约单号", BOOKING_NO_LENGTH, "YY20261126000002")]
OrderNo = Annotated[str, _no("大单号", orders.NO_LENGTH, "DD001")]
UniqueNo = Annotated[str, _no("唯一性号", orders.NO_LENGTH, "DD001-001")]
CertNo = Annotated[str, _no("证书编号", certificates.CERT_NO_LENGTH, "ZS-001")]


def _path(label: str, max_length: int, example: str) -> Any:
    return Parameter(
        min_length=1,
        max_length=max_length,
        pattern=NO_PATTERN,
        description=f"{label}：字母或数字开头，字母、数字及 . _ -，至多 {max_length} 个字符",
        examples=[Example(value=example)],
    )


BookingNoPath = Annotated[str, _path("预约单号", BOOKING_NO_LENGTH, "YY20261126000001")]
OrderNoPath = Annotated[str, _path("大单号", orders.NO_LENGTH, "DD001")]
UniqueNoPath = Annotated[str, _path("唯一性号", orders.NO_LENGTH, "DD001-001")]
CertNoPath = Annotated[str, _path("证书编号", certificates.CERT_NO_LENGTH, "ZS-001")]


class OrderLineIn(Struct):
    unique_no: UniqueNo  # 唯一性号
    name: Annotated[
        str,
        Meta(
            min_length=1,
            max_length=100,
            pattern=VISIBLE,
            description="器具名称",
            examples=["数字温度计"],
        ),
    ]
    serial_no: Annotated[
        str, Meta(max_length=100, pattern=TEXT, description="出厂编号", examples=["T-0001"])
    ] = ""
    model: Annotated[
        str, Meta(max_length=100, pattern=TEXT, description="型号规格", examples=["WSS-411"])
    ] = ""
    # omitted: 待收样 for a new instrument, else unchanged
    status: (
        Annotated[LabItemStatus, Meta(description="检测进度；省略时新器具为待收样，已有器具不变")]
        | None
    ) = None


class OrderIn(Struct):
    booking_no: BookingNo
    instruments: Annotated[
        list[OrderLineIn],
        Meta(
            min_length=1,
            max_length=orders.MAX_LINES,
            description="器具；同一请求中唯一性号不能重复（否则 422）",
        ),
    ]


class OrderOut(Struct):
    order_no: str
    booking_no: str
    changed: bool  # False when the order already said all this (idempotent)


class StatusIn(Struct):
    status: LabItemStatus
    # when it happened, with its UTC offset; omitted: now
    at: (
        Annotated[
            datetime,
            Meta(
                tz=True,
                description="发生时间，须带时区（RFC 3339），省略为当前时间；"
                "早于器具当前状态时间的上报被忽略",
                examples=["2026-11-26T10:00:00+08:00"],
            ),
        ]
        | None
    ) = None


class StatusOut(Struct):
    unique_no: str
    status: LabItemStatus
    status_at: datetime
    changed: bool


class CertificateUpload(Struct):
    file: Annotated[UploadFile, Meta(description="证书 PDF，至多 20 MB")]
    unique_no: UniqueNo  # the instrument's 唯一性号
    completed_on: (
        Annotated[
            str,
            Meta(
                pattern=DATE, description="完工日期 YYYY-MM-DD；省略为无", examples=["2026-11-20"]
            ),
        ]
        | UnsetType
    ) = UNSET
    paid: Annotated[
        Literal["true", "false"], Meta(description="缴费状态：true 或 false，省略为 false")
    ] = "false"


class CertificateOut(Struct):
    cert_no: str
    unique_no: str
    completed_on: date | None
    paid: bool
    version: int  # 1, and one more for each replacing file
    changed: bool


class PaymentIn(Struct):
    paid: bool


class ApiError(Struct):
    """Every error of the API (app/web/errors.py)."""

    detail: Annotated[str, Meta(description="给人看的说明")]
    status_code: Annotated[int, Meta(description="同 HTTP 状态码")]
    errors: (
        Annotated[dict[str, str], Meta(description="422：按字段的说明（键为字段名，空键为整体）")]
        | UnsetType
    ) = UNSET
    extra: (
        Annotated[
            list[dict[str, Any]],
            Meta(description="400：每个不符合接口定义之处（message、key、source）"),
        ]
        | UnsetType
    ) = UNSET


_ERRORS: dict[int, tuple[str, dict[str, Any]]] = {
    400: (
        "请求不符合接口定义：JSON 无法解析，字段缺失，或类型、取值、长度、格式不符",
        {
            "detail": "Validation failed for POST /api/v1/instruments/DD001-001/status",
            "status_code": 400,
            "extra": [{"message": "Invalid enum value '未知'", "key": "status", "source": "body"}],
        },
    ),
    401: (
        "缺少或无效的访问令牌",
        {"detail": "缺少或无效的访问令牌（Authorization: Bearer <token>）", "status_code": 401},
    ),
    404: (
        "预约单、大单、器具或证书不存在",
        {"detail": "唯一性号 DD001-009 不存在", "status_code": 404},
    ),
    409: (
        "与对象当前的状态冲突（如已审核的预约单、已属于另一大单的唯一性号）",
        {"detail": "预约单 YY20261126000001 当前状态为已通过，不能驳回", "status_code": 409},
    ),
    413: (
        "请求体过大（证书文件至多 20 MB）",
        {"detail": "Request Entity Too Large", "status_code": 413},
    ),
    422: (
        "格式正确但内容无法接受（如驳回未填原因、重复的唯一性号、不是有效的 PDF）；"
        "errors 按字段说明",
        {
            "detail": "驳回时请填写原因",
            "status_code": 422,
            "errors": {"reason": "驳回时请填写原因"},
        },
    ),
}


def _responses(*codes: int) -> dict[int, ResponseSpec]:
    """The error answers an operation can give, each with the one error body's schema."""
    return {
        code: ResponseSpec(
            ApiError,
            description=_ERRORS[code][0],
            generate_examples=False,
            examples=[Example(summary=str(code), value=_ERRORS[code][1])],
        )
        for code in codes
    }


# A rejection needs a reason: the body's schema says so with oneOf, the service checks it.
REVIEW_SCHEMA = {
    "one_of": [
        Schema(
            type=OpenAPIType.OBJECT,
            title="通过",
            properties={
                "approved": Schema(const=True),
                "reason": Schema(type=OpenAPIType.STRING, max_length=200, pattern=TEXT),
            },
            required=["approved"],
        ),
        Schema(
            type=OpenAPIType.OBJECT,
            title="驳回",
            properties={
                "approved": Schema(const=False),
                "reason": Schema(
                    type=OpenAPIType.STRING,
                    min_length=1,
                    max_length=200,
                    pattern=VISIBLE,
                    description="驳回原因（必填，不能只有空白）",
                ),
            },
            required=["approved", "reason"],
        ),
    ],
    "examples": [{"approved": True}, {"approved": False, "reason": "器具型号不全"}],
}


def _cert_out(row: dict[str, Any], changed: bool) -> CertificateOut:
    return CertificateOut(
        cert_no=row["cert_no"],
        unique_no=row["unique_no"],
        completed_on=row["completed_on"],
        paid=row["paid"],
        version=row["version"],
        changed=changed,
    )


def _date(raw: str, name: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise FormError({name: f"{name} 不是有效的日期，例如 2026-11-26"}) from None


def _booking_out(row: dict[str, Any]) -> BookingOut:
    keys = BookingOut.__dataclass_fields__
    return BookingOut(
        **{k: row[k] for k in keys if k not in ("instruments", "status")},
        status=_lab_status(row["status"]),
        instruments=[
            InstrumentOut(**{k: it[k] for k in InstrumentOut.__dataclass_fields__})
            for it in booking_print.numbered(row["booking_no"], row.get("items", []))
        ],
    )


# OpenAPI links: which value of one answer feeds which next call. They let a client (and
# schemathesis's stateful phase) walk 预约单 → 审核 → 大单 → 检测进度 → 证书 → 缴费.
def _link(operation: str, description: str, **targets: Any) -> Link:
    body = targets.pop("body", None)
    return Link(
        operation_id=operation,
        description=description,
        parameters=targets or None,
        request_body=body,
    )


LINKS: dict[str, dict[str, Link]] = {
    "listBookings": {
        "ReviewBooking": _link(
            "reviewBooking",
            "审核列表中的预约单",
            booking_no="$response.body#/bookings/0/booking_no",
        ),
        "PutOrder": _link(
            "putOrder",
            "为列表中的预约单建大单",
            body={"booking_no": "$response.body#/bookings/0/booking_no"},
        ),
    },
    "reviewBooking": {
        "ReviewAgain": _link(
            "reviewBooking", "重复审核（幂等）", booking_no="$response.body#/booking_no"
        ),
        "PutOrder": _link(
            "putOrder", "为通过的预约单建大单", body={"booking_no": "$response.body#/booking_no"}
        ),
    },
    "putOrder": {
        "PutOrderAgain": _link(
            "putOrder",
            "重复或补充大单",
            order_no="$response.body#/order_no",
            body={"booking_no": "$response.body#/booking_no"},
        ),
        "SetStatus": _link(
            "setInstrumentStatus",
            "大单中器具的检测进度",
            unique_no="$request.body#/instruments/0/unique_no",
        ),
        "PutCertificate": _link(
            "putCertificate",
            "大单中器具的证书",
            body={"unique_no": "$request.body#/instruments/0/unique_no"},
        ),
    },
    "setInstrumentStatus": {
        "SetStatusAgain": _link(
            "setInstrumentStatus", "下一个检测进度", unique_no="$response.body#/unique_no"
        ),
        "PutCertificate": _link(
            "putCertificate", "该器具的证书", body={"unique_no": "$response.body#/unique_no"}
        ),
    },
    "putCertificate": {
        "PutCertificateAgain": _link(
            "putCertificate",
            "重复上传或替换证书文件",
            cert_no="$response.body#/cert_no",
            body={"unique_no": "$response.body#/unique_no"},
        ),
        "SetPayment": _link("setPayment", "证书的缴费状态", cert_no="$response.body#/cert_no"),
    },
    "setPayment": {
        "SetPaymentAgain": _link(
            "setPayment", "再次设置缴费状态", cert_no="$response.body#/cert_no"
        ),
    },
}


@dataclass
class Linked(Operation):
    """An operation whose 200 answer carries its LINKS."""

    def __post_init__(self) -> None:
        ok = (self.responses or {}).get("200")
        if isinstance(ok, OpenAPIResponse) and self.operation_id in LINKS:
            ok.links = dict(LINKS[self.operation_id])


async def strict_json(request: Request) -> None:
    """Decode a JSON body strictly before Litestar does. Litestar converts leniently (``0``
    becomes ``false``, a number a date-time), which the schema forbids: the contract says a
    boolean is true or false and a time an RFC 3339 string, so anything else is a 400."""
    handler = request.scope["route_handler"]
    data = handler.parsed_data_field
    if data is None or data.kwarg_definition is None:
        return
    if getattr(data.kwarg_definition, "media_type", None) != RequestEncodingType.JSON:
        return
    try:
        msgspec.json.decode(await request.body(), type=data.annotation)
    except msgspec.ValidationError as e:
        where = re.search(r"at `\$\.?(.*)`$", str(e))
        raise ValidationException(
            f"Validation failed for {request.method} {request.url.path}",
            extra=[{"message": str(e), "key": where.group(1) if where else "", "source": "body"}],
        ) from None
    except msgspec.DecodeError:
        return  # not JSON at all: Litestar's own decoding answers the 400


class LabApiController(Controller):
    path = "/api/v1"
    guards = [lab_token_required]
    before_request = strict_json
    tags = ["实验室系统接口"]
    security = [{"bearer": []}]

    @get(
        "/bookings",
        operation_id="listBookings",
        responses=_responses(400, 401),
        operation_class=Linked,
    )
    async def list_bookings(
        self,
        status: Annotated[
            LabStatus, QueryParameter(description="待审核、已通过 或 已驳回；空为全部")
        ] = LabStatus.PENDING,
        page: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="页码")] = 1,
        per_page: Annotated[
            int, QueryParameter(ge=1, le=MAX_PER_PAGE, description="每页条数")
        ] = 50,
    ) -> BookingPage:
        """Bookings with their instruments (drafts never), oldest first; ``status`` filters."""
        wanted = None if status == LabStatus.ALL else BookingStatus[status.name]
        rows, total = await bookings.lab_list(wanted, page, per_page)
        return BookingPage(
            total=total, page=page, per_page=per_page, bookings=[_booking_out(r) for r in rows]
        )

    @post(
        "/bookings/{booking_no:str}/review",
        operation_id="reviewBooking",
        status_code=200,
        responses=_responses(400, 401, 404, 409, 413, 422),
        operation_class=Linked,
    )
    async def review(
        self,
        request: Request,
        booking_no: BookingNoPath,
        data: Annotated[ReviewIn, Body(schema_extra=REVIEW_SCHEMA)],
    ) -> ReviewOut:
        """通过 or 驳回 (with a reason) a 待审核 booking. Repeating the call changes nothing."""
        row, changed = await bookings.review(
            booking_no, data.approved, data.reason, by=Actor(LAB, client_ip(request))
        )
        return ReviewOut(
            booking_no=booking_no,
            status=_lab_status(row["status"]),
            reason=row["reject_reason"],
            changed=changed,
        )

    @put(
        "/orders/{order_no:str}",
        operation_id="putOrder",
        status_code=200,
        responses=_responses(400, 401, 404, 409, 413, 422),
        operation_class=Linked,
    )
    async def put_order(
        self, request: Request, order_no: OrderNoPath, data: JSONBody[OrderIn]
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
            order_no, data.booking_no, lines, by=Actor(LAB, client_ip(request))
        )
        return OrderOut(order_no=order["order_no"], booking_no=data.booking_no, changed=changed)

    @post(
        "/instruments/{unique_no:str}/status",
        operation_id="setInstrumentStatus",
        status_code=200,
        responses=_responses(400, 401, 404, 413),
        operation_class=Linked,
    )
    async def set_status(
        self, request: Request, unique_no: UniqueNoPath, data: JSONBody[StatusIn]
    ) -> StatusOut:
        """An instrument's 检测进度: 待收样, 检测中, 待取件 or 已取件, with when it happened."""
        row, changed = await orders.set_status(
            unique_no, ItemStatus[data.status.name], data.at, by=Actor(LAB, client_ip(request))
        )
        return StatusOut(
            unique_no=row["unique_no"],
            status=LabItemStatus[ItemStatus(row["status"]).name],
            status_at=row["status_at"],
            changed=changed,
        )

    @put(
        "/certificates/{cert_no:str}",
        operation_id="putCertificate",
        status_code=200,
        responses=_responses(400, 401, 404, 409, 413, 422),
        operation_class=Linked,
    )
    async def put_certificate(
        self,
        request: Request,
        cert_no: CertNoPath,
        data: Annotated[CertificateUpload, Body(media_type=RequestEncodingType.MULTI_PART)],
    ) -> CertificateOut:
        """A certificate PDF for an instrument. The same file again changes nothing;
        another file replaces it (the old one then verifies as superseded)."""
        content = await data.file.read(certificates.certpdf.MAX_PDF_BYTES + 1)
        row, changed = await certificates.put_certificate(
            cert_no,
            data.unique_no,
            _date(data.completed_on or "", "completed_on"),
            data.paid == "true",
            content,
            by=Actor(LAB, client_ip(request)),
        )
        return _cert_out(row, changed)

    @post(
        "/certificates/{cert_no:str}/payment",
        operation_id="setPayment",
        status_code=200,
        responses=_responses(400, 401, 404, 413),
        operation_class=Linked,
    )
    async def set_payment(
        self, request: Request, cert_no: CertNoPath, data: JSONBody[PaymentIn]
    ) -> CertificateOut:
        """缴费状态 of a certificate. Repeating the call changes nothing."""
        row, changed = await certificates.set_payment(
            cert_no, data.paid, by=Actor(LAB, client_ip(request))
        )
        return _cert_out(row, changed)


BEARER = Components(
    security_schemes={
        "bearer": SecurityScheme(
            type="http",
            scheme="bearer",
            description="LAB_API_TOKENS 中的令牌：`Authorization: Bearer <token>`",
        ),
    }
)
