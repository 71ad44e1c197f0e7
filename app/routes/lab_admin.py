"""平台管理 › 检测业务 and 证书管理 (SPEC §9): what the lab API does, for institute staff in
the UI: an approved booking → order, status changes, certificate upload, 缴费状态."""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar_htmx import ClientRedirect

from app.enums import ItemStatus
from app.security.guards import platform_admin_required
from app.services import certificates, orders
from app.services.certpdf import MAX_PDF_BYTES
from app.services.errors import Conflict, FormError
from app.settings import get_settings
from app.web.errors import field_errors, message, on_error
from app.web.lists import MAX_Q, cursor, keyset_pager, keyset_searched, list_query
from app.web.pages import go, page
from app.web.requests import actor, client_ip, current_user, form_data

PER_PAGE = 20


async def _order_page(request: Request, order_id: int, **extra: Any) -> Template:
    order, items = await orders.order_items(order_id)
    certs = await certificates.for_items([i["id"] for i in items])
    context = {"errors": {}, "notice": "", "failed": "", **extra}
    return page(
        "admin/order_detail.html",
        request,
        order=order,
        items=items,
        certs=certs,
        statuses=list(ItemStatus),
        **context,
    )


async def _order_again(request: Request, exc: FormError | Conflict) -> Template:
    form = await form_data(request)
    return await _order_page(
        request,
        int(form.get("order_id", "0") or 0),
        errors=field_errors(exc),
        failed=form.get("unique_no", ""),
    )


async def _orders_again(request: Request, exc: FormError | Conflict) -> Template:
    return await _orders_page(request, error=message(exc))


async def _orders_page(request: Request, **extra: Any) -> Template:
    # After a POST (【生成大单】 refused) the list is the one the user was on.
    query = list_query(request)
    q = query.get("q", "").strip()[:MAX_Q]
    waiting, waiting_total = await orders.approved_without_order(1, 50)
    # ?stale=1 (the 首页's link, #12): only orders still without a certificate N days on.
    stale = query.get("stale") == "1"
    days = get_settings().stale_order_days
    before = orders.stale_before(days) if stale else None
    found = await orders.orders(cursor(query), PER_PAGE, q, before)
    return page(
        "admin/orders.html",
        request,
        waiting=waiting,
        waiting_total=waiting_total,
        rows=found.rows,
        q=q,
        stale=stale,
        stale_days=days,
        pager=keyset_pager(request, found),
        **{"error": "", **extra},
    )


async def _certificates_page(request: Request, **extra: Any) -> Template:
    return page(
        "admin/certificates.html",
        request,
        **await keyset_searched(request, certificates.admin_list, PER_PAGE),
        **{"notice": "", **extra},
    )


class LabAdminController(Controller):
    path = "/admin"
    guards = [platform_admin_required]

    @get("/orders")
    async def orders_list(self, request: Request) -> Template:
        """检测业务: approved bookings waiting for their order, and the orders."""
        return await _orders_page(request)

    @post("/orders/from-booking/{booking_id:int}", status_code=200, opt=on_error(_orders_again))
    async def from_booking(
        self, request: Request, booking_id: FromPath[int]
    ) -> Redirect | ClientRedirect:
        """【生成大单】: 大单号 from the 预约单号, a 唯一性号 for every instrument."""
        order, _ = await orders.order_from_booking(
            booking_id, current_user(request), client_ip(request)
        )
        return go(request, f"/admin/orders/{order['id']}")

    @get("/orders/{order_id:int}")
    async def order_detail(self, request: Request, order_id: FromPath[int]) -> Template:
        return await _order_page(request, order_id)

    @post("/orders/status", status_code=200, opt=on_error(_order_again))
    async def set_status(self, request: Request) -> Template:
        """An instrument's 检测进度, set by staff."""
        form = await form_data(request)
        status = ItemStatus.parse(form.get("status"))
        if status is None:
            raise FormError({"status": "请选择状态"})
        await orders.set_status(
            form.get("unique_no", ""),
            status,
            None,
            by=actor(request),
        )
        return await _order_page(request, int(form.get("order_id", "0") or 0), notice="状态已更新")

    @post("/certificates/upload", status_code=200, opt=on_error(_order_again))
    async def upload(self, request: Request) -> Template:
        """证书管理: a certificate PDF for an instrument."""
        form = await request.form()
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise FormError({"file": "请选择证书文件（PDF）"})
        data = await upload.read(MAX_PDF_BYTES + 1)
        values = await form_data(request)
        try:
            completed = (
                date.fromisoformat(values.get("completed_on", ""))
                if values.get("completed_on")
                else None
            )
        except ValueError:
            raise FormError({"completed_on": "完工日期格式不正确"}) from None
        await certificates.put_certificate(
            values.get("cert_no", ""),
            values.get("unique_no", ""),
            completed,
            values.get("paid") == "1",
            data,
            by=actor(request),
        )
        return await _order_page(
            request, int(values.get("order_id", "0") or 0), notice="证书已上传"
        )

    @get("/certificates")
    async def certificates_list(self, request: Request) -> Template:
        """证书管理: every certificate with its 缴费状态."""
        return await _certificates_page(request)

    @post("/certificates/{cert_no:str}/payment", status_code=200)
    async def payment(self, request: Request, cert_no: FromPath[str]) -> Template:
        form = await form_data(request)
        paid = form.get("paid") == "1"
        await certificates.set_payment(cert_no, paid, by=actor(request))
        return await _certificates_page(
            request, notice=f"证书 {cert_no} 已设为{'已缴费' if paid else '未缴费'}"
        )
