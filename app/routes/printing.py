"""打印送检单 and the instrument labels (#12 item 2): print-ready pages of a submitted
booking, for its enterprise (and the enterprises above it) and for institute staff."""

from __future__ import annotations

from litestar import Controller, Request, get
from litestar.params import FromPath
from litestar.response import Template

from app import clock
from app.security.guards import customer_required, platform_admin_required
from app.services import booking_print
from app.services.booking_print import Sheet
from app.web.pages import page
from app.web.requests import current_scope


def _print_page(request: Request, sheet: Sheet, base: str) -> Template:
    return page(
        "bookings/print.html",
        request,
        sheet=sheet,
        booking=sheet.booking,
        columns=booking_print.SHEET_COLUMNS,
        base=base,
        printed_at=clock.now(),
    )


async def _labels_page(request: Request, sheet: Sheet, base: str) -> Template:
    return page(
        "bookings/labels.html",
        request,
        sheet=sheet,
        booking=sheet.booking,
        sheets=await booking_print.label_sheets(sheet),
        per_sheet=booking_print.LABELS_PER_SHEET,
        base=base,
    )


class PrintController(Controller):
    """The customer's pages under /bookings, staff's under /admin/bookings: each goes back
    to the booking page it was opened from."""

    path = "/"

    @get("/bookings/{booking_id:int}/print", guards=[customer_required])
    async def sheet(self, request: Request, booking_id: FromPath[int]) -> Template:
        """送检单: the booking with its 预约单号 as a QR code, and its instruments."""
        sheet = await booking_print.sheet(await current_scope(request), booking_id)
        return _print_page(request, sheet, f"/bookings/{booking_id}")

    @get("/bookings/{booking_id:int}/labels", guards=[customer_required])
    async def labels(self, request: Request, booking_id: FromPath[int]) -> Template:
        """器具标签: one QR label per instrument row, 24 to an A4 sheet."""
        sheet = await booking_print.sheet(await current_scope(request), booking_id)
        return await _labels_page(request, sheet, f"/bookings/{booking_id}")

    @get("/admin/bookings/{booking_id:int}/print", guards=[platform_admin_required])
    async def staff_sheet(self, request: Request, booking_id: FromPath[int]) -> Template:
        sheet = await booking_print.staff_sheet(booking_id)
        return _print_page(request, sheet, f"/admin/bookings/{booking_id}")

    @get("/admin/bookings/{booking_id:int}/labels", guards=[platform_admin_required])
    async def staff_labels(self, request: Request, booking_id: FromPath[int]) -> Template:
        sheet = await booking_print.staff_sheet(booking_id)
        return await _labels_page(request, sheet, f"/admin/bookings/{booking_id}")
