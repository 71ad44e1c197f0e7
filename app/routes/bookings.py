"""预约管理: 预约送检 (the form and its htmx table work) and 预约记录; 系统管理 › 基础信息."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar_htmx import ClientRedirect

from app import clock
from app.fields import CUSTODY_PICKER
from app.security.guards import customer_required, enterprise_admin_required
from app.services import bookings, instruments
from app.services.errors import Conflict, FormError, NotFound
from app.services.instrument_xlsx import (
    BOOKING_COLUMNS,
    DEFAULT_MAX_BYTES,
    ImportRefused,
    build_template,
)
from app.services.listing import Cursor, Window
from app.services.tenancy import Scope
from app.web.cards import card_columns
from app.web.downloads import xlsx_download
from app.web.errors import field_errors, message, on_error
from app.web.lists import (
    MAX_Q,
    PickerSearch,
    cursor,
    history_picker,
    keyset_pager,
    list_query,
    page_number,
    pager,
    picker,
)
from app.web.pages import fragment, go, page, page_into
from app.web.requests import client_ip, current_scope, current_user, form_data, ticked
from app.web.units import unit_filter

PER_PAGE = 20
# Rows per page of a booking's 器具列表 (issue #11: a 5,000-row draft stays light).
LIST_SIZE = 50
# The path segment of the user's draft in 预约送检's URLs (/bookings/new/items ...), before
# the draft is made (a GET makes none) and after: the first POST that needs it makes it.
NEW = "new"
# An Optional path parameter: a handler serves both /bookings/{id}/... and /bookings/new/...
BookingRef = FromPath[int | None]
# Each 器具列表 cell's card attributes (app/web/cards.py), editable list or read-only.
CELLS = {
    editable: card_columns(
        (["操作"] if editable else []) + [c.label for c in BOOKING_COLUMNS],
        ["器具名称", "出厂编号", "器具数量", "型号规格"],
        "操作",
        check=editable,
    )
    for editable in (True, False)
}


def _paths(tail: str) -> list[str]:
    """A booking's URL and its draft's: ``/{booking_id:int}<tail>`` and ``/new<tail>``."""
    return [f"/{{booking_id:int}}{tail}", f"/{NEW}{tail}"]


async def _booking(scope: Scope, booking_id: int | None) -> dict[str, Any]:
    """The booking to show: one by id, or the user's draft (the blank form of one not made
    yet, its ``id`` "new"). Reads only."""
    if booking_id is not None:
        return await bookings.get_booking(scope, booking_id)
    return await bookings.find_draft(scope) or {**await bookings.blank_draft(scope), "id": NEW}


async def _named(request: Request, booking_id: int | None) -> int | None:
    """The booking a POST names: the URL's, or under /bookings/new/ the draft named by the
    form's ``draft_id`` (the 器具信息 section carries it once the draft is made, so a form
    opened blank then acts on that booking: a double-clicked 提交 finds it submitted instead
    of making a new draft)."""
    if booking_id is not None:
        return booking_id
    raw = (await form_data(request)).get("draft_id", "")
    return int(raw) if raw.isdecimal() and len(raw) < 10 else None


async def _target(request: Request, booking_id: int | None) -> int:
    """The booking a POST changes: the one named, or the user's draft, made now if need be."""
    named = await _named(request, booking_id)
    if named is not None:
        return named
    return int((await bookings.open_draft(await current_scope(request)))["id"])


async def _shown_page(request: Request, form: dict[str, str] | None = None) -> int:
    """The page of the 器具列表 the user is on: ``?page=`` of a GET, the form's
    ``list_page`` of a POST (``form``: the form, when the caller has read it)."""
    if request.method == "GET":
        return page_number(request.query_params.get("page"))
    return page_number((form or await form_data(request)).get("list_page"))


def _pager(booking: dict[str, Any], page: int) -> dict[str, int]:
    return pager(int(booking.get("item_rows") or 0), page, LIST_SIZE)


