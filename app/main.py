"""create_app(): plugins, templates, static files, middleware, error pages, lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from litestar import Litestar, MediaType, Router, get
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.plugins.htmx import HTMXPlugin
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.static_files import create_static_files_router
from litestar.template.config import TemplateConfig

import workers.tasks  # noqa: F401  (registers the job functions the queue runs by name)
from app import jobs
from app.db import close_pool, start_pool
from app.deadline import DeadlineMiddleware
from app.redis import close_redis
from app.routes.account import NotificationController
from app.routes.admin import AdminController
from app.routes.api import BEARER, LabApiController
from app.routes.auth import AuthController
from app.routes.bookings import BasicInfoController, BookingController
from app.routes.certificates import CertificateController
from app.routes.enterprises import EnterpriseController
from app.routes.home import HomeController
from app.routes.instruments import InstrumentController
from app.routes.lab_admin import LabAdminController
from app.routes.org import DepartmentController, UserController
from app.routes.printing import PrintController
from app.routes.query import ProgressController, VerifyController, VerifyLinkController
from app.security.csrf import CSRFMiddleware
from app.security.headers import add_security_headers
from app.security.sessions import SessionAuthMiddleware, UserCache
from app.settings import get_settings
from app.web import jinja
from app.web.compression import compression_config
from app.web.errors import EXCEPTION_HANDLERS
from app.web.pages import EXISTING_PATHS
from app.web.static import CACHE as STATIC_CACHE
from app.web.static import STATIC_DIR, refuse_odd_paths

HERE = Path(__file__).resolve().parent


@get("/healthz", media_type=MediaType.TEXT, include_in_schema=False)
async def healthz() -> str:
    return "ok"


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    await start_pool()
    schedulers = []
    if not get_settings().redis_url and get_settings().scheduler:
        loop = asyncio.get_running_loop()
        schedulers = [loop.create_task(jobs.daily_scheduler()), loop.create_task(jobs.folder())]
    try:
        yield
    finally:
        for scheduler in schedulers:
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
    EnterpriseController,
    InstrumentController,
    CertificateController,
    LabAdminController,
    UserController,
    DepartmentController,
    NotificationController,
    ProgressController,
    VerifyController,
    VerifyLinkController,
    PrintController,
]


def _configure_templates(engine: JinjaTemplateEngine) -> None:
    jinja.configure(engine)
    # Templates change only with a new release (a restart): not re-checked on disk per use.
    engine.engine.auto_reload = False


def create_app() -> Litestar:
    app = Litestar(
        route_handlers=[
            Router(path="/", route_handlers=PAGE_HANDLERS, include_in_schema=False),
            LabApiController,
            healthz,
            create_static_files_router(
                path="/static",
                directories=[STATIC_DIR],
                cache_control=STATIC_CACHE,
                before_request=refuse_odd_paths,
                name="static",
                include_in_schema=False,
            ),
        ],
        template_config=TemplateConfig(
            directory=[HERE / "templates", HERE / "partials"],
            engine=JinjaTemplateEngine,
            engine_callback=_configure_templates,
        ),
        # The deadline outermost: it covers the session lookup too (app/deadline.py). The
        # session before CSRF: tokens are bound to it (app/security/csrf.py). One user
        # cache for the app (Litestar builds the middleware once per route).
        middleware=[
            DefineMiddleware(DeadlineMiddleware, seconds=get_settings().request_deadline),
            DefineMiddleware(SessionAuthMiddleware, cache=UserCache()),
            DefineMiddleware(CSRFMiddleware),
        ],
        before_send=[add_security_headers],
        compression_config=compression_config(),  # text answers only (app/web/compression.py)
        plugins=[HTMXPlugin()],
        exception_handlers=EXCEPTION_HANDLERS,
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
    EXISTING_PATHS.clear()
    EXISTING_PATHS.update(route.path for route in app.routes)
    return app
