"""平台管理 (platform admins only): 注册审核, 协议客户, 短信记录, 操作日志."""

from __future__ import annotations

from datetime import date
from typing import Any

from litestar import Controller, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar_htmx import ClientRedirect

from app.routes._render import client_ip, form_data, go, page, page_number, pager
from app.security import platform_admin_required
from app.services import admin, audit, bookings, sms
from app.services.accounts import FormError
from app.services.instrument_xlsx import BOOKING_COLUMNS

PER_PAGE = 20


def _date(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def _check_action(form: dict[str, str]) -> None:
    """通过 or 驳回 must be chosen by its button, never implied."""
    if form.get("action") not in ("approve", "reject"):
        raise FormError({"": "请点击【通过】或【驳回】"})


class AdminController(Controller):
    path = "/admin"
    guards = [platform_admin_required]

    @get("/registrations")
    async def registrations(self, request: Request) -> Template:
        qp = request.query_params
        p = page_number(qp.get("page"))
        status, q = qp.get("status", "pending"), qp.get("q", "")
        rows, total = await admin.registrations(status, q.strip(), p, PER_PAGE)
        return page(
            "admin/registrations.html",
            request,
            rows=rows,
            status=status,
            q=q,
            pager=pager(total, p, PER_PAGE),
            labels=admin.STATUS_LABELS,
            errors={},
        )

    @post("/registrations/{enterprise_id:int}/review", status_code=200)
    async def review(self, request: Request, enterprise_id: FromPath[int]) -> Any:
        form = await form_data(request)
        try:
            _check_action(form)
            await admin.review_registration(
                enterprise_id,
                form.get("action") == "approve",
                form.get("reason", ""),
                request.scope["user"],
                client_ip(request),
            )
        except admin.NotFound:
            raise NotFoundException("注册申请不存在") from None
        except FormError as e:
            rows, total = await admin.registrations("pending", "", 1, PER_PAGE)
            return page(
                "admin/registrations.html",
                request,
                rows=rows,
                status="pending",
                q="",
                pager=pager(total, 1, PER_PAGE),
                labels=admin.STATUS_LABELS,
                errors=e.errors,
                failed_id=enterprise_id,
                reason=form.get("reason", ""),
            )
        return go(request, "/admin/registrations?done=1")

    @get("/contracts")
    async def contracts(self, request: Request) -> Template:
        qp = request.query_params
        p = page_number(qp.get("page"))
        q = qp.get("q", "")
        rows, total = await admin.contract_customers(q.strip(), p, PER_PAGE)
        return page(
            "admin/contracts.html", request, rows=rows, q=q, pager=pager(total, p, PER_PAGE)
        )

    @get("/contracts/new")
    async def contract_new(self, request: Request) -> Template:
        return page("admin/contract_form.html", request, values={}, errors={}, ent_id=None)

    @post("/contracts", status_code=200)
    async def contract_create(self, request: Request) -> Template | Redirect | ClientRedirect:
        form = await form_data(request)
        try:
            await admin.save_contract_customer(
                {**form, "_new": "1"}, request.scope["user"], client_ip(request)
            )
        except FormError as e:
            return page(
                "admin/contract_form.html", request, values=form, errors=e.errors, ent_id=None
            )
        return go(request, "/admin/contracts?saved=1")

    @get("/contracts/{enterprise_id:int}/edit")
    async def contract_edit(self, request: Request, enterprise_id: FromPath[int]) -> Template:
        try:
            ent = await admin.contract_customer(enterprise_id)
        except admin.NotFound:
            raise NotFoundException("协议客户不存在") from None
        return page(
            "admin/contract_form.html", request, values=ent, errors={}, ent_id=enterprise_id
        )

    @post("/contracts/{enterprise_id:int}", status_code=200)
    async def contract_update(
        self, request: Request, enterprise_id: FromPath[int]
    ) -> Template | Redirect | ClientRedirect:
        form = await form_data(request)
        try:
            await admin.save_contract_customer(
                form, request.scope["user"], client_ip(request), enterprise_id
            )
        except admin.NotFound:
            raise NotFoundException("协议客户不存在") from None
        except FormError as e:
            return page(
                "admin/contract_form.html",
                request,
                values=form,
                errors=e.errors,
                ent_id=enterprise_id,
            )
        return go(request, "/admin/contracts?saved=1")

    @get("/sms")
    async def sms_log(self, request: Request) -> Template:
        qp = request.query_params
        p = page_number(qp.get("page"))
        phone = qp.get("phone", "")
        rows, total = await sms.list_messages(p, PER_PAGE, phone.strip())
        return page(
            "admin/sms.html", request, rows=rows, phone=phone, pager=pager(total, p, PER_PAGE)
        )

    @get("/audit")
    async def audit_log(self, request: Request) -> Template:
        qp = request.query_params
        p = page_number(qp.get("page"))
        q, event = qp.get("q", ""), qp.get("event", "")
        start, end = qp.get("start", ""), qp.get("end", "")
        rows, total = await audit.search(q.strip(), event, _date(start), _date(end), p, PER_PAGE)
        return page(
            "admin/audit.html",
            request,
            rows=rows,
            q=q,
            event=event,
            start=start,
            end=end,
            events=audit.EVENTS,
            pager=pager(total, p, PER_PAGE),
        )

    @get("/bookings")
    async def bookings_list(self, request: Request) -> Template:
        """预约审核: submitted bookings of every enterprise (待审核 first by default)."""
        qp = request.query_params
        p = page_number(qp.get("page"))
        status, q = qp.get("status", "待审核"), qp.get("q", "").strip()
        rows, total = await bookings.admin_list(status, q, p, PER_PAGE)
        return page(
            "admin/bookings.html",
            request,
            rows=rows,
            status=status,
            q=q,
            statuses=bookings.STATUSES[1:],
            pager=pager(total, p, PER_PAGE),
        )

    @get("/bookings/{booking_id:int}")
    async def booking_detail(self, request: Request, booking_id: FromPath[int]) -> Template:
        try:
            booking, rows = await bookings.admin_get(booking_id)
        except admin.NotFound:
            raise NotFoundException("预约不存在") from None
        return page(
            "admin/booking_detail.html",
            request,
            booking=booking,
            rows=rows,
            columns=BOOKING_COLUMNS,
            errors={},
            reason="",
        )

    @post("/bookings/{booking_id:int}/review", status_code=200)
    async def booking_review(self, request: Request, booking_id: FromPath[int]) -> Any:
        """通过 / 驳回 (with a reason); the booking's 手机 gets the SMS."""
        form = await form_data(request)
        try:
            booking, rows = await bookings.admin_get(booking_id)
            _check_action(form)
            await bookings.review(
                booking["booking_no"],
                form.get("action") == "approve",
                form.get("reason", ""),
                actor=request.scope["user"].username,
                ip=client_ip(request),
                user=request.scope["user"],
            )
        except admin.NotFound:
            raise NotFoundException("预约不存在") from None
        except (FormError, bookings.Conflict) as e:
            errors = e.errors if isinstance(e, FormError) else {"": str(e)}
            return page(
                "admin/booking_detail.html",
                request,
                booking=booking,
                rows=rows,
                columns=BOOKING_COLUMNS,
                errors=errors,
                reason=form.get("reason", ""),
            )
        return go(request, f"/admin/bookings/{booking_id}?done=1")