async def _list_context(
    booking: dict[str, Any], page: int, with_rows: bool = True
) -> dict[str, Any]:
    """One page of the booking's 器具列表 (none for a blank form) and what shows it
    (``with_rows`` False: only what shows it)."""
    where = _pager(booking, page)
    rows = []
    if booking["id"] != NEW and with_rows:
        rows = await bookings.items_page(booking["id"], where["page"], LIST_SIZE)
    editable = booking["status"] in bookings.EDITABLE
    return {
        "booking": booking,
        "rows": rows,
        "pager": where,
        "columns": BOOKING_COLUMNS,
        "cells": CELLS[editable],
        "editable": editable,
    }


async def _list_keeping(
    scope: Scope, booking: dict[str, Any], page: int, edited: str
) -> dict[str, Any]:
    """A page of the 器具列表 for htmx, keeping the row being edited (``edited``, the
    fields' item_id) at its end when it belongs to another page: its save replaces it on
    the screen."""
    context = await _list_context(booking, page)
    item: dict[str, Any] = {}
    if edited.isdecimal() and len(edited) < 10 and booking["id"] != NEW:
        # None: deleted meanwhile (its save will say so)
        item = await bookings.find_item(scope, booking["id"], int(edited)) or {}
        if item and all(r["id"] != item["id"] for r in context["rows"]):
            context["rows"] = [*context["rows"], item]
    return {**context, "item": item}


async def _section_context(
    booking: dict[str, Any],
    item: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
    skipped: str = "",
    focus: bool = False,
    page: int = 1,
) -> dict[str, Any]:
    return {
        **await _list_context(booking, page),
        "item": item or {},
        "errors": errors or {},
        "notice": notice,
        "skipped": skipped,
        "focus": focus,
    }


async def _form_page(
    request: Request,
    booking: dict[str, Any],
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    item: dict[str, Any] | None = None,
    item_errors: dict[str, str] | None = None,
    notice: str = "",
    skipped: str = "",
    focus: bool = False,
    page_no: int = 1,
) -> Template:
    """预约送检 as a whole page (also the answer to every change without JavaScript), the
    器具列表 at page ``page_no``. ``skipped`` says which instruments were not added because
    the list has them; ``focus`` puts the cursor back in 器具名称 (after 【添加器具】)."""
    section = await _section_context(booking, item, item_errors, notice, skipped, focus, page_no)
    return page(
        "bookings/form.html",
        request,
        **{**section, "errors": errors or {}},
        values=values or booking,
        item_errors=item_errors or {},
        fields=bookings.BOOKING_FIELDS,
        today=clock.today().isoformat(),
    )


async def _section(
    request: Request,
    booking_id: int | None,
    *,
    item: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
    values: dict[str, str] | None = None,
    booking: dict[str, Any] | None = None,
    skipped: str = "",
    focus: bool = False,
    page_no: int = 1,
) -> Template:
    """The whole 器具信息 section (the instrument fields and a page of the 器具列表) for
    htmx, swapped into it whatever the request aimed at; the whole form without
    JavaScript."""
    if booking is None:
        booking = await _booking(await current_scope(request), booking_id)
    if not request.htmx:
        return await _form_page(
            request,
            booking,
            values=values,
            item=item,
            item_errors=errors,
            notice=notice,
            skipped=skipped,
            focus=focus,
            page_no=page_no,
        )
    return page_into(
        "bookings/_instruments.html",
        request,
        "#instrument-section",
        **await _section_context(booking, item, errors, notice, skipped, focus, page_no),
    )


