"""The app's pages against their floor (bench/floor.py), measured in the same run.

    .venv/bin/python bench/booking.py          (or: make bench; about 2.5 minutes)
    .venv/bin/python bench/booking.py --big --workers 2     (and at 100k, and 2 workers)

What it does, in order:

1. Re-creates its own PostgreSQL database ``jlkf_bench`` (127.0.0.1:5432, trust auth; the
   ``test`` database is never touched), flushes Redis db 13, and migrates with
   ``python -m app.cli setup``.
2. Serves the bare handler ``bench/bare_app.py`` and measures its GET and POST (context).
3. Seeds by COPY 1,000 enterprises (one user each), then 1,000 bookings (5,000 of their
   instruments), 1,000 器具托管 rows and 1,000 certificates (200 lab orders); enterprise 1
   (user ``bench_admin``) owns ``--share`` (10 %) of each. Serves the app
   (``uvicorn app.asgi:app --workers 1``, sessions in Redis) and the floor the same way,
   both pinned to CPU 0, and for each page — 预约记录, 首页, 【添加器具】 (the htmx POST on a
   draft's row, update path), 器具托管, 电子证书 and the 检测进度 lookup (htmx, one order
   number) — checks that the floor's answer is the app's (CSRF tokens aside), then measures
   the floor and the app with wrk from a separate process (20 connections, 2 s warm-up +
   6 s, ``Accept-Encoding: gzip`` as browsers send; ``--no-gzip`` asks for none).
   ``--big`` seeds on to ``--bookings`` (100,000) of each and measures again on fresh
   servers; ``--workers N`` measures every page again with N workers (not pinned) and
   prints the gain.
4. Times a 5,000-row import end to end against a bare openpyxl read (``--skip-import``).
5. Prints one table: each page's rps, p50/p99 and CPU per request beside its floor's, and
   the ratios with PASS/MISS against ≥ 0.6 of the floor's requests/s and of its CPU per
   request, p99 ≤ 1.5× the floor's; the bare handler's figures below.

CPU use is read from /proc around every measured run (the server's process tree, PostgreSQL
+ Redis, wrk, everybody else), so CPU per request can be compared too: other people's work
on the machine disturbs it far less than requests/s and p99. ``--layers [DIR]`` samples the
app and the floor with py-spy during each page and prints the CPU per request by layer
(Litestar, Piccolo, asyncpg, Jinja2, uvicorn, ...) side by side. ``--only 预约记录,首页``
measures only those pages. ``--profile DIR`` runs the app under cProfile (figures then are
not comparable).
``--tree`` measures instead only 预约记录 of a parent with ``--subsidiaries`` (50) whose
bookings add up to ``--tree-bookings`` (100,000) against one enterprise with as many, in the
same run (target: ≥ 0.8 × the single's requests/s); ``--explain`` prints the page's plans.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import asyncpg
import httpx
import layers
import openpyxl
from _harness import (
    BENCH,
    ITEMS_PER_ORDER,
    MAKERS,
    MEASURED_ENTERPRISE,
    NAMES,
    PASSWORD,
    PY,
    REDIS_URL,
    ROOT,
    SECRET_KEY,
    USERNAME,
    Load,
    LoadRunner,
    Procs,
    Server,
    Session,
    app_env,
    check,
    database_url,
    explain_plans,
    flush_redis,
    git_state,
    log,
    login_session,
    migrate,
    own_databases,
    pin,
    print_profile,
    print_table,
    recreate_database,
    result,
    run_cleanly,
    seed_accounts,
    seed_bookings,
    seed_instruments,
    seed_orders,
    set_pinning,
    start_server,
    user_id_of,
    verdict,
)

from app.clock import today
from app.enums import BookingStatus
from app.fields import INSTRUMENT_FIELDS
from app.services.instrument_xlsx import (
    BOOKING_COLUMNS,
    IMPORT_SHEET_TITLE,
    build_template,
    read_instruments,
)

DB_NAME = "jlkf_bench"
DATABASE_URL = database_url(DB_NAME)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
TOMORROW = (today() + timedelta(days=1)).isoformat()
BOOKING_FORM = {
    "client_name": "南京测试仪表有限公司",
    "client_address": "南京市江宁区1号",
    "contact_name": "王五",
    "phone": "025-88888888",
    "cert_name": "南京测试仪表有限公司",
    "cert_address": "南京市江宁区2号",
    "mobile": "13912345678",
    "expected_date": TOMORROW,
    "sender": "赵六",
}
INSTRUMENT_FORM = {
    "name": "温度计1",
    "equipment_no": "SB-1",
    "serial_no": "2023011001",
    "model": "1-2-3",
    "measuring_range": "1-100",
    "accuracy_class": "0.01",
    "supply_voltage": "/",
    "manufacturer": "明月公司",
    "verification_requirement": "见说明书",
    "certificate_type": "检定证书",
    "quantity": "1",
    "remark": "无",
}


def use_databases(name: str, redis_db: int) -> None:
    """--db, --redis-db: the databases every function here uses (module globals, set once
    before anything runs)."""
    global DB_NAME, DATABASE_URL, REDIS_URL
    DB_NAME = name
    DATABASE_URL, REDIS_URL = own_databases(name, redis_db)


# ------------------------------------------------------------------------------ processes


PROCS = Procs()


# ------------------------------------------------------------------------------ database


async def new_drafts(n: int) -> list[int]:
    """Fresh editable bookings of the measured user, one per import run (待审核: a user may
    have only one draft)."""
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        ids = []
        for _ in range(n):
            ids.append(
                await conn.fetchval(
                    "INSERT INTO booking (enterprise, created_by, status, client_name) "
                    "VALUES ($1, $2, $3, '南京测试仪表有限公司') RETURNING id",
                    MEASURED_ENTERPRISE,
                    user_id_of(MEASURED_ENTERPRISE),
                    BookingStatus.PENDING.value,
                )
            )
        return ids
    finally:
        await conn.close()


async def db_counts() -> dict[str, int]:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        return {
            "bookings": await conn.fetchval("SELECT count(*) FROM booking"),
            "instruments": await conn.fetchval("SELECT count(*) FROM booking_item"),
            "measured_bookings": await conn.fetchval(
                "SELECT count(*) FROM booking WHERE enterprise = $1", MEASURED_ENTERPRISE
            ),
            "register": await conn.fetchval("SELECT count(*) FROM instrument"),
            "certificates": await conn.fetchval("SELECT count(*) FROM certificate"),
        }
    finally:
        await conn.close()


# ------------------------------------------------------------------------------ client side


def prepare_fragment(base: str, sess: Session) -> tuple[str, bytes]:
    """The draft and one row of it; returns the URL and the body that updates that row.
    (Opening 预约送检 makes no draft: the first 【添加器具】, to /bookings/new/items, does.)"""
    with httpx.Client(base_url=base, timeout=30) as c:
        form = {**BOOKING_FORM, **INSTRUMENT_FORM}
        r = c.post("/bookings/new/items", data=form, headers=sess.headers(htmx=True, post=True))
        check(r, "器具已添加", "POST /bookings/new/items (the first row makes the draft)")
        m = re.search(r'name="draft_id" value="(\d+)"', r.text)
        ids = re.findall(r'name="item_ids" value="(\d+)"', r.text)
        if not m or not ids:
            raise SystemExit("the draft or its row is not in the answer to the first 添加器具")
        url = f"/bookings/{m.group(1)}/items"
        body = urlencode({**form, "item_id": ids[0]}).encode()
        r = c.post(
            url,
            content=body,
            headers={
                **sess.headers(htmx=True, post=True),
                "Content-Type": "application/x-www-form-urlencoded",
            },
        )
        check(r, "器具已添加", f"POST {url} (update the row)")
        return url, body


def measure_page(
    runner: LoadRunner,
    env: dict[str, str],
    tmp: Path,
    name: str,
    sess: Session | None,
    profile: Path | None = None,
    username: str = USERNAME,
    units: bool | None = None,
) -> tuple[Load, Session]:
    """预约记录 on a fresh server: checked, measured, checked again (logs in as ``username``
    if no ``sess``). ``units``: the 所属单位 column must be there (True) or not (False)."""
    srv = start_server(PROCS, f"app-{name}", ["app.asgi:app"], env, tmp, profile)
    try:
        sess = sess or login_session(srv.base, username)
        for when in ("before", "after"):
            page = httpx.get(srv.base + "/bookings", headers=sess.headers())
            check(page, "预约记录", "GET /bookings")
            if units is not None and ("<th>所属单位</th>" in page.text) != units:
                raise SystemExit(
                    f"GET /bookings as {username}: the 所属单位 column is "
                    f"{'missing' if units else 'there'} ({when} the run)"
                )
            if when == "before":
                load = runner.measure("GET /bookings", srv, "/bookings", sess.headers())
    finally:
        PROCS.stop(srv.proc)
    return load, sess


# ------------------------------------------------------------------------------ import


def build_import_file(rows: int) -> bytes:
    wb = openpyxl.load_workbook(BytesIO(build_template(BOOKING_COLUMNS)))
    ws = wb[IMPORT_SHEET_TITLE]
    for i in range(1, rows + 1):
        values = {
            "name": NAMES[i % len(NAMES)],
            "equipment_no": f"SB-2026-{i:05d}",
            "serial_no": f"{20230000 + i:010d}",
            "model": f"M-{i % 97}",
            "measuring_range": "0-100 ℃",
            "accuracy_class": "0.5级",
            "supply_voltage": "AC 220 V",
            "manufacturer": MAKERS[i % len(MAKERS)],
            "verification_requirement": "依据 JJG 检定",
            "certificate_type": "检定证书" if i % 3 else "校准证书",
            "quantity": 1 + i % 3,
            "remark": "" if i % 5 else "附件齐全",
        }
        ws.append([values[c.key] for c in BOOKING_COLUMNS])
    out = BytesIO()
    wb.save(out)
    return out.getvalue()


def bare_read(data: bytes) -> int:
    wb = openpyxl.load_workbook(BytesIO(data), read_only=True)
    n = 0
    for _ in wb[IMPORT_SHEET_TITLE].iter_rows(values_only=True):
        n += 1
    wb.close()
    return n


def timed(fn: Any, *a: Any) -> float:
    t = time.perf_counter()
    fn(*a)
    return time.perf_counter() - t


def post_import(
    server: Server, sess: Session, booking_id: int, data: bytes, rows: int
) -> tuple[float, str]:
    """One import request, timed end to end; returns (seconds, "" or what went wrong)."""
    log_size = server.log.stat().st_size
    with httpx.Client(base_url=server.base, timeout=600) as c:
        t = time.perf_counter()
        r = c.post(
            f"/bookings/{booking_id}/import",
            files={"file": ("器具导入.xlsx", data, XLSX)},
            headers=sess.headers(htmx=True, post=True),
        )
        elapsed = time.perf_counter() - t
    if r.status_code == 200 and f"已导入{rows}个器具" in r.text:
        return elapsed, ""
    # The server's own word on it: the last line of the traceback it logged, if any.
    with open(server.log, "rb") as f:
        f.seek(log_size)
        logged = [ln for ln in f.read().decode(errors="replace").splitlines() if ln.strip()]
    reason = next((ln for ln in reversed(logged) if "Error" in ln or "Exception" in ln), "")
    if not reason:
        m = re.search(r'class="notice notice-error"[^>]*>(.*?)</', r.text, re.S)
        reason = re.sub(r"<[^>]+>", " ", m.group(1)).strip() if m else r.text[:200]
    return elapsed, f"HTTP {r.status_code}: {reason.strip()[:160]}"


@dataclass
class ImportResult:
    rows: int
    size: int
    app: list[float]
    bare: list[float]
    parse: list[float]
    error: str


def measure_import(
    rows: int,
    runs: int,
    sess: Session,
    env: dict[str, str],
    tmp: Path,
    profile: Path | None,
) -> ImportResult:
    data = build_import_file(rows)
    bare_times = [timed(bare_read, data) for _ in range(runs)]
    parse_times = [timed(read_instruments, data, BOOKING_COLUMNS) for _ in range(runs)]
    drafts = asyncio.run(new_drafts(runs))
    srv = start_server(PROCS, f"app-import-{rows}", ["app.asgi:app"], env, tmp, profile)
    times, error = [], ""
    try:
        for d in drafts:
            elapsed, error = post_import(srv, sess, d, data, rows)
            if error:
                break
            times.append(elapsed)
    finally:
        PROCS.stop(srv.proc)
    res = ImportResult(rows, len(data), times, bare_times, parse_times, error)
    shown = ", ".join(f"{x:.2f}" for x in times) + " s" if times else f"FAILED ({error})"
    log(
        f"  {rows:,} rows, {len(data) / 1024:,.0f} KiB: POST import {shown}; bare read "
        + ", ".join(f"{x:.2f}" for x in bare_times)
        + " s; read_instruments in-process "
        + ", ".join(f"{x:.2f}" for x in parse_times)
        + " s"
    )
    return res


# ------------------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description="The app's pages against their floor")
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--duration", type=int, default=6, help="measured seconds")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds")
    parser.add_argument("--enterprises", type=int, default=1000)
    parser.add_argument(
        "--big", action="store_true", help="measure again at --bookings (100,000) rows"
    )
    parser.add_argument("--bookings", type=int, default=100_000)
    parser.add_argument("--first-bookings", type=int, default=1000)
    parser.add_argument(
        "--workers", type=int, default=1, help="also measure with this many uvicorn workers"
    )
    parser.add_argument(
        "--no-gzip", action="store_true", help="ask for answers uncompressed (default: gzip)"
    )
    parser.add_argument("--skip-import", action="store_true", help="leave out the import")
    parser.add_argument(
        "--only", metavar="PAGES", help="only these pages, by label: 预约记录,首页,添加器具,…"
    )
    parser.add_argument(
        "--layers",
        nargs="?",
        const=".",
        metavar="DIR",
        help="sample the app and the floor with py-spy: own time by layer, per page (and keep "
        "py-spy's raw stacks in DIR if given)",
    )
    parser.add_argument(
        "--share", type=float, default=0.1, help="share of all bookings owned by the measured one"
    )
    parser.add_argument("--import-rows", type=int, default=5000)
    parser.add_argument("--import-runs", type=int, default=2)
    parser.add_argument(
        "--fallback-rows", type=int, default=2000, help="rows to time if the full import fails"
    )
    parser.add_argument(
        "--pin",
        choices=("server", "both", "none"),
        default="server",
        help="taskset: the server on CPU 0 (default); both: and the load generator on CPU 1",
    )
    parser.add_argument("--keep-db", action="store_true", help="leave the database for inspection")
    parser.add_argument(
        "--db",
        default=DB_NAME,
        help=f"the PostgreSQL database to (re-)create and use (default {DB_NAME}; never 'test'): "
        "each person running the bench on a shared machine gives their own",
    )
    parser.add_argument(
        "--redis-db", type=int, default=13, help="the Redis database to flush and use (13)"
    )
    parser.add_argument("--profile", metavar="DIR", help="run the app under cProfile into DIR")
    tree = parser.add_argument_group("--tree: 预约记录 of a parent with subsidiaries (only this)")
    tree.add_argument(
        "--tree", action="store_true", help="a parent + subsidiaries vs one enterprise, only"
    )
    tree.add_argument("--subsidiaries", type=int, default=50)
    tree.add_argument(
        "--tree-bookings",
        type=int,
        default=100_000,
        help="bookings of the group (across its subsidiaries), of the single enterprise, and "
        "of all the other enterprises: three times this in all",
    )
    tree.add_argument("--explain", action="store_true", help="EXPLAIN ANALYZE the page's queries")
    parser.add_argument("--page-sql", nargs="+", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    use_databases(args.db, args.redis_db)
    if args.page_sql:
        print_page_sql(args.page_sql)
        return
    set_pinning(args.pin)
    run_cleanly(
        PROCS,
        lambda tmp: run_tree(args, tmp) if args.tree else run(args, tmp),
        db_name=DB_NAME,
        keep_db=args.keep_db,
        tmp_prefix="jlkf-bench-",
    )
    sys.exit(0)


# ------------------------------------------------------------------------------ pages


@dataclass(frozen=True)
class Spec:
    """One measured answer: what the app and its floor are both sent."""

    label: str
    path: str
    marker: str  # text the answer must contain
    method: str = "GET"
    htmx: bool = False
    body: bytes = b""

    def headers(self, sess: Session, gzip: bool) -> dict[str, str]:
        h = sess.headers(htmx=self.htmx, post=self.method == "POST")
        if self.method == "POST":
            h["Content-Type"] = "application/x-www-form-urlencoded"
        h["Accept-Encoding"] = "gzip" if gzip else "identity"
        return h


TOKENS = re.compile(r'(name="_csrf_token" value=|"X-CSRFToken": )"[^"]*"')


def fetch(server: Server, spec: Spec, sess: Session) -> str:
    r = httpx.request(
        spec.method,
        server.base + spec.path,
        headers=spec.headers(sess, gzip=False),
        content=spec.body or None,
        timeout=30,
    )
    check(r, spec.marker, f"{server.name}: {spec.method} {spec.path}")
    return TOKENS.sub(r'\1"…"', r.text)


def same_answer(app: Server, floor: Server, spec: Spec, sess: Session) -> str:
    """ "same" when the floor's answer is the app's (CSRF tokens aside), else where they part."""
    a, f = fetch(app, spec, sess).splitlines(), fetch(floor, spec, sess).splitlines()
    if a == f:
        return "same"
    diff = [ln for ln in difflib.unified_diff(a, f, "app", "floor", n=0, lineterm="")][2:8]
    return f"DIFFERS ({len(a)} vs {len(f)} lines): " + " | ".join(d[:100] for d in diff)


def progress_query() -> str:
    async def q() -> str:
        conn = await asyncpg.connect(DATABASE_URL)
        try:
            return str(
                await conn.fetchval(
                    "SELECT order_no FROM lab_order WHERE enterprise = $1 ORDER BY id DESC LIMIT 1",
                    MEASURED_ENTERPRISE,
                )
            )
        finally:
            await conn.close()

    return asyncio.run(q())


def specs(fragment_url: str, fragment_body: bytes, order_no: str) -> list[Spec]:
    return [
        Spec("预约记录", "/bookings", "预约记录"),
        Spec("首页", "/", "最近的预约记录"),
        Spec("添加器具", fragment_url, "器具已添加", "POST", True, fragment_body),
        Spec("器具托管", "/instruments", "器具托管列表"),
        Spec("电子证书", "/certificates", "电子证书列表"),
        Spec("检测进度", f"/query/progress?q={order_no}", order_no, htmx=True),
    ]


@dataclass
class Pair:
    """A page at one size: the app and its floor (and, with --workers, both at N workers)."""

    spec: Spec
    size: str
    app: Load
    floor: Load
    answer: str
    app_n: Load | None = None
    floor_n: Load | None = None


def measure_pair(
    runner: LoadRunner,
    app: Server,
    floor: Server,
    spec: Spec,
    sess: Session,
    args: argparse.Namespace,
    tmp: Path,
    size: str,
    raw_tag: str,
) -> Pair:
    """One page on the servers given: the floor's answer checked against the app's, then
    the floor and the app measured (sampled with py-spy under --layers), the app checked
    again."""
    answer = same_answer(app, floor, spec, sess)
    log(f"{spec.label} @{size}: floor's answer {answer}")
    headers = spec.headers(sess, gzip=not args.no_gzip)
    loads, raws = {}, {}
    for who, server in (("floor", floor), ("app", app)):
        spy = None
        keep = Path(args.layers) if args.layers not in (None, ".") else tmp
        raw = keep / f"{who}-{raw_tag}.txt"
        if args.layers:
            spy = layers.record(server.proc.pid, runner.warmup + runner.duration, raw)
        loads[who] = runner.measure(
            f"{who:<5} {spec.label}", server, spec.path, headers, spec.method, spec.body
        )
        if spy is not None:
            spy.wait(timeout=60)
            raws[who] = raw
            for line in layers.report(f"  {who} {spec.label} @{size}", raw):
                log(line)
    f, a = loads["floor"], loads["app"]
    if raws:
        title = f"{spec.label} @{size}"
        by_layer = layers.side_by_side(title, raws["app"], a.server_ms, raws["floor"], f.server_ms)
        for line in by_layer:
            log(line)
    fetch(app, spec, sess)  # still right after the load
    return Pair(spec, size, a, f, answer)


def measure_pairs(
    runner: LoadRunner,
    env: dict[str, str],
    tmp: Path,
    size: str,
    sess: Session | None,
    fragment: tuple[str, bytes] | None,
    args: argparse.Namespace,
    profile: Path | None,
    workers: int = 1,
) -> tuple[list[Pair], Session, tuple[str, bytes]]:
    """Every page on a fresh app and floor server (``workers`` each), floor then app."""
    tag = f"{size}-{workers}w"
    app = start_server(PROCS, f"app-{tag}", ["app.asgi:app"], env, tmp, profile, workers=workers)
    floor = start_server(
        PROCS, f"floor-{tag}", ["--app-dir", str(BENCH), "floor:app"], env, tmp,
        probe="/healthz", workers=workers,
    )  # fmt: skip
    pairs = []
    try:
        sess = sess or login_session(app.base)
        fragment = fragment or prepare_fragment(app.base, sess)
        for spec in specs(*fragment, progress_query()):
            if args.only and spec.label not in args.only.split(","):
                continue
            raw = f"{tag}-{len(pairs)}"
            pairs.append(measure_pair(runner, app, floor, spec, sess, args, tmp, size, raw))
    finally:
        PROCS.stop(app.proc)
        PROCS.stop(floor.proc)
    return pairs, sess, fragment


# ------------------------------------------------------------------------------ a long draft

LONG_DRAFT = 5000
LONG_LABEL = "添加器具5000行"
INSERTS = 100  # sequential 【添加器具】 of new rows timed on each draft
MAX_ANSWER = 10 * 1024  # issue #11: an answer to 【添加器具】 on a 5,000-row draft
TIME_TARGET = 1.5  # ... and within 1.5× its time on an empty draft


async def grow_draft(booking_id: int, rows: int) -> int:
    """The draft grown to ``rows`` rows by COPY, each written as the app writes it (its
    item_key), and its counts set; returns the number of rows added."""
    from app.services.bookings import key_hash  # the app's own (not at the top: heavy)

    conn = await asyncpg.connect(DATABASE_URL)
    try:
        have = await conn.fetchval(
            "SELECT count(*) FROM booking_item WHERE booking = $1", booking_id
        )
        enterprise = await conn.fetchval("SELECT enterprise FROM booking WHERE id = $1", booking_id)
        keys = [f.key for f in INSTRUMENT_FIELDS]
        records = []
        for i in range(have + 1, rows + 1):
            row = {
                **INSTRUMENT_FORM,
                "name": f"{NAMES[i % len(NAMES)]}{i}",
                "serial_no": f"LONG-{i:06d}",
                "equipment_no": f"SB-L-{i:05d}",
                "quantity": 1 + i % 3,
            }
            records.append((booking_id, enterprise, key_hash(row), *(row[k] for k in keys)))
        await conn.copy_records_to_table(
            "booking_item", records=records, columns=["booking", "enterprise", "item_key", *keys]
        )
        await conn.execute(
            "UPDATE booking SET item_count = (SELECT COALESCE(SUM(quantity), 0) FROM "
            "booking_item WHERE booking = $1), item_rows = (SELECT count(*) FROM booking_item "
            "WHERE booking = $1) WHERE id = $1",
            booking_id,
        )
        await conn.execute("VACUUM ANALYZE booking_item, booking")
        return len(records)
    finally:
        await conn.close()


@dataclass
class Inserts:
    """Sequential 【添加器具】 of new rows on one draft: latencies (ms) and answer sizes."""

    rows_before: int
    ms: list[float]
    size: int  # bytes of the answer, uncompressed
    wire: int  # ... as sent (gzip)

    @property
    def median(self) -> float:
        return statistics.median(self.ms)

    @property
    def p90(self) -> float:
        return statistics.quantiles(self.ms, n=10)[-1]


def time_inserts(base: str, sess: Session, url: str, start: int, rows_before: int) -> Inserts:
    """INSERTS new rows added one after the other (each another instrument), timed."""
    ms, size, wire = [], 0, 0
    headers = {**sess.headers(htmx=True, post=True), "Accept-Encoding": "gzip"}
    with httpx.Client(base_url=base, timeout=30) as c:
        for i in range(start, start + INSERTS):
            form = {**BOOKING_FORM, **INSTRUMENT_FORM, "serial_no": f"NEW-{i:06d}"}
            t = time.perf_counter()
            r = c.post(url, data=form, headers=headers)
            ms.append((time.perf_counter() - t) * 1000)
            check(r, "器具已添加", f"POST {url} (a new row)")
            size, wire = max(size, len(r.content)), max(wire, r.num_bytes_downloaded)
    return Inserts(rows_before, ms, size, wire)


@dataclass
class LongDraft:
    """【添加器具】 on the draft at 1 row and at LONG_DRAFT rows."""

    pair: Pair  # the update path under wrk on the long draft, against its floor
    small: Pair  # the same on the 1-row draft (measured with the other pages)
    empty: Inserts
    long: Inserts


def measure_long_draft(
    runner: LoadRunner,
    env: dict[str, str],
    tmp: Path,
    size: str,
    sess: Session,
    fragment: tuple[str, bytes],
    small: Pair,
    args: argparse.Namespace,
) -> LongDraft:
    """The draft grown from 1 row to LONG_DRAFT: the same 【添加器具】 (update path) under wrk
    against its floor, and new rows added one by one on the small and on the long draft."""
    url, body = fragment
    draft = int(url.split("/")[2])
    app = start_server(PROCS, f"app-long-{size}", ["app.asgi:app"], env, tmp)
    floor = start_server(
        PROCS, f"floor-long-{size}", ["--app-dir", str(BENCH), "floor:app"], env, tmp,
        probe="/healthz",
    )  # fmt: skip
    try:
        log(f"{LONG_LABEL}: {INSERTS} new rows added one by one to the 1-row draft")
        empty = time_inserts(app.base, sess, url, 1, 1)
        added = asyncio.run(grow_draft(draft, LONG_DRAFT))
        log(f"{LONG_LABEL}: the draft grown by {added:,} rows to {LONG_DRAFT:,} (COPY)")
        spec = Spec(LONG_LABEL, url, "器具已添加", "POST", True, body)
        pair = measure_pair(runner, app, floor, spec, sess, args, tmp, size, f"long-{size}")
        log(f"{LONG_LABEL}: {INSERTS} new rows added one by one to the {LONG_DRAFT:,}-row draft")
        long = time_inserts(app.base, sess, url, 1 + INSERTS, LONG_DRAFT)
    finally:
        PROCS.stop(app.proc)
        PROCS.stop(floor.proc)
    return LongDraft(pair, small, empty, long)


def print_long_draft(ld: LongDraft) -> None:
    """The long draft against the small one, from the same run."""
    s, g = ld.small.app, ld.pair.app
    rps = g.rps / s.rps if s.rps else 0.0
    cpu = g.server_ms / s.server_ms if s.server_ms else 0.0
    insert = ld.long.median / ld.empty.median if ld.empty.median else 0.0
    ok = rps >= 1 / TIME_TARGET and insert <= TIME_TARGET and ld.long.size <= MAX_ANSWER
    log("")
    log(
        f"【添加器具】 on a {LONG_DRAFT:,}-row draft against the same on a 1-row draft (issue #11: "
        f"within {TIME_TARGET}× the time, answer ≤ {MAX_ANSWER // 1024} KB), same run:"
    )
    log(
        f"  update path under wrk: {g.rps:,.0f} vs {s.rps:,.0f} req/s ({rps:.2f}×), server CPU "
        f"{g.server_ms:.2f} vs {s.server_ms:.2f} ms/request ({cpu:.2f}×), p99 {g.p99_ms:.1f} vs "
        f"{s.p99_ms:.1f} ms"
    )
    log(
        f"  a new row, {INSERTS} one after the other: median {ld.long.median:.1f} ms (p90 "
        f"{ld.long.p90:.1f}) on {ld.long.rows_before:,} rows vs {ld.empty.median:.1f} ms (p90 "
        f"{ld.empty.p90:.1f}) on {ld.empty.rows_before} row(s): {insert:.2f}×; answer "
        f"{ld.long.size:,} bytes ({ld.long.wire:,} gzip) vs {ld.empty.size:,} "
        f"({ld.empty.wire:,}): {verdict(ok)}"
    )


# ------------------------------------------------------------------------------ main run

RPS_TARGET = 0.6
CPU_TARGET = 0.6
P99_TARGET = 1.5


def size_name(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def verdict_of(p: Pair) -> tuple[str, float, float, float]:
    """PASS/MISS against the floor (and what missed), rps ratio, CPU ratio, p99 ratio."""
    rps = p.app.rps / p.floor.rps if p.floor.rps else 0.0
    cpu = p.floor.server_ms / p.app.server_ms if p.app.server_ms else 0.0
    p99 = p.app.p99_ms / p.floor.p99_ms if p.floor.p99_ms else 0.0
    missed = [
        name
        for name, ok in (
            ("rps", rps >= RPS_TARGET),
            ("cpu", cpu >= CPU_TARGET),
            ("p99", p99 <= P99_TARGET),
            ("errors", not (p.app.errors or p.floor.errors)),
        )
        if not ok
    ]
    return ("PASS" if not missed else "MISS: " + ", ".join(missed)), rps, cpu, p99


def run(args: argparse.Namespace, tmp: Path) -> None:
    if not shutil.which("wrk"):
        log(
            "NOTE: wrk is not installed (apt-get install wrk); falling back to bench/loadgen.py "
            "(asyncio + httpx), which is much slower: the bare app's figures will be the load "
            "generator's limit."
        )
    every = max(1, round(1 / args.share))
    env = app_env(DATABASE_URL, SECRET_KEY, tmp, REDIS_URL=REDIS_URL)
    runner = LoadRunner(PROCS, DB_NAME, tmp, args.connections, args.warmup, args.duration)
    log(f"code: {git_state()}")
    profile_dir = Path(args.profile).resolve() if args.profile else None
    if profile_dir:
        profile_dir.mkdir(parents=True, exist_ok=True)
        log("NOTE: --profile: the app runs under cProfile; its figures are not comparable.")

    def prof(name: str) -> Path | None:
        return profile_dir / f"{name}.prof" if profile_dir else None

    sizes = [args.first_bookings] + ([args.bookings] if args.big else [])
    if args.layers and not layers.py_spy():
        raise SystemExit("--layers needs py-spy: pip install --target /tmp/pytools py-spy")
    loadgen = "wrk" if shutil.which("wrk") else "bench/loadgen.py"
    log(
        f"cpus: {os.cpu_count()}; server: {' '.join(pin('server')) or 'not pinned'}; load "
        f"generator: {loadgen} {' '.join(pin('loadgen')) or 'not pinned'}, "
        f"{args.connections} connections, {args.warmup} s warm-up + {args.duration} s; "
        f"sizes {', '.join(size_name(n) for n in sizes)}; Accept-Encoding: "
        f"{'identity' if args.no_gzip else 'gzip'}"
        + (f"; then {args.workers} workers each" if args.workers > 1 else "")
    )

    # 1. database, Redis, schema
    t = time.perf_counter()
    asyncio.run(recreate_database(DB_NAME))
    flush_redis(REDIS_URL)
    migrate(env)
    log(f"database {DB_NAME} re-created, {REDIS_URL} flushed, migrated "
        f"({time.perf_counter() - t:.1f} s)")  # fmt: skip

    async def seed(first: int, last: int, accounts: bool) -> None:
        from app.services.tallies import FOLD_POSTGRES  # not at the top: the app's settings

        conn = await asyncpg.connect(DATABASE_URL)
        try:
            if accounts:
                await seed_accounts(conn, args.enterprises)
            await seed_bookings(conn, first, last, args.enterprises, every)
            await seed_instruments(conn, first, last, args.enterprises, every)
            orders = (first - 1) // ITEMS_PER_ORDER + 1, last // ITEMS_PER_ORDER
            if orders[1] >= orders[0]:
                await seed_orders(conn, *orders, args.enterprises, every)
            # The worker folds the tallies every minute; the seed's +1 rows, folded.
            await conn.execute(FOLD_POSTGRES)
            await conn.execute("VACUUM ANALYZE tally")
            if accounts:
                # What the app makes (the draft, its row, import drafts) gets ids above
                # every seeded one, so seeding on later does not collide with it.
                for table, start in (("booking", 10_000_000), ("booking_item", 100_000_000)):
                    await conn.execute(
                        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), {start})"
                    )
        finally:
            await conn.close()

    # 2. the bare baseline
    log("bare: bench/bare_app.py")
    bare = start_server(PROCS, "bare", ["--app-dir", str(BENCH), "bare_app:app"], env, tmp, None)
    try:
        check(httpx.get(bare.base + "/"), "bare baseline", "bare GET /")
        frag_body = urlencode({**BOOKING_FORM, **INSTRUMENT_FORM, "item_id": "1"}).encode()
        form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
        bare_get = runner.measure("bare GET /", bare, "/", {})
        bare_post = runner.measure(
            "bare POST /fragment", bare, "/fragment", form_headers, "POST", frag_body
        )
    finally:
        PROCS.stop(bare.proc)

    # 3. each size: seed on, then every page against its floor
    pairs: list[Pair] = []
    sess: Session | None = None
    fragment: tuple[str, bytes] | None = None
    seeded = 0
    for n in sizes:
        t = time.perf_counter()
        asyncio.run(seed(seeded + 1, n, accounts=seeded == 0))
        seeded = n
        counts = asyncio.run(db_counts())
        log(
            f"seeded to {counts['bookings']:,} bookings ({counts['measured_bookings']:,} of the "
            f"measured enterprise), {counts['instruments']:,} of their instruments, "
            f"{counts['register']:,} 器具托管 rows, {counts['certificates']:,} certificates "
            f"({time.perf_counter() - t:.1f} s)"
        )
        size = size_name(n)
        found, sess, fragment = measure_pairs(
            runner, env, tmp, size, sess, fragment, args, prof(f"app-{size}")
        )
        if profile_dir:
            print_profile(prof(f"app-{size}"), f"the app at {size}", 30)
        if args.workers > 1:
            more, sess, fragment = measure_pairs(
                runner, env, tmp, size, sess, fragment, args, None, workers=args.workers
            )
            for p, q in zip(found, more, strict=True):  # the same pages in the same order
                p.app_n, p.floor_n = q.app, q.floor
        pairs += found

    # 3b. 【添加器具】 on a long draft (after every size: the draft grows)
    long_draft = None
    if not args.only or LONG_LABEL in args.only.split(","):
        small = next((p for p in reversed(pairs) if p.spec.label == "添加器具"), None)
        if small is None:
            raise SystemExit(f"{LONG_LABEL} is measured against 添加器具: --only both")
        assert sess is not None and fragment is not None
        long_draft = measure_long_draft(
            runner, env, tmp, size_name(sizes[-1]), sess, fragment, small, args
        )
        pairs.append(long_draft.pair)

    # 4. the import, end to end, against a bare openpyxl read of the same file
    imports: list[ImportResult] = []
    if not args.skip_import:
        assert sess is not None
        log(f"import: {args.import_rows:,}-row template, median of {args.import_runs}")
        imports.append(
            measure_import(args.import_rows, args.import_runs, sess, env, tmp, prof("import"))
        )
        if imports[0].error and args.fallback_rows and args.fallback_rows < args.import_rows:
            log(f"  the {args.import_rows:,}-row import failed: timing {args.fallback_rows:,} rows")
            imports.append(
                measure_import(args.fallback_rows, args.import_runs, sess, env, tmp, None)
            )

    print_report(args, pairs, bare_get, bare_post, imports)
    if long_draft is not None:
        print_long_draft(long_draft)


def print_report(
    args: argparse.Namespace,
    pairs: list[Pair],
    bare_get: Load,
    bare_post: Load,
    imports: list[ImportResult],
) -> None:
    def figures(load: Load) -> list[str]:
        err = f" ({load.errors} err)" if load.errors else ""
        return [
            f"{load.rps:,.0f}{err}", f"{load.p50_ms:.1f}", f"{load.p99_ms:.1f}",
            f"{load.server_ms:.2f}", f"{load.db_ms:.2f}",
        ]  # fmt: skip

    rows: list[list[str]] = []
    for p in pairs:
        result, rps, cpu, p99 = verdict_of(p)
        rows.append(
            [
                f"{p.spec.label} @{p.size}", *figures(p.app), f"floor:{p.spec.label}",
                *figures(p.floor)[:4], f"{rps:.2f}", f"{cpu:.2f}", f"{p99:.2f}×", result,
            ]
        )  # fmt: skip
    for label, load in (("bare GET (context)", bare_get), ("bare POST (context)", bare_post)):
        rows.append([label, *figures(load), "", "", "", "", "", "", "", "", ""])
    log("")
    log(
        f"{args.connections} connections from wrk, {args.warmup} s warm-up + {args.duration} s "
        "each, server pinned to CPU 0, 1 worker. rps = requests/s; p50/p99 = latency in ms; cpu "
        "= server CPU ms per request, pg = PostgreSQL + Redis CPU ms per request. Each row "
        "against its floor (bench/floor.py, same request, same data): rps-r = app rps / floor "
        f"rps (≥ {RPS_TARGET}), cpu-r = floor cpu / app cpu (≥ {CPU_TARGET}), p99-r = app p99 / "
        f"floor p99 (≤ {P99_TARGET}×). The bare rows are a handler that does nothing."
    )
    print_table(
        rows,
        [
            "measurement",
            "rps",
            "p50",
            "p99",
            "cpu",
            "pg",
            "floor",
            "f.rps",
            "f.p50",
            "f.p99",
            "f.cpu",
            "rps-r",
            "cpu-r",
            "p99-r",
            "result",
        ],  # fmt: skip
        right={1, 2, 3, 4, 5, 7, 8, 9, 10, 11, 12, 13},
    )
    differs = [p for p in pairs if p.answer != "same"]
    for p in differs:
        log(f"NOTE: {p.spec.label} @{p.size}: the floor's answer {p.answer}")
    busy = [
        f"{p.spec.label} @{p.size}"
        for p in pairs
        if max(p.app.cpu.others, p.floor.cpu.others) > 0.3
    ]
    if busy:
        log(
            f"NOTE: other processes used > 0.3 cores during {', '.join(busy)}: requests/s and "
            "p99 are disturbed there; CPU per request much less."
        )

    scaled = [p for p in pairs if p.app_n is not None and p.floor_n is not None]
    if scaled:
        w = args.workers
        srows = []
        for p in scaled:
            assert p.app_n is not None and p.floor_n is not None
            srows.append(
                [
                    f"{p.spec.label} @{p.size}",
                    f"{p.app.rps:,.0f}", f"{p.app_n.rps:,.0f}", f"{p.app_n.rps / p.app.rps:.2f}×",
                    f"{p.app_n.cpu.server:.2f}", f"{p.app_n.cpu.db:.2f}",
                    f"{p.app_n.cpu.loadgen:.2f}",
                    f"{p.app_n.cpu.others:.2f}",
                    f"{p.floor.rps:,.0f}", f"{p.floor_n.rps:,.0f}",
                    f"{p.floor_n.rps / p.floor.rps:.2f}×",
                    f"{p.app_n.rps / p.floor_n.rps:.2f}",
                ]
            )  # fmt: skip
        log("")
        log(
            f"Scale-out: the same requests with --workers {w} (not pinned) against 1 worker "
            f"(pinned to CPU 0). PostgreSQL, Redis and wrk share the same {os.cpu_count()} cores: "
            f"the gain is what this machine gives, not what {w} cores alone would. cores = CPU "
            f"cores used during the {w}-worker run by the app, by PostgreSQL + Redis, by wrk, by "
            "other people's work on the machine (what the second worker could not have)."
        )
        print_table(
            srows,
            [
                "measurement",
                "app 1w",
                f"app {w}w",
                "gain",
                "app cores",
                "pg cores",
                "wrk cores",
                "others",
                "floor 1w",
                f"floor {w}w",
                "gain",
                f"app/floor {w}w",
            ],  # fmt: skip
            right=set(range(1, 12)),
        )

    for res in imports:
        if res.error:
            log(f"import {res.rows} rows: FAILED ({res.error})")
            continue
        imp, bare_imp = statistics.median(res.app), statistics.median(res.bare)
        log(
            f"import {res.rows:,} rows: {imp * 1000:,.0f} ms end to end, bare openpyxl read "
            f"{bare_imp * 1000:,.0f} ms: {imp / bare_imp:.2f}× (target ≤ 2.00×): "
            f"{verdict(imp / bare_imp <= 2.0)}"
        )
    if args.profile:
        log("NOTE: measured under cProfile: the ratios above are not the real ones.")


# ------------------------------------------------------------------------------ --tree

TREE_USERNAME = "bench_group"
TREE_NAME = "南京测试仪表集团有限公司"


def tree_owner(parent: int, subsidiaries: int, n_enterprises: int) -> Callable[[int], int]:
    """Booking ``i``'s owner, by thirds through the id range: the single enterprise (the
    measured one, 1), a subsidiary of the group (in turn), or one of the others (2..n)."""

    def owner(i: int) -> int:
        if i % 3 == 0:
            return MEASURED_ENTERPRISE
        if i % 3 == 1:
            return parent + 1 + (i // 3) % subsidiaries
        return 2 + (i * 7919) % (n_enterprises - 1)

    return owner


def print_page_sql(enterprise_ids: list[int]) -> None:
    """(A child with the app's environment.) The page's count and select for a scope of
    these enterprises, first page, no filters: the SQL list_bookings sends."""
    from app.routes.bookings import PER_PAGE
    from app.services import bookings as svc
    from app.services.tenancy import Scope

    scope = Scope(user_id=0, enterprise_id=enterprise_ids[0], enterprise_ids=tuple(enterprise_ids))
    where = svc._list_where(scope, "", "", "", "")
    count = svc.Booking.count().where(*where)
    select = (
        svc.Booking.select(*svc.LIST_COLUMNS)
        .where(*where)
        .order_by(svc.Booking.id, ascending=False)
        .limit(PER_PAGE)
        .offset(0)
    )
    print(json.dumps({"count": str(count), "select": str(select)}))


def explain_page(env: dict[str, str], title: str, enterprise_ids: list[int]) -> None:
    r = subprocess.run(
        [PY, __file__, "--page-sql", *map(str, enterprise_ids)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    if r.returncode != 0:
        raise SystemExit(f"--page-sql failed:\n{r.stdout}\n{r.stderr}")
    explain_plans(DATABASE_URL, json.loads(r.stdout.strip().splitlines()[-1]), title)


def run_tree(args: argparse.Namespace, tmp: Path) -> None:
    """预约记录 of a parent whose subsidiaries own ``--tree-bookings`` bookings against one
    enterprise owning as many, in the same run; target: the group's rps ≥ 0.8 × the single's."""
    if not shutil.which("wrk"):
        log("NOTE: wrk is not installed (apt-get install wrk); using bench/loadgen.py (slower).")
    env = app_env(DATABASE_URL, SECRET_KEY, tmp, REDIS_URL=REDIS_URL)
    runner = LoadRunner(PROCS, DB_NAME, tmp, args.connections, args.warmup, args.duration)
    log(f"code: {git_state()}")
    log(
        f"cpus: {os.cpu_count()}; server: {' '.join(pin('server')) or 'not pinned'}; wrk "
        f"{' '.join(pin('loadgen')) or 'not pinned'}, {args.connections} connections, "
        f"{args.warmup} s warm-up + {args.duration} s"
    )
    t = time.perf_counter()
    asyncio.run(recreate_database(DB_NAME))
    flush_redis(REDIS_URL)
    migrate(env)
    log(f"database {DB_NAME} re-created, {REDIS_URL} flushed, migrated")

    parent = args.enterprises + 1
    subs = list(range(parent + 1, parent + 1 + args.subsidiaries))
    group = [parent, *subs]
    total = 3 * args.tree_bookings

    async def seed() -> dict[str, int]:
        from app.security.passwords import hash_password

        conn = await asyncpg.connect(DATABASE_URL)
        try:
            await seed_accounts(conn, parent + args.subsidiaries)
            await conn.execute(
                "UPDATE enterprise SET parent = $1 WHERE id = ANY($2::int[])", parent, subs
            )
            await conn.execute("UPDATE enterprise SET name = $1 WHERE id = $2", TREE_NAME, parent)
            await conn.execute(
                "UPDATE app_user SET username = $1, password_hash = $2 WHERE id = $3",
                TREE_USERNAME,
                hash_password(PASSWORD),
                user_id_of(parent),
            )
            owner = tree_owner(parent, args.subsidiaries, args.enterprises)
            # The list reads no instruments: none are written.
            await seed_bookings(conn, 1, total, args.enterprises, 0, with_items=False, owner=owner)
            count = "SELECT count(*) FROM booking WHERE enterprise = ANY($1::int[])"
            return {
                "bookings": await conn.fetchval("SELECT count(*) FROM booking"),
                "single": await conn.fetchval(count, [MEASURED_ENTERPRISE]),
                "group": await conn.fetchval(count, group),
                "subsidiaries": await conn.fetchval(
                    "SELECT count(*) FROM enterprise WHERE parent = $1 AND status = 'approved'",
                    parent,
                ),
            }
        finally:
            await conn.close()

    c = asyncio.run(seed())
    log(
        f"seeded {parent + args.subsidiaries:,} enterprises ({TREE_USERNAME}'s {TREE_NAME} with "
        f"{c['subsidiaries']} approved subsidiaries), {c['bookings']:,} bookings: "
        f"{c['single']:,} of the single enterprise ({USERNAME}), {c['group']:,} of the group, "
        f"the rest spread over {args.enterprises - 1:,} others; no instruments "
        f"({time.perf_counter() - t:.1f} s)"
    )

    log(f"app: 预约记录 as {USERNAME} (one enterprise, {c['single']:,} bookings)")
    single, _ = measure_page(runner, env, tmp, "page-single", None, units=False)
    units = f"1 + {args.subsidiaries} units"
    log(f"app: 预约记录 as {TREE_USERNAME} ({units}, {c['group']:,} bookings)")
    tree, _ = measure_page(runner, env, tmp, "page-tree", None, username=TREE_USERNAME, units=True)

    def total_ms(load: Load) -> float:
        return load.server_ms + load.db_ms

    ratio = tree.rps / single.rps
    cpu_ratio = total_ms(single) / total_ms(tree) if total_ms(tree) else 0.0
    ok = ratio >= 0.8 and not tree.errors and not single.errors

    def row(label: str, load: Load) -> list[str]:
        err = f" ({load.errors} err)" if load.errors else ""
        return [
            label, f"{load.rps:,.0f}{err}", f"{load.p50_ms:.1f}", f"{load.p99_ms:.1f}",
            f"{load.server_ms:.2f}", f"{load.db_ms:.2f}", f"{total_ms(load):.2f}", "", "", "", "",
        ]  # fmt: skip

    rows = [
        row(f"single: 1 unit, {c['single'] // 1000}k", single),
        row(f"tree: 1+{args.subsidiaries} units, {c['group'] // 1000}k", tree),
        [
            "tree / single", "", "", "", "", "", "", f"{ratio:.3f}", f"{cpu_ratio:.3f}", "≥ 0.800",
            result(ok, cpu_ratio >= 0.8),
        ],
    ]  # fmt: skip
    log("")
    log(
        f"GET /bookings (预约记录), {args.connections} connections, {args.warmup} s warm-up + "
        f"{args.duration} s each. rps = requests/s; p50/p99 = latency in ms; cpu = server CPU "
        "ms per request, pg = PostgreSQL (+ Redis) CPU ms per request, total = both. ratio = "
        "tree rps over single rps (the target); cpu-ratio = single total over tree total."
    )
    print_table(
        rows,
        [
            "measurement",
            "rps",
            "p50",
            "p99",
            "cpu",
            "pg",
            "total",
            "ratio",
            "cpu-ratio",
            "target",
            "result",
        ],  # fmt: skip
        right={1, 2, 3, 4, 5, 6, 7, 8},
    )
    log("CPU during each measured run (cores; 'others' is work of other processes = noise):")
    log(f"  single {single.cpu}")
    log(f"  tree   {tree.cpu}")
    if max(single.cpu.others, tree.cpu.others) > 0.3:
        log("NOTE: other processes used > 0.3 cores: trust the cpu-ratio column more.")
    if args.explain or not ok:
        explain_page(env, f"single ({USERNAME})", [MEASURED_ENTERPRISE])
        explain_page(env, f"tree ({TREE_USERNAME})", group)


if __name__ == "__main__":
    main()
