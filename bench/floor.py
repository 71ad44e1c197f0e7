"""The floor of bench/booking.py: each measured answer done by hand with the least work.

A bare Litestar app (no plugins, no middleware but gzip, which the answer needs when the
client accepts it) served by uvicorn exactly like the app. Per request it does only:

1. one session lookup in the store the app uses (Redis ``sess:<sha256>``, or the
   ``web_session`` table in embedded mode), with the idle and absolute timeouts;
2. one query for the user and its scope (the user, its enterprise and every subsidiary
   below it, in one recursive SQL statement) through raw asyncpg;
3. the page's count and select (the 首页: the select; the 【添加器具】 fragment: the update
   in one transaction and the rows it shows), hand-written SQL on one pooled connection;
4. one render of the app's own template with a bare Jinja2 environment (the app's filters
   and globals, templates not re-checked on disk).

Same paths as the app, so the benchmark sends the same requests to both. It serves only
what the benchmark measures, for an enterprise account, and trusts the seeded data.

    .venv/bin/uvicorn --app-dir bench floor:app --workers 1     (DATABASE_URL, REDIS_URL)
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import asyncpg
from jinja2 import Environment, FileSystemLoader
from litestar import Litestar, MediaType, Request, Response, get, post
from litestar.config.compression import CompressionConfig

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# The app's templates, columns, enums and template helpers: what the same answer renders.
from app import templating  # noqa: E402
from app.clock import TZ  # noqa: E402
from app.enums import BookingStatus, ItemStatus  # noqa: E402
from app.fields import INSTRUMENT_FIELDS, REGISTER_FIELDS  # noqa: E402
from app.services import weekly  # noqa: E402
from app.web.cards import card_columns, mark_cells  # noqa: E402
from app.web.compression import GZIP_LEVEL  # noqa: E402
from app.web.jinja import localtime  # noqa: E402
from app.web.pages import ADMIN_MENU, CUSTOMER_MENU  # noqa: E402
from app.web.static import static_url  # noqa: E402

DATABASE_URL = os.environ["DATABASE_URL"]
REDIS_URL = os.environ.get("REDIS_URL", "")
PER_PAGE = 20
IDLE = 30 * 60
ABSOLUTE = 12 * 3600
PROGRESS_LIMIT = 200
NO_LENGTH = 50
DUE_DAYS = 30
HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "font-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; object-src 'none'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
    "cross-origin-opener-policy": "same-origin",
    "cache-control": "no-store",
}
LIST_HEADERS = {**HEADERS, "vary": "HX-Request"}

# ------------------------------------------------------------------------------ SQL

USER_SQL = """
WITH RECURSIVE tree(id, name, depth) AS (
    SELECT e.id, e.name, 0 FROM app_user u JOIN enterprise e ON e.id = u.enterprise
    WHERE u.id = $1
    UNION ALL
    SELECT e.id, e.name, tree.depth + 1 FROM enterprise e JOIN tree ON e.parent = tree.id
    WHERE tree.depth < 20
)
SELECT u.id, u.username, u.name, u.role, u.enterprise AS enterprise_id,
       e.name AS enterprise_name, e.is_contract,
       ARRAY(SELECT id FROM tree ORDER BY depth, id) AS ids,
       ARRAY(SELECT name FROM tree ORDER BY depth, id) AS names
FROM app_user u JOIN enterprise e ON e.id = u.enterprise
WHERE u.id = $1 AND u.is_active AND e.status = 'approved'
"""
# The scope is ``enterprise IN {ids}`` as the app sends it (one placeholder per unit,
# after the query's other parameters: see scoped()), so PostgreSQL plans both alike.
BOOKINGS_WHERE = "enterprise IN {ids} AND (status <> 'draft' OR item_count > 0)"
# A list's total: its tally's rows (the app's triggers keep them; issue #15).
TALLY = "SELECT COALESCE(SUM(d), 0) FROM tally WHERE kind = $1 AND enterprise IN {ids}"
BOOKINGS_PAGE = (
    "SELECT id, enterprise, booking_no, client_name, expected_date, item_count, status, "
    f"submitted_at, reject_reason FROM booking WHERE {BOOKINGS_WHERE} "
    "ORDER BY id DESC LIMIT $1 OFFSET $2"
)
INSTRUMENTS_PAGE = (
    "SELECT * FROM instrument WHERE enterprise IN {ids} ORDER BY valid_until, id LIMIT $1 OFFSET $2"
)
# The app's two parts (dated newest first, then undated), in one statement.
_CERT_COLUMNS = """
SELECT c.id, c.cert_no, c.completed_on, c.paid, c.version, c.downloaded_at, c.enterprise,
       i.unique_no, i.name, i.serial_no, i.model, i.equipment_no, o.order_no, b.client_name