async def _entry(
    request: Request,
    booking_id: int | None,
    booking: dict[str, Any],
    *,
    item: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    notice: str = "",
    values: dict[str, str] | None = None,
    saved: bookings.ItemSaved | None = None,
) -> Template:
    """The answer to 【添加器具】 (saved or refused), 【清空】 and a row's 修改.

    With htmx: the instrument fields, the messages and, after a save, only the row that
    changed and the counts (bookings/_item_answer.html: a few KB whatever the list's
    length); a new row goes at the end of the rows the user sees. A form still saying
    "new" (opened before its draft existed) gets the whole section once, which names the
    draft. Without JavaScript: the whole form, showing the page of the row added (or the
    page the user was on)."""
    shown = await _shown_page(request, values)
    focus = saved is not None
    if not request.htmx or (booking_id is None and request.method == "POST"):
        if saved is not None and saved.added:  # the page of the new row
            shown = bookings.page_of(int(booking["item_rows"]), LIST_SIZE)
        return await _section(
            request,
            booking_id,
            item=item,
            errors=errors,
            notice=notice,
            values=values,
            booking=booking,
            focus=focus,
            page_no=shown,
        )
    editable = booking["status"] in bookings.EDITABLE
    return page(
        "bookings/_item_answer.html",
        request,
        booking=booking,
        item=item or {},
        errors=errors or {},
        notice=notice,
        focus=focus,
        saved=saved,
        pager=_pager(booking, shown),
        columns=BOOKING_COLUMNS,
        cells=CELLS[editable],
    )


async def _item_again(request: Request, exc: FormError | Conflict) -> Template:
    """【添加器具】 refused: the typed row with each message beside its field."""
    form = await form_data(request)
    item: dict[str, Any] = {c.key: form.get(c.key, "") for c in BOOKING_COLUMNS}
    item["id"] = form.get("item_id", "")
    booking_id = request.path_params.get("booking_id")
    booking = await _booking(await current_scope(request), await _named(request, booking_id))
    return await _entry(
        request, booking_id, booking, item=item, errors=field_errors(exc), values=form
    )


async def _section_error(request: Request, exc: FormError | Conflict) -> Template:
    """A change of the 器具列表 refused (a picker's 【确定】): the section with the message."""
    booking_id = await _named(request, request.path_params.get("booking_id"))
    return await _section(request, booking_id, errors=field_errors(exc))


async def _deleted(
    request: Request,
    booking: dict[str, Any],
    *,
    deleted: list[int] | None = None,
    errors: dict[str, str] | None = None,
) -> Template:
    """【删除】 done or refused. With htmx: the message, and out of band the rows deleted
    and the counts (or the list at its last page, when the page shown is gone); without
    JavaScript: the whole form at the page the user was on."""
    notice = f"已删除{len(deleted)}个器具" if deleted else ""
    shown = await _shown_page(request)
    if not request.htmx:
        return await _form_page(request, booking, notice=notice, item_errors=errors, page_no=shown)
    # The page shown is gone (its last rows deleted): the list at its new last page.
    refill = bool(deleted) and _pager(booking, shown)["page"] < shown
    return page(
        "bookings/_items_deleted.html",
        request,
        **await _list_context(booking, shown, with_rows=refill),
        deleted=deleted or [],
        errors=errors or {},
        notice=notice,
        refill=refill,
    )


async def _delete_error(request: Request, exc: FormError | Conflict) -> Template:
    booking_id = await _named(request, request.path_params.get("booking_id"))
    booking = await _booking(await current_scope(request), booking_id)
    return await _deleted(request, booking, errors=field_errors(exc))


async def section_action(
    request: Request,
    booking_id: int | None,
    action: Callable[[Scope, int], Awaitable[int | bookings.RowsAdded]],
    done: str,
) -> Template:
    """Run a change of the 器具列表 (a picker's 【确定】) on the booking, or on the user's
    draft (made now if need be), and answer with the section saying what was done, and what
    was skipped as already listed (a refusal comes back through ``_section_error``), at the
    page where the rows added start."""
    target = await _target(request, booking_id)
    result = await action(await current_scope(request), target)
    if isinstance(result, bookings.RowsAdded):
        notice = done.format(n=result.added) if result.added else ""
        return await _section(
            request,
            target,
            notice=notice,
            skipped=result.skipped_message(),
            page_no=bookings.page_of(result.position, LIST_SIZE),
        )
    return await _section(request, target, notice=done.format(n=result))


