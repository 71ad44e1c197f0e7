"""平台管理 (platform admins only): 注册审核, 协议客户, 短信记录, 邮件记录, 操作日志."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar_htmx import ClientRedirect

from app import clock
from app.enums import BookingStatus, EnterpriseStatus, SmsStatus
from app.fields import CONTRACT_FIELDS
from app.security.guards import platform_admin_required
from app.services import admin, audit, bookings, mail, sms
from app.services.errors import Conflict, FormError
from app.services.instrument_xlsx import (
    BOOKING_COLUMNS,
    DEFAULT_MAX_BYTES,
    ImportRefused,
    build_template,
)
from app.web.downloads import xlsx_download
from app.web.errors import field_errors, form_again, on_error
from app.web.lists import MAX_Q, cursor, keyset_pager, page_number, pager, searched
from app.web.pages import go, page
from app.web.requests import actor, client_ip, current_user, form_data

PER_PAGE = 20


def _date(raw: str | None) -> date | None:
    try:
        return date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


# 短信记录's "last N hours" filter (the 首页's 近24小时发送失败 links to it): 1 h to a week.
MAX_HOURS = 24 * 7


def _hours(raw: str) -> int:
    try:
        hours = int(raw)
    except ValueError:
        return 0
    return hours if 0 < hours <= MAX_HOURS else 0


def _check_action(form: dict[str, str]) -> None:
    """通过 or 驳回 must be chosen by its button, never implied."""
    if form.get("action") not in ("approve", "reject"):
        raise FormError({"": "请点击【通过】或【驳回】"})


async def _registrations(request: Request, status: str, q: str, p: int, **extra: Any) -> Template:
    rows, total = await admin.registrations(status, q.strip(), p, PER_PAGE)
    return page(
        "admin/registrations.html",
        request,
        rows=rows,
        status=status,
        q=q,
        pager=pager(total, p, PER_PAGE),
        **extra,
    )


async def _review_again(request: Request, exc: FormError | Conflict) -> Template:
    """注册审核 again, the failed card showing its message and the reason typed."""
    form = await form_data(request)
    return await _registrations(
        request,
        EnterpriseStatus.PENDING,
        "",
        1,
        errors=field_errors(exc),
        failed_id=request.path_params["enterprise_id"],
        reason=form.get("reason", ""),
    )


async def _booking_detail(request: Request, booking_id: int, **extra: Any) -> Template:
    booking, rows = await bookings.admin_get(booking_id)
    context = {"errors": {}, "reason": "", **extra}
    return page(
        "admin/booking_detail.html",
        request,
        booking=booking,
        rows=rows,
        columns=BOOKING_COLUMNS,
        **context,
    )


async def _booking_review_again(request: Request, exc: FormError | Conflict) -> Template:
    form = await form_data(request)
    return await _booking_detail(
        request,
        request.path_params["booking_id"],
        errors=field_errors(exc),
        reason=form.get("reason", ""),
    )


async def _contract_again(request: Request, exc: FormError | Conflict) -> Template:
    form = await form_data(request)
    errors = field_errors(exc)
    return page(
        "admin/contract_form.html",
        request,
        values=form,
        errors=errors,
        ent_id=request.path_params["enterprise_id"],
    )


async def _contracts_page(request: Request, **extra: Any) -> Template:
    return page(
        "admin/contracts.html",
        request,
        **await searched(request, admin.contract_customers, PER_PAGE),
        **{"notice": "", "import_errors": [], **extra},
    )


class AdminController(Controller):
    path = "/admin"
    guards = [platform_admin_required]

    @get("/registrations")
    async def registrations(self, request: Request) -> Template:
        qp = request.query_params
        return await _registrations(
            request,
            qp.get("status", EnterpriseStatus.PENDING),
            qp.get("q", ""),
            page_number(qp.get("page")),
            errors={},
        )

    @post("/registrations/{enterprise_id:int}/review", status_code=200, opt=on_error(_review_again))
    async def review(
        self, request: Request, enterprise_id: FromPath[int]
    ) -> Redirect | ClientRedirect:
        form = await form_data(request)
        _check_action(form)
        await admin.review_registration(
            enterprise_id,
            form.get("action") == "approve",
            form.get("reason", ""),
            current_user(request),
            client_ip(request),
        )
        return go(request, "/admin/registrations?done=1")

    @get("/enterprises/{enterprise_id:int}")
    async def enterprise(self, request: Request, enterprise_id: FromPath[int]) -> Template:
        """An enterprise's accounts and subsidiaries, read-only."""
        overview = await admin.enterprise_overview(enterprise_id)
        return page("admin/enterprise.html", request, **overview)

    @get("/contracts")
    async def contracts(self, request: Request) -> Template:
        return await _contracts_page(request)

    @get("/contracts/template.xlsx")
    async def contracts_template(self) -> Response[bytes]:
        """【模板下载】 of the 协议客户 import."""
        return xlsx_download(
            build_template(CONTRACT_FIELDS),
            "%E5%8D%8F%E8%AE%AE%E5%AE%A2%E6%88%B7%E5%AF%BC%E5%85%A5%E6%A8%A1%E6%9D%BF.xlsx",
        )

    @post("/contracts/import", status_code=200)
    async def contracts_import(self, request: Request) -> Template:
        """【点击上传】: all rows or none; existing 协议客户 (same USCC) are updated."""
        form = await request.form()
        upload = form.get("file")
        errors: list[str] = []
        added = updated = 0
        if not isinstance(upload, UploadFile) or not upload.filename:
            errors = ["请选择要上传的 Excel 文件"]
        else:
            data = await upload.read(DEFAULT_MAX_BYTES + 1)
            try:
                added, updated = await admin.import_contract_customers(
                    data, current_user(request), client_ip(request)
                )
            except ImportRefused as e:
                errors = [err.message for err in e.errors]
        done = f"导入完成：新增{added}个，更新{updated}个"
        if not request.htmx:
            return await _contracts_page(
                request, notice="" if errors else done, import_errors=errors
            )
        after = "刷新页面即可查看协议客户列表。"
        return page(
            "common/_import_result.html", request, import_errors=errors, done=done, after=after
        )

    @get("/contracts/new")
    async def contract_new(self, request: Request) -> Template:
        return page("admin/contract_form.html", request, values={}, errors={}, ent_id=None)

    @post("/contracts", status_code=200, opt=form_again("admin/contract_form.html", ent_id=None))
    async def contract_create(self, request: Request) -> Redirect | ClientRedirect:
        customer = admin.ContractCustomer.from_form(await form_data(request))
        await admin.save_contract_customer(customer, current_user(request), client_ip(request))
        return go(request, "/admin/contracts?saved=1")

    @get("/contracts/{enterprise_id:int}/edit")
    async def contract_edit(self, request: Request, enterprise_id: FromPath[int]) -> Template:
        ent = await admin.contract_customer(enterprise_id)
        return page(
            "admin/contract_form.html", request, values=ent, errors={}, ent_id=enterprise_id
        )

    @post("/contracts/{enterprise_id:int}", status_code=200, opt=on_error(_contract_again))
    async def contract_update(
        self, request: Request, enterprise_id: FromPath[int]
    ) -> Redirect | ClientRedirect:
        customer = admin.ContractCustomer.from_form(await form_data(request))
        await admin.save_contract_customer(
            customer, current_user(request), client_ip(request), enterprise_id
        )
        return go(request, "/admin/contracts?saved=1")

    @get("/sms")
    async def sms_log(self, request: Request) -> Template:
        qp = request.query_params
        phone = qp.get("phone", "")[:MAX_Q]
        parsed = SmsStatus.parse(qp.get("status"))
        status = parsed.value if parsed else ""
        hours = _hours(qp.get("hours", ""))
        since = clock.now() - timedelta(hours=hours) if hours else None
        found = await sms.list_messages(cursor(qp), PER_PAGE, phone.strip(), status, since)
        return page(
            "admin/sms.html",
            request,
            rows=found.rows,
            phone=phone,
            status=status,
            hours=hours,
            statuses=list(SmsStatus),
            pager=keyset_pager(request, found),
        )

    @get("/emails")
    async def email_log(self, request: Request) -> Template:
        """邮件记录 (#12): every e-mail, newest first, as 短信记录 lists SMS."""
        qp = request.query_params
        address = qp.get("address", "")[:MAX_Q]
        found = await mail.list_messages(cursor(qp), PER_PAGE, address)
        return page(
            "admin/emails.html",
            request,
            rows=found.rows,
            address=address,
            pager=keyset_pager(request, found),
        )

    @get("/audit")
    async def audit_log(self, request: Request) -> Template:
        qp = request.query_params
        q, event = qp.get("q", "")[:MAX_Q], qp.get("event", "")[:MAX_Q]
        start, end = qp.get("start", "")[:MAX_Q], qp.get("end", "")[:MAX_Q]
        found = await audit.search(q.strip(), event, _date(start), _date(end), cursor(qp), PER_PAGE)
        return page(
            "admin/audit.html",
            request,
            rows=found.rows,
            q=q,
            event=event,
            start=start,
            end=end,
            events=audit.EVENTS,
            pager=keyset_pager(request, found),
        )

    @get("/bookings")
    async def bookings_list(self, request: Request) -> Template:
        """预约审核: submitted bookings of every enterprise (待审核 first by default)."""
        qp = request.query_params
        status, q = qp.get("status", BookingStatus.PENDING), qp.get("q", "").strip()[:MAX_Q]
        found = await bookings.admin_list(status, q, cursor(qp), PER_PAGE)
        return page(
            "admin/bookings.html",
            request,
            rows=found.rows,
            status=status,
            q=q,
            statuses=BookingStatus.submitted(),
            pager=keyset_pager(request, found),
        )

    @get("/bookings/{booking_id:int}")
    async def booking_detail(self, request: Request, booking_id: FromPath[int]) -> Template:
        return await _booking_detail(request, booking_id)

    @post(
        "/bookings/{booking_id:int}/review",
        status_code=200,
        opt=on_error(_booking_review_again),
    )
    async def booking_review(
        self, request: Request, booking_id: FromPath[int]
    ) -> Redirect | ClientRedirect:
        """通过 / 驳回 (with a reason); the booking's 手机 gets the SMS."""
        form = await form_data(request)
        booking, _ = await bookings.admin_get(booking_id)
        _check_action(form)
        await bookings.review(
            booking["booking_no"],
            form.get("action") == "approve",
            form.get("reason", ""),
            by=actor(request),
        )
        return go(request, f"/admin/bookings/{booking_id}?done=1")
