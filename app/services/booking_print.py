"""打印送检单 and the instrument labels (#12 item 2): what the two print pages show.

The 送检单's QR code carries exactly the 预约单号. Each label's QR code carries the
instrument's **label code**::

    <预约单号>-<序号>          e.g. YY20261126000001-3

the booking's number, a hyphen, and the row's 序号: its position in the booking's 器具列表
as the list shows it (oldest row first), counted from 1, without leading zeros. The
platform's 预约单号 has no hyphen of its own (``YY`` + date + six digits), so a scanner
splits a code at its last hyphen. Both texts are capitals, digits and ``-``: QR's
alphanumeric mode, so the symbols stay small (version 1 or 2). The lab API's booking
answer gives each row its ``row`` and ``label_code`` (app/routes/api.py).

A 序号 is the row's place now: while a booking may still change (待审核, 已驳回), deleting a
row renumbers those after it, so labels are printed from the booking as it is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import segno
from markupsafe import Markup

from app.enums import BookingStatus
from app.fields import fields
from app.services import bookings
from app.services.errors import NotFound
from app.services.tenancy import Scope

# A4 label sheets of 3 × 8 (70 × 37 mm, the common 24-up sticker sheet): app.css lays them out.
LABELS_PER_SHEET = 24
# The 送检单's instrument table: what identifies an instrument and what the lab needs to
# test it, in the form's order. The print page adds a 序号 before, writes 设备编号 under
# 出厂编号 and joins 检定要求 and 备注 in a last column: ten rows fit one A4 page.
SHEET_COLUMNS = fields(
    "name",
    "model",
    "serial_no",
    "measuring_range",
    "accuracy_class",
    "manufacturer",
    "certificate_type",
    "quantity",
)
# QR error correction M (15 %): a label scuffed at a corner still scans. segno raises the
# level by itself when the symbol has room to spare.
QR_ERROR = "m"


def label_code(booking_no: str, row: int) -> str:
    """The code on the label of the booking's ``row``-th instrument (from 1)."""
    return f"{booking_no}-{row}"


def qr_svg(payload: str, title: str) -> Markup:
    """A QR code of exactly ``payload`` as an inline ``<svg>`` (no data: URL, no style
    attribute: the CSP allows neither), sized by app.css through its ``viewBox``; the
    quiet zone of 4 modules is inside it. ``title`` is its accessible name."""
    svg = segno.make(payload, error=QR_ERROR, micro=False).svg_inline(
        omitsize=True, svgclass="qr", lineclass=None, title=title
    )
    # segno escapes the title it writes; the rest is its own markup.
    return Markup(svg.replace("<svg ", '<svg role="img" ', 1))


@dataclass(frozen=True, slots=True)
class Sheet:
    """A submitted booking, its rows (each with ``row`` and ``label_code``), and the QR
    code of its 预约单号."""

    booking: dict[str, Any]
    rows: list[dict[str, Any]]
    qr: Markup

    @property
    def status(self) -> BookingStatus:
        return BookingStatus(self.booking["status"])


def numbered(booking_no: str, items: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows of a 器具列表 (in the list's order) with their 序号 and label code."""
    return [
        {**item, "row": n, "label_code": label_code(booking_no, n)}
        for n, item in enumerate(items, start=1)
    ]


def _sheet(booking: dict[str, Any], items: Sequence[dict[str, Any]]) -> Sheet:
    number = booking["booking_no"]
    return Sheet(booking, numbered(number, items), qr_svg(number, f"预约单号 {number}"))


def _submitted(booking: dict[str, Any]) -> dict[str, Any]:
    if booking["status"] == BookingStatus.DRAFT or not booking["booking_no"]:
        raise NotFound("该预约尚未提交，没有预约单号，不能打印送检单和标签")
    return booking


async def sheet(scope: Scope, booking_id: int) -> Sheet:
    """A booking of the caller's scope (its own enterprise and the subsidiaries below);
    another's is NotFound, and so is a 草稿 (it has no 预约单号 yet)."""
    booking = _submitted(await bookings.get_booking(scope, booking_id))
    return _sheet(booking, await bookings.items(booking_id))


async def staff_sheet(booking_id: int) -> Sheet:
    """Any enterprise's submitted booking (平台管理: institute staff)."""
    booking, items = await bookings.admin_get(booking_id)
    return _sheet(_submitted(booking), items)


def _label_qrs(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "qr": qr_svg(r["label_code"], f"标签 {r['label_code']}")} for r in rows]


async def label_sheets(sheet: Sheet) -> list[list[dict[str, Any]]]:
    """The labels of a booking, each row with its QR code, cut into A4 sheets of
    :data:`LABELS_PER_SHEET`. The codes are drawn in a thread: about 1 ms each, and a booking
    may hold thousands of rows."""
    rows = await asyncio.to_thread(_label_qrs, sheet.rows)
    return [rows[i : i + LABELS_PER_SHEET] for i in range(0, len(rows), LABELS_PER_SHEET)]
