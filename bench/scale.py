"""The lists that grow without bound, at 1,000, 100,000 and 1,000,000 rows (issue #15).

    .venv/bin/python bench/scale.py                          (1k, 100k, 1M: ~30 minutes)
    .venv/bin/python bench/scale.py --sizes 1000,100000      (quicker)
    .venv/bin/python bench/scale.py --plans                  (and EXPLAIN at the largest)
    .venv/bin/python bench/scale.py --keep-db …, then --reuse (measure again, no seeding)

What it does:

1. Re-creates its own PostgreSQL database ``jlkf_bench_scale`` (the ``test`` database is
   never touched), flushes Redis db 13, migrates with ``python -m app.cli setup``. On a
   shared machine give your own: ``--db jlkf_bench_<you> --redis-db <n>``.
2. For each size n, seeds on by COPY (as bench/booking.py does: the triggers keep the
   tallies as they do for the app's own writes) to n bookings (5 instruments each on
   average: 5,000,000 at 1M), ``--register`` × n 器具托管 rows (5: 5,000,000 at 1M), n
   certificates, n 操作日志 rows and n 短信记录 rows; enterprise 1 (user ``bench_admin``)
   owns ``--share`` (10 %) of each customer list, so 100,000 of its bookings at 1M and
   500,000 of its 器具托管 rows. Then folds the tallies (the worker does it every
   minute), VACUUM ANALYZEs, and keeps a copy of the database at that size
   (``jlkf_bench_scale_1k``, ``…_100k``; the largest is the seeded database itself).
3. Serves the app on each size's database at once (``uvicorn app.asgi:app --workers 1``
   each, sessions in Redis, all pinned to CPU 0: only the measured one is busy) and
   measures each list with wrk from a separate process (20 connections, 1 s warm-up + 4 s),
   ``--rounds`` (3) times at every size, the sizes in turn (1k, 100k, 1M, then 1M, 100k,
   1k, …), so that a slow minute of the host falls on every size alike. As the customer:
   预约记录 (first page, 末页, a status), the 首页, 器具托管, 电子证书, 预约送检's pickers
   【从历史预约数据选择】 (first page, 末页) and 【从托管器具选择】, 检测进度 (the customer's first
   order by its 大单号: the same answer at every size); as the platform admin 预约审核,
   操作日志, 短信记录.
4. Prints one table: each list's median requests/s and CPU per request (server +
   PostgreSQL and Redis) at each size, the ratio of the largest to the first, and the
   spread of the rounds (how much one size's CPU per request moved between its own
   rounds: the noise the ratios are read against). PASS when requests/s is ≥ 0.8 of the
   first size's and CPU per request ≤ 1.2× (both within 20 %).

Why interleaved medians: on this shared host the server's CPU per request for identical
work drifted by up to 45 % between measurements minutes apart with nothing else running
(the three sequential runs of stop 5), which decided PASS or MISS more than the data did.
Hardware instruction counters, which would not drift, are not available in this VM
(``perf stat -e instructions`` says <not supported>).

``--plans`` saves EXPLAIN (ANALYZE, BUFFERS) of every query each list sends, at the
largest size, under bench/plans/ (one file per list): the queries are recorded from the
app's own service functions, run in a child process against the benchmark's database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from statistics import median
from typing import Any

import asyncpg
from _harness import (
    MEASURED_ENTERPRISE,
    PG_ADMIN_DSN,
    PY,
    REDIS_URL,
    ROOT,
    SECRET_KEY,
    T0,
    USERNAME,
    Load,
    LoadRunner,
    Procs,
    Server,
    app_env,
    database_url,
    drop_database,
    enterprise_of,
    flush_redis,
    log,
    login_session,
    migrate,
    own_databases,
    print_table,
    recreate_database,
    run_cleanly,
    seed_accounts,
    seed_bookings,
    seed_instruments,
    seed_orders,
    set_pinning,
    start_server,
)

DB_NAME = "jlkf_bench_scale"
DATABASE_URL = database_url(DB_NAME)
PROCS = Procs()
PLANS = Path(__file__).resolve().parent / "plans"
ADMIN_PASSWORD = "Bench-Admin-2026!"  # app_env's
RPS_KEPT = 0.8  # requests/s at the largest size, at least this share of the first size's
CPU_GROWTH = 1.2  # CPU per request at the largest size, at most this many times the first's

# (label, path, who, htmx): the customer (bench_admin) or the platform admin; htmx: sent
# as the page sends it (HX-Request), answered with the fragment. {order_no}: the measured
# customer's first 大单号 (order_no()).
PAGES = [
    ("预约记录", "/bookings", "customer", False),
    ("预约记录 末页", "/bookings?last=1", "customer", False),
    ("预约记录 待审核", "/bookings?status=pending", "customer", False),
    ("首页", "/", "customer", False),
    ("器具托管", "/instruments", "customer", False),
    ("电子证书", "/certificates", "customer", False),
    ("从历史预约数据选择", "/bookings/new/history", "customer", True),
    ("从历史预约数据选择 末页", "/bookings/new/history?last=1", "customer", True),
    ("从托管器具选择", "/bookings/new/custody", "customer", True),
    ("检测进度", "/query/progress?q={order_no}", "customer", True),
    ("预约审核", "/admin/bookings", "admin", False),
    ("操作日志", "/admin/audit", "admin", False),
    ("短信记录", "/admin/sms", "admin", False),
]
EVENTS = ("登录", "提交预约", "预约审核", "证书下载", "修改密码")


def use_databases(name: str, redis_db: int) -> None:
    """--db, --redis-db: the databases every function here uses (module globals, set once
    before anything runs)."""
    global DB_NAME, DATABASE_URL, REDIS_URL
    DB_NAME = name
    DATABASE_URL, REDIS_URL = own_databases(name, redis_db)


def audit_rows(first: int, last: int, n_enterprises: int, every: int) -> Iterator[tuple[Any, ...]]:
    for i in range(first, last + 1):
        ent = enterprise_of(i, n_enterprises, every)
        at = T0 + timedelta(seconds=300 * i)
        yield (at, 100 + ent, f"user{ent}", f"10.0.{ent % 250}.{i % 250}",
               EVENTS[i % len(EVENTS)], "成功", f"YY{at:%Y%m%d}{i:06d}")  # fmt: skip


def sms_rows(first: int, last: int, n_enterprises: int, every: int) -> Iterator[tuple[Any, ...]]:
    for i in range(first, last + 1):
        ent = enterprise_of(i, n_enterprises, every)
        at = T0 + timedelta(seconds=300 * i)
        yield (f"139{ent:08d}", "booking_review", f"您的预约YY{i:06d}已通过审核。", "{}",
               "sent", "", "", None, at, at)  # fmt: skip


async def copy_rows(
    conn: asyncpg.Connection, table: str, columns: list[str], rows: Iterator[tuple[Any, ...]]
) -> None:
    chunk: list[tuple[Any, ...]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == 20_000:
            await conn.copy_records_to_table(table, records=chunk, columns=columns)
            chunk = []
    if chunk:
        await conn.copy_records_to_table(table, records=chunk, columns=columns)


# No ids: the app's own rows (the logins of the measurements) take theirs from the sequence.
AUDIT_COLS = ["at", "user_id", "username", "ip", "event", "result", "detail"]
SMS_COLS = ["phone", "kind", "text", "params", "status", "error", "provider_ref",
            "dedupe_key", "created_at", "sent_at"]  # fmt: skip


async def seed(first: int, last: int, args: argparse.Namespace, accounts: bool) -> None:
    from app.services.tallies import FOLD_POSTGRES  # not at the top: the app's settings

    every = max(1, round(1 / args.share))
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        if accounts:
            await seed_accounts(conn, args.enterprises)
        await seed_bookings(conn, first, last, args.enterprises, every)
        k = args.register  # 器具托管 rows per booking
        await seed_instruments(conn, (first - 1) * k + 1, last * k, args.enterprises, every)
        orders = (first - 1) // 5 + 1, last // 5
        if orders[1] >= orders[0]:
            await seed_orders(conn, *orders, args.enterprises, every)
        span = (first, last, args.enterprises, every)
        await copy_rows(conn, "audit_log", AUDIT_COLS, audit_rows(*span))
        await copy_rows(conn, "sms_message", SMS_COLS, sms_rows(*span))
        await conn.execute(FOLD_POSTGRES)
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


async def counts() -> dict[str, int]:
    conn = await asyncpg.connect(DATABASE_URL)
    try:
        out = {}
        for table in ("booking", "booking_item", "instrument", "certificate", "audit_log",
                      "sms_message", "tally"):  # fmt: skip
            out[table] = await conn.fetchval(f"SELECT count(*) FROM {table}")
        out["measured"] = await conn.fetchval(
            "SELECT count(*) FROM booking WHERE enterprise = $1", MEASURED_ENTERPRISE
        )
        return out
    finally:
        await conn.close()


async def order_no(dsn: str) -> str:
    """The measured customer's first 大单号 (seeded at every size: 检测进度 answers the same)."""
    conn = await asyncpg.connect(dsn)
    try:
        return str(
            await conn.fetchval(
                "SELECT order_no FROM lab_order WHERE enterprise = $1 ORDER BY id LIMIT 1",
                MEASURED_ENTERPRISE,
            )
        )
    finally:
        await conn.close()