async def _add_picked(
    request: Request,
    booking_id: int | None,
    name: str,
    copy: Callable[[Scope, int, list[int]], Awaitable[int | bookings.RowsAdded]],
) -> Template:
    """A picker's 【确定】: ``copy`` puts the rows ticked as ``name`` into the 器具列表."""
    ids = await ticked(request, name)
    return await section_action(
        request, booking_id, lambda scope, target: copy(scope, target, ids), "已添加{n}个器具"
    )


async def _records(request: Request, template: str, **extra: Any) -> Template:
    """预约记录 with the filters and page of the list the user is on."""
    qp = list_query(request)
    filters = {k: qp.get(k, "").strip()[:MAX_Q] for k in ("status", "start", "end", "q")}
    scope, units = unit_filter(request, await current_scope(request))
    found = await bookings.list_bookings(scope, cursor=cursor(qp), per_page=PER_PAGE, **filters)
    response = page(
        template,
        request,
        **units,
        rows=found.rows,
        pager=keyset_pager(request, found),
        filters=filters,
        statuses=bookings.STATUSES,
        submitted=qp.get("submitted", ""),
        **{"kept": [], "deleted": None, "error": "", **extra},
    )
    response.headers["Vary"] = "HX-Request"
    return response


def _records_template(request: Request) -> str:
    return "bookings/_records.html" if fragment(request) else "bookings/records.html"


async def _records_error(request: Request, exc: FormError | Conflict) -> Template:
    return await _records(request, _records_template(request), error=message(exc))


async def _submit_again(request: Request, exc: FormError | Conflict) -> Template:
    booking_id = await _named(request, request.path_params.get("booking_id"))
    booking = await _booking(await current_scope(request), booking_id)
    return await _form_page(
        request, booking, values=await form_data(request), errors=field_errors(exc)
    )


def _marking_listed(booking_id: int | str, search: PickerSearch) -> PickerSearch:
    """A picker's search whose rows say whether the booking's 器具列表 has them already
    (``in_list``): the picker marks them and offers no tick box. A blank form (no draft
    yet, ``NEW``) lists nothing."""

    async def marked(q: str, at: Cursor, size: int) -> Window:
        found = await search(q, at, size)
        await bookings.mark_listed(None if booking_id == NEW else int(booking_id), found.rows)
        return found

    return marked


