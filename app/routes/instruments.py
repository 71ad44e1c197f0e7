"""器具托管 (manual ch. 5): the register, its import/export, pickers and one-click booking."""

from __future__ import annotations

import os
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from anyio.from_thread import run as run_from_thread
from litestar import Controller, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import UploadFile
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import File, Redirect, Template
from litestar_htmx import ClientRedirect

from app.fields import CUSTODY_PICKER
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
from app.routes.bookings import XLSX, _ids, _scope, history_picker, section_action
from app.security import customer_required
from app.services import bookings, instruments
from app.services.accounts import FormError
from app.services.instrument_xlsx import (
    CERTIFICATE_TYPES,
    DEFAULT_MAX_BYTES,
    REGISTER_COLUMNS,
    ImportRefused,
    build_template,
    write_export,
)
from app.services.tenancy import NotFound, Scope
from app.settings import get_settings

PER_PAGE = 20
# Messages after a redirect, by key: the page never shows text taken from the URL.
DONE = {"created": "已新增", "saved": "已保存"}
CUSTODY_COLUMNS = CUSTODY_PICKER


def _filters(request: Request) -> dict[str, str]:
    qp = list_query(request)
    state = qp.get("state", "all")
    return {
        "q": qp.get("q", "").strip(),
        "state": state if state in instruments.FILTERS else "all",
        "sort": "-valid_until" if qp.get("sort") == "-valid_until" else "valid_until",
    }


async def _list_page(request: Request, template: str, **extra: Any) -> Template:
    f = _filters(request)
    p = page_number(list_query(request).get("page"))
    rows, total = await instruments.list_instruments(
        await _scope(request), page=p, per_page=PER_PAGE, **f
    )
    response = page(
        template,
        request,
        rows=rows,
        pager=pager(total, p, PER_PAGE),
        filters=f,
        states=instruments.FILTERS,
        columns=REGISTER_COLUMNS,
        **extra,
    )
    response.headers["Vary"] = "HX-Request"
    return response


def _form(
    request: Request, values: dict[str, Any], errors: dict[str, str], instrument_id: int | None
) -> Template:
    return page(
        "instruments/form.html",
        request,
        values=values,
        errors=errors,
        instrument_id=instrument_id,
        columns=REGISTER_COLUMNS,
        cert_types=CERTIFICATE_TYPES,
    )