FROM certificate c
LEFT JOIN order_item i ON i.id = c.item
LEFT JOIN lab_order o ON o.id = i."order"
LEFT JOIN booking b ON b.id = o.booking
WHERE c.enterprise IN {ids}"""
CERTIFICATES_PAGE = f"""
({_CERT_COLUMNS} AND c.completed_on IS NOT NULL ORDER BY c.completed_on DESC, c.id DESC LIMIT $1)
UNION ALL
({_CERT_COLUMNS} AND c.completed_on IS NULL ORDER BY c.id DESC LIMIT $1)
"""
# As the app: a 唯一性号 prefix and a 大单号 prefix, each by its index, merged.
_PROGRESS_PART = """
(SELECT i.id, i.unique_no, i.name, i.serial_no, i.model, i.status, i.status_at, o.order_no
 FROM order_item i JOIN lab_order o ON o.id = i."order"
 WHERE i.enterprise IN {ids} AND {column} LIKE $1 ORDER BY o.order_no, i.unique_no LIMIT $2)"""
PROGRESS = (
    "SELECT * FROM ("
    + _PROGRESS_PART.replace("{column}", "i.unique_no")
    + " UNION "
    + _PROGRESS_PART.replace("{column}", "o.order_no")
    + ") t ORDER BY order_no, unique_no LIMIT $2"
)
ITEM_KEYS = [f.key for f in INSTRUMENT_FIELDS]
BOOKING_KEYS = [
    "client_name", "client_address", "contact_name", "phone", "cert_name", "cert_address",
    "mobile", "expected_date", "sender",
]  # fmt: skip
# 【添加器具】, locking as the app does (the draft first, then the row): the draft's fields,
# the row added or updated (``item_id``) as it is now, the counts. The answer shows that row
# alone (issue #11), so no other row is read.
BOOKING_FIELDS = (
    "UPDATE booking SET "
    + ", ".join(f"{k} = ${n}" for n, k in enumerate(BOOKING_KEYS, start=2))
    + " WHERE id = $1 AND enterprise IN {ids} AND status = 'draft' RETURNING enterprise"
)
ITEM_UPDATE = (
    "UPDATE booking_item SET "
    + ", ".join(f"{k} = ${n}" for n, k in enumerate(ITEM_KEYS, start=3))
    + " WHERE id = $1 AND booking = $2 AND enterprise IN {ids} RETURNING *"
)
ITEM_INSERT = (
    f"INSERT INTO booking_item (booking, enterprise, {', '.join(ITEM_KEYS)}) VALUES "
    f"({', '.join(f'${n}' for n in range(1, 3 + len(ITEM_KEYS)))}) RETURNING *"
)
BOOKING_COUNT = (
    "UPDATE booking SET item_count = (SELECT COALESCE(SUM(quantity), 0) FROM booking_item "
    "WHERE booking = $1), item_rows = (SELECT COUNT(*) FROM booking_item WHERE booking = $1) "
    "WHERE id = $1 RETURNING *"
)
# The 器具列表's page size (the fragment's pager).
LIST_SIZE = 50


@functools.cache
def scoped(sql: str, others: int, n: int) -> str:
    """``sql`` with ``{ids}`` as ``($k, …)``: ``n`` placeholders after ``others`` others."""
    return sql.replace("{ids}", "(" + ", ".join(f"${others + 1 + i}" for i in range(n)) + ")")


# ------------------------------------------------------------------------------ templates


def with_page(request: Any, n: int) -> str:
    params = [(k, v) for k, v in request.query if k != "page"] + [("page", str(n))]
    return f"{request.path}?{urlencode(params)}"


ENV = Environment(
    loader=FileSystemLoader([ROOT / "app" / "templates", ROOT / "app" / "partials"]),
    autoescape=True,
    auto_reload=False,
)
ENV.filters["localtime"] = localtime
# The list tables' phone cards (common/_tables.html), as app/web/jinja.py registers them.
ENV.filters["mark_cells"] = mark_cells
ENV.globals["card_columns"] = card_columns
ENV.globals["static_url"] = static_url
ENV.globals["with_page"] = with_page
ENV.globals["institute_name"] = "计量检定测试院"
templating.register(ENV)
BOOKING_COLUMNS = INSTRUMENT_FIELDS
REGISTER_COLUMNS = REGISTER_FIELDS
# The 器具列表 cells' card attributes, worked out once.
ITEM_CELLS = card_columns(
    ["操作", *(c.label for c in BOOKING_COLUMNS)],
    ["器具名称", "出厂编号", "器具数量", "型号规格"],
    "操作",
    check=True,
)


def _menu(main_account: bool) -> list[tuple[str, list[tuple[str, str]]]]:
    shown = []
    for group, items in CUSTOMER_MENU:
        entries = [(e.label, e.href) for e in items if main_account or not e.main_account_only]
        if entries:
            shown.append((group, entries))
    return shown


MENUS = {True: _menu(True), False: _menu(False)}


class Page:
    """What the pager's links need of the request."""

    __slots__ = ("path", "query")

    def __init__(self, path: str, query: list[tuple[str, str]]) -> None:
        self.path = path
        self.query = query


