"""create_app(): plugins, templates, static files, middleware, error pages, lifespan."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from litestar import Litestar, MediaType, Request, Response, Router, get
from litestar.config.csrf import CSRFConfig
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Template
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar.template.config import TemplateConfig

from app import templating
from app.clock import TZ
from app.routes import _render
from app.routes.admin import AdminController
from app.routes.api import BEARER, LabApiController
from app.routes.auth import AuthController
from app.routes.bookings import BasicInfoController, BookingController
from app.routes.home import HomeController
from app.routes.instruments import CustodyPickerController, InstrumentController
from app.security import SessionAuthMiddleware, add_security_headers
from app.settings import get_settings

HERE = Path(__file__).resolve().parent
log = logging.getLogger("app")


def localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """Datetimes are stored in UTC and shown in China time."""
    if value is None:
        return ""
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.astimezone(TZ).strftime(fmt)


def with_page(request: Request, n: int) -> str:
    """A pager link keeping the list's filters. After an htmx POST (删除 and the like) the
    request URL is the action's, so the page the user is on comes from HX-Current-URL."""
    url = urlsplit(str(request.url))
    if request.method != "GET":
        current = request.headers.get("hx-current-url") or request.headers.get("referer", "")
        if current:
            url = urlsplit(current)
    params = [(k, v) for k, v in parse_qsl(url.query) if k != "page"] + [("page", str(n))]
    return f"{url.path}?{urlencode(params)}"


def mask_code(text: str) -> str:
    """短信记录 hides live verification codes unless it is the outbox they are read from."""
    if get_settings().sms_backend == "outbox":
        return text
    return re.sub(r"验证码为\d{6}", "验证码为******", text)


def _configure_jinja(engine: JinjaTemplateEngine) -> None:
    engine.engine.filters["localtime"] = localtime
    engine.engine.filters["mask_code"] = mask_code
    engine.engine.globals["with_page"] = with_page
    templating.register(engine.engine)


@get("/healthz", media_type=MediaType.TEXT, include_in_schema=False)
async def healthz() -> str:
    return "ok"


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def _error_page(request: Request, status: int, title: str, message: str) -> Response[Any]:
    if _wants_json(request):
        return Response({"detail": message, "status_code": status}, status_code=status)
    if request.headers.get("hx-request"):
        # htmx swaps no error answer; app.js shows this text in the page's error bar.
        return Response(message, status_code=status, media_type=MediaType.TEXT)
    user = request.scope.get("user")
    return Template(
        template_name="error.html",
        context={
            "user": user,
            "title": title,
            "message": message,
            **dict(zip(("customer_menu", "admin_menu"), _render._menus(user), strict=True)),
            "active_href": "",
        },
        status_code=status,
    )


def not_authorized(request: Request, exc: NotAuthorizedException) -> Response[Any]:
    if _wants_json(request):
        return Response({"detail": exc.detail, "status_code": 401}, status_code=401)
    target = "/login?" + urlencode({"next": request.url.path})
    if request.headers.get("hx-request"):
        # htmx follows HX-Redirect; a 303 would be swapped into the page.
        return Response("", status_code=401, headers={"HX-Redirect": target})
    return Redirect(path=target, status_code=HTTP_303_SEE_OTHER)


def forbidden(request: Request, exc: PermissionDeniedException) -> Response[Any]:
    message = exc.detail
    if "CSRF" in message:
        message = "页面已过期或请求无效，请刷新页面后重试"
    return _error_page(request, 403, "没有权限", message)


def not_found(request: Request, exc: NotFoundException) -> Response[Any]:
    detail = exc.detail if exc.detail and exc.detail != "Not Found" else "您访问的页面或数据不存在"
    return _error_page(request, 404, "页面不存在", detail)


def http_error(request: Request, exc: HTTPException) -> Response[Any]:
    if exc.status_code >= 500:
        return server_error(request, exc)
    if _wants_json(request):
        body: dict[str, Any] = {"detail": exc.detail, "status_code": exc.status_code}
        if exc.extra:
            body["extra"] = exc.extra
        return Response(body, status_code=exc.status_code)
    if exc.status_code == 400:
        return _error_page(request, 400, "请求无效", "提交的数据格式不正确，请检查后重试")
    if exc.status_code == 413:
        return _error_page(request, 413, "文件过大", "上传的内容超过了大小限制")
    return _error_page(request, exc.status_code, "出错了", str(exc.detail))


def server_error(request: Request, exc: Exception) -> Response[Any]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_page(request, 500, "系统繁忙", "服务器处理出错，请稍后重试")


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    from app import jobs
    from app.db import close_pool, start_pool
    from app.redis import close_redis

    await start_pool()
    scheduler = None
    if not get_settings().redis_url and get_settings().scheduler:
        scheduler = asyncio.get_running_loop().create_task(jobs.daily_scheduler())
    try:
        yield
    finally:
        if scheduler is not None:
            scheduler.cancel()
        await jobs.close()
        if get_settings().redis_url:
            await close_redis()
        await close_pool()


# HTML pages; only the lab system's JSON API belongs in the OpenAPI schema.
PAGE_HANDLERS: list[Any] = [
    AuthController,
    HomeController,
    AdminController,
    BookingController,
    BasicInfoController,
    InstrumentController,
    CustodyPickerController,
]


def create_app() -> Litestar:
    settings = get_settings()
    app = Litestar(
        route_handlers=[
            Router(path="/", route_handlers=PAGE_HANDLERS, include_in_schema=False),
            LabApiController,
            healthz,
            create_static_files_router(
                path="/static",
                directories=[HERE / "static"],
                name="static",
                include_in_schema=False,
            ),
        ],
        template_config=TemplateConfig(
            directory=[HERE / "templates", HERE / "partials"],
            engine=JinjaTemplateEngine,
            engine_callback=_configure_jinja,
        ),
        csrf_config=CSRFConfig(
            secret=settings.secret_key,
            cookie_name="csrftoken",
            header_name="x-csrftoken",
            cookie_secure=settings.secure_cookies,
            cookie_samesite="lax",
            exclude=["^/api/"],  # a regex: only paths that start with it,
        ),
        middleware=[DefineMiddleware(SessionAuthMiddleware)],
        before_send=[add_security_headers],
        plugins=[HTMXPlugin()],
        exception_handlers={
            NotAuthorizedException: not_authorized,
            PermissionDeniedException: forbidden,
            NotFoundException: not_found,
            HTTPException: http_error,
            Exception: server_error,
        },
        openapi_config=OpenAPIConfig(
            title="计量客户服务平台 实验室系统接口",
            version="1.0.0",
            path="/schema",
            components=BEARER,
            # The schema itself, as JSON: a UI page would need scripts our CSP refuses.
            render_plugins=[JsonRenderPlugin(path=["/", "/openapi.json"])],
        ),
        lifespan=[lifespan],
        request_max_body_size=25 * 1024 * 1024,
    )
    _render.EXISTING_PATHS.clear()
    _render.EXISTING_PATHS.update(path for route in app.routes for path in [route.path])
    return app
