"""系统管理 › 用户管理 and 部门管理 (manual 6.2–6.3): the enterprise main account's screens.

Lists answer an htmx search, paging or action with their partial only; forms are plain
POSTs (303 on success) re-rendered with each error beside its field.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template
from litestar_htmx import ClientRedirect

from app.security.guards import enterprise_admin_required
from app.services import org
from app.services.errors import Conflict, FormError
from app.web.errors import field_errors, message, on_error
from app.web.lists import searched
from app.web.pages import go, page, page_or_part
from app.web.requests import client_ip, current_scope, current_user, form_data, ticked

PER_PAGE = 20
# Messages after a redirect, by key: the page never shows text taken from the URL.
DONE = {"created": "已新增", "saved": "已保存"}


# --------------------------------------------------------------------------- 用户管理


async def _users_page(
    request: Request, notice: str = "", error: str = "", checked: frozenset[int] = frozenset()
) -> Template:
    scope = await current_scope(request)
    return page_or_part(
        request,
        "settings/users.html",
        "settings/_users.html",
        **await searched(request, partial(org.list_users, scope), PER_PAGE),
        notice=notice,
        error=error,
        checked=checked,
    )


async def _users_error(request: Request, exc: FormError | Conflict) -> Template:
    """A list action refused (nothing ticked, the main account itself): the list, saying
    why, with the same rows still ticked."""
    return await _users_page(
        request, error=message(exc), checked=frozenset(await ticked(request, "ids"))
    )


async def _user_form(
    request: Request, values: dict[str, Any], errors: dict[str, str], user_id: int | None
) -> Template:
    return page(
        "settings/user_form.html",
        request,
        values=values,
        errors=errors,
        user_id=user_id,
        departments=await org.department_options(await current_scope(request)),
    )


async def _user_again(request: Request, exc: FormError | Conflict) -> Template:
    form = await form_data(request)
    form.pop("password", None)  # never echoed
    return await _user_form(request, form, field_errors(exc), request.path_params.get("user_id"))


class UserController(Controller):
    path = "/settings/users"
    guards = [enterprise_admin_required]

    @get("/")
    async def index(self, request: Request) -> Template:
        """用户管理: the enterprise's accounts; an htmx search or page gets only the list."""
        return await _users_page(request, notice=DONE.get(request.query_params.get("done", ""), ""))

    @get("/new")
    async def new(self, request: Request) -> Template:
        return await _user_form(request, {}, {}, None)

    @post("/", status_code=200, opt=on_error(_user_again))
    async def create(self, request: Request) -> Redirect | ClientRedirect:
        """【新增】 → 【保存】: a sub-account."""
        await org.save_user(
            await current_scope(request),
            org.UserInput.from_form(await form_data(request)),
            current_user(request),
            client_ip(request),
        )
        return go(request, "/settings/users?done=created")

    @get("/{user_id:int}/edit")
    async def edit(self, request: Request, user_id: FromPath[int]) -> Template:
        row = await org.get_user(await current_scope(request), user_id)
        values = {**row, "department": str(row["department"] or "")}
        return await _user_form(request, values, {}, user_id)

    @post("/{user_id:int}", status_code=200, opt=on_error(_user_again))
    async def update(self, request: Request, user_id: FromPath[int]) -> Redirect | ClientRedirect:
        """【编辑】 → 【保存】: an empty 密码 leaves it unchanged."""
        await org.save_user(
            await current_scope(request),
            org.UserInput.from_form(await form_data(request)),
            current_user(request),
            client_ip(request),
            user_id,
        )
        return go(request, "/settings/users?done=saved")

    @post("/delete", status_code=200, opt=on_error(_users_error))
    async def delete(self, request: Request) -> Template:
        """【删除】 the ticked accounts."""
        n = await org.delete_users(
            await current_scope(request),
            await ticked(request, "ids"),
            current_user(request),
            client_ip(request),
        )
        return await _users_page(request, notice=f"已删除{n}个用户")

    @post("/{user_id:int}/disable", status_code=200, opt=on_error(_users_error))
    async def disable(self, request: Request, user_id: FromPath[int]) -> Template:
        """【停用】: the account's sessions end at once."""
        row = await org.set_active(
            await current_scope(request), user_id, False, current_user(request), client_ip(request)
        )
        return await _users_page(request, notice=f"已停用 {row['username']}")

    @post("/{user_id:int}/enable", status_code=200, opt=on_error(_users_error))
    async def enable(self, request: Request, user_id: FromPath[int]) -> Template:
        """【启用】."""
        row = await org.set_active(
            await current_scope(request), user_id, True, current_user(request), client_ip(request)
        )
        return await _users_page(request, notice=f"已启用 {row['username']}")


