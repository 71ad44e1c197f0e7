"""Small helpers every handler uses: the page context, client address, form reading, paging."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from litestar import Request
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar_htmx import ClientRedirect

# Every menu entry of the manual; an entry shows only when its screen exists (app.main fills
# EXISTING_PATHS) and the user may open it.
CUSTOMER_MENU: list[tuple[str, list[tuple[str, str, str]]]] = [
    (
        "查询服务",
        [
            ("检测进度查询", "/query/progress", "customer"),
            ("证书防伪查询", "/query/verify", "customer"),
        ],
    ),
    (
        "预约管理",
        [("预约送检", "/bookings/new", "customer"), ("预约记录", "/bookings", "customer")],
    ),
    ("电子证书", [("电子证书", "/certificates", "customer")]),
    ("器具托管", [("器具托管", "/instruments", "customer")]),
    (
        "系统管理",
        [
            ("基础信息", "/settings/basic", "enterprise_admin"),
            ("用户管理", "/settings/users", "enterprise_admin"),
            ("部门管理", "/settings/departments", "enterprise_admin"),
            ("企业管理", "/settings/enterprises", "enterprise_admin"),
        ],
    ),
]
ADMIN_MENU: list[tuple[str, str]] = [
    ("注册审核", "/admin/registrations"),
    ("预约审核", "/admin/bookings"),
    ("协议客户", "/admin/contracts"),
    ("短信记录", "/admin/sms"),
    ("操作日志", "/admin/audit"),
]
EXISTING_PATHS: set[str] = set()


def _menus(user: Any) -> tuple[list[tuple[str, list[tuple[str, str]]]], list[tuple[str, str]]]:
    customer = []
    if user is not None and user.enterprise_id:
        for group, items in CUSTOMER_MENU:
            shown = [
                (label, href)
                for label, href, need in items
                if href in EXISTING_PATHS and (need == "customer" or user.is_enterprise_admin)
            ]
            if shown:
                customer.append((group, shown))
    admin = [(label, href) for label, href in ADMIN_MENU if href in EXISTING_PATHS]
    return customer, admin


def page(template: str, request: Request, **context: Any) -> Template:
    """A full page or fragment with the user and menus in its context."""
    user = request.scope.get("user")
    customer_menu, admin_menu = _menus(user)
    return Template(
        template_name=template,
        context={"user": user, "customer_menu": customer_menu, "admin_menu": admin_menu, **context},
    )


def client_ip(request: Request) -> str:
    """The source address (uvicorn's --proxy-headers sets it from a trusted proxy)."""
    return request.client.host if request.client else ""


async def form_data(request: Request) -> dict[str, str]:
    """The submitted form as plain strings (the last value of a repeated field)."""
    form = await request.form()
    return {k: v if isinstance(v, str) else "" for k, v in form.items()}


def go(request: Request, url: str) -> Redirect | ClientRedirect:
    """After a successful POST: htmx gets a client redirect, a plain form a 303."""
    if request.headers.get("hx-request"):
        return ClientRedirect(redirect_to=url)
    return Redirect(path=url, status_code=HTTP_303_SEE_OTHER)


def page_number(raw: str | None) -> int:
    try:
        return max(1, min(int(raw or 1), 100000))
    except ValueError:
        return 1


def pager(total: int, page: int, per_page: int) -> dict[str, int]:
    pages = max(1, math.ceil(total / per_page))
    return {"total": total, "page": min(page, pages), "pages": pages, "per_page": per_page}


PICKER_SIZE = 10


async def picker(
    request: Request,
    search: Callable[[str, int, int], Awaitable[tuple[list[dict[str, Any]], int]]],
    **context: Any,
) -> Template:
    """A picker dialog's body (common/_picker.html): ``search(q, page, size)`` gives the rows."""
    q = request.query_params.get("q", "").strip()
    p = page_number(request.query_params.get("page"))
    rows, total = await search(q, p, PICKER_SIZE)
    return page(
        "common/_picker.html",
        request,
        rows=rows,
        q=q,
        pager=pager(total, p, PICKER_SIZE),
        **context,
    )


def fragment(request: Request) -> bool:
    """Answer with the partial only: an htmx swap, but not htmx restoring history after
    Back (that request wants the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def list_query(request: Request) -> dict[str, str]:
    """The query of the list the user is looking at. After a POST made from it (删除 and the
    like) that is HX-Current-URL (htmx) or the Referer, not the action's own URL."""
    if request.method == "GET":
        return dict(request.query_params)
    current = request.headers.get("hx-current-url") or request.headers.get("referer", "")
    return dict(parse_qsl(urlsplit(current).query))
