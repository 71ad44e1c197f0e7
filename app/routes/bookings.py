"""预约管理: 预约送检 (the form and its htmx table work) and 预约记录; 系统管理 › 基础信息."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar_htmx import ClientRedirect

from app import clock
from app.fields import HISTORY_PICKER
from app.routes._render import (
    client_ip,
    form_data,
    fragment,
    go,
    list_query,
    page,
    page_number,
    pager,
    picker,
)
from app.security import customer_required, enterprise_admin_required
from app.services import bookings
from app.services.accounts import FormError
from app.services.instrument_xlsx import (
    BOOKING_COLUMNS,
    CERTIFICATE_TYPES,
    DEFAULT_MAX_BYTES,
    ImportRefused,
    build_template,
)
from app.services.tenancy import NotFound, Scope, scope_for

PER_PAGE = 20
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def _scope(request: Request) -> Scope:
    return await scope_for(request.scope["user"])


def _ids(form: Any, name: str) -> list[int]:
    """Ticked ids of a multi-value field; anything not a number is ignored."""
    return [int(v) for v in form.getall(name, []) if isinstance(v, str) and v.isdigit()]


async def _section_context(
    booking: dict[str, Any],
    item: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
) -> dict[str, Any]:
    return {
        "booking": booking,
        "rows": await bookings.items(booking["id"]),
        "item": item or {},
        "errors": errors or {},
        "notice": notice,
        "columns": BOOKING_COLUMNS,
        "cert_types": CERTIFICATE_TYPES,
        "editable": booking["status"] in bookings.EDITABLE,
    }


async def _section(
    request: Request,
    booking: dict[str, Any],
    *,
    item: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
) -> Template:
    """The 器具信息 section: the instrument fields and the 器具列表 (one partial, both ways)."""
    return page(
        "bookings/_instruments.html",
        request,
        **await _section_context(booking, item, errors, notice),
    )


async def section_action(
    request: Request,
    booking_id: int,
    action: Callable[[Scope], Awaitable[int]],
    done: str,
) -> Template:
    """Run a change of the 器具列表 (删除, a picker's 【确定】) and answer with the section
    (or the whole form without JavaScript) saying what was done or what was wrong."""
    scope = await _scope(request)
    try:
        notice, errors = done.format(n=await action(scope)), {}
    except NotFound:
        raise NotFoundException("预约或器具不存在") from None
    except FormError as e:
        notice, errors = "", e.errors
    try:
        booking = await bookings.get_booking(scope, booking_id)
    except NotFound:
        raise NotFoundException("预约不存在") from None
    if not request.htmx:
        return await _form_page(request, booking, item_errors=errors, notice=notice)
    return await _section(request, booking, errors=errors, notice=notice)


async def _form_page(
    request: Request,
    booking: dict[str, Any],
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    item: dict[str, Any] | None = None,
    item_errors: dict[str, str] | None = None,
    notice: str = "",
) -> Template:
    return page(
        "bookings/form.html",
        request,
        booking=booking,
        values=values or booking,
        errors=errors or {},
        rows=await bookings.items(booking["id"]),
        item=item or {},
        item_errors=item_errors or {},
        notice=notice,
        columns=BOOKING_COLUMNS,
        cert_types=CERTIFICATE_TYPES,
        fields=bookings.BOOKING_FIELDS,
        editable=booking["status"] in bookings.EDITABLE,
        today=clock.today().isoformat(),
    )


PICKER_COLUMNS = HISTORY_PICKER


def history_picker(url: str, target: str, swap: str = "outerHTML") -> dict[str, Any]:
    """Context of the 【从历史预约数据选择】 picker posting to ``url``."""
    return {
        "body_id": "history-body",
        "get_url": url,
        "post_url": url,
        "post_target": target,
        "post_swap": swap,
        "name": "history_ids",
        "columns": PICKER_COLUMNS,
        "empty": "暂无历史预约器具",
    }


async def _records(request: Request, template: str, **extra: Any) -> Template:
    """预约记录 with the filters and page of the list the user is on."""
    qp = list_query(request)
    p = page_number(qp.get("page"))
    filters = {k: qp.get(k, "").strip() for k in ("status", "start", "end", "q")}
    rows, total = await bookings.list_bookings(
        await _scope(request), page=p, per_page=PER_PAGE, **filters
    )
    return page(
        template,
        request,
        rows=rows,
        pager=pager(total, p, PER_PAGE),
        filters=filters,
        statuses=bookings.STATUSES,
        submitted=qp.get("submitted", ""),
        **extra,
    )


class BookingController(Controller):
    path = "/bookings"
    guards = [customer_required]

    @get("/")
    async def records(self, request: Request) -> Template:
        """预约记录. An htmx filter change gets only the rows."""
        template = "bookings/_records.html" if fragment(request) else "bookings/records.html"
        response = await _records(request, template, kept=[], deleted=None)
        response.headers["Vary"] = "HX-Request"
        return response

    @post("/delete", status_code=200)
    async def delete(self, request: Request) -> Template:
        """【删除】 the ticked bookings; the list comes back with the filters it had."""
        form = await request.form()
        try:
            deleted, kept = await bookings.delete_bookings(
                await _scope(request),
                _ids(form, "ids"),
                request.scope["user"],
                client_ip(request),
            )
            error = ""
        except NotFound:
            raise NotFoundException("预约不存在") from None
        except FormError as e:
            deleted, kept, error = 0, [], e.errors[""]
        template = "bookings/_records.html" if request.htmx else "bookings/records.html"
        return await _records(request, template, kept=kept, deleted=deleted, error=error)

    @get("/new")
    async def new(self, request: Request) -> Template:
        """预约送检: the user's draft (a reload or a second tab finds the same one)."""
        booking = await bookings.open_draft(await _scope(request))
        added = request.query_params.get("from_register", "")
        notice = f"已从器具托管加入{added}个器具，请核对后提交" if added.isdigit() else ""
        return await _form_page(request, booking, notice=notice)

    @get("/template.xlsx")
    async def template(self) -> Response[bytes]:
        """【模板下载】."""
        return Response(
            build_template(BOOKING_COLUMNS),
            media_type=XLSX,
            headers={
                "Content-Disposition": "attachment; filename*=UTF-8''%E5%99%A8%E5%85%B7"
                "%E5%AF%BC%E5%85%A5%E6%A8%A1%E6%9D%BF.xlsx"
            },
        )

    @get("/{booking_id:int}")
    async def show(self, request: Request, booking_id: FromPath[int]) -> Template:
        """Opens a booking in 预约送检: editable while 草稿/待审核/已驳回, read-only after."""
        try:
            booking = await bookings.get_booking(await _scope(request), booking_id)
        except NotFound:
            raise NotFoundException("预约不存在") from None
        return await _form_page(request, booking)

    @get("/{booking_id:int}/items")
    async def instruments(self, request: Request, booking_id: FromPath[int]) -> Template:
        """【清空】 (blank fields), or a double-clicked row loaded into the fields (?edit=)."""
        scope = await _scope(request)
        try:
            booking = await bookings.get_booking(scope, booking_id)
            edit = request.query_params.get("edit", "")
            item = await bookings.get_item(scope, booking_id, int(edit)) if edit.isdigit() else {}
        except NotFound:
            raise NotFoundException("器具不存在") from None
        if not request.htmx:
            return await _form_page(request, booking, item=item)
        return await _section(request, booking, item=item)

    @post("/{booking_id:int}/items", status_code=200)
    async def save_item(self, request: Request, booking_id: FromPath[int]) -> Template:
        """【添加器具】: validated on the server; the section comes back with the new row."""
        scope = await _scope(request)
        form = await form_data(request)
        try:
            booking = await bookings.save_item(scope, booking_id, form)
        except NotFound:
            raise NotFoundException("预约或器具不存在") from None
        except FormError as e:
            item = {c.key: form.get(c.key, "") for c in BOOKING_COLUMNS}
            item["id"] = form.get("item_id", "")
            booking = await bookings.get_booking(scope, booking_id)
            if not request.htmx:
                return await _form_page(
                    request, booking, values=form, item=item, item_errors=e.errors
                )
            return await _section(request, booking, item=item, errors=e.errors)
        if not request.htmx:
            return await _form_page(request, booking, values=form, notice="器具已添加")
        return await _section(request, booking, notice="器具已添加")

    @post("/{booking_id:int}/items/delete", status_code=200)
    async def delete_items(self, request: Request, booking_id: FromPath[int]) -> Template:
        ids = _ids(await request.form(), "item_ids")
        return await section_action(
            request,
            booking_id,
            lambda scope: bookings.delete_items(scope, booking_id, ids),
            "已删除{n}个器具",
        )

    @post("/{booking_id:int}/import", status_code=200)
    async def import_items(self, request: Request, booking_id: FromPath[int]) -> Template:
        """【点击上传】: the whole file or nothing; every error by row and column."""
        scope = await _scope(request)
        try:
            booking = await bookings.get_booking(scope, booking_id)
        except NotFound:
            raise NotFoundException("预约不存在") from None
        form = await request.form()
        upload = form.get("file")
        errors: list[str] = []
        if not isinstance(upload, UploadFile) or not upload.filename:
            errors = ["请选择要上传的 Excel 文件"]
        else:
            data = await upload.read(DEFAULT_MAX_BYTES + 1)
            try:
                n = await bookings.import_items(scope, booking_id, data)
            except ImportRefused as e:
                errors = [err.message for err in e.errors]
            except FormError as e:
                errors = list(e.errors.values())
        if errors and not request.htmx:
            return await _form_page(
                request, booking, item_errors={"": "导入失败，未导入任何器具：" + "；".join(errors)}
            )
        if errors:
            return page("common/_import_result.html", request, import_errors=errors)
        booking = await bookings.get_booking(scope, booking_id)
        notice = f"已导入{n}个器具"
        if not request.htmx:
            return await _form_page(request, booking, notice=notice)
        # The result in the dialog, and the 器具信息 section swapped out of band.
        section = await _section_context(booking, notice=notice)
        return page(
            "common/_import_result.html",
            request,
            done=notice,
            oob=True,
            **{**section, "errors": {}},
            import_errors=[],
        )

    @get("/{booking_id:int}/history")
    async def history(self, request: Request, booking_id: FromPath[int]) -> Template:
        """The 【从历史预约数据选择】 picker: searchable, paged, tick boxes."""
        scope = await _scope(request)
        try:
            await bookings.get_booking(scope, booking_id)
        except NotFound:
            raise NotFoundException("预约不存在") from None
        return await picker(
            request,
            partial(bookings.history, scope),
            **history_picker(f"/bookings/{booking_id}/history", "#instrument-section"),
        )

    @post("/{booking_id:int}/history", status_code=200)
    async def copy_history(self, request: Request, booking_id: FromPath[int]) -> Template:
        ids = _ids(await request.form(), "history_ids")
        return await section_action(
            request,
            booking_id,
            lambda scope: bookings.copy_history(scope, booking_id, ids),
            "已添加{n}个器具",
        )

    @post("/{booking_id:int}/submit", status_code=200)
    async def submit(
        self, request: Request, booking_id: FromPath[int]
    ) -> Template | Redirect | ClientRedirect:
        """【提交】."""
        scope = await _scope(request)
        form = await form_data(request)
        try:
            booking = await bookings.submit(
                scope, booking_id, form, request.scope["user"], client_ip(request)
            )
        except NotFound:
            raise NotFoundException("预约不存在") from None
        except FormError as e:
            booking = await bookings.get_booking(scope, booking_id)
            return await _form_page(request, booking, values=form, errors=e.errors)
        return go(request, f"/bookings?submitted={booking['booking_no']}")


class BasicInfoController(Controller):
    path = "/settings/basic"
    guards = [enterprise_admin_required]

    @get("/")
    async def show(self, request: Request) -> Template:
        values = await bookings.basic_info(await _scope(request))
        return page(
            "settings/basic.html",
            request,
            values=values,
            errors={},
            fields=bookings.BASIC_FIELDS,
            saved=False,
        )

    @post("/", status_code=200)
    async def save(self, request: Request) -> Template:
        form = await form_data(request)
        try:
            values = await bookings.save_basic_info(
                await _scope(request), form, request.scope["user"], client_ip(request)
            )
        except FormError as e:
            return page(
                "settings/basic.html",
                request,
                values=form,
                errors=e.errors,
                fields=bookings.BASIC_FIELDS,
                saved=False,
            )
        return page(
            "settings/basic.html",
            request,
            values=values,
            errors={},
            fields=bookings.BASIC_FIELDS,
            saved=True,
        )
