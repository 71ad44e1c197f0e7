"""What the benchmarks share: the processes they start (and stop, Ctrl-C included), a
uvicorn server on a free port, their own PostgreSQL database, the seeded accounts and
bookings, the login, the load generator with the CPU read from /proc around it, and the
table they print.

Imported by ``bench/booking.py``, ``bench/export.py`` and ``bench/certificates.py``.
export.py's bare child and certificates.py's zip children import it too, so nothing here
imports httpx, redis or the app at module level: the child's memory is measured.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unicodedata
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import asyncpg  # noqa: E402

PY = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv").exists() else sys.executable
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
CLK_TCK = os.sysconf("SC_CLK_TCK")


def database_url(name: str) -> str:
    return f"postgresql://postgres@127.0.0.1:5432/{name}"


def log(msg: str) -> None:
    print(msg, flush=True)


# ------------------------------------------------------------------------------ processes


def _signal_group(proc: subprocess.Popen[Any], signum: int) -> None:
    try:
        os.killpg(proc.pid, signum)  # the group of the process we started
    except ProcessLookupError:
        pass


class Procs:
    """Every process a benchmark starts (each in its own session), stopped on exit.

    ``stop`` sends SIGINT (uvicorn shuts down gracefully and, re-raised, it lets cProfile
    write), then SIGKILL after ``stop_timeout``. With ``second_interrupt_after`` a second
    SIGINT comes after that many seconds: it makes uvicorn stop without waiting for a
    request still running (a long export).
    """

    def __init__(self, stop_timeout: float = 15, second_interrupt_after: float | None = None):
        self.running: list[subprocess.Popen[Any]] = []
        self.stop_timeout = stop_timeout
        self.second_interrupt_after = second_interrupt_after

    def start(self, cmd: list[str], **kw: Any) -> subprocess.Popen[Any]:
        proc = subprocess.Popen(cmd, start_new_session=True, **kw)
        self.running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[Any], timeout: float | None = None) -> None:
        timeout = self.stop_timeout if timeout is None else timeout
        if proc.poll() is None:
            _signal_group(proc, signal.SIGINT)
            again = self.second_interrupt_after
            try:
                proc.wait(timeout if again is None else min(again, timeout))
            except subprocess.TimeoutExpired:
                if again is not None:
                    _signal_group(proc, signal.SIGINT)
                    try:
                        proc.wait(timeout)
                    except subprocess.TimeoutExpired:
                        pass
            if proc.poll() is None:
                _signal_group(proc, signal.SIGKILL)
                proc.wait()
        if proc in self.running:
            self.running.remove(proc)

    def stop_all(self) -> None:
        for proc in list(reversed(self.running)):
            self.stop(proc, timeout=5)


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def run_cleanly(
    procs: Procs,
    run: Callable[[Path], int | None],
    *,
    db_name: str,
    keep_db: bool,
    tmp_prefix: str,
    interrupted: int = 130,
) -> int:
    """``run(tmp)`` in a fresh temporary folder; whatever happens (Ctrl-C, SIGTERM, an
    error), the processes are stopped, the database dropped (unless ``keep_db``) and the
    folder removed. Returns ``run``'s exit code, or ``interrupted``."""
    signal.signal(signal.SIGTERM, _sigterm)
    # Ctrl-C stops the run and cleans up even when started in the background (SIG_IGN there).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix))
    started = time.monotonic()
    code = 0
    try:
        code = run(tmp) or 0
    except KeyboardInterrupt:
        log("\ninterrupted")
        code = interrupted
    finally:
        procs.stop_all()
        if not keep_db:
            try:
                asyncio.run(drop_database(db_name))
            except Exception as exc:  # noqa: BLE001 - best effort on the way out
                log(f"(could not drop {db_name}: {exc})")
        shutil.rmtree(tmp, ignore_errors=True)
        log(f"total {time.monotonic() - started:.0f} s")
    return code


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def proc_jiffies(pid: int) -> int:
    """User + system CPU of ``pid`` (all its threads) so far, in clock ticks (0 if gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            parts = f.read().rsplit(")", 1)[1].split()
        return int(parts[11]) + int(parts[12])  # utime, stime (fields 14, 15)
    except (OSError, IndexError, ValueError):
        return 0


def process_tree(pid: int) -> list[int]:
    """``pid`` and every process below it (uvicorn --workers N: the supervisor and its
    workers)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    parents[int(entry)] = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree = [pid]
    for p in tree:
        tree.extend(c for c, parent in parents.items() if parent == p)
    return tree


