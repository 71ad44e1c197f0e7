"""Route guards: who may open what (SPEC §2)."""

from __future__ import annotations

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler


def login_required(connection: ASGIConnection, _: BaseRouteHandler) -> None:
    if connection.scope.get("user") is None:
        raise NotAuthorizedException("请先登录")


def platform_admin_required(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    login_required(connection, handler)
    if not connection.scope["user"].is_platform_admin:
        raise PermissionDeniedException("没有权限访问平台管理")


def customer_required(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """Customer features: any account of an enterprise."""
    login_required(connection, handler)
    if connection.scope["user"].enterprise_id is None:
        raise PermissionDeniedException("该功能仅对企业账户开放")


def enterprise_admin_required(connection: ASGIConnection, handler: BaseRouteHandler) -> None:
    """系统管理: the enterprise main account only."""
    customer_required(connection, handler)
    if not connection.scope["user"].is_enterprise_admin:
        raise PermissionDeniedException("仅企业主账户可以使用系统管理")
