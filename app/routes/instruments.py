"""器具托管 (manual ch. 5): the register, its import/export, pickers and one-click booking."""

from __future__ import annotations

import os
import tempfile
from functools import partial
from pathlib import Path
from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.background_tasks import BackgroundTask
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import File, Redirect, Template
from litestar_htmx import ClientRedirect, HTMXTemplate

from app.security.guards import customer_required
from app.services import bookings, instruments
from app.services.errors import Conflict, FormError
from app.services.instrument_export import export_file
from app.services.instrument_xlsx import (
    DEFAULT_MAX_BYTES,
    REGISTER_COLUMNS,
    ImportRefused,
    build_template,
)
from app.settings import get_settings
from app.web.downloads import XLSX, xlsx_download
from app.web.errors import field_errors, message, on_error
from app.web.lists import MAX_Q, cursor, history_picker, keyset_pager, list_query, picker
from app.web.pages import fragment, go, page, page_context
from app.web.requests import client_ip, current_scope, current_user, form_data, ticked
from app.web.units import unit_filter

PER_PAGE = 20
# Messages after a redirect, by key: the page never shows text taken from the URL.
DONE = {"created": "已新增", "saved": "已保存"}


def _filters(request: Request) -> dict[str, str]:
    qp = list_query(request)
    state = qp.get("state", "all")
    return {
        "q": qp.get("q", "").strip()[:MAX_Q],
        "state": state if state in instruments.FILTERS else "all",
        "sort": "-valid_until" if qp.get("sort") == "-valid_until" else "valid_until",
    }


async def _list_page(request: Request, template: str, **extra: Any) -> Template:
    f = _filters(request)
    scope, units = unit_filter(request, await current_scope(request))
    found = await instruments.list_instruments(
        scope, cursor=cursor(list_query(request)), per_page=PER_PAGE, **f
    )
    response = page(
        template,
        request,
        rows=found.rows,
        pager=keyset_pager(request, found),
        filters=f,
        states=instruments.FILTERS,
        columns=REGISTER_COLUMNS,
        **units,
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
    )


def _list_template(request: Request) -> str:
    return "instruments/_list.html" if fragment(request) else "instruments/index.html"


async def _list_error(request: Request, exc: FormError | Conflict) -> Template:
    """A list action refused (nothing ticked, …): the list with the message."""
    return await _list_page(request, _list_template(request), notice="", error=message(exc))


async def _form_again(request: Request, exc: FormError | Conflict) -> Template:
    instrument_id = request.path_params.get("instrument_id")
    return _form(request, await form_data(request), field_errors(exc), instrument_id)


def _refusal(exc: ImportRefused | FormError) -> list[str]:
    """An import's refusal as the lines to show."""
    if isinstance(exc, ImportRefused):
        return [err.message for err in exc.errors]
    return list(exc.errors.values())


async def _import_answer(
    request: Request, plan: instruments.ImportPlan | None, errors: list[str]
) -> Template:
    """【点击上传】's answer (what 【确定】 will import, or why not), or a refused 【确定】's:
    in the import dialog with htmx, on the page without JavaScript."""
    if not request.htmx:
        return await _list_page(
            request, "instruments/index.html", notice="", error="", plan=plan, import_errors=errors
        )
    return HTMXTemplate(
        template_name="instruments/_import_plan.html",
        context={**page_context(request), "plan": plan, "import_errors": errors, "in_dialog": True},
        # 【确定】's form targets the list; its refusal belongs in the dialog.
        re_target="#import-result",
        re_swap="innerHTML",
    )


