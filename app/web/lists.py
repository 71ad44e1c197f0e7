"""Lists: page numbers, pagers, the filters of the list a user is on, picker dialogs."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from litestar import Request
from litestar.response import Template

from app.fields import HISTORY_PICKER
from app.services.listing import Cursor, Window
from app.web.pages import page

PICKER_SIZE = 50
MAX_PAGE = 100000
# At most this many ticks are carried from page to page in a picker.
MAX_PICKED = 5000
# A list's search box: longer input is cut (LIKE patterns stay cheap).
MAX_Q = 100

Search = Callable[[str, int, int], Awaitable[tuple[list[dict[str, Any]], int]]]


def page_number(raw: str | None) -> int:
    try:
        return max(1, min(int(raw or 1), MAX_PAGE))
    except ValueError:
        return 1


def pager(total: int, page: int, per_page: int) -> dict[str, int]:
    pages = max(1, math.ceil(total / per_page))
    return {"total": total, "page": min(page, pages), "pages": pages, "per_page": per_page}


# Row ids are PostgreSQL integers (serial): a larger cursor would be refused by the
# driver (a 500), so it is no cursor at all.
MAX_ID = 2**31 - 1


def _id(raw: str | None) -> int | None:
    if not raw or not raw.isascii() or not raw.isdecimal() or len(raw) > 10:
        return None
    n = int(raw)
    return n if n <= MAX_ID else None


def cursor(query: dict[str, str]) -> Cursor:
    """Where the keyset page the query names starts (a bad value: the first page)."""
    at = query.get("at")
    at = at[:40] if at else None  # a sorted list's value (a date): parsed by the list
    if (after := _id(query.get("after"))) is not None:
        return Cursor(after=after, at=at)
    if (before := _id(query.get("before"))) is not None:
        return Cursor(before=before, at=at)
    return Cursor(last=query.get("last") == "1")


CURSOR_PARAMS = ("page", "after", "before", "last", "at")


def _edge(found: Window, row: dict[str, Any], side: str) -> dict[str, Any]:
    """A cursor's parameters at ``row``: its id, and in a sorted list its value."""
    at = found.at(row)
    return {side: row["id"], **({"at": at} if at is not None else {})}


def _links(found: Window, link: Callable[..., str]) -> dict[str, str]:
    """首页, 上一页, 下一页, 末页 of a keyset page, each ``link(**cursor parameters)``."""
    links: dict[str, str] = {}
    if found.newer:
        links["首页"] = link()
        if found.newer_cut is not None:  # a page that stopped looking (listing.walked_window)
            links["上一页"] = link(before=found.newer_cut)
        else:
            links["上一页"] = link(**_edge(found, found.rows[0], "before"))
    if found.older:
        if found.older_cut is not None:
            links["下一页"] = link(after=found.older_cut)
        else:
            links["下一页"] = link(**_edge(found, found.rows[-1], "after"))
        links["末页"] = link(last=1)
    return links


def keyset_pager(request: Request, found: Window) -> dict[str, Any]:
    """The pager of a keyset page (common/_pager.html): 首页, 上一页, 下一页, 末页 as links
    keeping the list's filters; no page numbers (finding page n would mean counting)."""
    links = _links(found, lambda **params: with_params(request, **params))
    return {"keyset": True, "total": found.total, "links": links}


def with_params(request: Request, **params: Any) -> str:
    """The list the user is on, its filters kept, at the page ``params`` name."""
    url = urlsplit(str(request.url))
    if request.method != "GET":
        current = _current_url(request)
        if current:
            url = urlsplit(current)
    kept = [(k, v) for k, v in parse_qsl(url.query) if k not in CURSOR_PARAMS]
    query = urlencode(kept + [(k, str(v)) for k, v in params.items()])
    return f"{url.path}?{query}" if query else url.path


def here(request: Request) -> str:
    """The list the user is on (path and query), to reload it as it is."""
    url = urlsplit(str(request.url) if request.method == "GET" else _current_url(request))
    return f"{url.path}?{url.query}" if url.query else url.path