class User:
    """The user as the templates read it."""

    __slots__ = (
        "id", "username", "name", "role", "enterprise_id", "enterprise_name", "is_contract",
        "ids", "units",
    )  # fmt: skip

    def __init__(self, row: asyncpg.Record) -> None:
        self.id = row["id"]
        self.username = row["username"]
        self.name = row["name"]
        self.role = row["role"]
        self.enterprise_id = row["enterprise_id"]
        self.enterprise_name = row["enterprise_name"]
        self.is_contract = row["is_contract"]
        self.ids: list[int] = row["ids"]
        self.units = tuple(zip(row["ids"], row["names"], strict=True))

    is_platform_admin = False

    @property
    def is_enterprise_admin(self) -> bool:
        return self.role in ("enterprise_admin", "contract_user")

    @property
    def display_name(self) -> str:
        return self.name or self.username


# ------------------------------------------------------------------------------ state

POOL: asyncpg.Pool | None = None
REDIS: Any = None


class NoReset(asyncpg.Connection):  # type: ignore[misc]
    def get_reset_query(self) -> str:  # nothing to reset: the app's pool skips it too
        return ""


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    global POOL, REDIS
    POOL = await asyncpg.create_pool(
        DATABASE_URL, min_size=1, max_size=10, connection_class=NoReset
    )
    if REDIS_URL:
        from redis.asyncio import Redis

        REDIS = Redis.from_url(REDIS_URL)
    try:
        yield
    finally:
        await POOL.close()
        if REDIS is not None:
            await REDIS.aclose()


async def session_uid(request: Request, conn: asyncpg.Connection) -> int | None:
    key = request.cookies.get("session")
    if not key:
        return None
    key_hash = hashlib.sha256(key.encode()).hexdigest()
    if REDIS is not None:
        raw = await REDIS.get(f"sess:{key_hash}")
    else:
        raw = await conn.fetchval("SELECT data FROM web_session WHERE key_hash = $1", key_hash)
    if not raw:
        return None
    data = json.loads(raw)
    t = time.time()
    if t - data.get("seen", 0) > IDLE or t - data.get("created", 0) > ABSOLUTE:
        return None
    uid = data.get("uid")
    return uid if isinstance(uid, int) else None


async def current_user(request: Request, conn: asyncpg.Connection) -> User | None:
    uid = await session_uid(request, conn)
    if uid is None:
        return None
    row = await conn.fetchrow(USER_SQL, uid)
    return User(row) if row else None


def render(name: str, request: Request, headers: dict[str, str], **context: Any) -> Response[str]:
    token = request.cookies.get("csrftoken", "")
    html = ENV.get_template(name).render(
        csrf_input=f'<input type="hidden" name="_csrf_token" value="{token}" />',
        csrf_token=lambda: token,
        request=Page(request.url.path, list(request.query_params.items())),
        **context,
    )
    return Response(html, media_type=MediaType.HTML, headers=headers)


def page_context(user: User, active: str) -> dict[str, Any]:
    return {
        "user": user,
        "customer_menu": MENUS[user.is_enterprise_admin],
        "admin_menu": ADMIN_MENU,
        "active_href": active,
    }


