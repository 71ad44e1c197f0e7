"""The baseline of bench/booking.py: a bare Litestar app, served exactly like the real one.

One GET handler returning a small fixed HTML page and one POST handler returning a small
HTML fragment (it does not read the body it is sent). No middleware, no templates, no
database: what is left is uvicorn + Litestar's own cost per request.

    .venv/bin/uvicorn --app-dir bench bare_app:app --workers 1
"""

from __future__ import annotations

from litestar import Litestar, MediaType, get, post

PAGE = (
    "<!doctype html><html lang='zh-CN'><head><meta charset='utf-8'><title>预约记录</title>"
    "</head><body><h1>预约记录</h1><p>bare baseline</p></body></html>"
)
FRAGMENT = "<section id='instrument-section'><p class='notice'>器具已添加</p></section>"


@get("/", media_type=MediaType.HTML, sync_to_thread=False)
def page() -> str:
    return PAGE


@post("/fragment", media_type=MediaType.HTML, status_code=200, sync_to_thread=False)
def fragment() -> str:
    return FRAGMENT


app = Litestar(route_handlers=[page, fragment], openapi_config=None)