def _current_url(request: Request) -> str:
    """The page the user is on. After an htmx POST (删除 and the like) the request URL is
    the action's, so it comes from HX-Current-URL (htmx) or the Referer."""
    if request.method == "GET":
        return str(request.url)
    current = request.htmx.current_url if request.htmx else None
    return current or request.headers.get("referer", "")


def list_query(request: Request) -> dict[str, str]:
    """The query of the list the user is looking at."""
    if request.method == "GET":
        return dict(request.query_params)
    return dict(parse_qsl(urlsplit(_current_url(request)).query))


async def searched(request: Request, search: Search, per_page: int) -> dict[str, Any]:
    """A list searched by its one box: ``search(q, page, per_page)`` gives the rows and the
    total; returns page()'s ``rows``, ``q`` and ``pager``."""
    query = list_query(request)
    q = query.get("q", "").strip()[:MAX_Q]
    p = page_number(query.get("page"))
    rows, total = await search(q, p, per_page)
    return {"rows": rows, "q": q, "pager": pager(total, p, per_page)}


# A list searched by its one box, paged by keyset: ``search(q, cursor, per_page)``.
KeysetSearch = Callable[[str, Cursor, int], Awaitable[Window]]


async def keyset_searched(request: Request, search: KeysetSearch, per_page: int) -> dict[str, Any]:
    """:func:`searched` for a list that grows without bound: a keyset page (首页, 上一页,
    下一页, 末页) of ``search(q, cursor, per_page)``; page()'s ``rows``, ``q`` and ``pager``.
    After a POST the cursor is the page's the user was on (list_query)."""
    query = list_query(request)
    q = query.get("q", "").strip()[:MAX_Q]
    found = await search(q, cursor(query), per_page)
    return {"rows": found.rows, "q": q, "pager": keyset_pager(request, found)}


def with_page(request: Request, n: int) -> str:
    """A pager link keeping the list's filters."""
    return with_params(request, page=n)


# A picker's search: ``search(q, cursor, per_page)`` gives a keyset page.
PickerSearch = KeysetSearch


async def picker(
    request: Request,
    search: PickerSearch,
    **context: Any,
) -> Template:
    """A picker dialog's body (common/_picker.html): ``search(q, cursor, size)`` gives a
    keyset page of the rows (首页, 上一页, 下一页, 末页: a picker's list can be a customer's
    whole history, so no page numbers, which would mean counting it).

    Paging and searching send the ticks made so far (the form's ``name`` values): they stay
    ticked on their rows, and ride along as hidden inputs while their rows are not shown,
    so 【确定】 adds every tick of every page."""
    picked: dict[int, None] = {}
    for raw in request.query_params.getall(context["name"], []):
        if raw.isdecimal() and len(picked) < MAX_PICKED:
            picked[int(raw)] = None
    query = dict(request.query_params)
    q = query.get("q", "").strip()[:MAX_Q]
    found = await search(q, cursor(query), PICKER_SIZE)
    shown = {r["id"] for r in found.rows}
    # The links carry the search and the cursor only: the ticks come from the form
    # (hx-include), not from the URL, which 5,000 of them would make too long.
    base = context["get_url"]

    def link(**params: Any) -> str:
        return f"{base}?{urlencode({'q': q, **params})}"

    return page(
        "common/_picker.html",
        request,
        rows=found.rows,
        q=q,
        pager={
            "keyset": True,
            "total": found.total,
            "links": _links(found, link),
            "stopped": found.stopped,  # it looked at part of the list only (walked_window)
        },
        picked=picked,
        hidden_picked=[i for i in picked if i not in shown],
        **context,
    )


def history_picker(url: str, target: str, swap: str = "outerHTML") -> dict[str, Any]:
    """Context of the 【从历史预约数据选择】 picker posting to ``url``."""
    return {
        "body_id": "history-body",
        "get_url": url,
        "post_url": url,
        "post_target": target,
        "post_swap": swap,
        "name": "history_ids",
        "columns": HISTORY_PICKER,
        "empty": "暂无历史预约器具",
    }