def units_context(user: User) -> dict[str, Any]:
    many = len(user.ids) > 1
    return {"units": user.units if many else (), "unit_names": dict(user.units), "unit": ""}


def pager(path: str, total: int, rows: list[Any], sort: str = "") -> dict[str, Any]:
    """The first keyset page's pager: 下一页 from its last row and 末页 when more follow
    (``rows`` holds one row past the page when there are)."""
    links = {}
    if len(rows) > PER_PAGE:
        last = rows[PER_PAGE - 1]
        params = [("after", last["id"])]
        if sort and last[sort] is not None:
            params.append(("at", last[sort]))
        links = {"下一页": f"{path}?{urlencode(params)}", "末页": f"{path}?last=1"}
    return {"keyset": True, "total": total, "links": links}


def fragment(request: Request) -> bool:
    return request.headers.get("hx-request") == "true"


REFUSED = Response("请先登录", status_code=401, media_type=MediaType.TEXT)

# ------------------------------------------------------------------------------ handlers


@get("/healthz", media_type=MediaType.TEXT, sync_to_thread=False)
def healthz() -> str:
    return "ok"


# The 首页's counts (#12), as the app sends them: one statement of eight sums over the
# tallies the triggers keep (per enterprise and status; 有效期至 dates as YYYY-MM-DD);
# then the chart's weeks. $1.. are the scope's ids, then {a}, {b} the values.
COUNT_LIMIT = 10_000
TALLY_SUM = "(SELECT SUM(d) FROM tally WHERE kind = '{kind}' AND enterprise IN {ids} AND {where})"
HOME_COUNTS = {
    "pending": ("booking", "status = {a}"),
    "rejected": ("booking", "status = {a}"),
    "testing": ("item_status", "status = {a}"),
    "ready": ("item_status", "status = {a}"),
    "cert_ready": ("cert_state", "status = 'paid-new'"),
    "cert_unpaid": ("cert_state", "status IN ('unpaid-new', 'unpaid-done')"),
    "overdue": ("instrument_due", "status >= '0' AND status < {a}"),
    "due": ("instrument_due", "status >= {a} AND status <= {b}"),
}


# Each count's words and link, as the app's home.customer_counts gives them.
TILES = {
    "pending": ("待审核的预约", "/bookings?status=pending"),
    "rejected": ("已驳回的预约", "/bookings?status=rejected"),
    "testing": ("检测中的器具", "/query/progress?status=testing"),
    "ready": ("待取件的器具", "/query/progress?status=ready"),
    "cert_ready": ("可下载的新证书", "/certificates?paid=paid&downloaded=no"),
    "cert_unpaid": ("未缴费的证书", "/certificates?paid=unpaid"),
    "overdue": ("已超期的托管器具", "/instruments?state=overdue"),
    "due": ("即将到期的托管器具", "/instruments?state=due"),
}
# The chart: the tally of certificates per enterprise and China-time week (its Monday).
ISSUED = (
    "SELECT status, SUM(d) FROM tally WHERE kind = 'cert_week' AND enterprise IN {ids}"
    " AND status = ANY($1::text[]) GROUP BY status"
)


class Shown:
    """A count as the template shows it (tallies.Total's face)."""

    def __init__(self, n: int, bounded: bool = True) -> None:
        self.n = min(n, COUNT_LIMIT) if bounded else n
        self.exact = n <= COUNT_LIMIT or not bounded

    def __str__(self) -> str:
        return str(self.n) if self.exact else f"{self.n}+"


def home_counts_sql(n: int) -> str:
    ids = "(" + ", ".join(f"${i + 1}" for i in range(n)) + ")"
    k = n
    parts = []
    for kind, where in HOME_COUNTS.values():
        a, b = f"${k + 1}", f"${k + 2}"
        k += where.count("{a}") + where.count("{b}")
        parts.append(TALLY_SUM.format(kind=kind, ids=ids, where=where.format(a=a, b=b)))
    return "SELECT " + ", ".join(parts)


async def home_counts(conn: Any, ids: list[int]) -> list[dict[str, Any]]:
    today = datetime.now(TZ).date()
    day = f"{today:%Y-%m-%d}"
    args = [
        BookingStatus.PENDING.value,
        BookingStatus.REJECTED.value,
        ItemStatus.TESTING.value,
        ItemStatus.READY.value,
        day,
        day,
        f"{today + timedelta(days=30):%Y-%m-%d}",
    ]
    row = await conn.fetchrow(home_counts_sql(len(ids)), *ids, *args)
    counts = []
    for key, total in zip(HOME_COUNTS, row, strict=True):
        label, href = TILES[key]
        shown = Shown(total or 0, bounded=False)
        counts.append({"key": key, "label": label, "n": shown, "href": href})
    return counts