class InstrumentController(Controller):
    path = "/instruments"
    guards = [customer_required]

    @get("/")
    async def index(self, request: Request) -> Template:
        """器具托管 list; an htmx filter, search or sort gets only the rows."""
        notice = DONE.get(request.query_params.get("done", ""), "")
        return await _list_page(request, _list_template(request), notice=notice, error="")

    @get("/new")
    async def new(self, request: Request) -> Template:
        # A new instrument starts with the fields' defaults (证书类型, 器具数量).
        defaults = {c.key: c.default for c in REGISTER_COLUMNS if c.default is not None}
        return _form(request, defaults, {}, None)

    @post("/", status_code=200, opt=on_error(_form_again))
    async def create(self, request: Request) -> Redirect | ClientRedirect:
        """【新增】 → 【确定】."""
        instrument = instruments.InstrumentInput.from_form(await form_data(request))
        await instruments.save(
            await current_scope(request), instrument, current_user(request), client_ip(request)
        )
        return go(request, "/instruments?done=created")

    @post("/edit", status_code=200)
    async def edit_ticked(self, request: Request) -> Template | Redirect | ClientRedirect:
        """【编辑】 in the toolbar: opens the one ticked row (a POST keeps the CSRF token
        out of the address bar)."""
        ids = await ticked(request, "ids")
        if len(ids) != 1:
            return await _list_page(
                request, _list_template(request), notice="", error="请勾选一个器具再点击【编辑】"
            )
        await instruments.get(await current_scope(request), ids[0])
        return go(request, f"/instruments/{ids[0]}/edit")

    @get("/{instrument_id:int}/edit")
    async def edit(self, request: Request, instrument_id: FromPath[int]) -> Template:
        row = await instruments.get(await current_scope(request), instrument_id)
        return _form(request, row, {}, instrument_id)

    @post("/{instrument_id:int}", status_code=200, opt=on_error(_form_again))
    async def update(
        self, request: Request, instrument_id: FromPath[int]
    ) -> Redirect | ClientRedirect:
        instrument = instruments.InstrumentInput.from_form(await form_data(request))
        await instruments.save(
            await current_scope(request),
            instrument,
            current_user(request),
            client_ip(request),
            instrument_id,
        )
        return go(request, "/instruments?done=saved")

    @post("/delete", status_code=200, opt=on_error(_list_error))
    async def delete(self, request: Request) -> Template:
        n = await instruments.delete(
            await current_scope(request),
            await ticked(request, "ids"),
            current_user(request),
            client_ip(request),
        )
        return await _list_page(
            request, _list_template(request), notice=f"已删除{n}个器具", error=""
        )

    @get("/template.xlsx")
    async def template(self) -> Response[bytes]:
        """【模板下载】: the booking columns plus 检定周期, 上次检定日期, 有效期至."""
        return xlsx_download(
            build_template(REGISTER_COLUMNS),
            # 器具托管导入模板
            "%E5%99%A8%E5%85%B7%E6%89%98%E7%AE%A1%E5%AF%BC%E5%85%A5%E6%A8%A1%E6%9D%BF.xlsx",
        )

    @post("/import", status_code=200)
    async def import_file(self, request: Request) -> Template:
        """【点击上传】: reads the whole file and shows what 【确定】 will add and update (or
        every error by row and column); nothing is written yet."""
        upload = (await request.form()).get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            return await _import_answer(request, None, ["请选择要上传的 Excel 文件"])
        data = await upload.read(DEFAULT_MAX_BYTES + 1)
        try:
            plan = await instruments.plan_import(
                await current_scope(request), data, current_user(request)
            )
        except ImportRefused as e:
            return await _import_answer(request, None, _refusal(e))
        return await _import_answer(request, plan, [])

    @post("/import/confirm", status_code=200)
    async def confirm_import(self, request: Request) -> Template:
        """【确定】: imports the file 【点击上传】 kept. htmx gets the list saying how many
        were added and updated (and the dialog closes); a refusal goes to the dialog."""
        token = (await form_data(request)).get("token", "")
        try:
            added, updated = await instruments.confirm_import(
                await current_scope(request), token, current_user(request), client_ip(request)
            )
        except (ImportRefused, FormError) as e:
            return await _import_answer(request, None, _refusal(e))
        return await _list_page(
            request,
            _list_template(request),
            notice=f"导入完成：新增{added}个，更新{updated}个",
            error="",
            close_dialog="import-dialog",
        )

    @get("/export.xlsx")
    async def export(self, request: Request) -> File:
        """【导出器具】: the current filter and search, written by a child process (openpyxl
        would hold this process's GIL for the whole export, stalling other requests)."""
        scope, _ = unit_filter(request, await current_scope(request))
        f = _filters(request)
        tmp_dir = get_settings().data_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(suffix=".xlsx", dir=tmp_dir)
        os.close(fd)
        path = Path(name)
        try:
            await export_file(path, scope, f["q"], f["state"])
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
        scope = await current_scope(request)
        return await picker(
            request,
            partial(bookings.history, scope),
            **history_picker("/instruments/history", "#instrument-list"),
        )

    @post("/history", status_code=200, opt=on_error(_list_error))
    async def add_history(self, request: Request) -> Template:
        added, updated = await instruments.add_from_history(
            await current_scope(request), await ticked(request, "history_ids")
        )
        notice = f"已加入器具托管：新增{added}个，更新{updated}个"
        return await _list_page(request, _list_template(request), notice=notice, error="")

    @post("/to-booking", status_code=200, opt=on_error(_list_error))
    async def to_booking(self, request: Request) -> Redirect | ClientRedirect:
        """【一键生成预约送检】: the ticked rows into the draft, then 预约送检."""
        ids = await ticked(request, "ids")
        result = await instruments.to_booking(await current_scope(request), ids)
        # The notice and the anchor show a phone user the rows that were added.
        skipped = f"&skipped={len(result.skipped)}" if result.skipped else ""
        return go(
            request, f"/bookings/new?from_register={result.added}{skipped}#instrument-section"
        )