# ------------------------------------------------------------------------------ the server


@dataclass
class Server:
    name: str
    proc: subprocess.Popen[Any]
    base: str
    log: Path


def start_uvicorn(
    procs: Procs,
    name: str,
    target: Sequence[str],
    flags: Sequence[str],
    env: dict[str, str],
    tmp: Path,
    prefix: Sequence[str] = (PY,),
    probe: str = "/healthz",
) -> Server:
    """``prefix -m uvicorn target flags --port N`` on a free port, logging to ``tmp/name.log``;
    returns once ``probe`` answers 200 (exits with the log's tail if it never does)."""
    import httpx  # not at the top: see the module docstring

    port = free_port()
    log_path = tmp / f"{name}.log"
    cmd = [*prefix, "-m", "uvicorn", *target, *flags, "--port", str(port)]
    with open(log_path, "wb") as out:
        proc = procs.start(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{name} server exited:\n{log_path.read_text()[-3000:]}")
        try:
            if httpx.get(base + probe, timeout=2).status_code == 200:
                return Server(name, proc, base, log_path)
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{name} server did not start:\n{log_path.read_text()[-3000:]}")


def login(base: str, username: str, password: str, timeout: float) -> tuple[Any, str]:
    """Log in through the login form; returns the httpx client holding the session (the
    caller closes it) and the CSRF token."""
    import httpx  # not at the top: see the module docstring

    client = httpx.Client(base_url=base, follow_redirects=False, timeout=timeout)
    r = client.get("/login")
    r.raise_for_status()
    csrf = client.cookies.get("csrftoken")
    if not csrf:
        raise SystemExit("GET /login set no csrftoken cookie")
    r = client.post(
        "/login",
        data={"username": username, "password": password},
        headers={"X-CSRFToken": csrf},
    )
    if r.status_code != 303 or not client.cookies.get("session"):
        raise SystemExit(f"login failed: {r.status_code} {r.text[:500]}")
    # CSRF tokens are bound to the session: the one from before login no longer passes.
    client.get("/").raise_for_status()
    csrf = client.cookies.get("csrftoken")
    if not csrf:
        raise SystemExit("GET / after login set no csrftoken cookie")
    return client, csrf


def app_env(
    database: str, secret_key: str, data_dir: Path, drop: tuple[str, ...] = (), **extra: str
) -> dict[str, str]:
    """The app's environment: this process's, less the SMS provider's and lab API's secrets
    (and any variable starting with one of ``drop``), on the benchmark's own database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALIYUN_", "LAB_API", *drop))}
    env.update(
        DATABASE_URL=database,
        SECRET_KEY=secret_key,
        DB_POOL="1",
        DATA_DIR=str(data_dir),
        ADMIN_USERNAME="admin",
        ADMIN_PASSWORD="Bench-Admin-2026!",
        SMS_BACKEND="outbox",
        SECURE_COOKIES="0",
        PICCOLO_CONF="piccolo_conf",
        PYTHONPATH=str(ROOT),
        **extra,
    )
    return env


# ------------------------------------------------------------------------------ database


def own_databases(name: str, redis_db: int) -> tuple[str, str]:
    """--db, --redis-db: the PostgreSQL and Redis URLs a bench uses; never CI's."""
    if name == "test" or redis_db == 15:
        raise SystemExit("the database 'test' and Redis db 15 are CI's: give another")
    return database_url(name), f"redis://127.0.0.1:6379/{redis_db}"


async def recreate_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


async def drop_database(name: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def migrate(env: dict[str, str]) -> None:
    r = subprocess.run(
        [PY, "-m", "app.cli", "setup"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    if r.returncode != 0:
        raise SystemExit(f"app.cli setup failed:\n{r.stdout}\n{r.stderr}")


ENTERPRISE_COLUMNS = [
    "id", "name", "uscc", "address", "contact_name", "contact_phone", "status",
    "reject_reason", "is_contract", "contract_no", "parent", "created_at", "reviewed_at",
]  # fmt: skip
USER_COLUMNS = [
    "id", "username", "password_hash", "name", "phone", "enterprise", "role",
    "is_active", "created_at",
]  # fmt: skip


async def copy_accounts(
    conn: asyncpg.Connection, enterprises: Iterable[tuple[Any, ...]], users: Iterable[tuple]
) -> None:
    """Enterprises and their users by COPY, rows in ENTERPRISE_COLUMNS / USER_COLUMNS order."""
    await conn.copy_records_to_table("enterprise", records=enterprises, columns=ENTERPRISE_COLUMNS)
    await conn.copy_records_to_table("app_user", records=users, columns=USER_COLUMNS)


async def fix_sequences(conn: asyncpg.Connection, tables: Iterable[str]) -> None:
    """After COPY with explicit ids: the next id of each table follows the largest."""
    for table in tables:
        await conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table}), false)"
        )


