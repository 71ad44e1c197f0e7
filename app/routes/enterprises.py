"""系统管理 › 企业管理 (manual 6.4): subsidiaries with 新增 / 编辑 / 删除 / 停用, the three
行政区域 selects, and the 证件 files."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.params import FromPath
from litestar.response import File, Redirect, Template
from litestar_htmx import ClientRedirect

from app.security.guards import enterprise_admin_required, login_required
from app.services import enterprises, regions
from app.services.errors import Conflict, FormError
from app.web.errors import field_errors, message, on_error
from app.web.lists import list_query, page_number, pager
from app.web.pages import go, page, page_or_part
from app.web.requests import client_ip, current_scope, current_user, form_data, ticked

PER_PAGE = 20
# 企业管理 is the enterprise main account's; only the 证件 route lets others in.
MAIN = [enterprise_admin_required]
# Messages after a redirect, by key: the page never shows text taken from the URL.
DONE = {"created": "已新增子公司，其主账号现在可以登录", "saved": "已保存"}


def _regions(values: dict[str, Any]) -> regions.Choice:
    """The three selects for what the form holds (a stored district, or the selects)."""
    code = str(values.get("region_code") or "")
    if "province" not in values and code:
        return regions.choice_of(code)
    return regions.choose(str(values.get("province") or ""), str(values.get("city") or ""), code)


def _form(
    request: Request,
    values: dict[str, Any],
    errors: dict[str, str],
    enterprise: dict[str, Any] | None = None,
) -> Template:
    """【新增】 (``enterprise`` None) or 【编辑】, with each message beside its field."""
    values = {k: v for k, v in values.items() if k != "password"}  # never echoed
    return page(
        "settings/enterprises_form.html",
        request,
        values=values,
        errors=errors,
        enterprise=enterprise,
        region=_regions(values),
        provinces=regions.divisions().provinces,
        max_mb=enterprises.MAX_LICENCE_BYTES // (1024 * 1024),
    )


async def _editing(request: Request) -> dict[str, Any] | None:
    """The subsidiary the form edits (its id in the path or the form), or None for 新增."""
    raw = request.path_params.get("enterprise_id") or (await form_data(request)).get(
        "enterprise_id", ""
    )
    if not str(raw).isdigit():
        return None
    return await enterprises.get(await current_scope(request), int(raw))


async def _form_again(request: Request, exc: FormError | Conflict) -> Template:
    errors = field_errors(exc)
    form = await request.form()
    sent = form.get("licence")
    if isinstance(sent, UploadFile) and sent.filename and "licence" not in errors:
        # A browser cannot put a file back into the form: say so beside the field.
        errors["licence"] = "其他项目有误，未保存：请改正后重新选择证件文件"
    return _form(request, await form_data(request), errors, await _editing(request))


async def _licence(request: Request) -> enterprises.Licence | None:
    """The uploaded 证件, read up to one byte past the limit (that byte says "too big")."""
    upload = (await request.form()).get("licence")
    if not isinstance(upload, UploadFile) or not upload.filename:
        return None
    data = await upload.read(enterprises.MAX_LICENCE_BYTES + 1)
    return enterprises.Licence(filename=upload.filename, data=data)


async def _list(request: Request, **extra: Any) -> Template:
    p = page_number(list_query(request).get("page"))
    rows, total = await enterprises.list_subsidiaries(
        await current_scope(request), page=p, per_page=PER_PAGE
    )
    return page_or_part(
        request,
        "settings/enterprises.html",
        "settings/_enterprise_list.html",
        rows=rows,
        pager=pager(total, p, PER_PAGE),
        **{"notice": "", "error": "", "kept": [], **extra},
    )


async def _set_disabled(request: Request, *, disabled: bool) -> int:
    """【停用】 / 【启用】 of the ticked units; how many changed."""
    return await enterprises.set_disabled(
        await current_scope(request),
        await ticked(request, "ids"),
        disabled,
        current_user(request),
        client_ip(request),
    )


async def _list_error(request: Request, exc: FormError | Conflict) -> Template:
    return await _list(request, error=message(exc))


class EnterpriseController(Controller):
    """企业管理 is the main account's (guarded per handler: the 证件 route is not)."""

    path = "/settings/enterprises"

    @get("/", guards=MAIN)
    async def index(self, request: Request) -> Template:
        notice = DONE.get(request.query_params.get("done", ""), "")
        return await _list(request, notice=notice)

    @get("/new", guards=MAIN)
    async def new(self, request: Request) -> Template:
        return _form(request, {}, {})

    @post("/", status_code=200, guards=MAIN, opt=on_error(_form_again))
    async def create(self, request: Request) -> Redirect | ClientRedirect:
        """【保存】 of 【新增】: the subsidiary and its main account."""
        await enterprises.create(
            await current_scope(request),
            enterprises.SubsidiaryInput.from_form(await form_data(request)),
            await _licence(request),
            current_user(request),
            client_ip(request),
        )
        return go(request, "/settings/enterprises?done=created")

    @post("/form", status_code=200, guards=MAIN)
    async def refresh(self, request: Request) -> Template:
        """Without JavaScript, 【更新下级选项】 sends the form here: it comes back with the
        city and district options of what was chosen, the typed values kept, nothing saved."""
        return _form(request, await form_data(request), {}, await _editing(request))

    @get("/regions", guards=MAIN)
    async def region_options(self, request: Request) -> Template:
        """htmx: the select(s) below the one just changed, with their options."""
        qp = request.query_params
        region = regions.choose(qp.get("province", ""), qp.get("city", ""), "")
        level = "district" if qp.get("changed") == "city" else "city"
        return page(
            "settings/_enterprise_regions.html",
            request,
            region=region,
            errors={},
            only=level,
        )

    @post("/edit", status_code=200, guards=MAIN)
    async def edit_ticked(self, request: Request) -> Template | Redirect | ClientRedirect:
        """【编辑】 in the toolbar: opens the one ticked unit."""
        ids = await ticked(request, "ids")
        if len(ids) != 1:
            return await _list(request, error="请勾选一个单位再点击【编辑】")
        await enterprises.get(await current_scope(request), ids[0])
        return go(request, f"/settings/enterprises/{ids[0]}/edit")

    @get("/{enterprise_id:int}/edit", guards=MAIN)
    async def edit(self, request: Request, enterprise_id: FromPath[int]) -> Template:
        row = await enterprises.get(await current_scope(request), enterprise_id)
        return _form(request, row, {}, row)

    @post(
        "/{enterprise_id:int}",
        status_code=200,
        guards=MAIN,
        opt=on_error(_form_again),
    )
    async def update(
        self, request: Request, enterprise_id: FromPath[int]
    ) -> Redirect | ClientRedirect:
        """【保存】 of 【编辑】."""
        await enterprises.update(
            await current_scope(request),
            enterprise_id,
            enterprises.SubsidiaryInput.from_form(await form_data(request)),
            await _licence(request),
            current_user(request),
            client_ip(request),
        )
        return go(request, "/settings/enterprises?done=saved")

    @post("/delete", status_code=200, guards=MAIN, opt=on_error(_list_error))
    async def delete(self, request: Request) -> Template:
        """【删除】 the ticked units; those with history stay, with the reason."""
        deleted, kept = await enterprises.delete(
            await current_scope(request),
            await ticked(request, "ids"),
            current_user(request),
            client_ip(request),
        )
        return await _list(request, notice=f"已删除{deleted}个单位" if deleted else "", kept=kept)

    @post("/disable", status_code=200, guards=MAIN, opt=on_error(_list_error))
    async def disable(self, request: Request) -> Template:
        """【停用】: the ticked units' accounts can no longer log in."""
        n = await _set_disabled(request, disabled=True)
        return await _list(request, notice=f"已停用{n}个单位，其账号不能再登录")

    @post("/enable", status_code=200, guards=MAIN, opt=on_error(_list_error))
    async def enable(self, request: Request) -> Template:
        n = await _set_disabled(request, disabled=False)
        return await _list(request, notice=f"已启用{n}个单位")

    @get("/licences/{licence_id:int}", guards=[login_required])
    async def licence(self, request: Request, licence_id: FromPath[int]) -> File:
        """A 证件: for its enterprise, the enterprises above it and platform admins."""
        path, name, media_type = await enterprises.licence_file(current_user(request), licence_id)
        return File(
            path=path,
            filename=name,
            media_type=media_type,
            # Images open in the browser; a PDF is saved (no viewer runs an outside file).
            content_disposition_type="inline" if media_type.startswith("image/") else "attachment",
        )