class BookingController(Controller):
    path = "/bookings"
    guards = [customer_required]

    @get("/")
    async def records(self, request: Request) -> Template:
        """预约记录. An htmx filter change gets only the rows."""
        return await _records(request, _records_template(request))

    @post("/delete", status_code=200, opt=on_error(_records_error))
    async def delete(self, request: Request) -> Template:
        """【删除】 the ticked bookings; the list comes back with the filters it had."""
        deleted, kept = await bookings.delete_bookings(
            await current_scope(request),
            await ticked(request, "ids"),
            current_user(request),
            client_ip(request),
        )
        return await _records(request, _records_template(request), kept=kept, deleted=deleted)

    @get(f"/{NEW}")
    async def new(self, request: Request) -> Template:
        """预约送检: the user's draft (a reload or a second tab finds the same one), or the
        blank form when there is none yet: a GET makes nothing."""
        booking = await _booking(await current_scope(request), None)
        added = request.query_params.get("from_register", "")
        notice = ""
        if added.isdigit() and added != "0":
            notice = f"已从器具托管加入{added}个器具，请核对后提交"
        skipped = request.query_params.get("skipped", "")
        # Only a number comes from the URL; the words are the page's own.
        skip_note = f"已在列表中，跳过 {skipped} 个" if skipped.isdigit() and skipped != "0" else ""
        return await _form_page(
            request, booking, notice=notice, skipped=skip_note, page_no=await _shown_page(request)
        )

    @get("/template.xlsx")
    async def template(self) -> Response[bytes]:
        """【模板下载】."""
        return xlsx_download(
            build_template(BOOKING_COLUMNS),
            "%E5%99%A8%E5%85%B7%E5%AF%BC%E5%85%A5%E6%A8%A1%E6%9D%BF.xlsx",  # 器具导入模板
        )

    @get("/{booking_id:int}")
    async def show(self, request: Request, booking_id: FromPath[int]) -> Template:
        """Opens a booking in 预约送检: editable while 草稿/待审核/已驳回, read-only after."""
        booking = await bookings.get_booking(await current_scope(request), booking_id)
        return await _form_page(request, booking, page_no=await _shown_page(request))

    @get(_paths("/rows"))
    async def rows(self, request: Request, booking_id: BookingRef = None) -> Template:
        """A page of the 器具列表 (``?page=``): only the list for htmx, the form without.
        The row being edited (``?item_id=``) comes along when it is on another page, so
        its save finds it on the screen."""
        scope = await current_scope(request)
        booking = await _booking(scope, booking_id)
        shown = await _shown_page(request)
        if not fragment(request):
            return await _form_page(request, booking, page_no=shown)
        edited = request.query_params.get("item_id", "")
        context = await _list_keeping(scope, booking, shown, edited)
        response = page("bookings/_item_list.html", request, **context)
        response.headers["Vary"] = "HX-Request"
        return response

    @get(_paths("/items"))
    async def instruments(self, request: Request, booking_id: BookingRef = None) -> Template:
        """【清空】 (blank fields), or a double-clicked row loaded into the fields (?edit=)."""
        edit = request.query_params.get("edit", "")
        scope = await current_scope(request)
        booking = await _booking(scope, booking_id)
        item = {}
        if edit.isdecimal():
            if booking["id"] == NEW:
                raise NotFound("器具不存在")
            item = await bookings.get_item(scope, booking["id"], int(edit))
        response = await _entry(request, booking_id, booking, item=item)
        response.headers["Vary"] = "HX-Request"
        return response

    @post(_paths("/items"), status_code=200, opt=on_error(_item_again))
    async def save_item(self, request: Request, booking_id: BookingRef = None) -> Template:
        """【添加器具】: validated on the server; htmx gets the fields back blank, the row
        added (or the row edited) and the counts. The first one in a blank form makes the
        draft."""
        form = await form_data(request)
        entry = bookings.BookingItemInput.from_form(form)
        target = await _target(request, booking_id)
        saved = await bookings.save_item(await current_scope(request), target, entry)
        return await _entry(
            request, booking_id, saved.booking, notice="器具已添加", values=form, saved=saved
        )

    @post(_paths("/items/delete"), status_code=200, opt=on_error(_delete_error))
    async def delete_items(self, request: Request, booking_id: BookingRef = None) -> Template:
        """【删除】 the ticked rows, or a card's own 【删除】 (phone) its row; a blank form
        has none (no draft is made for it)."""
        ids = await ticked(request, "delete_item") or await ticked(request, "item_ids")
        scope = await current_scope(request)
        booking = await _booking(scope, await _named(request, booking_id))
        if booking["id"] == NEW:
            raise NotFound("器具不存在") if ids else FormError({"": "请先勾选要删除的器具"})
        done = await bookings.delete_items(scope, booking["id"], ids)
        return await _deleted(request, done.booking, deleted=done.ids)

    @post(_paths("/import"), status_code=200)
    async def import_items(self, request: Request, booking_id: BookingRef = None) -> Template:
        """【点击上传】: the whole file or nothing; every error by row and column."""
        scope = await current_scope(request)
        booking = await _booking(scope, booking_id)
        form = await request.form()
        upload = form.get("file")
        errors: list[str] = []
        if not isinstance(upload, UploadFile) or not upload.filename:
            errors = ["请选择要上传的 Excel 文件"]
        else:
            data = await upload.read(DEFAULT_MAX_BYTES + 1)
            try:
                booking_id = await _target(request, booking_id)
                result = await bookings.import_items(scope, booking_id, data)
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
        booking = await _booking(scope, booking_id)
        notice = f"已导入{result.added}个器具"
        skipped = result.skipped_message()
        shown = bookings.page_of(result.position, LIST_SIZE)  # where the rows imported start
        if not request.htmx:
            return await _form_page(request, booking, notice=notice, skipped=skipped, page_no=shown)
        # The 器具信息 section swapped out of band, saying what was imported; the dialog
        # closes itself (manual ch. 3: 【点击上传】 alone imports).
        section = await _section_context(booking, notice=notice, skipped=skipped, page=shown)
        return page(
            "common/_import_result.html",
            request,
            done=notice,
            oob=True,
            close_dialog="import-dialog",
            **{**section, "errors": {}},
            import_errors=[],
        )

    @get(_paths("/history"))
    async def history(self, request: Request, booking_id: BookingRef = None) -> Template:
        """The 【从历史预约数据选择】 picker: searchable, paged, tick boxes."""
        scope = await current_scope(request)
        booking = await _booking(scope, booking_id)
        return await picker(
            request,
            _marking_listed(booking["id"], partial(bookings.history, scope)),
            **history_picker(f"/bookings/{booking['id']}/history", "#instrument-section"),
        )

    @post(_paths("/history"), status_code=200, opt=on_error(_section_error))
    async def copy_history(self, request: Request, booking_id: BookingRef = None) -> Template:
        return await _add_picked(request, booking_id, "history_ids", bookings.copy_history)

    @get(_paths("/custody"))
    async def custody_picker(self, request: Request, booking_id: BookingRef = None) -> Template:
        """【从托管器具选择】."""
        scope = await current_scope(request)
        booking = await _booking(scope, booking_id)
        url = f"/bookings/{booking['id']}/custody"
        return await picker(
            request,
            _marking_listed(booking["id"], partial(instruments.picker, scope)),
            body_id="custody-body",
            get_url=url,
            post_url=url,
            post_target="#instrument-section",
            name="custody_ids",
            columns=CUSTODY_PICKER,
            empty="器具托管中暂无器具",
        )

    @post(_paths("/custody"), status_code=200, opt=on_error(_section_error))
    async def copy_custody(self, request: Request, booking_id: BookingRef = None) -> Template:
        return await _add_picked(request, booking_id, "custody_ids", instruments.copy_to_booking)

    @post(_paths("/submit"), status_code=200, opt=on_error(_submit_again))
    async def submit(
        self, request: Request, booking_id: BookingRef = None
    ) -> Redirect | ClientRedirect:
        """【提交】 (in a blank form it makes the draft, which keeps the fields if refused)."""
        submission = bookings.BookingSubmission.from_form(await form_data(request))
        booking = await bookings.submit(
            await current_scope(request),
            await _target(request, booking_id),
            submission,
            current_user(request),
            client_ip(request),
        )
        return go(request, f"/bookings?submitted={booking['booking_no']}")


async def _basic_page(request: Request, values: dict[str, Any], **extra: Any) -> Template:
    context = {"errors": {}, "saved": False, "prefilled": False, **extra}
    return page(
        "settings/basic.html", request, values=values, fields=bookings.BASIC_FIELDS, **context
    )


async def _basic_again(request: Request, exc: FormError | Conflict) -> Template:
    return await _basic_page(request, await form_data(request), errors=field_errors(exc))


class BasicInfoController(Controller):
    path = "/settings/basic"
    guards = [enterprise_admin_required]

    @get("/")
    async def show(self, request: Request) -> Template:
        values, saved = await bookings.basic_info_state(await current_scope(request))
        return await _basic_page(request, values, prefilled=not saved)

    @post("/", status_code=200, opt=on_error(_basic_again))
    async def save(self, request: Request) -> Template:
        info = bookings.BasicInfoInput.from_form(await form_data(request))
        values = await bookings.save_basic_info(
            await current_scope(request), info, current_user(request), client_ip(request)
        )
        return await _basic_page(request, values, saved=True)