def size_name(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def size_db(n: int) -> str:
    """The database a size is measured on: a copy of the seeded one taken at that size
    (the largest is the seeded database itself)."""
    return f"{DB_NAME}_{size_name(n).lower()}"


async def copy_database(source: str, target: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{target}" TEMPLATE "{source}"')
    finally:
        await conn.close()


async def database_exists(name: str) -> bool:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        return bool(await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name))
    finally:
        await conn.close()


@dataclass
class Target:
    """One size's server, its database and its logged-in sessions."""

    n: int
    db: str
    server: Server
    headers: dict[str, dict[str, str]]  # by PAGES' "who" and htmx: the request's headers
    order_no: str


def start_target(n: int, db: str, tmp: Path) -> Target:
    dsn = database_url(db)
    env = app_env(dsn, SECRET_KEY, tmp / size_name(n), REDIS_URL=REDIS_URL)
    (tmp / size_name(n)).mkdir(exist_ok=True)
    server = start_server(PROCS, f"app-{size_name(n)}", ["app.asgi:app"], env, tmp)
    sessions = {
        "customer": login_session(server.base),
        "admin": login_session(server.base, "admin", ADMIN_PASSWORD),
    }
    headers = {
        f"{who}{htmx}": {**session.headers(htmx=htmx), "Accept-Encoding": "gzip"}
        for who, session in sessions.items()
        for htmx in (False, True)
    }
    return Target(n, db, server, headers, asyncio.run(order_no(dsn)))


def report(sizes: list[int], results: dict[str, dict[int, list[Load]]], rounds: int) -> None:
    first, last = sizes[0], sizes[-1]
    rows = []
    for label, *_ in PAGES:
        if label not in results:
            continue
        by_size = results[label]
        rps = {n: median([x.rps for x in by_size[n]]) for n in sizes}
        cpu = {n: median([x.server_ms + x.db_ms for x in by_size[n]]) for n in sizes}
        p99 = {n: median([x.p99_ms for x in by_size[n]]) for n in sizes}
        # How far apart the rounds of one size were: the measurement's own noise.
        spread = max(
            (max(c) - min(c)) / median(c)
            for c in ([x.server_ms + x.db_ms for x in by_size[n]] for n in sizes)
        )
        rps_r = rps[last] / rps[first] if rps[first] else 0.0
        cpu_r = cpu[last] / cpu[first] if cpu[first] else 0.0
        errors = sum(x.errors for n in sizes for x in by_size[n])
        ok = rps_r >= RPS_KEPT and cpu_r <= CPU_GROWTH and not errors
        rows.append(
            [label, *(f"{rps[n]:,.0f}" for n in sizes), *(f"{cpu[n]:.2f}" for n in sizes),
             *(f"{p99[n]:.1f}" for n in sizes), f"{rps_r:.2f}", f"{cpu_r:.2f}×",
             f"{spread:.0%}", "PASS" if ok else "MISS" + (f" ({errors} errors)" if errors else "")]
        )  # fmt: skip
    names = [size_name(n) for n in sizes]
    log("")
    log(
        f"Medians of {rounds} rounds, the sizes measured in turn within each list. rps = "
        f"requests/s, cpu = server + PostgreSQL/Redis CPU ms per request, p99 in ms; rps-r = "
        f"rps at {names[-1]} / at {names[0]} (≥ {RPS_KEPT}), cpu-r = cpu at {names[-1]} / "
        f"at {names[0]} (≤ {CPU_GROWTH}×); spread = the widest (max − min) / median of one "
        f"size's cpu over its rounds."
    )
    print_table(
        rows,
        [
            "list",
            *(f"rps {n}" for n in names),
            *(f"cpu {n}" for n in names),
            *(f"p99 {n}" for n in names),
            "rps-r",
            "cpu-r",
            "spread",
            "result",
        ],  # fmt: skip
        right=set(range(1, 3 * len(sizes) + 4)),
    )


def prepare(sizes: list[int], args: argparse.Namespace, tmp: Path) -> dict[int, str]:
    """Seeds the database up to each size in turn and keeps a copy at each but the last
    (the last is the seeded database); with --reuse, takes the copies a --keep-db run
    left, migrated to the current code."""
    dbs = {n: size_db(n) for n in sizes[:-1]} | {sizes[-1]: DB_NAME}
    if args.reuse:
        for db in dbs.values():
            if not asyncio.run(database_exists(db)):
                raise SystemExit(f"--reuse: no database {db} (run once with --keep-db)")
            migrate(app_env(database_url(db), SECRET_KEY, tmp, REDIS_URL=REDIS_URL))
        flush_redis(REDIS_URL)
        return dbs
    env = app_env(DATABASE_URL, SECRET_KEY, tmp, REDIS_URL=REDIS_URL)
    asyncio.run(recreate_database(DB_NAME))
    flush_redis(REDIS_URL)
    migrate(env)
    seeded = 0
    for n in sizes:
        t = time.perf_counter()
        asyncio.run(seed(seeded + 1, n, args, accounts=seeded == 0))
        seeded = n
        c = asyncio.run(counts())
        log(
            f"seeded to {c['booking']:,} bookings ({c['measured']:,} of {USERNAME}), "
            f"{c['booking_item']:,} of their instruments, {c['instrument']:,} 器具托管, "
            f"{c['certificate']:,} certificates, {c['audit_log']:,} 操作日志, "
            f"{c['sms_message']:,} 短信记录; {c['tally']:,} tally rows "
            f"({time.perf_counter() - t:.0f} s)"
        )
        if n != sizes[-1]:
            asyncio.run(copy_database(DB_NAME, dbs[n]))
    return dbs


def run(args: argparse.Namespace, tmp: Path) -> None:
    """Every size's server runs at once (each pinned to the same CPU, idle while another is
    measured). Each list is measured ``--rounds`` times at every size, the sizes in turn
    (first to last, then last to first, …): a slow minute of the host falls on every size
    alike, and the medians are compared."""
    sizes = [int(s) for s in args.sizes.split(",")]
    runner = LoadRunner(PROCS, DB_NAME, tmp, args.connections, args.warmup, args.duration)
    dbs = prepare(sizes, args, tmp)
    only = set(args.only.split(",")) if args.only else set()
    results: dict[str, dict[int, list[Load]]] = {}
    try:
        targets = {n: start_target(n, db, tmp) for n, db in dbs.items()}
        for label, path, who, htmx in PAGES:
            if only and label not in only:
                continue
            results[label] = {n: [] for n in sizes}
            for r in range(args.rounds):
                for n in sizes if r % 2 == 0 else reversed(sizes):
                    t = targets[n]
                    runner.db_name = t.db
                    url = path.format(order_no=t.order_no)
                    results[label][n].append(
                        runner.measure(f"{label} @{size_name(n)} #{r + 1}", t.server, url,
                                       t.headers[f"{who}{htmx}"])
                    )  # fmt: skip
        PROCS.stop_all()
        report(sizes, results, args.rounds)  # first: a failing --plans keeps the table
        if args.plans:
            env = app_env(DATABASE_URL, SECRET_KEY, tmp, REDIS_URL=REDIS_URL)
            subprocess.run([PY, __file__, "--plans-child"], cwd=ROOT, env=env, check=True)
    finally:
        PROCS.stop_all()
        if not args.keep_db:
            for db in set(dbs.values()) - {DB_NAME}:  # DB_NAME: run_cleanly's
                asyncio.run(drop_database(db))


async def plans_child() -> None:
    """The SQL each list sends (recorded from the app's services), explained into PLANS."""
    from piccolo.engine.postgres import PostgresEngine

    from app import compiled
    from app.services import (
        audit,
        bookings,
        certificates,
        home,
        instruments,
        orders,
        sms,
        weekly,
    )
    from app.services.listing import Cursor
    from app.services.tenancy import Scope

    sent: list[tuple[str, tuple[Any, ...]]] = []
    run_querystring = PostgresEngine.run_querystring

    async def recording(self: PostgresEngine, querystring: Any, in_pool: bool = True) -> Any:
        sql, params = querystring.compile_string(engine_type=self.engine_type)
        sent.append((sql, tuple(params)))
        return await run_querystring(self, querystring, in_pool)

    PostgresEngine.run_querystring = recording  # type: ignore[method-assign]
    fetch = compiled.fetch

    async def recording_compiled(engine: PostgresEngine, sql: str, args: Any) -> Any:
        sent.append((sql, tuple(args)))
        return await fetch(engine, sql, args)

    compiled.fetch = recording_compiled  # type: ignore[assignment]  # (app/compiled.py's)
    scope = Scope(user_id=100 + MEASURED_ENTERPRISE, enterprise_id=MEASURED_ENTERPRISE,
                  enterprise_ids=(MEASURED_ENTERPRISE,))  # fmt: skip
    # Where the pickers' 下一页 start: after their first page's last row.
    history_next = Cursor(after=(await bookings.history(scope)).rows[-1]["id"])
    custody = await instruments.picker(scope)
    custody_next = Cursor(after=custody.rows[-1]["id"], at=custody.at(custody.rows[-1]))
    number = await order_no(os.environ["DATABASE_URL"])
    calls = {
        "预约记录": lambda: bookings.list_bookings(scope),
        "预约记录-末页": lambda: bookings.list_bookings(scope, cursor=Cursor(last=True)),
        "预约记录-待审核": lambda: bookings.list_bookings(scope, status="pending"),
        "首页": lambda: bookings.latest(scope),
        # The dashboard's counts and chart (#12), and 平台管理's.
        "首页-计数": lambda: home.customer_counts(scope),
        "首页-图表": lambda: home.issued_per_week(scope, weekly.chart_weeks()),
        "平台首页-计数": lambda: home.admin_counts(),
        # 检测业务: approved bookings still without an order, and the 首页's late orders.
        "检测业务-待生成大单": lambda: orders.approved_without_order(1, 50),
        "检测业务-超期": lambda: orders.orders(Cursor(), 20, before=orders.stale_before(14)),
        "器具托管": lambda: instruments.list_instruments(scope),
        "器具托管-末页": lambda: instruments.list_instruments(scope, cursor=Cursor(last=True)),
        "电子证书": lambda: certificates.list_certificates(
            scope, certificates.CertFilters(), Cursor(), 20
        ),
        "从历史预约数据选择": lambda: bookings.history(scope),
        "从历史预约数据选择-下一页": lambda: bookings.history(scope, cursor=history_next),
        "从历史预约数据选择-末页": lambda: bookings.history(scope, cursor=Cursor(last=True)),
        "从历史预约数据选择-搜索": lambda: bookings.history(scope, q="温度计"),
        "从托管器具选择": lambda: instruments.picker(scope),
        "从托管器具选择-下一页": lambda: instruments.picker(scope, cursor=custody_next),
        "从托管器具选择-末页": lambda: instruments.picker(scope, cursor=Cursor(last=True)),
        "从托管器具选择-搜索": lambda: instruments.picker(scope, q="QJ-0000"),
        "检测进度": lambda: orders.progress(scope, number),
        "预约审核": lambda: bookings.admin_list(),
        "操作日志": lambda: audit.search(),
        "短信记录": lambda: sms.list_messages(Cursor()),
    }
    PLANS.mkdir(exist_ok=True)
    conn = await asyncpg.connect(os.environ["DATABASE_URL"])
    try:
        for name, call in calls.items():
            sent.clear()
            await call()
            lines = []
            for sql, params in sent:
                for _ in range(3):  # the last of three: warm
                    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {sql}", *params)
                lines += [f"-- {sql}", f"-- {params!r}", *(r[0] for r in rows), ""]
            (PLANS / f"{name}.txt").write_text("\n".join(lines), encoding="utf-8")
            log(f"plans of {name}: bench/plans/{name}.txt")
    finally:
        await conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="The growing lists at 1k, 100k and 1M rows")
    parser.add_argument("--sizes", default="1000,100000,1000000")
    parser.add_argument("--enterprises", type=int, default=1000)
    parser.add_argument("--share", type=float, default=0.1)
    parser.add_argument(
        "--register",
        type=int,
        default=5,
        help="器具托管 rows per booking (5: 5,000,000 at 1M, as #15 asks)",
    )
    parser.add_argument("--connections", type=int, default=20)
    parser.add_argument("--duration", type=int, default=4, help="seconds per measurement (4)")
    parser.add_argument("--warmup", type=int, default=1, help="seconds before each (1)")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per list and size (3)")
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="measure the databases a --keep-db run left (migrated), no seeding",
    )
    parser.add_argument("--only", metavar="LISTS", help="only these lists, by label")
    parser.add_argument("--plans", action="store_true", help="EXPLAIN each list at the largest")
    parser.add_argument("--pin", choices=("server", "both", "none"), default="server")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--db", default=DB_NAME, help=f"the database to (re-)create ({DB_NAME})")
    parser.add_argument("--redis-db", type=int, default=13, help="the Redis db to flush (13)")
    parser.add_argument("--plans-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plans_child:  # the databases come from its environment
        asyncio.run(plans_child())
        return
    use_databases(args.db, args.redis_db)
    args.keep_db = args.keep_db or args.reuse  # measured again: kept again
    set_pinning(args.pin)
    run_cleanly(PROCS, lambda tmp: run(args, tmp), db_name=DB_NAME, keep_db=args.keep_db,
                tmp_prefix="jlkf-scale-")  # fmt: skip
    sys.exit(0)


if __name__ == "__main__":
    main()
