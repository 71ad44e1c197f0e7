"""Errors to HTTP, in one place (as litestar-fullstack's ``exception_to_http_response``).

- ``NotFound`` → 404, ``Conflict`` → 409, Litestar's own HTTP errors → their status;
- ``FormError`` (and ``Conflict``) on a handler that names a re-render in its ``opt``
  (``on_error=...``): that page or fragment again, with each message beside its field;
- elsewhere ``FormError`` → 422, in the JSON API with every message by field (``errors``):
  the request matched the schema but its content cannot be accepted; 400 stays for what
  the schema itself forbids (Litestar's validation, with ``extra``).

The JSON API answers ``{"detail", "status_code"}`` (the ``ApiError`` of its schema); an
htmx request gets a short text for the page's error bar (htmx swaps no error answer); a
page gets error.html.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlencode

import asyncpg
from litestar import MediaType, Request, Response
from litestar.exceptions import (
    HTTPException,
    NotAuthorizedException,
    NotFoundException,
    PermissionDeniedException,
)
from litestar.response import Redirect, Template
from litestar.status_codes import HTTP_303_SEE_OTHER
from litestar.types import Receive, Scope, Send
from litestar_htmx import ClientRedirect
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from app.services.errors import Conflict, FormError, NotFound, Throttled
from app.services.instrument_xlsx import ImportBusy
from app.web.pages import page, page_context
from app.web.requests import form_data

log = logging.getLogger("app")

# A handler's ``opt`` key: ``async (request, error) -> Response`` re-rendering its form.
ON_ERROR = "on_error"
ErrorPage = Callable[[Request, FormError | Conflict], Awaitable[Response[Any]]]


def on_error(render: ErrorPage) -> dict[str, Any]:
    """``@post(..., opt=on_error(render))``: FormError (and Conflict) re-render with it."""
    return {ON_ERROR: render}


def field_errors(exc: FormError | Conflict) -> dict[str, str]:
    """The messages by field (``""``: the top of the form)."""
    return exc.errors if isinstance(exc, FormError) else {"": exc.message}


def message(exc: FormError | Conflict) -> str:
    """One line for a list's error bar."""
    return exc.first if isinstance(exc, FormError) else exc.message


class _Rendered(Response[Any]):
    """An exception handler's answer built by an async render function: Litestar's
    exception handlers are synchronous, the re-render queries the database."""

    def __init__(self, render: Callable[[], Awaitable[Response[Any]]]) -> None:
        super().__init__(content=None)
        self._render = render

    def to_asgi_response(self, app: Any, request: Request, **kwargs: Any) -> Any:
        async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
            try:
                response = await self._render()
            except NotFound as exc:  # gone while the form was sent (deleted meanwhile)
                response = not_found(request, exc)
            await response.to_asgi_response(app, request, **kwargs)(scope, receive, send)

        return asgi


def _is_api(request: Request) -> bool:
    return request.url.path.startswith("/api/")


def error_page(request: Request, status: int, title: str, message: str) -> Response[Any]:
    if _is_api(request):
        return Response({"detail": message, "status_code": status}, status_code=status)
    # The exception middleware builds the app's request_class (HTMXPlugin's HTMXRequest),
    # so request.htmx is there for errors too.
    if request.htmx:
        return Response(message, status_code=status, media_type=MediaType.TEXT)
    return Template(
        template_name="error.html",
        context={**page_context(request), "title": title, "message": message},
        status_code=status,
        media_type=MediaType.HTML,
    )


def _rerender(request: Request, exc: FormError | Conflict) -> Response[Any] | None:
    handler = request.scope.get("route_handler")
    render = handler.opt.get(ON_ERROR) if handler is not None else None
    if render is None:
        return None
    return _Rendered(lambda: render(request, exc))


def form_error(request: Request, exc: FormError) -> Response[Any]:
    rendered = _rerender(request, exc)
    if rendered is not None:
        return rendered
    if _is_api(request):
        body = {"detail": exc.first, "status_code": 422, "errors": exc.errors}
        return Response(body, status_code=422)
    return error_page(request, 422, "请求无效", exc.first)


def conflict(request: Request, exc: Conflict) -> Response[Any]:
    return _rerender(request, exc) or error_page(request, 409, "操作冲突", exc.message)


