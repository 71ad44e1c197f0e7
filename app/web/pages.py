"""Pages: the menus of the manual, the current menu entry, and the page context."""

from __future__ import annotations

from typing import Any, NamedTuple

from litestar import MediaType, Request
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar_htmx import ClientRedirect, HTMXTemplate

from app.security.sessions import CurrentUser


class MenuEntry(NamedTuple):
    label: str
    href: str
    # Only for the enterprise's main account (enterprise_admin_required), not a 子账户;
    # every other entry is for any account of an enterprise (customer_required).
    main_account_only: bool = False


# Every menu entry of the manual; an entry shows only when its screen exists (create_app
# fills EXISTING_PATHS) and the user may open it.
CUSTOMER_MENU: list[tuple[str, list[MenuEntry]]] = [
    (
        "查询服务",
        [
            MenuEntry("检测进度查询", "/query/progress"),
            MenuEntry("证书防伪查询", "/query/verify"),
        ],
    ),
    (
        "预约管理",
        [MenuEntry("预约送检", "/bookings/new"), MenuEntry("预约记录", "/bookings")],
    ),
    ("电子证书", [MenuEntry("电子证书", "/certificates")]),
    ("器具托管", [MenuEntry("器具托管", "/instruments")]),
    (
        "系统管理",
        [
            MenuEntry("基础信息", "/settings/basic", main_account_only=True),
            MenuEntry("用户管理", "/settings/users", main_account_only=True),
            MenuEntry("部门管理", "/settings/departments", main_account_only=True),
            MenuEntry("企业管理", "/settings/enterprises", main_account_only=True),
        ],
    ),
    # Every account's own settings (#12), a 子账户's too: not 系统管理, which is the
    # enterprise's and the main account's alone.
    ("账号设置", [MenuEntry("通知设置", "/account/notifications")]),
]
ADMIN_MENU: list[tuple[str, str]] = [
    ("注册审核", "/admin/registrations"),
    ("预约审核", "/admin/bookings"),
    ("检测业务", "/admin/orders"),
    ("证书管理", "/admin/certificates"),
    ("协议客户", "/admin/contracts"),
    ("短信记录", "/admin/sms"),
    ("邮件记录", "/admin/emails"),
    ("操作日志", "/admin/audit"),
]
EXISTING_PATHS: set[str] = set()

Menu = list[tuple[str, list[tuple[str, str]]]]


def menus(user: CurrentUser | None) -> tuple[Menu, list[tuple[str, str]]]:
    """The customer menu groups and the 平台管理 entries this user may open."""
    customer: Menu = []
    if user is not None and user.enterprise_id:
        for group, items in CUSTOMER_MENU:
            shown = [
                (e.label, e.href)
                for e in items
                if e.href in EXISTING_PATHS
                and (not e.main_account_only or user.is_enterprise_admin)
            ]
            if shown:
                customer.append((group, shown))
    admin = [(label, href) for label, href in ADMIN_MENU if href in EXISTING_PATHS]
    return customer, admin


def active_href(path: str, hrefs: list[str]) -> str:
    """The menu entry a path belongs to: the longest entry it starts with (首页 only itself)."""
    best = "/" if path == "/" else ""
    for href in hrefs:
        if (path == href or path.startswith(href + "/")) and len(href) > len(best):
            best = href
    return best


def page_context(request: Request) -> dict[str, Any]:
    """What base.html needs: the user, the menus and the entry to highlight."""
    user = request.scope.get("user")
    customer, admin = menus(user)
    hrefs = [href for _, items in customer for _, href in items] + [href for _, href in admin]
    return {
        "user": user,
        "customer_menu": customer,
        "admin_menu": admin,
        "active_href": active_href(request.url.path, hrefs),
    }


def page(template: str, request: Request, **context: Any) -> Template:
    """A full page or fragment with the user and menus in its context. (The media type is
    given: Litestar would otherwise guess it from the template's name on every answer.)"""
    return Template(
        template_name=template,
        context={**page_context(request), **context},
        media_type=MediaType.HTML,
    )


def page_into(template: str, request: Request, target: str, **context: Any) -> Template:
    """A fragment that replaces ``target`` (outerHTML), whatever element the request
    aimed at (HX-Retarget): an answer that usually changes a part now changes the whole."""
    return HTMXTemplate(
        template_name=template,
        context={**page_context(request), **context},
        media_type=MediaType.HTML,
        re_target=target,
        re_swap="outerHTML",
    )


def fragment(request: Request) -> bool:
    """Answer with the partial only: an htmx swap, but not htmx restoring history after
    Back (that request wants the whole page)."""
    return bool(request.htmx) and not request.htmx.history_restore_request


def page_or_part(request: Request, template: str, part: str, **context: Any) -> Template:
    """A page, or only its ``part`` (the list, the results) for an htmx search, filter or
    paging request. One URL answers both, so caches must key on HX-Request."""
    response = page(part if fragment(request) else template, request, **context)
    response.headers["Vary"] = "HX-Request"
    return response


def go(request: Request, url: str) -> Redirect | ClientRedirect:
    """After a successful POST: htmx gets a client redirect, a plain form a 303."""
    if request.htmx:
        return ClientRedirect(redirect_to=url)
    return Redirect(path=url, status_code=HTTP_303_SEE_OTHER)