@get("/")
async def home(request: Request) -> Response[str]:
    assert POOL is not None
    async with POOL.acquire() as conn:
        user = await current_user(request, conn)
        if user is None:
            return REFUSED
        ids = user.ids
        rows = await conn.fetch(scoped(BOOKINGS_PAGE, 2, len(ids)), 5, 0, *ids)
        counts = await home_counts(conn, list(ids))
        weeks = weekly.chart_weeks(datetime.now(TZ).date())
        names = [f"{w:%Y-%m-%d}" for w in weeks]
        issued = dict(await conn.fetch(scoped(ISSUED, 1, len(ids)), names, *ids))
    data = {
        "bookings": rows,
        "unit_names": dict(user.units) if len(user.ids) > 1 else {},
        "counts": counts,
        "admin_counts": [],
        "chart": weekly.chart(weeks, [int(issued.get(n) or 0) for n in names]),
    }
    return render(
        "home.html", request, HEADERS, **page_context(user, "/"), data=data, has_bookings=True
    )


@get("/bookings")
async def bookings(request: Request) -> Response[str]:
    assert POOL is not None
    async with POOL.acquire() as conn:
        user = await current_user(request, conn)
        if user is None:
            return REFUSED
        ids = user.ids
        total = await conn.fetchval(scoped(TALLY, 1, len(ids)), "booking", *ids)
        found = await conn.fetch(scoped(BOOKINGS_PAGE, 2, len(ids)), PER_PAGE + 1, 0, *ids)
    return render(
        "bookings/_records.html" if fragment(request) else "bookings/records.html",
        request,
        LIST_HEADERS,
        **page_context(user, "/bookings"),
        **units_context(user),
        rows=found[:PER_PAGE],
        pager=pager("/bookings", total, found),
        filters={"status": "", "start": "", "end": "", "q": ""},
        statuses=tuple(BookingStatus),
        submitted="",
        kept=[],
        deleted=None,
        error="",
    )


def due_state(valid_until: date | None, today: date) -> str:
    if valid_until is None:
        return "未设置"
    if valid_until < today:
        return "已超期"
    if valid_until <= today + timedelta(days=DUE_DAYS):
        return "即将到期"
    return "正常"


@get("/instruments")
async def instruments(request: Request) -> Response[str]:
    assert POOL is not None
    async with POOL.acquire() as conn:
        user = await current_user(request, conn)
        if user is None:
            return REFUSED
        ids = user.ids
        total = await conn.fetchval(scoped(TALLY, 1, len(ids)), "instrument", *ids)
        found = await conn.fetch(scoped(INSTRUMENTS_PAGE, 2, len(ids)), PER_PAGE + 1, 0, *ids)
    today = datetime.now(TZ).date()
    rows = []
    for r in found[:PER_PAGE]:
        row = dict(r)
        row["due_state"] = due_state(row["valid_until"], today)
        rows.append(row)
    return render(
        "instruments/_list.html" if fragment(request) else "instruments/index.html",
        request,
        LIST_HEADERS,
        **page_context(user, "/instruments"),
        **units_context(user),
        rows=rows,
        pager=pager("/instruments", total, found, "valid_until"),
        filters={"q": "", "state": "all", "sort": "valid_until"},
        states={"all": "全部", "overdue": "已超期", "due": "即将到期", "ok": "正常"},
        columns=REGISTER_COLUMNS,
        notice="",
        error="",
    )


class CertFilters:
    q = paid = downloaded = ""
    start = end = None


@get("/certificates")
async def certificates(request: Request) -> Response[str]:
    assert POOL is not None
    async with POOL.acquire() as conn:
        user = await current_user(request, conn)
        if user is None:
            return REFUSED
        ids = user.ids
        total = await conn.fetchval(scoped(TALLY, 1, len(ids)), "certificate", *ids)
        found = await conn.fetch(scoped(CERTIFICATES_PAGE, 1, len(ids)), PER_PAGE + 1, *ids)
        found = found[: PER_PAGE + 1]
    rows = []
    for r in found[:PER_PAGE]:
        row = dict(r)
        row["may_download"] = bool(row["paid"]) or user.is_contract
        rows.append(row)
    return render(
        "certificates/_list.html" if fragment(request) else "certificates/index.html",
        request,
        LIST_HEADERS,
        **page_context(user, "/certificates"),
        **units_context(user),
        rows=rows,
        filters=CertFilters,
        pager=pager("/certificates", total, found, "completed_on"),
        here="/certificates",
        error="",
        job=None,
    )