# ------------------------------------------------------------------------------ report


def width(s: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in s)


def pad(s: str, n: int, right: bool = False) -> str:
    fill = " " * max(0, n - width(s))
    return fill + s if right else s + fill


def print_table(rows: list[list[str]], header: list[str], right: set[int]) -> None:
    widths = [max(width(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = "  ".join(pad(h, widths[i], i in right) for i, h in enumerate(header))
    log(line)
    log("-" * width(line))
    for r in rows:
        log("  ".join(pad(c, widths[i], i in right) for i, c in enumerate(r)))


# ------------------------------------------------------------------------------ the app served

# What the load benchmarks (booking.py, certificates.py) share: Redis db 13 for sessions, the
# measured enterprise and its user, and the production flags (less the access log).
REDIS_URL = "redis://127.0.0.1:6379/13"
SECRET_KEY = "bench-secret-key-fixed-not-for-production-0123456789"
USERNAME = "bench_admin"
PASSWORD = "Bench-Pass-2026!"
MEASURED_ENTERPRISE = 1
UVICORN_FLAGS = [
    "--workers", "1", "--host", "127.0.0.1",
    "--proxy-headers", "--forwarded-allow-ips=127.0.0.1",
    "--no-access-log", "--log-level", "warning",
]  # fmt: skip

PINNING = {"server": "0", "loadgen": ""}  # set from --pin (set_pinning)


def set_pinning(mode: str) -> None:
    """--pin: "server" (CPU 0, the default), "both" (and the load generator on CPU 1), "none"."""
    PINNING["server"] = "" if mode == "none" else "0"
    PINNING["loadgen"] = "1" if mode == "both" else ""


def pin(role: str) -> list[str]:
    """taskset prefix for the server or the load generator (see --pin)."""
    cpus = PINNING[role]
    if cpus and (os.cpu_count() or 1) >= 2 and shutil.which("taskset"):
        return ["taskset", "-c", cpus]
    return []


def start_server(
    procs: Procs,
    name: str,
    target: list[str],
    env: dict[str, str],
    tmp: Path,
    profile: Path | None = None,
    probe: str | None = None,
    workers: int = 1,
) -> Server:
    """uvicorn with UVICORN_FLAGS (``--workers``), under cProfile into ``profile`` if given;
    one worker is pinned (see --pin), several are not."""
    prefix = [PY, "-m", "cProfile", "-o", str(profile)] if profile else [PY]
    if probe is None:
        probe = "/healthz" if "app.asgi:app" in target else "/"
    flags = [*UVICORN_FLAGS]
    flags[flags.index("--workers") + 1] = str(workers)
    pinning = pin("server") if workers == 1 else []
    return start_uvicorn(procs, name, target, flags, env, tmp, [*pinning, *prefix], probe)


def flush_redis(url: str = REDIS_URL) -> None:
    from redis import Redis  # not at the top: see the module docstring

    client = Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


def git_state() -> str:
    """The commit measured, and whether app/ had changes not yet committed."""
    try:
        head = subprocess.run(
            ["git", "log", "-1", "--format=%h %s"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "app", "migrations"],
            cwd=ROOT, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
    except OSError:
        return "unknown (no git)"
    return f"{head[:70]}" + (" + uncommitted changes in app/" if dirty else "")


# ------------------------------------------------------------------------------ seeded data

NAMES = (
    "数字多用表", "温度计", "压力表", "电子天平", "游标卡尺", "千分尺", "示波器", "万用表",
    "流量计", "电能表", "秒表", "砝码", "水准仪", "硬度计", "声级计", "pH计",
)  # fmt: skip
MAKERS = ("是德科技", "福禄克", "明月公司", "上海仪表厂", "梅特勒", "泰克", "横河", "安捷伦")
REASONS = ("器具信息不完整", "送检日期冲突，请改期", "证书单位名称有误")
MEASURED_NAME = "南京测试仪表有限公司"
T0 = datetime(2024, 1, 1, tzinfo=UTC)
BOOKING_STEP = timedelta(seconds=600)  # one booking every 10 minutes: 100,000 ≈ 2 years
ITEMS_PER_BOOKING = (3, 7, 5, 4, 6)  # 5 on average: 100,000 bookings → 500,000 instruments
BOOKING_COLS = [
    "id", "enterprise", "created_by", "booking_no", "status", "client_name", "client_address",
    "contact_name", "phone", "cert_name", "cert_address", "mobile", "expected_date", "sender",
    "item_count", "reject_reason", "created_at", "submitted_at", "reviewed_at", "item_rows",
]  # fmt: skip
SEEDED_TABLES = ("enterprise", "app_user", "booking", "booking_item")


def item_columns() -> list[str]:
    """booking_item's columns in the order booking_rows gives them."""
    from app.fields import INSTRUMENT_FIELDS  # not at the top: see the module docstring

    return ["id", "booking", "enterprise", *(f.key for f in INSTRUMENT_FIELDS), "item_key"]


def user_id_of(enterprise: int) -> int:
    return 100 + enterprise  # the platform admin made by app.cli setup has id 1


def enterprise_name(enterprise: int) -> str:
    if enterprise == MEASURED_ENTERPRISE:
        return MEASURED_NAME
    return f"测试企业{enterprise:04d}有限公司"


async def seed_accounts(conn: asyncpg.Connection, n_enterprises: int) -> None:
    """``n_enterprises`` approved enterprises with one enterprise_admin each; the measured
    one's user is USERNAME / PASSWORD, the others cannot log in."""
    from app.clock import now  # not at the top: see the module docstring
    from app.enums import EnterpriseStatus
    from app.security.passwords import hash_password

    stamp = now()
    ents = []
    users = []
    for e in range(1, n_enterprises + 1):
        measured = e == MEASURED_ENTERPRISE
        ents.append(
            (
                e, enterprise_name(e), f"91320100MA{e:08d}", f"南京市江宁区{e}号", f"联系人{e}",
                f"139{e:08d}", EnterpriseStatus.APPROVED, "", False, "", None,
                stamp - timedelta(days=800), stamp,
            )
        )  # fmt: skip
        users.append(
            (
                user_id_of(e),
                USERNAME if measured else f"ent{e:04d}",
                hash_password(PASSWORD) if measured else "",
                "王五" if measured else f"用户{e}",
                f"138{e:08d}",
                e,
                "enterprise_admin",
                True,
                stamp - timedelta(days=800),
            )
        )
    await copy_accounts(conn, ents, users)
    await fix_sequences(conn, SEEDED_TABLES)


def enterprise_of(i: int, n_enterprises: int, every: int) -> int:
    """Row ``i``'s enterprise: every ``every``-th is the measured one, the rest spread."""
    if i % every == 0:
        return MEASURED_ENTERPRISE
    return 2 + (i * 7919) % (n_enterprises - 1)


def booking_rows(
    first: int,
    last: int,
    n_enterprises: int,
    every: int,
    owner: Callable[[int], int] | None = None,
) -> Iterator[tuple[tuple[Any, ...], list[tuple[Any, ...]]]]:
    """Bookings ``first..last`` (ids) with their instruments, deterministic. Booking ``i``
    belongs to ``owner(i)`` if given, else to ``enterprise_of(i, n_enterprises, every)``."""
    from app.enums import BookingStatus  # not at the top: see the module docstring
    from app.services.bookings import key_hash

    rng = random.Random(first)
    item_id = 1 + sum(ITEMS_PER_BOOKING[i % 5] for i in range(1, first))
    for i in range(first, last + 1):
        ent = owner(i) if owner else enterprise_of(i, n_enterprises, every)
        submitted = T0 + BOOKING_STEP * i
        roll = rng.random()
        status = (
            BookingStatus.APPROVED
            if roll < 0.6
            else BookingStatus.PENDING
            if roll < 0.9
            else BookingStatus.REJECTED
        )
        items = []
        total = 0
        for k in range(ITEMS_PER_BOOKING[i % 5]):
            qty = 2 if (item_id % 7) == 0 else 1
            total += qty
            name, serial = NAMES[(i + k) % len(NAMES)], f"{rng.randrange(10**9):09d}"
            model = f"M-{(i * 31 + k) % 500}"
            items.append(
                (
                    item_id, i, ent, name, f"SB-{i}-{k}", serial, model,
                    "0-100", "0.5级", "AC 220 V", MAKERS[(i + k) % len(MAKERS)], "",
                    "检定证书" if k % 3 else "校准证书", qty, "",
                    # as the app writes it (the history picker tells instruments apart by it)
                    key_hash({"name": name, "serial_no": serial, "model": model}),
                )
            )  # fmt: skip
            item_id += 1
        name = enterprise_name(ent)
        booking = (
            i, ent, user_id_of(ent), f"YY{submitted:%Y%m%d}{i:06d}", status, name,
            f"南京市江宁区{ent}号", f"联系人{ent}", "025-88888888", name, f"南京市江宁区{ent}号",
            f"139{ent:08d}", (submitted + timedelta(days=3)).date().isoformat(), f"送检人{i % 50}",
            total, REASONS[i % 3] if status == BookingStatus.REJECTED else "",
            submitted - timedelta(minutes=30),
            submitted, submitted + timedelta(hours=5) if status != BookingStatus.PENDING else None,
            len(items),
        )  # fmt: skip
        yield booking, items


async def seed_bookings(
    conn: asyncpg.Connection,
    first: int,
    last: int,
    n_enterprises: int,
    every: int,
    with_items: bool = True,
    owner: Callable[[int], int] | None = None,
) -> int:
    """Bookings ``first..last`` by COPY (and their instruments unless not ``with_items``),
    owned as ``booking_rows`` says; returns the number of instruments written."""
    chunk = 20_000
    n_items = 0
    columns = item_columns()
    for start in range(first, last + 1, chunk):
        bookings, items = [], []
        end = min(last, start + chunk - 1)
        for b, its in booking_rows(start, end, n_enterprises, every, owner):
            bookings.append(b)
            items.extend(its)
        await conn.copy_records_to_table("booking", records=bookings, columns=BOOKING_COLS)
        if with_items:
            await conn.copy_records_to_table("booking_item", records=items, columns=columns)
            n_items += len(items)
    await fix_sequences(conn, SEEDED_TABLES)
    await conn.execute("VACUUM ANALYZE enterprise, app_user, booking, booking_item")
    return n_items


ITEMS_PER_ORDER = 5  # each with its certificate: 100,000 certificates = 20,000 orders
ORDERS_FROM = datetime(2022, 1, 1, tzinfo=UTC)
ORDER_STEP = timedelta(minutes=105)  # 20,000 orders ≈ 4 years
ORDER_COLS = ["id", "order_no", "booking", "enterprise", "created_at"]
ORDER_ITEM_COLS = [
    "id", "order", "enterprise", "unique_no", "name", "serial_no", "model", "equipment_no",
    "status", "status_at",
]  # fmt: skip
CERT_COLS = [
    "id", "cert_no", "item", "enterprise", "completed_on", "paid", "version", "sha256",
    "downloaded_at", "created_at", "updated_at",
]  # fmt: skip


def order_rows(
    first: int, last: int, n_enterprises: int, every: int
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Orders ``first..last`` (order i is made from booking i, of the same enterprise), their
    instruments and certificates; deterministic."""
    orders, items, certs = [], [], []
    for i in range(first, last + 1):
        ent = enterprise_of(i, n_enterprises, every)
        made = ORDERS_FROM + ORDER_STEP * i
        orders.append((i, f"DD{made:%Y%m%d}{i:06d}", i, ent, made))
        for k in range(ITEMS_PER_ORDER):
            item_id = (i - 1) * ITEMS_PER_ORDER + k + 1
            rng = random.Random(item_id)
            done = made + timedelta(days=rng.randrange(3, 60), hours=rng.randrange(24))
            items.append(
                (
                    item_id, i, ent, f"W{made:%y%m}{item_id:07d}", NAMES[(i + k) % len(NAMES)],
                    f"{rng.randrange(10**9):09d}", f"M-{(i * 31 + k) % 500}", f"SB-{i}-{k}",
                    "collected" if rng.random() < 0.7 else "ready", done,
                )
            )  # fmt: skip
            paid = rng.random() < 0.8
            downloaded = done + timedelta(days=rng.randrange(1, 30)) if paid else None
            if downloaded and rng.random() < 0.45:
                downloaded = None
            completed = None if rng.random() < 0.005 else done.date()  # the lab sent none
            certs.append(
                (
                    item_id, f"JL{made:%Y}-{item_id:07d}", item_id, ent, completed, paid, 1,
                    f"{item_id:064x}", downloaded, done, done,
                )
            )  # fmt: skip
    return orders, items, certs


async def seed_orders(
    conn: asyncpg.Connection, first: int, last: int, n_enterprises: int, every: int
) -> None:
    """Orders ``first..last`` (booking ``i`` must exist), their instruments (order_item) and
    certificates, by COPY; owned as ``enterprise_of`` says."""
    chunk = 5_000
    for start in range(first, last + 1, chunk):
        orders, items, certs = order_rows(start, min(last, start + chunk - 1), n_enterprises, every)
        await conn.copy_records_to_table("lab_order", records=orders, columns=ORDER_COLS)
        await conn.copy_records_to_table("order_item", records=items, columns=ORDER_ITEM_COLS)
        await conn.copy_records_to_table("certificate", records=certs, columns=CERT_COLS)
    await fix_sequences(conn, ("lab_order", "order_item", "certificate"))
    await conn.execute("VACUUM ANALYZE lab_order, order_item, certificate")


def instrument_columns() -> list[str]:
    """instrument's (器具托管) columns in the order instrument_rows gives them."""
    from app.fields import REGISTER_FIELDS  # not at the top: see the module docstring

    return ["id", "enterprise", *(f.key for f in REGISTER_FIELDS)]


def instrument_rows(first: int, last: int, n_enterprises: int, every: int) -> list[tuple[Any, ...]]:
    """器具托管 rows ``first..last``, deterministic: 有效期至 spread over four years around
    now (some overdue, some due soon, a few unset)."""
    from app.clock import today  # not at the top: see the module docstring
    from app.fields import REGISTER_FIELDS

    start = today() - timedelta(days=730)
    rows = []
    for i in range(first, last + 1):
        rng = random.Random(i)
        values: list[Any] = [i, enterprise_of(i, n_enterprises, every)]
        cycle = (6, 12, 24)[i % 3]
        last_on = start + timedelta(days=rng.randrange(1460))
        for f in REGISTER_FIELDS:
            if f.key == "name":
                values.append(NAMES[i % len(NAMES)])
            elif f.key == "serial_no":
                values.append(f"QJ-{i:08d}")
            elif f.key == "cycle_months":
                values.append(cycle)
            elif f.key == "last_verified_on":
                values.append(last_on)
            elif f.key == "valid_until":
                values.append(None if i % 97 == 0 else last_on + timedelta(days=cycle * 30 - 1))
            elif f.kind == "int":
                values.append(1)
            elif f.kind == "choice":
                values.append(f.choices[i % len(f.choices)])
            else:
                values.append(f"{f.label}{i % 50}"[: f.max_length])
        rows.append(tuple(values))
    return rows


async def seed_instruments(
    conn: asyncpg.Connection, first: int, last: int, n_enterprises: int, every: int
) -> None:
    """器具托管 rows ``first..last`` by COPY."""
    columns = instrument_columns()
    for start in range(first, last + 1, 20_000):
        rows = instrument_rows(start, min(last, start + 19_999), n_enterprises, every)
        await conn.copy_records_to_table("instrument", records=rows, columns=columns)
    await fix_sequences(conn, ("instrument",))
    await conn.execute("VACUUM ANALYZE instrument")


# ------------------------------------------------------------------------------ client side


@dataclass
class Session:
    session: str
    csrf: str

    @property
    def cookie(self) -> str:
        return f"session={self.session}; csrftoken={self.csrf}"

    def headers(self, htmx: bool = False, post: bool = False) -> dict[str, str]:
        h = {"Cookie": self.cookie}
        if post:
            h["X-CSRFToken"] = self.csrf
        if htmx:
            h["HX-Request"] = "true"
        return h


def login_session(base: str, username: str = USERNAME, password: str = PASSWORD) -> Session:
    """Log in (the measured user by default) and keep only the cookies wrk sends."""
    client, csrf = login(base, username, password, timeout=30)
    try:
        return Session(session=client.cookies["session"], csrf=csrf)
    finally:
        client.close()


def check(r: Any, marker: str, what: str) -> None:
    """An httpx response must be 200 and contain ``marker``."""
    if r.status_code != 200 or marker not in r.text:
        raise SystemExit(
            f"{what}: HTTP {r.status_code}, {marker!r} not in the answer:\n{r.text[:800]}"
        )


# ------------------------------------------------------------------------------ CPU use


def _machine_busy() -> int:
    """Jiffies all CPUs spent running processes (user, nice, system) or stolen by the host.

    Interrupt and softirq time is left out: loopback networking of the load itself is
    mostly there, and it belongs to no process.
    """
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, _irq, _softirq, steal = (
            int(x) for x in f.readline().split()[1:9]
        )
    return user + nice + system + steal


def _pids_of(match: Any) -> list[int]:
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/cmdline", "rb") as f:
                    cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if match(cmdline):
                pids.append(int(entry))
    return pids


@dataclass
class CpuUse:
    """Cores used during a measured run: the server, its PostgreSQL backends + Redis, the
    load generator, and everything else on the machine (other people's work: noise)."""

    server: float = 0.0
    db: float = 0.0
    loadgen: float = 0.0
    others: float = 0.0

    def __str__(self) -> str:
        return (
            f"CPU cores: server {self.server:.2f}, postgres+redis {self.db:.2f}, "
            f"load generator {self.loadgen:.2f}, others {self.others:.2f}"
        )


class CpuMeter:
    def __init__(self, server_pid: int | None, db_name: str) -> None:
        import resource

        self.resource = resource
        self.server_pids = process_tree(server_pid) if server_pid else []
        self.db_pids = _pids_of(
            # " name ": a backend's title names its database between spaces; not a
            # database whose name contains this one (scale.py's copies).
            lambda c: (c.startswith("postgres:") and f" {db_name} " in c) or "redis-server" in c
        )
        self.t = time.monotonic()
        self.busy = _machine_busy()
        self.server = sum(proc_jiffies(p) for p in self.server_pids)
        self.db = sum(proc_jiffies(p) for p in self.db_pids)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.children = ru.ru_utime + ru.ru_stime

    def stop(self) -> CpuUse:
        elapsed = time.monotonic() - self.t
        busy = (_machine_busy() - self.busy) / CLK_TCK
        server = (sum(proc_jiffies(p) for p in self.server_pids) - self.server) / CLK_TCK
        db = (sum(proc_jiffies(p) for p in self.db_pids) - self.db) / CLK_TCK
        ru = self.resource.getrusage(self.resource.RUSAGE_CHILDREN)
        loadgen = ru.ru_utime + ru.ru_stime - self.children
        others = max(0.0, busy - server - db - loadgen)
        return CpuUse(server / elapsed, db / elapsed, loadgen / elapsed, others / elapsed)


# ------------------------------------------------------------------------------ load


@dataclass
class Load:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    raw: dict[str, Any] = field(default_factory=dict)
    cpu: CpuUse = field(default_factory=CpuUse)

    def per_request(self, cores: float) -> float:
        """CPU milliseconds per request of something that used ``cores`` during the run."""
        seconds = self.raw.get("duration_us", 0) / 1e6
        return cores * seconds / self.requests * 1000 if self.requests else 0.0

    @property
    def server_ms(self) -> float:
        return self.per_request(self.cpu.server)

    @property
    def db_ms(self) -> float:
        return self.per_request(self.cpu.db)


def settle(pid: int, seconds: float = 10) -> None:
    """Wait (at most ``seconds``) until the process tree of ``pid`` uses no more CPU."""
    pids = process_tree(pid)
    before = sum(proc_jiffies(p) for p in pids)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = sum(proc_jiffies(p) for p in pids)
        if now == before:
            return
        before = now


@dataclass
class LoadRunner:
    """wrk (or bench/loadgen.py) against one URL, with the CPU used meanwhile: the server's
    (``server_pid``), PostgreSQL's backends on ``db_name`` + Redis, the load generator's and
    everybody else's."""

    procs: Procs
    db_name: str
    tmp: Path
    connections: int = 20
    warmup: float = 2
    duration: float = 10

    def run(
        self,
        url: str,
        seconds: float,
        headers: dict[str, str],
        method: str = "GET",
        body: bytes = b"",
        server_pid: int | None = None,
    ) -> Load:
        connections = self.connections
        body_file = ""
        if body:
            body_file = str(self.tmp / "body.bin")
            Path(body_file).write_bytes(body)
        if shutil.which("wrk"):
            cmd = [
                *pin("loadgen"), "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s",
                "--timeout", "30s", "-s", str(BENCH / "report.lua"),
            ]  # fmt: skip
            for k, v in headers.items():
                cmd += ["-H", f"{k}: {v}"]
            cmd.append(url)
        else:
            cmd = [
                *pin("loadgen"), sys.executable, str(BENCH / "loadgen.py"), url,
                "--method", method, "--duration", str(seconds),
                "--connections", str(connections),
            ]  # fmt: skip
            for k, v in headers.items():
                cmd += ["--header", f"{k}: {v}"]
            if body_file:
                cmd += ["--body-file", body_file]
        env = {**os.environ, "BENCH_METHOD": method, "BENCH_BODY_FILE": body_file}
        meter = CpuMeter(server_pid, self.db_name)
        proc = self.procs.start(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            out, err = proc.communicate(timeout=seconds + 60)
        finally:
            self.procs.stop(proc)
        cpu = meter.stop()
        line = next((ln for ln in out.decode().splitlines() if ln.startswith("BENCH_JSON ")), None)
        if line is None:
            raise SystemExit(f"load generator printed no figures:\n{out.decode()}\n{err.decode()}")
        raw = json.loads(line.removeprefix("BENCH_JSON "))
        errors = sum(raw[k] for k in raw if k.startswith("err_"))
        return Load(
            rps=raw["requests"] / (raw["duration_us"] / 1e6),
            p50_ms=raw["p50_us"] / 1000,
            p99_ms=raw["p99_us"] / 1000,
            requests=raw["requests"],
            errors=errors,
            raw=raw,
            cpu=cpu,
        )

    def measure(
        self,
        label: str,
        server: Server,
        path: str,
        headers: dict[str, str],
        method: str = "GET",
        body: bytes = b"",
    ) -> Load:
        """A warm-up run, then the measured one (logged); then waits until the server has
        finished the requests still in flight (they would run into the next measurement)."""
        url = server.base + path
        self.run(url, self.warmup, headers, method, body)
        load = self.run(url, self.duration, headers, method, body, server.proc.pid)
        settle(server.proc.pid)
        note = f", {load.errors} ERRORS" if load.errors else ""
        log(
            f"  {label}: {load.rps:,.0f} req/s, p50 {load.p50_ms:.1f} ms, "
            f"p99 {load.p99_ms:.1f} ms ({load.requests:,} requests{note})\n"
            f"    CPU per request: server {load.server_ms:.3f} ms, "
            f"postgres+redis {load.db_ms:.3f} ms; {load.cpu}"
        )
        return load


# ------------------------------------------------------------------------------ plans


def explain_plans(dsn: str, queries: dict[str, str], title: str) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of each query (the last of three runs: warm), printed."""

    async def plans() -> None:
        conn = await asyncpg.connect(dsn)
        try:
            for name, query in queries.items():
                for _ in range(3):
                    rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {query}")
                log(f"--- EXPLAIN ANALYZE {name} at {title}:")
                for row in rows:
                    log("    " + row[0])
        finally:
            await conn.close()

    asyncio.run(plans())


# ------------------------------------------------------------------------------ verdicts


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def result(ok: bool, cpu_ok: bool) -> str:
    """The verdict on rps, and the CPU-based one too when the two disagree (noise)."""
    return verdict(ok) if ok == cpu_ok else f"{verdict(ok)} (cpu: {verdict(cpu_ok)})"


def print_profile(path: Path, title: str, top: int) -> None:
    import pstats

    if not path.exists():
        log(f"(no profile written for {title})")
        return
    log(f"\n=== cProfile: {title} ({path}) — top {top} by own time ===")
    stats = pstats.Stats(str(path))
    stats.sort_stats("tottime").print_stats(top)
    log(f"=== {title} — app functions by cumulative time ===")
    stats.sort_stats("cumulative").print_stats(str(ROOT / "app"), top)
