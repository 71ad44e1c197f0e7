"""Route guards: who may open what (SPEC §2).

Coroutines on purpose: Litestar runs a plain-function guard in a worker thread, one hop
per guard per request.
"""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler


def _logged_in(connection: ASGIConnection) -> None:
    if connection.scope.get("user") is None:
        raise NotAuthorizedException("请先登录")


def _customer(connection: ASGIConnection) -> None:
    _logged_in(connection)
    if connection.scope["user"].enterprise_id is None:
        raise PermissionDeniedException("该功能仅对企业账户开放")


async def login_required(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    _logged_in(connection)


async def platform_admin_required(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    _logged_in(connection)
    if not connection.scope["user"].is_platform_admin:
        raise PermissionDeniedException("没有权限访问平台管理")


async def customer_required(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """Customer features: any account of an enterprise."""
    _customer(connection)


async def enterprise_admin_required(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    """系统管理: the enterprise main account only."""
    _customer(connection)
    if not connection.scope["user"].is_enterprise_admin:
        raise PermissionDeniedException("仅企业主账户可以使用系统管理")