@get("/query/progress")
async def progress(request: Request) -> Response[str]:
    assert POOL is not None
    q = request.query_params.get("q", "")[:100].strip()
    async with POOL.acquire() as conn:
        user = await current_user(request, conn)
        if user is None:
            return REFUSED
        found = []
        if 2 <= len(q) <= NO_LENGTH:
            ids = user.ids
            found = await conn.fetch(scoped(PROGRESS, 2, len(ids)), q + "%", PROGRESS_LIMIT, *ids)
    rows = []
    for r in found:
        row = dict(r)
        row["status"] = ItemStatus(row["status"])
        rows.append(row)
    return render(
        "query/_progress.html" if fragment(request) else "query/progress.html",
        request,
        LIST_HEADERS,
        **page_context(user, "/query/progress"),
        q=q,
        rows=rows,
        poll=bool(rows) and not all(r["status"] == ItemStatus.COLLECTED for r in rows),
        poll_seconds=30,
    )


def _item_values(form: dict[str, str]) -> list[Any]:
    values: list[Any] = []
    for f in INSTRUMENT_FIELDS:
        raw = form.get(f.key, "").strip()
        if f.kind == "int":
            values.append(int(raw) if raw.isdecimal() else 1)
        else:
            values.append(raw[: f.max_length])
    return values


@post("/bookings/{booking_id:int}/items", status_code=200)
async def add_item(request: Request, booking_id: int) -> Response[str]:
    """【添加器具】 (htmx): the row added, or updated when ``item_id`` names one; the answer
    is the blank fields, that row and the counts (the app's bookings/_item_answer.html)."""
    assert POOL is not None
    token = request.cookies.get("csrftoken", "")
    if not token or not hmac.compare_digest(token, request.headers.get("x-csrftoken", "")):
        return Response("CSRF", status_code=403, media_type=MediaType.TEXT)
    form = dict(parse_qsl((await request.body()).decode()))
    item_id = form.get("item_id", "")
    async with POOL.acquire() as conn:
        user = await current_user(request, conn)
        if user is None:
            return REFUSED
        async with conn.transaction():
            ids = user.ids
            fields = [form.get(k, "")[:200] for k in BOOKING_KEYS]
            enterprise = await conn.fetchval(
                scoped(BOOKING_FIELDS, 1 + len(fields), len(ids)), booking_id, *fields, *ids
            )
            if enterprise is None:
                return Response("预约不存在或不能修改", status_code=404, media_type=MediaType.TEXT)
            values = _item_values(form)
            if item_id.isdecimal():
                row = await conn.fetchrow(
                    scoped(ITEM_UPDATE, 2 + len(values), len(ids)),
                    int(item_id),
                    booking_id,
                    *values,
                    *ids,
                )
            else:
                row = await conn.fetchrow(ITEM_INSERT, booking_id, enterprise, *values)
            if row is None:
                return Response("器具不存在", status_code=404, media_type=MediaType.TEXT)
            booking = await conn.fetchrow(BOOKING_COUNT, booking_id)
    page = int(form["list_page"]) if form.get("list_page", "").isdecimal() else 1
    pages = max(1, -(-booking["item_rows"] // LIST_SIZE))
    return render(
        "bookings/_item_answer.html",
        request,
        HEADERS,
        booking=booking,
        item={},
        errors={},
        notice="器具已添加",
        focus=True,
        saved={"row": row, "added": not item_id.isdecimal()},
        pager={
            "total": booking["item_rows"],
            "page": min(max(page, 1), pages),
            "pages": pages,
            "per_page": LIST_SIZE,
        },
        columns=BOOKING_COLUMNS,
        cells=ITEM_CELLS,
    )


app = Litestar(
    route_handlers=[healthz, home, bookings, instruments, certificates, progress, add_item],
    lifespan=[lifespan],
    openapi_config=None,
    compression_config=CompressionConfig(backend="gzip", gzip_compress_level=GZIP_LEVEL),
)
