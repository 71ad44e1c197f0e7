"""账号设置 › 通知设置 (#12): every account of an enterprise chooses, per message kind, SMS,
e-mail, both or neither, and keeps its own 邮箱. A plain form (303 on success), re-rendered
with the error beside 邮箱 when it is refused."""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, get, post
from litestar.response import Redirect, Template
from litestar_htmx import ClientRedirect

from app.enums import Channel
from app.security.guards import customer_required
from app.services import notify
from app.services.errors import Conflict, FormError
from app.web.errors import field_errors, on_error
from app.web.pages import go, page
from app.web.requests import client_ip, current_user, form_data

PATH = "/account/notifications"


async def _form(
    request: Request, values: dict[str, Any], errors: dict[str, str], saved: bool = False
) -> Template:
    return page(
        "account/notifications.html",
        request,
        values=values,
        errors=errors,
        saved=saved,
        kinds=await notify.kinds_for(current_user(request)),
        channels=list(Channel),
    )


async def _again(request: Request, exc: FormError | Conflict) -> Template:
    """Refused: the form as it was sent (every tick kept), the error beside 邮箱."""
    return await _form(request, await form_data(request), field_errors(exc))


class NotificationController(Controller):
    path = PATH
    guards = [customer_required]

    @get("/")
    async def show(self, request: Request) -> Template:
        """通知设置: the account's 邮箱 and, per message kind, 短信 / 邮件."""
        values = await notify.settings_of(current_user(request))
        return await _form(request, values, {}, saved=request.query_params.get("saved") == "1")

    @post("/", status_code=200, opt=on_error(_again))
    async def save(self, request: Request) -> Redirect | ClientRedirect:
        """【保存】."""
        user = current_user(request)
        data = notify.NotifyInput.from_form(await form_data(request), await notify.kinds_for(user))
        await notify.save_settings(user, data, client_ip(request))
        return go(request, f"{PATH}?saved=1")