class InstrumentController(Controller):
    path = "/instruments"
    guards = [customer_required]

    @get("/")
    async def index(self, request: Request) -> Template:
        """器具托管 list; an htmx filter, search or sort gets only the rows."""
        template = "instruments/_list.html" if fragment(request) else "instruments/index.html"
        return await _list_page(
            request, template, notice=DONE.get(request.query_params.get("done", ""), ""), error=""
        )

    @get("/new")
    async def new(self, request: Request) -> Template:
        return _form(request, {"certificate_type": "检定证书", "quantity": "1"}, {}, None)

    @post("/", status_code=200)
    async def create(self, request: Request) -> Template | Redirect | ClientRedirect:
        """【新增】 → 【确定】."""
        form = await form_data(request)
        try:
            await instruments.save(
                await _scope(request),
                {**form, "_new": "1"},
                request.scope["user"],
                client_ip(request),
            )
        except FormError as e:
            return _form(request, form, e.errors, None)
        return go(request, "/instruments?done=created")

    @post("/edit", status_code=200)
    async def edit_ticked(self, request: Request) -> Template | Redirect | ClientRedirect:
        """【编辑】 in the toolbar: opens the one ticked row (a POST keeps the CSRF token
        out of the address bar)."""
        ids = _ids(await request.form(), "ids")
        if len(ids) != 1:
            template = "instruments/_list.html" if request.htmx else "instruments/index.html"
            return await _list_page(
                request, template, notice="", error="请勾选一个器具再点击【编辑】"
            )
        try:
            await instruments.get(await _scope(request), ids[0])
        except NotFound:
            raise NotFoundException("器具不存在") from None
        return go(request, f"/instruments/{ids[0]}/edit")

    @get("/{instrument_id:int}/edit")
    async def edit(self, request: Request, instrument_id: FromPath[int]) -> Template:
        try:
            row = await instruments.get(await _scope(request), instrument_id)
        except NotFound:
            raise NotFoundException("器具不存在") from None
        return _form(request, row, {}, instrument_id)

    @post("/{instrument_id:int}", status_code=200)
    async def update(
        self, request: Request, instrument_id: FromPath[int]
    ) -> Template | Redirect | ClientRedirect:
        form = await form_data(request)
        try:
            await instruments.save(
                await _scope(request),
                form,
                request.scope["user"],
                client_ip(request),
                instrument_id,
            )
        except NotFound:
            raise NotFoundException("器具不存在") from None
        except FormError as e:
            return _form(request, form, e.errors, instrument_id)
        return go(request, "/instruments?done=saved")

    @post("/delete", status_code=200)
    async def delete(self, request: Request) -> Template:
        form = await request.form()
        try:
            n = await instruments.delete(
                await _scope(request), _ids(form, "ids"), request.scope["user"], client_ip(request)
            )
            notice, error = f"已删除{n}个器具", ""
        except NotFound:
            raise NotFoundException("器具不存在") from None
        except FormError as e:
            notice, error = "", e.errors[""]
        template = "instruments/_list.html" if request.htmx else "instruments/index.html"
        return await _list_page(request, template, notice=notice, error=error)

    @get("/template.xlsx")
    async def template(self) -> Response[bytes]:
        """【模板下载】: the booking columns plus 检定周期, 上次检定日期, 有效期至."""
        return Response(
            build_template(REGISTER_COLUMNS),
            media_type=XLSX,
            headers={
                "Content-Disposition": "attachment; filename*=UTF-8''%E5%99%A8%E5%85%B7%E6%89%98"
                "%E7%AE%A1%E5%AF%BC%E5%85%A5%E6%A8%A1%E6%9D%BF.xlsx"
            },
        )

    @post("/import", status_code=200)
    async def import_file(self, request: Request) -> Template:
        """【点击上传】: all rows or none; says how many were added and updated."""
        form = await request.form()
        upload = form.get("file")
        errors: list[str] = []
        added = updated = 0
        if not isinstance(upload, UploadFile) or not upload.filename:
            errors = ["请选择要上传的 Excel 文件"]
        else:
            data = await upload.read(DEFAULT_MAX_BYTES + 1)
            try:
                added, updated = await instruments.import_file(
                    await _scope(request), data, request.scope["user"], client_ip(request)
                )
            except ImportRefused as e:
                errors = [err.message for err in e.errors]
        if not request.htmx and not errors:
            return await _list_page(
                request,
                "instruments/index.html",
                notice=f"导入完成：新增{added}个，更新{updated}个",
                error="",
            )
        done = f"导入完成：新增{added}个，更新{updated}个。"
        response = page("common/_import_result.html", request, import_errors=errors, done=done)
        if not errors:
            response.headers["HX-Trigger"] = "instruments-changed"  # the list reloads itself
        return response

    @get("/export.xlsx")
    async def export(self, request: Request) -> File:
        """【导出器具】: the current filter and search, streamed through a write-only sheet."""
        scope = await _scope(request)
        f = _filters(request)
        tmp_dir = get_settings().data_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(suffix=".xlsx", dir=tmp_dir)
        path = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                # openpyxl is synchronous: write in a thread that pulls one batch at a time
                # from the event loop, so neither the rows nor the workbook sit in memory.
                await anyio.to_thread.run_sync(
                    write_export, _batches(scope, f["q"], f["state"]), REGISTER_COLUMNS, out
                )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return File(
            path=path,
            filename="器具托管.xlsx",
            media_type=XLSX,
            background=BackgroundTask(path.unlink, missing_ok=True),
        )

    @get("/history")
    async def history(self, request: Request) -> Template:
        """【从历史预约数据选择】 for the register."""
        scope = await _scope(request)
        return await picker(
            request,
            partial(bookings.history, scope),
            **history_picker("/instruments/history", "#instrument-list"),
        )

    @post("/history", status_code=200)
    async def add_history(self, request: Request) -> Template:
        form = await request.form()
        try:
            added, updated = await instruments.add_from_history(
                await _scope(request), _ids(form, "history_ids")
            )
            notice, error = f"已加入器具托管：新增{added}个，更新{updated}个", ""
        except NotFound:
            raise NotFoundException("器具不存在") from None
        except FormError as e:
            notice, error = "", e.errors[""]
        template = "instruments/_list.html" if request.htmx else "instruments/index.html"
        return await _list_page(request, template, notice=notice, error=error)

    @post("/to-booking", status_code=200)
    async def to_booking(self, request: Request) -> Template | Redirect | ClientRedirect:
        """【一键生成预约送检】: the ticked rows into the draft, then 预约送检."""
        form = await request.form()
        ids = _ids(form, "ids")
        try:
            await instruments.to_booking(await _scope(request), ids)
        except NotFound:
            raise NotFoundException("器具不存在") from None
        except FormError as e:
            template = "instruments/_list.html" if request.htmx else "instruments/index.html"
            return await _list_page(request, template, notice="", error=e.errors[""])
        # The notice and the anchor show a phone user the rows that were added.
        return go(request, f"/bookings/new?from_register={len(set(ids))}#instrument-section")


def _batches(scope: Scope, q: str, state: str) -> Any:
    """Rows for the export thread, fetched batch by batch on the event loop."""
    after = 0
    while True:
        batch = run_from_thread(instruments.export_batch, scope, q, state, after)
        if not batch:
            return
        yield from batch
        after = batch[-1]["id"]


class CustodyPickerController(Controller):
    """【从托管器具选择】 in 预约送检."""

    path = "/bookings/{booking_id:int}/custody"
    guards = [customer_required]

    @get("/")
    async def picker(self, request: Request, booking_id: FromPath[int]) -> Template:
        scope = await _scope(request)
        try:
            await bookings.get_booking(scope, booking_id)
        except NotFound:
            raise NotFoundException("预约不存在") from None
        url = f"/bookings/{booking_id}/custody"
        return await picker(
            request,
            partial(instruments.picker, scope),
            body_id="custody-body",
            get_url=url,
            post_url=url,
            post_target="#instrument-section",
            name="custody_ids",
            columns=CUSTODY_COLUMNS,
            empty="器具托管中暂无器具",
        )

    @post("/", status_code=200)
    async def copy(self, request: Request, booking_id: FromPath[int]) -> Template:
        ids = _ids(await request.form(), "custody_ids")
        return await section_action(
            request,
            booking_id,
            lambda scope: instruments.copy_to_booking(scope, booking_id, ids),
            "已添加{n}个器具",
        )