def busy(request: Request, exc: ImportBusy) -> Response[Any]:
    return error_page(request, 503, "服务器正忙", str(exc))


def throttled(request: Request, exc: Throttled) -> Response[Any]:
    return error_page(request, 429, "请稍后再试", exc.message)


def not_found(request: Request, exc: NotFound | NotFoundException) -> Response[Any]:
    if isinstance(exc, NotFound):
        detail = exc.message
    else:
        detail = exc.detail if exc.detail and exc.detail != "Not Found" else ""
    return error_page(request, 404, "页面不存在", detail or "您访问的页面或数据不存在")


def not_authorized(request: Request, exc: NotAuthorizedException) -> Response[Any]:
    if _is_api(request):
        return Response({"detail": exc.detail, "status_code": 401}, status_code=401)
    target = "/login?" + urlencode({"next": request.url.path})
    if request.htmx:
        response = ClientRedirect(redirect_to=target)  # a 303 would be swapped into the page
        response.status_code = 401
        return response
    return Redirect(path=target, status_code=HTTP_303_SEE_OTHER)


def forbidden(request: Request, exc: PermissionDeniedException) -> Response[Any]:
    message = exc.detail
    if "CSRF" in message:
        message = "页面已过期或请求无效，请刷新页面后重试"
    return error_page(request, 403, "没有权限", message)


def http_error(request: Request, exc: HTTPException) -> Response[Any]:
    if exc.status_code >= 500:
        return server_error(request, exc)
    if _is_api(request):
        body: dict[str, Any] = {"detail": exc.detail, "status_code": exc.status_code}
        if exc.extra:
            body["extra"] = exc.extra
        # e.g. a 405's Allow (RFC 9110 requires it)
        return Response(body, status_code=exc.status_code, headers=exc.headers)
    if exc.status_code == 400:
        return error_page(request, 400, "请求无效", "提交的数据格式不正确，请检查后重试")
    if exc.status_code == 413:
        return error_page(request, 413, "文件过大", "上传的内容超过了大小限制")
    return error_page(request, exc.status_code, "出错了", str(exc.detail))


# A service the app needs is away (PostgreSQL, Redis): the request fails at once with a
# page that says so; nothing was half-written (writes are transactions); the next request
# reconnects by itself.
SERVICE_ERRORS: tuple[type[Exception], ...] = (
    OSError,  # refused / reset / timed out connections (asyncpg raises these directly)
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    RedisConnectionError,
    RedisTimeoutError,
    TimeoutError,
)


def service_unavailable(request: Request, exc: Exception) -> Response[Any]:
    log.warning("service unavailable on %s %r: %r", request.method, request.url.path, exc)
    response = error_page(request, 503, "服务暂时不可用", "系统服务暂时不可用，请稍后重试")
    response.headers["Retry-After"] = "10"
    return response


# Errors of the app's own files: a bug or a lost file, not a service away.
FILE_ERRORS = (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError)


def server_error(request: Request, exc: Exception) -> Response[Any]:
    if isinstance(exc, SERVICE_ERRORS) and not isinstance(exc, FILE_ERRORS):
        return service_unavailable(request, exc)
    log.error("unhandled error on %s %r", request.method, request.url.path, exc_info=exc)
    return error_page(request, 500, "系统繁忙", "服务器处理出错，请稍后重试")


EXCEPTION_HANDLERS: dict[type[Exception], Callable[..., Response[Any]]] = {
    FormError: form_error,
    Conflict: conflict,
    Throttled: throttled,
    ImportBusy: busy,
    NotFound: not_found,
    NotFoundException: not_found,
    NotAuthorizedException: not_authorized,
    PermissionDeniedException: forbidden,
    HTTPException: http_error,
    Exception: server_error,
}


def form_again(template: str, **context: Any) -> dict[str, Any]:
    """``opt`` of a handler whose FormError shows ``template`` again with what was typed
    (passwords never echoed) and each message beside its field."""

    async def render(request: Request, exc: FormError | Conflict) -> Response[Any]:
        form = await form_data(request)
        values = {k: v for k, v in form.items() if "password" not in k}
        return page(template, request, values=values, errors=field_errors(exc), **context)

    return on_error(render)