# --------------------------------------------------------------------------- 部门管理


async def _departments_page(
    request: Request, notice: str = "", error: str = "", checked: frozenset[int] = frozenset()
) -> Template:
    return page_or_part(
        request,
        "settings/departments.html",
        "settings/_departments.html",
        tree=await org.department_tree(await current_scope(request)),
        notice=notice,
        error=error,
        checked=checked,
    )


async def _departments_error(request: Request, exc: FormError | Conflict) -> Template:
    return await _departments_page(
        request, error=message(exc), checked=frozenset(await ticked(request, "ids"))
    )


async def _department_form(
    request: Request, values: dict[str, Any], errors: dict[str, str], department_id: int | None
) -> Template:
    return page(
        "settings/department_form.html",
        request,
        values=values,
        errors=errors,
        department_id=department_id,
        # never the department itself or one below it: it cannot be its own parent
        parents=await org.department_options(await current_scope(request), skip=department_id),
    )


async def _department_again(request: Request, exc: FormError | Conflict) -> Template:
    return await _department_form(
        request,
        await form_data(request),
        field_errors(exc),
        request.path_params.get("department_id"),
    )


class DepartmentController(Controller):
    path = "/settings/departments"
    guards = [enterprise_admin_required]

    @get("/")
    async def index(self, request: Request) -> Template:
        """部门管理: the department tree."""
        return await _departments_page(
            request, notice=DONE.get(request.query_params.get("done", ""), "")
        )

    @get("/new")
    async def new(self, request: Request) -> Template:
        # 【新增】 beside a department (?parent=) starts below it.
        return await _department_form(
            request, {"parent": request.query_params.get("parent", "")}, {}, None
        )

    @post("/", status_code=200, opt=on_error(_department_again))
    async def create(self, request: Request) -> Redirect | ClientRedirect:
        await org.save_department(
            await current_scope(request),
            org.DepartmentInput.from_form(await form_data(request)),
            current_user(request),
            client_ip(request),
        )
        return go(request, "/settings/departments?done=created")

    @get("/{department_id:int}/edit")
    async def edit(self, request: Request, department_id: FromPath[int]) -> Template:
        row = await org.get_department(await current_scope(request), department_id)
        values = {**row, "parent": str(row["parent"] or "")}
        return await _department_form(request, values, {}, department_id)

    @post("/{department_id:int}", status_code=200, opt=on_error(_department_again))
    async def update(
        self, request: Request, department_id: FromPath[int]
    ) -> Redirect | ClientRedirect:
        await org.save_department(
            await current_scope(request),
            org.DepartmentInput.from_form(await form_data(request)),
            current_user(request),
            client_ip(request),
            department_id,
        )
        return go(request, "/settings/departments?done=saved")

    @post("/delete", status_code=200, opt=on_error(_departments_error))
    async def delete(self, request: Request) -> Template:
        """【删除】 the ticked departments (refused, with the reason, for a parent or one
        with users)."""
        n = await org.delete_departments(
            await current_scope(request),
            await ticked(request, "ids"),
            current_user(request),
            client_ip(request),
        )
        return await _departments_page(request, notice=f"已删除{n}个部门")
